"""End-to-end convergence: from an API call returning to its effect on real packets.

Starts `neutrino serve` with its embedded agent (isolated, a unique namespace
prefix), then measures p50/p99 milliseconds from the HTTP response to the
first ICMP echo reply for (a) a new instance (port created, plugged, address
by DHCP) reached by a peer, (b) a security group rule opening ICMP. Each new
instance is measured on its own: the previous one's deletion has reached the
kernel (its namespace is gone) before the next is asked for. Prints JSON;
removes everything it made. Needs root.

    .venv/bin/python -m bench.convergence [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench.api import Api, dataplane_server, latencies
from bench.dataplane import Prober
from neutrino.agent.drivers.netns import NETNS_DIR


def measure(api: Api, runs: int) -> dict[str, Any]:
    net = api.post("/networking/v2.0/networks", {"network": {"name": "bench"}})
    api.post(
        "/networking/v2.0/subnets",
        {"subnet": {"network_id": net["id"], "cidr": "10.123.0.0/16", "ip_version": 4}},
    )
    probe_group = api.post(
        "/networking/v2.0/security-groups", {"security_group": {"name": "probe"}}
    )
    peer = api.post(
        "/lab/v1/instances",
        {
            "instance": {
                "name": "peer",
                "networks": [{"network_id": net["id"], "fixed_ip": "10.123.0.5"}],
            }
        },
    )
    peer = api.wait(f"/lab/v1/instances/{peer['id']}", "status", "ACTIVE")
    prober = Prober(peer["netns"])

    plugged = []
    for run in range(runs):
        address = f"10.123.1.{run + 10}"
        vm = api.post(
            "/lab/v1/instances",
            {
                "instance": {
                    "name": f"vm{run}",
                    "networks": [{"network_id": net["id"], "fixed_ip": address}],
                }
            },
        )
        returned = time.monotonic()
        plugged.append(prober.first_reply(address) - returned)
        if run < runs - 1:
            netns = api.wait(f"/lab/v1/instances/{vm['id']}", "status", "ACTIVE")["netns"]
            api.http.delete(f"/lab/v1/instances/{vm['id']}")
            while (NETNS_DIR / netns).exists():
                time.sleep(0.005)

    # The last instance stays as the target; the peer moves to a group the default one
    # does not trust.
    port_id = peer["port_ids"][0]
    api.http.put(
        f"/networking/v2.0/ports/{port_id}", json={"port": {"security_groups": [probe_group["id"]]}}
    )
    target = f"10.123.1.{runs - 1 + 10}"
    while True:
        try:
            prober.first_reply(target, timeout=0.05)
        except TimeoutError:
            break
    default = next(
        g
        for g in api.http.get("/networking/v2.0/security-groups").json()["security_groups"]
        if g["name"] == "default"
    )
    rules = []
    for _ in range(runs):
        rule = api.post(
            "/networking/v2.0/security-group-rules",
            {
                "security_group_rule": {
                    "security_group_id": default["id"],
                    "direction": "ingress",
                    "protocol": "icmp",
                    "remote_ip_prefix": "10.123.0.5/32",
                }
            },
        )
        returned = time.monotonic()
        rules.append(prober.first_reply(target) - returned)
        api.http.delete(f"/networking/v2.0/security-group-rules/{rule['id']}")
        while True:  # closed again before the next run
            try:
                prober.first_reply(target, timeout=0.05)
            except TimeoutError:
                break
    return {
        "port_plugged_reachable": latencies(plugged),
        "security_group_rule_added": latencies(rules),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with dataplane_server("bc") as (server, _scratch):
        result = {"benchmark": "convergence", **measure(Api(server.url, server.token), args.runs)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
