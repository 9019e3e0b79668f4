"""The probe of a trace, sent from an instance while the router's namespace traces it.

While it is sent, a short-lived nft table in the router's namespace sets
`nftrace` on the probe's packets, and `nft monitor trace` reports every chain
and rule they meet there, including the NAT rule that matched. The path the
probe confirms is computed by the server (neutrino.lab.trace).
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from neutrino.agent.instance import exec_in_instance
from neutrino.plan.routers import TABLE

TRACE_TABLE = "neutrino_trace"
CONNECT = (
    "import socket,sys\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2)\n"
    "s.close()"
)


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


def _trace_rules(source: str, destination: str, protocol: str, port: int | None) -> str:
    match = f"ip saddr {source} ip daddr {destination}"
    if protocol == "tcp":
        match += f" tcp dport {port or 80}"
    elif protocol == "icmp":
        match += " ip protocol icmp"
    return (
        f"table ip {TRACE_TABLE} {{\n chain prerouting {{\n"
        f"  type filter hook prerouting priority raw - 10; policy accept;\n"
        f"  {match} meta nftrace set 1\n }}\n}}\n"
    )


def probe(
    netns: str | None,
    instance_netns: str,
    source: str,
    destination: str,
    protocol: str,
    port: int | None,
) -> dict[str, Any]:
    """Send the probe; with a router namespace, collect the nft trace of its packets there."""
    what, argv = _probe(destination, protocol, port)
    if netns is None:
        status, _, _ = exec_in_instance(instance_netns, argv, timeout=5)
        return {"sent": what, "reached": status == 0, "trace": []}
    subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-f", "-"],
        check=True,
        capture_output=True,
        input=_trace_rules(source, destination, protocol, port),
        text=True,
    )
    monitor = subprocess.Popen(
        ["ip", "netns", "exec", netns, "nft", "monitor", "trace"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        time.sleep(0.2)  # let the monitor subscribe before the first packet
        status, _, _ = exec_in_instance(instance_netns, argv, timeout=5)
        time.sleep(0.2)
    finally:
        monitor.terminate()
        output = monitor.communicate(timeout=5)[0]
        subprocess.run(
            ["ip", "netns", "exec", netns, "nft", "delete", "table", "ip", TRACE_TABLE],
            capture_output=True,
            check=False,
        )
    lines = [line.strip() for line in output.splitlines() if line.startswith("trace id")]
    return {
        "sent": what,
        "reached": status == 0,
        "trace": lines,
        "matched_rules": sorted(
            {
                line.split(" rule ", 1)[1]
                for line in lines
                if f"ip {TABLE} " in line and " rule " in line
            }
        ),
    }
