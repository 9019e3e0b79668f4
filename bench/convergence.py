"""End-to-end convergence: from an API call returning to its effect on real packets.

Starts `neutrino serve` with its embedded agent (isolated, a unique namespace
prefix), then measures p50/p99 milliseconds from the HTTP response to the
first ICMP echo reply for (a) a new instance (port created, plugged, address
by DHCP) reached by a peer, (b) a security group rule opening ICMP. Each new
instance is measured on its own: the previous one's deletion has reached the
kernel (its namespace is gone) before the next is asked for. (c) A virtual
machine's boot (scripts/vm-image under QEMU, its port plugged beforehand) from
QEMU's start to its first echo reply, with QEMU's CPU seconds until then: the
kernel's boot, the agent plugging its tap, DHCP. Prints JSON; removes
everything it made. Needs root.

    .venv/bin/python -m bench.convergence [--runs 20] [--vm-boots 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.api import Api, Server, dataplane_server, latencies
from bench.dataplane import Prober
from neutrino.agent.drivers.netns import NETNS_DIR
from neutrino.plan import names
from tests.netns.vm import accelerator, build_image, qemu_command


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


def vm_boots(api: Api, server: Server, scratch: Path, boots: int) -> dict[str, Any]:
    """Boot a VM `boots` times on one port, plugged beforehand; each boot measured from QEMU's
    start to the VM's first echo reply to a peer instance on its network."""
    assert server.host_netns is not None
    net = api.post("/networking/v2.0/networks", {"network": {"name": "bench-vm"}})
    api.post(
        "/networking/v2.0/subnets",
        {"subnet": {"network_id": net["id"], "cidr": "10.124.0.0/24", "ip_version": 4}},
    )
    peer = api.post(
        "/lab/v1/instances",
        {"instance": {"name": "vm-peer", "networks": [{"network_id": net["id"]}]}},
    )
    prober = Prober(api.wait(f"/lab/v1/instances/{peer['id']}", "status", "ACTIVE")["netns"])
    port = api.post(
        "/networking/v2.0/ports",
        {"port": {"network_id": net["id"], "binding:host_id": server.host}},
    )
    address = port["fixed_ips"][0]["ip_address"]
    image = build_image(scratch / "vm")
    accel = list(accelerator(image))
    command = qemu_command(
        image, "vm1", names.device(port), port["mac_address"], scratch / "vm1.console", accel
    )
    walls, cpus, loads = [], [], []
    for _ in range(boots):
        loads.append(os.getloadavg()[0])
        started = time.monotonic()
        qemu = subprocess.Popen(["ip", "netns", "exec", server.host_netns, *command])
        try:
            walls.append(prober.first_reply(address, timeout=300) - started)
            ticks = Path(f"/proc/{qemu.pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13]
            cpus.append(sum(map(int, ticks)) / os.sysconf("SC_CLK_TCK"))
        finally:
            qemu.kill()
            qemu.wait()
        api.wait(f"/networking/v2.0/ports/{port['id']}", "status", "DOWN")
    return {
        "vm_boot_first_reply": latencies(walls),
        "vm_boot_qemu_cpu": latencies(cpus),
        "vm_accelerator": accel[1],
        "vm_load_average": [round(min(loads), 2), round(max(loads), 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--vm-boots", type=int, default=5, help="0: no virtual machine")
    args = parser.parse_args()
    with dataplane_server("bc") as (server, scratch):
        api = Api(server.url, server.token)
        result = {"benchmark": "convergence", **measure(api, args.runs)}
        if args.vm_boots:
            result |= vm_boots(api, server, scratch, args.vm_boots)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
