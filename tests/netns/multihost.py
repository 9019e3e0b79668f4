"""Simulated hosts: a server and one `neutrino agent` process per host, all on this machine.

Each host is a namespace of its own (`<prefix>nhost-<name>`) that its agent
programs, as a machine's root namespace in production. The hosts are joined by

- an underlay: a bridge in a namespace of the test (`<prefix>underlay`), with
  a veth into each host holding its VTEP address (192.0.2.N/24, `ul0`), which
  the agent takes from there (`--vtep-interface ul0`);
- the physical network `default`: each host's NIC is a veth into the outside
  namespace shared by all hosts of the prefix (flat on its bridge, each VLAN on a
  bridge of its own, see plan.host.PhysnetConfig).

The server runs no agent of its own. A host can be cut from both networks
(`cut`), as a machine that dies or loses its cables, and plugged back
(`reconnect`). Everything goes when the test ends, pass or fail: the agents
are killed, each host's data plane torn down, the underlay removed, and
nothing with the prefix may be left.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from neutrino.agent.drivers import netns as ns
from neutrino.agent.runner import DOWN_TIME_PER_REPORT
from neutrino.plan import HostConfig, names
from tests.conftest import (
    VENV_BIN,
    Databases,
    LiveServer,
    eventually,
    start_server,
    stop_server,
)


class Cloud(LiveServer):
    """A live server with a data plane; lab instances and packets through the `neutrino` CLI."""

    def instance(self, name: str, *options: str) -> dict:
        return json.loads(self.neutrino("instance", "create", name, *options, "-f", "json").stdout)

    def run_in(self, name: str, *command: str) -> subprocess.CompletedProcess[str]:
        return self.neutrino("instance", "exec", name, "--", *command, check=False)

    def pings(self, source: str, address: str) -> bool:
        return self.run_in(source, "ping", "-c1", "-W1", address).returncode == 0


@dataclass
class Host:
    config: HostConfig
    state_dir: Path
    agent: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def vtep(self) -> str:
        assert self.config.vtep_ip is not None
        return self.config.vtep_ip

    def fdb(self, device: str) -> list[tuple[str, str]]:
        """(MAC, VTEP) of the remote entries of `device` in this host ([] without it)."""
        shown = subprocess.run(
            ["ip", "netns", "exec", str(self.config.netns), "bridge", "-j", "fdb", "show"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return sorted(
            (entry["mac"], entry["dst"])
            for entry in json.loads(shown or "[]")
            if entry.get("ifname") == device and "dst" in entry
        )

    def neighbours(self, device: str) -> list[tuple[str, str]]:
        """(IP, MAC) of the permanent neighbours of `device` in this host: its ARP responder."""
        shown = self.ip("neigh", "show", "dev", device, "nud", "permanent")
        return sorted((entry["dst"], entry["lladdr"]) for entry in json.loads(shown or "[]"))

    def mtu(self, device: str) -> int:
        return int(json.loads(self.ip("link", "show", "dev", device))[0]["mtu"])

    def ip(self, *command: str) -> str:
        """The JSON output of `ip COMMAND` in this host."""
        argv = ["ip", "-n", str(self.config.netns), "-j", *command]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@dataclass
class Hosts(Cloud):
    hosts: dict[str, Host] = field(default_factory=dict)
    report_interval: float | None = None  # the agents' --report-interval (None: theirs)

    def start_agent(self, host: Host) -> None:
        host.agent = start_agent(
            self.url, self.clouds_yaml, self.prefix, host, self.report_interval
        )

    def cut(self, host: Host) -> None:
        """Cut `host` off both networks from their side, as a dead machine or its unplugged
        cables: its underlay veth goes down in the underlay, and the shared physical network's
        bridges drop its frames (its agent, which makes its NIC's far end, cannot undo that)."""
        subprocess.run(
            ["ip", "-n", f"{self.prefix}underlay", "link", "set", f"u-{host.name}", "down"],
            check=True,
        )
        nic = names.outside_end(host.config, None)  # and its VLANs' veths, named after it
        drops = {  # before the bridge learns where a frame's source is: it learns nothing
            "prerouting": f'iifname "{nic}*" drop;',
            "forward": f'oifname "{nic}*" drop;',
            "output": f'oifname "{nic}*" drop;',
        }
        chains = " ".join(
            f"chain {hook} {{ type filter hook {hook} priority 0; {rules} }};"
            for hook, rules in drops.items()
        )
        table = f"add table bridge cut-{host.name} {{ {chains} }}"
        subprocess.run(["ip", "netns", "exec", self.outside, "nft", table], check=True)

    def reconnect(self, host: Host) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.outside, "nft", "delete table bridge cut-" + host.name],
            check=True,
        )
        subprocess.run(
            ["ip", "-n", f"{self.prefix}underlay", "link", "set", f"u-{host.name}", "up"],
            check=True,
        )

    @property
    def outside(self) -> str:
        """The namespace of the physical network `default` (its bridge, the outside world)."""
        return f"{self.prefix}nout-default"

    def kill_agent(self, host: Host) -> None:
        """SIGKILL the agent in the middle of whatever it does; its data plane stays, with the
        processes it started (dnsmasq, haproxy, instances' DHCP clients)."""
        if host.agent is not None and host.agent.poll() is None:
            host.agent.kill()
            host.agent.wait()

    def alive(self) -> set[str]:
        """Hosts whose three roles the server lists as alive."""
        agents = self.cli("network", "agent", "list")
        return {
            name
            for name in self.hosts
            if sum(1 for a in agents if a["Host"] == name and a["Alive"]) == 3
        }


