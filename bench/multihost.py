"""Convergence across hosts: from the API call to the first packet, for an instance on the
peer's host and for one on another host, over VXLAN.

A server without an agent of its own and two simulated hosts, each a
`neutrino agent` process programming its namespace, their VTEPs on an
underlay bridge (tests/netns/multihost.py builds them). A peer instance on h1
probes; each new instance is created with its host given, and measured from
the HTTP response to the first ICMP echo reply: on h1 (local: plugged, DHCP)
and on h2 (remote: besides, h1's agent learns its MAC and h2's VTEP, and h2
makes the VXLAN device with its peers). Each is deleted, and gone from the
kernel, before the next. Prints JSON; removes everything it made. Needs root.

    .venv/bin/python -m bench.multihost [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.api import Api, Server, latencies
from bench.dataplane import Prober
from neutrino.agent.drivers import netns as ns
from neutrino.agent.reconciler import Agent
from neutrino.plan import HostConfig
from tests.netns.multihost import Host, make_underlay, plug_underlay, start_agent

HOSTS = ("h1", "h2")


def measure(api: Api, runs: int) -> dict[str, Any]:
    net = api.post("/networking/v2.0/networks", {"network": {"name": "bench"}})
    api.post(
        "/networking/v2.0/subnets",
        {"subnet": {"network_id": net["id"], "cidr": "10.124.0.0/16", "ip_version": 4}},
    )
    peer = api.post(
        "/lab/v1/instances",
        {
            "instance": {
                "name": "peer",
                "host": "h1",
                "networks": [{"network_id": net["id"], "fixed_ip": "10.124.0.5"}],
            }
        },
    )
    peer = api.wait(f"/lab/v1/instances/{peer['id']}", "status", "ACTIVE")
    prober = Prober(peer["netns"])
    found = {}
    for where, host in (("local", "h1"), ("remote", "h2")):
        samples = []
        for run in range(runs):
            address = f"10.124.{1 + HOSTS.index(host)}.{run + 10}"
            vm = api.post(
                "/lab/v1/instances",
                {
                    "instance": {
                        "name": f"{host}-vm{run}",
                        "host": host,
                        "networks": [{"network_id": net["id"], "fixed_ip": address}],
                    }
                },
            )
            returned = time.monotonic()
            samples.append(prober.first_reply(address) - returned)
            netns = api.wait(f"/lab/v1/instances/{vm['id']}", "status", "ACTIVE")["netns"]
            api.http.delete(f"/lab/v1/instances/{vm['id']}")
            while (ns.NETNS_DIR / netns).exists():
                time.sleep(0.005)
        found[f"instance_on_{where}_host_reachable"] = latencies(samples)
    return found


@contextmanager
def plugged_hosts(names: tuple[str, ...], prefix: str, root: Path) -> Iterator[list[Host]]:
    """Simulated hosts (tests/netns/multihost.py) on an underlay, their agents not started yet;
    on the way out their agents are stopped and everything they made is removed."""
    underlay = f"{prefix}underlay"
    hosts = [
        Host(HostConfig.isolated(name, prefix=prefix, vtep_ip=f"192.0.2.{i}"), root / name)
        for i, name in enumerate(names, start=1)
    ]
    try:
        make_underlay(underlay)
        for host in hosts:
            plug_underlay(underlay, host)
        yield hosts
    finally:
        for host in hosts:
            if host.agent is not None:
                host.agent.kill()
                host.agent.wait()
        for host in hosts:
            Agent(host.config, host.state_dir).teardown()
        ns.delete_namespace(underlay)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    prefix = f"bm{secrets.token_hex(3)}-"
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "state", None)
        try:
            with plugged_hosts(HOSTS, prefix, Path(tmp) / "agents") as hosts:
                for host in hosts:
                    host.agent = start_agent(
                        server.url, Path(tmp) / "state" / "clouds.yaml", prefix, host
                    )
                api = Api(server.url, server.token)
                while (
                    sum(
                        a["alive"] for a in api.http.get("/networking/v2.0/agents").json()["agents"]
                    )
                    < 6
                ):
                    time.sleep(0.1)
                result = {"benchmark": "multihost", **measure(api, args.runs)}
        finally:
            server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
