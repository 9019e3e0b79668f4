"""A trace's part on one host: watch the probe's packets in its namespaces, or send the probe.

While a trace runs, each host its packet crosses watches it (`Watch`): a
short-lived nft table sets `nftrace` on the probe's packets, in the bridge
family of the host's own namespace (the networks' bridges: which port a frame
came in by and left by, its VXLAN device included, and the security groups'
verdicts) and in the router's namespace when the router is here (its
interfaces and the NAT rule that matched); `nft monitor trace` reports every
chain and rule they meet. The host of the instance then sends the probe
(`probe`). The path these observations confirm is computed, and they are
merged, by the server (neutrino.lab.trace).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
from typing import Any

from neutrino.agent.instance import exec_in_instance

CONNECT = (
    "import socket,sys\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2)\n"
    "s.close()"
)
# Before the firewall's bridge chains (plan.firewall), and a look at the output port after them.
HOST_CHAINS = (
    "chain prerouting {{\n  type filter hook prerouting priority -1000; policy accept;\n"
    "  {match} meta nftrace set 1\n }}\n"
    " chain forward {{\n  type filter hook forward priority -1; policy accept;\n  counter\n }}\n"
)
ROUTER_CHAINS = (
    "chain prerouting {{\n  type filter hook prerouting priority raw - 10; policy accept;\n"
    "  {match} meta nftrace set 1\n }}\n"
)
SUBSCRIBE_SECONDS = 0.2  # for `nft monitor` to subscribe before the first packet
LONGEST_WATCH = 60.0  # a watch nobody ends goes by itself


def _probe(destination: str, protocol: str, port: int | None) -> tuple[str, list[str]]:
    """(what it is, its command)."""
    if protocol == "tcp":
        return f"TCP connect to {destination}:{port or 80}", [
            sys.executable,
            "-c",
            CONNECT,
            destination,
            str(port or 80),
        ]
    return f"ping {destination}", ["ping", "-c", "1", "-W", "1", destination]


def _match(source: str, destination: str, protocol: str, port: int | None) -> str:
    match = f"ip saddr {source} ip daddr {destination}"
    if protocol == "tcp":
        return match + f" tcp dport {port or 80}"
    return match + " ip protocol icmp"


def _in(netns: str | None, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def probe(instance_netns: str, destination: str, protocol: str, port: int | None) -> dict[str, Any]:
    """Send the probe from the instance: what it sent, and whether it was answered."""
    what, argv = _probe(destination, protocol, port)
    status, _, _ = exec_in_instance(instance_netns, argv, timeout=5)
    return {"sent": what, "reached": status == 0}


class Watch:
    """The probe's packets traced in `namespaces` ({netns: "host" or "router"}) until `end`."""

    def __init__(self, namespaces: dict[str | None, str], match: str) -> None:
        self.table = f"neutrino_trace_{secrets.token_hex(4)}"
        self.monitors: dict[str | None, subprocess.Popen[str]] = {}
        self.families: dict[str | None, str] = {}
        try:
            for netns, role in namespaces.items():
                family, chains = (
                    ("bridge", HOST_CHAINS) if role == "host" else ("ip", ROUTER_CHAINS)
                )
                rules = f"table {family} {self.table} {{\n {chains.format(match=match)}}}\n"
                subprocess.run(
                    _in(netns, "nft", "-f", "-"), input=rules, text=True, check=True,
                    capture_output=True,
                )  # fmt: skip
                self.families[netns] = family
                self.monitors[netns] = subprocess.Popen(
                    _in(netns, "nft", "monitor", "trace"),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
        except BaseException:
            self.end()
            raise
        time.sleep(SUBSCRIBE_SECONDS)

    def end(self) -> list[dict[str, Any]]:
        """What each namespace saw: [{"netns", "trace": its nft trace lines}]."""
        time.sleep(SUBSCRIBE_SECONDS)  # the last packets' events
        seen = []
        for netns, monitor in self.monitors.items():
            monitor.terminate()
            output = monitor.communicate(timeout=5)[0]
            lines = [line.strip() for line in output.splitlines() if line.startswith("trace id")]
            seen.append({"netns": netns, "trace": lines})
        self.monitors = {}
        for netns, family in self.families.items():
            subprocess.run(
                _in(netns, "nft", "delete", "table", family, self.table),
                capture_output=True,
                check=False,
            )
        self.families = {}
        return seen


class Watches:
    """The watches under way on this host, by id."""

    def __init__(self) -> None:
        self._watches: dict[str, Watch] = {}
        self._lock = threading.Lock()

    def start(self, host_netns: str | None, wanted: dict[str, Any]) -> dict[str, str]:
        namespaces: dict[str | None, str] = {host_netns: "host"}
        if wanted.get("router_netns"):
            namespaces[wanted["router_netns"]] = "router"
        match = _match(
            wanted["source"], wanted["destination"], wanted["protocol"], wanted.get("port")
        )
        watch_id, watch = secrets.token_hex(8), Watch(namespaces, match)
        with self._lock:
            self._watches[watch_id] = watch
        timer = threading.Timer(LONGEST_WATCH, self.end, (watch_id,))
        timer.daemon = True
        timer.start()
        return {"id": watch_id}

    def end(self, watch_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            watch = self._watches.pop(watch_id, None)
        return None if watch is None else watch.end()