def make_underlay(name: str) -> None:
    """A namespace with the bridge `ul` that the hosts' VTEPs share."""
    ns.ensure_namespace(name)
    subprocess.run(
        ["ip", "-n", name, "link", "add", "ul", "up", "type", "bridge"],
        check=True,
        capture_output=True,
    )


def start_agent(
    url: str, clouds_yaml: Path, prefix: str, host: Host, report_interval: float | None = None
) -> subprocess.Popen[bytes]:
    """`neutrino agent` for `host`, following the server at `url`; its log beside its state."""
    host.state_dir.mkdir(parents=True, exist_ok=True)
    with (host.state_dir.parent / f"{host.name}.log").open("ab") as log:
        return subprocess.Popen(
            [
                str(VENV_BIN / "neutrino"),
                "agent",
                "--server",
                url,
                "--host",
                host.name,
                "--state-dir",
                str(host.state_dir),
                "--netns-prefix",
                prefix,
                # the address of its underlay interface, read again before each report
                "--vtep-interface",
                "ul0",
                # the server asks it for the lab's tools on loopback, on a port of its choice
                "--listen",
                "127.0.0.1:0",
                "--os-cloud",
                "neutrino-admin",
                "--log-level",
                "warning",
                *(["--report-interval", str(report_interval)] if report_interval else []),
            ],
            env={**os.environ, "OS_CLIENT_CONFIG_FILE": str(clouds_yaml)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def plug_underlay(underlay: str, host: Host) -> None:
    """The host's namespace, with a veth `ul0` holding its VTEP into the underlay's bridge."""
    assert host.config.netns is not None
    ns.ensure_namespace(host.config.netns)
    for argv in (
        ["ip", "-n", underlay, "link", "add", f"u-{host.name}", "type", "veth"]
        + ["peer", "name", "ul0", "netns", host.config.netns],
        ["ip", "-n", underlay, "link", "set", "dev", f"u-{host.name}", "master", "ul", "up"],
        ["ip", "-n", host.config.netns, "addr", "add", f"{host.vtep}/24", "dev", "ul0"],
        ["ip", "-n", host.config.netns, "link", "set", "dev", "ul0", "up"],
    ):
        subprocess.run(argv, check=True, capture_output=True)


@contextmanager
def simulated_hosts(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    tag: str,
    hostnames: tuple[str, ...] = ("h1", "h2", "h3"),
    down_time: float | None = None,
) -> Iterator[Hosts]:
    """A server (no agent of its own) and an agent process per host of `hostnames`, each with
    its VTEP on the underlay and its NIC on the shared physical network; all of it removed
    after. With `down_time`, the server's --agent-down-time, and the agents report as often as
    a server's own agent does for it."""
    from neutrino.agent.reconciler import Agent
    from tests.netns.netlab import leftovers

    if os.geteuid() != 0:
        pytest.skip("the data plane needs root")
    prefix = f"{tag}{secrets.token_hex(3)}-"
    url = databases.new("sqlite")
    root = tmp_path_factory.mktemp(tag)
    options = ["--agent-down-time", str(down_time)] if down_time else []
    server = start_server(root / "state", url, ["--no-agent", *options], kind=Hosts)
    assert isinstance(server, Hosts)
    server.prefix = prefix
    server.report_interval = down_time / DOWN_TIME_PER_REPORT if down_time else None
    underlay = f"{prefix}underlay"
    try:
        make_underlay(underlay)
        for index, name in enumerate(hostnames, start=1):
            config = HostConfig.isolated(name, prefix=prefix, vtep_ip=f"192.0.2.{index}")
            host = server.hosts[name] = Host(config, root / "agents" / name)
            plug_underlay(underlay, host)
            server.start_agent(host)
        assert eventually(lambda: server.alive() == set(hostnames), seconds=60, interval=0.5), (
            server.cli("network", "agent", "list")
        )
        yield server
    finally:
        for process in server.processes:
            process.kill()
            process.wait()
        for host in server.hosts.values():
            server.kill_agent(host)
        stop_server(server)
        # In a thread of its own: pyroute2 runs an asyncio loop, and the caller's thread may
        # hold one.
        with ThreadPoolExecutor(1) as worker:
            for host in server.hosts.values():
                worker.submit(Agent(host.config, host.state_dir).teardown).result()
            ns.delete_namespace(underlay)
            assert worker.submit(leftovers, prefix, root / "agents").result() == []
        databases.drop(url)
