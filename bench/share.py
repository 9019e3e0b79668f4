"""Each agent's share of the model: what it downloads, and how long a full resync takes.

A server without an agent of its own and `--ports` ports on six VXLAN networks,
two networks per host of three (h1, h2, h3), in a group open to the subnets (a
group whose rules name a remote group would bring its members, wherever they
are, into every share that uses it: their addresses fill the ipsets).

- `snapshot_bytes`: what `GET /internal/v1/snapshot?host=NAME` returns to each
  host with the ports spread over three hosts, then with all of them on h1 (one
  host: its share is the whole model), beside the whole model itself.
- `server_share_ms`: the server's time to answer a host's snapshot (the first
  after a write, which advances its mirror of the model, and the next).
- `full_resync_s` (with `--dataplane`, needs root): three simulated hosts, each a
  `neutrino agent` process; each agent is restarted in turn and timed from its
  start to its first report (the one after it read its share, compiled it and
  applied it to its namespace), as after a 410 or a restart.

Each figure comes with the load average at its measurement. Prints JSON; removes
everything it made.

    .venv/bin/python -m bench.share [--ports 1000] [--dataplane]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.api import Server
from bench.multihost import plugged_hosts
from tests.netns.multihost import Host, start_agent

HOSTS = ("h1", "h2", "h3")
NETWORKS_PER_HOST = 2


def load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def populate(http: httpx.Client, ports: int) -> dict[str, list[str]]:
    """The networks and ports; port ids by the host they are bound to."""
    group = http.post("/networking/v2.0/security-groups", json={"security_group": {"name": "b"}})
    group_id, project_id = (group.json()["security_group"][k] for k in ("id", "project_id"))
    unlimited = {"quota": {"port": -1}}
    http.put(f"/networking/v2.0/quotas/{project_id}", json=unlimited).raise_for_status()
    http.post(
        "/networking/v2.0/security-group-rules",
        json={
            "security_group_rule": {
                "security_group_id": group_id,
                "direction": "ingress",
                "remote_ip_prefix": "10.0.0.0/8",
            }
        },
    ).raise_for_status()
    networks = []
    for index in range(len(HOSTS) * NETWORKS_PER_HOST):
        net = http.post("/networking/v2.0/networks", json={"network": {"name": f"n{index}"}})
        net_id = net.json()["network"]["id"]
        http.post(
            "/networking/v2.0/subnets",
            json={"subnet": {"network_id": net_id, "cidr": f"10.{index}.0.0/20", "ip_version": 4}},
        ).raise_for_status()
        networks.append(net_id)
    bound: dict[str, list[str]] = {host: [] for host in HOSTS}
    bodies = []
    for number in range(ports):
        net_index = number % len(networks)
        host = HOSTS[net_index // NETWORKS_PER_HOST]
        bodies.append(
            {
                "network_id": networks[net_index],
                "binding:host_id": host,
                "security_groups": [group_id],
                "name": f"p{number}",
            }
        )
    for start in range(0, len(bodies), 100):
        made = http.post("/networking/v2.0/ports", json={"ports": bodies[start : start + 100]})
        assert made.status_code == 201, made.text
        for port in made.json()["ports"]:
            bound[port["binding:host_id"]].append(port["id"])
    return bound


def snapshot_bytes(http: httpx.Client, host: str) -> int:
    return len(http.get("/internal/v1/snapshot", params={"host": host}).content)


def share_ms(http: httpx.Client, host: str) -> float:
    started = time.perf_counter()
    http.get("/internal/v1/snapshot", params={"host": host}).raise_for_status()
    return round((time.perf_counter() - started) * 1000, 1)


def resync(http: httpx.Client, host: Host, tmp: Path, server: Server, prefix: str) -> float:
    """Seconds from the agent's start to its first report."""

    def started_at() -> str | None:
        agents = http.get(
            "/networking/v2.0/agents",
            params={"host": host.name, "agent_type": "Linux bridge agent"},
        ).json()["agents"]
        return agents[0]["started_at"] if agents else None

    before = started_at()
    if host.agent is not None:
        host.agent.kill()
        host.agent.wait()
    started = time.monotonic()
    host.agent = start_agent(server.url, tmp / "state" / "clouds.yaml", prefix, host)
    while started_at() == before:
        time.sleep(0.02)
    return round(time.monotonic() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--dataplane", action="store_true", help="time agents' resyncs (root)")
    args = parser.parse_args()
    prefix = f"bs{secrets.token_hex(3)}-"
    result: dict[str, Any] = {"benchmark": "share", "ports": args.ports}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        server = Server(tmp / "state", None)
        http = httpx.Client(
            base_url=server.url, headers={"X-Auth-Token": server.token}, timeout=120
        )
        try:
            bound = populate(http, args.ports)
            whole = len(http.get("/internal/v1/snapshot").content)
            result["snapshot_bytes"] = {
                "whole_model": whole,
                "three_hosts": {host: snapshot_bytes(http, host) for host in HOSTS},
                "load_average": load(),
            }
            renamed = {"port": {"name": "renamed"}}
            http.put(f"/networking/v2.0/ports/{bound['h1'][0]}", json=renamed).raise_for_status()
            result["server_share_ms"] = {
                "after_a_write": share_ms(http, "h1"),
                "next": share_ms(http, "h1"),
                "load_average": load(),
            }
            if args.dataplane:
                with plugged_hosts(HOSTS, prefix, tmp / "agents") as hosts:
                    result["full_resync_s"] = {
                        host.name: {
                            "ports": len(bound[host.name]),
                            "first": resync(http, host, tmp, server, prefix),
                            "again": resync(http, host, tmp, server, prefix),
                            "load_average": load(),
                        }
                        for host in hosts
                    }
            for port_id in bound["h2"] + bound["h3"]:
                http.put(
                    f"/networking/v2.0/ports/{port_id}", json={"port": {"binding:host_id": "h1"}}
                ).raise_for_status()
            result["snapshot_bytes"]["one_host"] = {
                "h1": snapshot_bytes(http, "h1"),
                "whole_model": len(http.get("/internal/v1/snapshot").content),
                "load_average": load(),
            }
        finally:
            server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
