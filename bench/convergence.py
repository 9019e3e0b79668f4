"""End-to-end convergence: from an API call returning to its effect on real packets.

Starts `neutrino serve` with its embedded agent (isolated, a unique namespace
prefix), then measures p50/p99 milliseconds from the HTTP response to the
first ICMP echo reply for (a) a new instance (port created, plugged, address
by DHCP) reached by a peer, (b) a security group rule opening ICMP, (c) a new
instance plugged to an IPv6 subnet, SLAAC or DHCPv6-stateful, until its
address is usable: the instance has taken it as a VM does (the kernel's SLAAC
from the advertisement, or dhclient -6), its duplicate address detection is
done (a tentative address answers nothing) and a peer's ICMPv6 echo to it is
answered. Each new instance is measured on its own: the previous one's
deletion has reached the kernel (its namespace is gone) before the next is
asked for. (d) A virtual machine's boot (scripts/vm-image under QEMU, its port
plugged beforehand) from QEMU's start to its first echo reply, with QEMU's CPU
seconds until then: the kernel's boot, the agent plugging its tap, DHCP.
(e) With podman and runc installed, a container's start on a neutrino network
through neutrino-cni: from `podman run` to the first packet the container
sends (an ICMP echo request) arriving at a peer on that network, each container
removed (its port with it) before the next starts. Prints JSON, with the load
average; removes everything it made. Needs root.

    .venv/bin/python -m bench.convergence [--runs 20] [--vm-boots 5] [--container-runs 30]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench.api import Api, Server, dataplane_server, latencies, wait_for_address
from bench.dataplane import Prober
from neutrino.agent.drivers.netns import NETNS_DIR, NetnsThread
from neutrino.plan import names
from tests.netns.podman import Podman
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
        "ipv6_slaac_address_usable": ipv6_usable(api, "slaac", "fd00:123:a::/64", runs),
        "ipv6_dhcpv6_stateful_address_usable": ipv6_usable(
            api, "dhcpv6-stateful", "fd00:123:b::/64", runs
        ),
    }


def vm_boots(api: Api, server: Server, scratch: Path, boots: int) -> dict[str, Any]:
    """Boot a VM `boots` times on one port, plugged beforehand; each boot measured from QEMU's
    start to the VM's first echo reply to a peer instance on its network."""
    assert server.host_netns is not None
    net = api.post("/networking/v2.0/networks", {"network": {"name": "bench-vm"}})
    api.post(
        "/networking/v2.0/subnets",
        {"subnet": {"network_id": net["id"], "cidr": "10.125.0.0/24", "ip_version": 4}},
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


def ipv6_usable(api: Api, mode: str, cidr: str, runs: int) -> dict[str, Any]:
    """From a new instance's creation returning to the first echo reply from its address on an
    IPv6 subnet of address mode `mode` (advertised from the DHCP namespace). Its port is made
    first, so that its address is known."""
    net = api.post("/networking/v2.0/networks", {"network": {"name": f"bench-{mode}"}})
    subnet = {
        "network_id": net["id"],
        "cidr": cidr,
        "ip_version": 6,
        "ipv6_ra_mode": mode,
        "ipv6_address_mode": mode,
    }
    api.post("/networking/v2.0/subnets", {"subnet": subnet})
    peer_port = new_port(api, net["id"], f"peer-{mode}")
    peer = api.post(
        "/lab/v1/instances", {"instance": {"name": f"peer-{mode}", "ports": [peer_port["id"]]}}
    )
    peer_netns = netns_of(api, peer["id"])
    wait_for_address(peer_netns, peer_port["fixed_ips"][0]["ip_address"])
    prober = Prober(peer_netns, version=6)
    usable = []
    for run in range(runs):
        port = new_port(api, net["id"], f"{mode}-{run}")
        vm = api.post(
            "/lab/v1/instances", {"instance": {"name": f"{mode}-{run}", "ports": [port["id"]]}}
        )
        returned = time.monotonic()
        # DHCPv6 retransmits at growing intervals: one lost exchange costs seconds.
        reply = prober.first_reply(port["fixed_ips"][0]["ip_address"], timeout=60)
        usable.append(reply - returned)
        netns = netns_of(api, vm["id"])
        api.http.delete(f"/lab/v1/instances/{vm['id']}")
        while (NETNS_DIR / netns).exists():
            time.sleep(0.005)
        api.http.delete(f"/networking/v2.0/ports/{port['id']}")
    return latencies(usable)


def new_port(api: Api, network_id: str, name: str) -> dict[str, Any]:
    return api.post("/networking/v2.0/ports", {"port": {"network_id": network_id, "name": name}})


def netns_of(api: Api, instance_id: str) -> str:
    """The instance's namespace, once its host has reported it."""
    while not (
        netns := api.http.get(f"/lab/v1/instances/{instance_id}").json()["instance"]["netns"]
    ):
        time.sleep(0.005)
    return str(netns)


class Arrivals:
    """The first ICMP echo request from each source, as it reaches a namespace: the monotonic
    time it came (a raw socket made there, read by a thread of its own)."""

    def __init__(self, netns: str) -> None:
        worker = NetnsThread(netns)
        self.sock = worker.call(
            lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        )
        worker.close()
        self.sock.settimeout(0.2)
        self.first: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                data, (source, _) = self.sock.recvfrom(1500)
            except TimeoutError:
                continue
            if data[20] == 8:  # an echo request
                self.first.setdefault(source, time.monotonic())

    def wait(self, source: str, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while source not in self.first:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no packet from {source}")
            time.sleep(0.001)
        return self.first[source]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def measure_containers(server: Server, api: Api, runs: int) -> dict[str, Any]:
    """From `podman run` to the container's first packet at a peer, `runs` times."""
    net = api.post("/networking/v2.0/networks", {"network": {"name": "bench_pods"}})
    api.post(
        "/networking/v2.0/subnets",
        {"subnet": {"network_id": net["id"], "cidr": "10.124.0.0/16", "ip_version": 4}},
    )
    peer = api.post(
        "/lab/v1/instances",
        {
            "instance": {
                "name": "pod-peer",
                "networks": [{"network_id": net["id"], "fixed_ip": "10.124.0.5"}],
            }
        },
    )
    peer = api.wait(f"/lab/v1/instances/{peer['id']}", "status", "ACTIVE")
    arrivals = Arrivals(peer["netns"])
    podman = Podman()
    podman.network(
        "bench_pods",
        {
            "network": "bench_pods",
            "clouds_yaml": str(server.state_dir / "clouds.yaml"),
            "host": server.host,
            "host_netns": server.host_netns,
        },
    )
    load = os.getloadavg()
    started = []
    try:
        for run in range(runs):
            began = time.monotonic()
            container = podman(
                "run",
                "-d",
                "--name",
                f"c{run}",
                "--network",
                "bench_pods",
                "--rootfs",
                str(podman.rootfs),
                "/bin/busybox",
                "ping",
                "10.124.0.5",
            ).stdout.strip()
            (port,) = api.http.get(
                "/networking/v2.0/ports", params={"device_id": container}
            ).json()["ports"]
            address = port["fixed_ips"][0]["ip_address"]
            assert ipaddress.ip_address(address) in ipaddress.ip_network("10.124.0.0/16")
            started.append(arrivals.wait(address) - began)
            podman("rm", "--force", "--time", "0", f"c{run}")
            arrivals.first.pop(address, None)  # the next container may get the address again
    finally:
        podman.close()
        arrivals.close()
    return {
        "container_started_first_packet": {
            **latencies(started),
            "load_average_before": [round(x, 2) for x in load],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--vm-boots", type=int, default=5, help="0: no virtual machine")
    parser.add_argument("--container-runs", type=int, default=30, help="0: no container")
    args = parser.parse_args()
    before = [round(load, 2) for load in os.getloadavg()]
    with dataplane_server("bc") as (server, scratch):
        api = Api(server.url, server.token)
        result = {"benchmark": "convergence", **measure(api, args.runs)}
        if args.vm_boots:
            result |= vm_boots(api, server, scratch, args.vm_boots)
        if args.container_runs and shutil.which("podman") and shutil.which("runc"):
            result |= measure_containers(server, api, args.container_runs)
    result["load_average_before"] = before
    result["load_average_after"] = [round(load, 2) for load in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
