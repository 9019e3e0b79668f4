"""A trace's part on one host: watch the probe's packets in its namespaces, or send the probe.

While a trace runs, each host its packet crosses watches it (`Watch`): a
short-lived nft table sets `nftrace` on the probe's packets, in the bridge
family of the host's own namespace (the networks' bridges: which port a frame
came in by and left by, its VXLAN device included, and the security groups'
verdicts) and in the router's namespace when the router is here (its
interfaces and the NAT rule that matched); `nft monitor trace` reports every
chain and rule they meet. The host of the instance then sends the probe
(`probe`). The path these observations confirm is computed, and they are
merged, by the server (neutrino.lab.trace). The same watch and probe check a
floating IP from the outside (neutrino.lab.probe).
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import subprocess
import sys
import threading
import time
from typing import Any

from neutrino.agent.instance import exec_in_instance

# A TCP connect, or an HTTP GET of argv[4] when it is not empty: what it saw, as JSON.
CONNECT = r"""
import json,socket,sys,time
address,port,source,path=sys.argv[1],int(sys.argv[2]),sys.argv[3],sys.argv[4]
seen={}
start=time.monotonic()
try:
    s=socket.create_connection((address,port),2,(source,0) if source else None)
    if path:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
        data=b""
        while len(data)<4096 and (chunk:=s.recv(4096)):
            data+=chunk
        head,_,body=data.partition(b"\r\n\r\n")
        status=head.split(b"\r\n",1)[0].split()
        if len(status)<2 or not status[1].isdigit():
            raise OSError("the answer is not HTTP")
        seen["http_status"]=int(status[1])
        seen["first_bytes"]=body[:256].decode(errors="replace")
    s.close()
except OSError as error:
    seen["error"]=(error.strerror or str(error)).lower()
seen["elapsed_ms"]=round((time.monotonic()-start)*1000,1)
print(json.dumps(seen))
"""
# Before the firewall's bridge chains (plan.firewall), and a look at the output port after them.
HOST_CHAINS = (
    "chain prerouting {{\n  type filter hook prerouting priority -1000; policy accept;\n"
    "  {match} meta nftrace set 1\n }}\n"
    " chain forward {{\n  type filter hook forward priority -1; policy accept;\n  counter\n }}\n"
)
# Forwarded packets are seen leaving by their output interface (IPv6 has no NAT chain to show
# it: the router's table is IPv4's).
ROUTER_CHAINS = (
    "chain prerouting {{\n  type filter hook prerouting priority raw - 10; policy accept;\n"
    "  {match} meta nftrace set 1\n }}\n"
    " chain forward {{\n  type filter hook forward priority -1; policy accept;\n  counter\n }}\n"
)
SUBSCRIBE_SECONDS = 0.2  # for `nft monitor` to subscribe before the first packet
LONGEST_WATCH = 60.0  # a watch nobody ends goes by itself
PING_TIME = re.compile(r"time=([0-9.]+) ms")


def _family(destinations: list[str]) -> str:
    """nft's family of the probe's packets: "ip" or "ip6"."""
    return "ip6" if ipaddress.ip_address(destinations[0]).version == 6 else "ip"


def _match(source: str | None, destinations: list[str], protocol: str, port: int | None) -> str:
    family = _family(destinations)
    daddr = destinations[0] if len(destinations) == 1 else "{ " + ", ".join(destinations) + " }"
    match = (f"{family} saddr {source} " if source else "") + f"{family} daddr {daddr}"
    if protocol in ("tcp", "http"):
        return match + f" tcp dport {port or 80}"
    return match + (" ip protocol icmp" if family == "ip" else " meta l4proto ipv6-icmp")


def _in(netns: str | None, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def probe(
    netns: str,
    destination: str,
    protocol: str,
    port: int | None = None,
    path: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Send a probe from `netns` (an instance, or the outside): a ping ("icmp"), a TCP connect
    ("tcp") or an HTTP GET of `path` ("http"), from `source` when given. What it sent, whether
    it was answered, in how many milliseconds, and what it saw."""
    if protocol == "icmp":
        sent = f"ping {destination}" + (f" from {source}" if source else "")
        argv = ["ping", "-c", "1", "-W", "1", *(["-I", source] if source else []), destination]
        status, stdout, stderr = exec_in_instance(netns, argv, timeout=5)
        took = PING_TIME.search(stdout)
        seen: dict[str, Any] = {"elapsed_ms": float(took.group(1))} if took else {}
        if status != 0:
            last = (stderr.strip() or stdout.strip()).splitlines()
            unreachable = [line for line in last if "nreachable" in line]
            seen["error"] = (unreachable or ["no answer"])[-1].lower()
    else:
        port = port or 80
        wanted = path if protocol == "http" else ""
        sent = (
            f"HTTP GET http://{destination}:{port}{path}"
            if protocol == "http"
            else f"TCP connect to {destination}:{port}"
        ) + (f" from {source}" if source else "")
        argv = [sys.executable, "-c", CONNECT, destination, str(port), source or "", wanted or ""]
        status, stdout, stderr = exec_in_instance(netns, argv, timeout=10)
        try:
            seen = json.loads(stdout)
        except ValueError:
            seen = {"error": (stderr.strip() or "the probe did not end").lower()}
    return {"sent": sent, "reached": "error" not in seen, **seen}


class Watch:
    """The probe's packets traced in `namespaces` ({netns: "host" or "router"}) until `end`."""

    def __init__(
        self, namespaces: dict[str | None, str], match: str, router_family: str = "ip"
    ) -> None:
        """`router_family`: the probe's, "ip" or "ip6", of the table in a router."""
        self.table = f"neutrino_trace_{secrets.token_hex(4)}"
        self.monitors: dict[str | None, subprocess.Popen[str]] = {}
        self.families: dict[str | None, str] = {}
        try:
            for netns, role in namespaces.items():
                family, chains = (
                    ("bridge", HOST_CHAINS) if role == "host" else (router_family, ROUTER_CHAINS)
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
            wanted.get("source"), wanted["destinations"], wanted["protocol"], wanted.get("port")
        )
        watch = Watch(namespaces, match, _family(wanted["destinations"]))
        watch_id = secrets.token_hex(8)
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
