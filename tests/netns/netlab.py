"""Helpers of the real-kernel tests: hosts, agents, instances, packets."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neutrino.agent import Agent
from neutrino.agent.drivers import netns as ns
from neutrino.agent.instance import NETNS_ETC, exec_in_instance
from neutrino.lab import models
from neutrino.plan import HostConfig, names

PYTHON = sys.executable


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll until `predicate` returns something truthy; return it, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


def ipv4_of(netns: str, ifname: str = "eth0") -> str | None:
    _, out, _ = exec_in_instance(netns, ["ip", "-4", "-o", "addr", "show", "dev", ifname])
    fields = out.split()
    return fields[3].split("/")[0] if len(fields) > 3 else None


def ping(netns: str, address: str, timeout: int = 1) -> bool:
    rc, _, _ = exec_in_instance(
        netns, ["busybox", "ping", "-c", "1", "-W", str(timeout), address], timeout=timeout + 2
    )
    return rc == 0


def tcp_reachable(netns: str, address: str, port: int, timeout: float = 1.0) -> bool:
    code = (
        "import socket,sys;s=socket.create_connection((sys.argv[1],int(sys.argv[2])),"
        "timeout=float(sys.argv[3]));s.sendall(b'hi');print(s.recv(16).decode())"
    )
    rc, out, _ = exec_in_instance(
        netns, [PYTHON, "-c", code, address, str(port), str(timeout)], timeout=timeout + 3
    )
    return rc == 0 and out.strip() == "hi"


class Lab:
    """Hosts, agents and instances of one test, all named with its unique prefix."""

    def __init__(self, prefix: str, state_root: Path) -> None:
        self.prefix = prefix
        self.state_root = state_root
        self.agents: list[Agent] = []
        self.servers: list[subprocess.Popen[bytes]] = []

    def host(self, name: str = "h1") -> HostConfig:
        return HostConfig.isolated(name, prefix=self.prefix)

    def agent(self, host: HostConfig) -> Agent:
        agent = Agent(host, self.state_root / host.name)
        self.agents.append(agent)
        return agent

    def instance_netns(self, host: HostConfig, instance: dict[str, Any]) -> str:
        return names.instance_netns(host, instance["id"])

    def wait_ip(self, host: HostConfig, instance: dict[str, Any], address: str) -> str:
        netns = self.instance_netns(host, instance)
        wait_for(lambda: ipv4_of(netns) == address)
        return netns

    def tcp_echo_server(self, netns: str, port: int) -> None:
        """An echo server in `netns` for the rest of the test."""
        code = (
            "import socket,sys,threading\n"
            "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            "s.bind(('0.0.0.0',int(sys.argv[1])));s.listen()\n"
            "def echo(c):\n"
            "  while (d:=c.recv(65536)): c.sendall(d)\n"
            "while True:\n"
            "  c,_=s.accept();threading.Thread(target=echo,args=(c,),daemon=True).start()\n"
        )
        server = subprocess.Popen(["ip", "netns", "exec", netns, PYTHON, "-c", code, str(port)])
        self.servers.append(server)
        wait_for(lambda: tcp_reachable(netns, "127.0.0.1", port))

    def close(self) -> None:
        for server in self.servers:
            server.kill()
            server.wait()
        for agent in self.agents:
            agent.teardown()
        for name in ns.list_namespaces():  # whatever a failed agent left
            if name.startswith(self.prefix):
                ns.delete_namespace(name)


def root_namespace() -> tuple[str, str]:
    """Link names and nft ruleset of the machine's own namespace, which tests never touch."""
    links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    ruleset = subprocess.run(
        ["nft", "list", "ruleset"], capture_output=True, text=True, check=True
    ).stdout
    return "\n".join(sorted(line.split(":")[1] for line in links.splitlines())), ruleset


def leftovers(prefix: str, state_root: Path) -> list[str]:
    found = [f"namespace {n}" for n in ns.list_namespaces() if n.startswith(prefix)]
    if NETNS_ETC.exists():
        found += [
            f"{NETNS_ETC}/{n}" for n in os.listdir(NETNS_ETC) if n.lstrip(".").startswith(prefix)
        ]
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if prefix in cmdline or str(state_root) in cmdline:
                found.append(f"process {entry.name}: {cmdline}")
    return found


def flat_model(host: str, count: int = 2, **port_fields: Any) -> tuple[dict[str, Any], ...]:
    """A flat network with DHCP on `host` and `count` instances: (model, sg, instances...)."""
    net = models.network("flat")
    sub = models.subnet(net, "10.10.0.0/24")
    sg = models.default_security_group()
    ports = [
        models.port(net, sub, f"10.10.0.{10 + i}", security_groups=[sg["id"]], **port_fields)
        for i in range(count)
    ]
    instances = [models.instance(f"vm{i}", host, p) for i, p in enumerate(ports)]
    model = models.snapshot(
        networks=[net],
        subnets=[sub],
        security_groups=[sg],
        ports=[models.dhcp_port(net, sub, "10.10.0.2", host=host), *ports],
        instances=instances,
    )
    return (model, sg, *instances)


def port_of(model: dict[str, Any], instance: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in model["ports"] if p["id"] == instance["port_ids"][0])


def set_address(netns: str, cidr: str) -> None:
    """Change the instance's address by hand, as a user inside it would."""
    for argv in (
        ["ip", "-4", "addr", "flush", "dev", "eth0"],
        ["ip", "addr", "add", cidr, "dev", "eth0"],
    ):
        rc, _, err = exec_in_instance(netns, argv)
        assert rc == 0, err


def kernel_snapshot(host: HostConfig) -> tuple[str, str]:
    """The host namespace's nft ruleset and links (with ifindexes: a re-created link shows).

    Operational state is left out: the kernel moves it on its own, carrier
    included (linkwatch reports a new veth's carrier up to a second late).
    """
    assert host.netns is not None
    ruleset = subprocess.run(
        ["ip", "netns", "exec", host.netns, "nft", "list", "ruleset"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    links = subprocess.run(
        ["ip", "-n", host.netns, "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    return _objects_sorted(_elements_sorted(ruleset)), re.sub(
        r" state \S+|NO-CARRIER,|,LOWER_UP", "", links
    )


ELEMENTS = re.compile(r"(elements = \{ )(.*?)( \})", re.DOTALL)


def _elements_sorted(ruleset: str) -> str:
    """The ruleset with each set's and map's elements in sorted order, on one line: a listing
    shows them in the order they were added, which a change by element differs in from a
    whole load, and which changes nothing of what they match."""
    return ELEMENTS.sub(
        lambda found: (
            found[1]
            + ", ".join(sorted(element.strip() for element in found[2].split(",")))
            + found[3]
        ),
        ruleset,
    )


def _objects_sorted(ruleset: str) -> str:
    """The ruleset with each table's chains, sets and maps in name order: a listing shows them
    in the order they were made, which changes nothing of what they do."""
    tables: list[tuple[str, list[list[str]]]] = []
    for line in ruleset.splitlines():
        if line.startswith("table "):
            tables.append((line, []))
        elif line.startswith("\t") and not line.startswith("\t\t") and line != "\t}":
            tables[-1][1].append([line])
        elif line.startswith("\t"):
            tables[-1][1][-1].append(line)
    return "".join(
        head + "\n" + "".join("\n".join(block) + "\n" for block in sorted(blocks)) + "}\n"
        for head, blocks in tables
    )


def sync(agent: Agent, model: dict[str, Any]) -> Any:
    report = agent.sync(model)
    assert report.errors == [], report.errors
    return report
