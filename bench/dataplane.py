"""Convergence of the data plane: from `agent.sync(model)` to packets, and resync cost.

Prints JSON: p50/p99 milliseconds from the sync call to the first ICMP echo reply
(a) from an instance just plugged (veth, DHCP and all), (b) through a security
group rule just added; and the seconds (wall, and the agent's CPU) of a
from-scratch and a no-op sync of 500 ports (`--ports`) on one host, with the
load average beside each. Needs root; leaves nothing behind.

    .venv/bin/python -m bench.dataplane [--runs 20] [--ports 500 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.api import latencies, remove_namespaces, wait_for_address
from neutrino.agent import Agent
from neutrino.agent.drivers.netns import NetnsThread
from neutrino.lab import models
from neutrino.plan import HostConfig, names


class Prober:
    """ICMP echo from inside an instance: a raw socket made in its namespace, ICMPv6 for
    `version` 6 (whose checksum the kernel fills in, and whose replies come without the IP
    header)."""

    def __init__(self, netns: str, version: int = 4) -> None:
        self.version = version
        family, protocol = (
            (socket.AF_INET, socket.IPPROTO_ICMP)
            if version == 4
            else (socket.AF_INET6, socket.IPPROTO_ICMPV6)
        )
        worker = NetnsThread(netns)
        # Resolve a neighbour that just appeared in milliseconds, not in seconds.
        retrans = Path(f"/proc/sys/net/ipv{version}/neigh/eth0/retrans_time_ms")
        worker.call(lambda: retrans.write_text("5"))
        self.sock = worker.call(lambda: socket.socket(family, socket.SOCK_RAW, protocol))
        worker.close()
        self.sock.settimeout(0.005)
        self.ident = secrets.randbelow(0xFFFF)

    def first_reply(self, address: str, timeout: float = 10.0) -> float:
        """Send echoes every 5 ms until one is answered; the monotonic time of the answer."""
        self.ident = (self.ident + 1) & 0xFFFF  # a new conntrack flow per measurement
        request, reply, offset = (8, 0, 20) if self.version == 4 else (128, 129, 0)
        deadline = time.monotonic() + timeout
        seq = 0
        while time.monotonic() < deadline:
            seq += 1
            header = struct.pack("!BBHHH", request, 0, 0, self.ident, seq)
            if self.version == 4:
                header = header[:2] + struct.pack("!H", _checksum(header)) + header[4:]
            self.sock.sendto(header, (address, 0))
            try:
                while True:
                    data, source = self.sock.recvfrom(1500)
                    kind = data[offset]
                    ident = int.from_bytes(data[offset + 4 : offset + 6], "big")
                    if source[0] == address and kind == reply and ident == self.ident:
                        return time.monotonic()
            except TimeoutError:
                continue
        raise TimeoutError(f"no echo reply from {address}")


def _checksum(data: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def bench_convergence(host: HostConfig, state_dir: Path, runs: int) -> dict[str, Any]:
    agent = Agent(host, state_dir)
    net = models.network("flat")
    sub = models.subnet(net, "10.50.0.0/16")
    sg = models.default_security_group()
    closed = models.security_group(models.rule("egress"))
    prober_port = models.port(net, sub, "10.50.0.10", security_groups=[sg["id"]])
    target_port = models.port(net, sub, "10.50.0.11", security_groups=[closed["id"]])
    prober_vm = models.instance("prober", host.name, prober_port)
    target_vm = models.instance("target", host.name, target_port)
    model = models.snapshot(
        networks=[net],
        subnets=[sub],
        security_groups=[sg, closed],
        ports=[models.dhcp_port(net, sub, "10.50.0.2", host=host.name), prober_port, target_port],
        instances=[prober_vm, target_vm],
    )
    try:
        agent.sync(model)
        prober_ns = names.instance_netns(host, prober_vm["id"])
        wait_for_address(prober_ns, "10.50.0.10")
        wait_for_address(names.instance_netns(host, target_vm["id"]), "10.50.0.11")
        prober = Prober(prober_ns)

        plugged = []
        for run in range(runs):
            address = f"10.50.1.{run + 10}"
            port = models.port(net, sub, address, security_groups=[sg["id"]])
            vm = models.instance(f"vm{run}", host.name, port)
            model["ports"].append(port)
            model["instances"].append(vm)
            started = time.monotonic()
            agent.sync(model)
            plugged.append(prober.first_reply(address) - started)
            model["ports"].remove(port)
            model["instances"].remove(vm)
            agent.sync(model)

        opened = []
        for _ in range(runs):
            icmp = models.rule("ingress", "icmp")
            closed["security_group_rules"].append(icmp)
            started = time.monotonic()
            agent.sync(model)
            opened.append(prober.first_reply("10.50.0.11") - started)
            closed["security_group_rules"].remove(icmp)
            agent.sync(model)
        prober.sock.close()
        return {"port_plugged": latencies(plugged), "sg_rule_added": latencies(opened)}
    finally:
        agent.teardown()


def bench_resync(host: HostConfig, state_dir: Path, count: int) -> dict[str, Any]:
    """`count` VM ports whose taps exist (as a hypervisor makes them): bind, filter, serve."""
    agent = Agent(host, state_dir)
    net = models.network("flat")
    sub = models.subnet(net, "10.60.0.0/16")
    sg = models.default_security_group()
    ports = [
        models.port(
            net,
            sub,
            f"10.60.{i // 250}.{i % 250 + 3}",
            host=host.name,
            device_owner="compute:nova",
            security_groups=[sg["id"]],
        )
        for i in range(count)
    ]
    model = models.snapshot(
        networks=[net],
        subnets=[sub],
        security_groups=[sg],
        ports=[models.dhcp_port(net, sub, "10.60.0.2", host=host.name), *ports],
    )
    try:
        agent.sync(models.snapshot())  # the host namespace, before any tap
        sock = agent.links.socket(host.netns)
        for port in ports:  # a veth stands in for a VM's tap
            sock.link(
                "add",
                ifname=names.tap(port["id"]),
                kind="veth",
                peer={"ifname": f"vm{port['id'][:11]}"},
            )
        started, used = time.perf_counter(), time.process_time()
        first = agent.sync(model)
        scratch, scratch_cpu = time.perf_counter() - started, time.process_time() - used
        assert not first.errors, first.errors
        assert set(first.ports.values()) == {"ACTIVE"}
        started, used = time.perf_counter(), time.process_time()
        again = agent.sync(model)
        noop, noop_cpu = time.perf_counter() - started, time.process_time() - used
        assert again.changes == [], again.changes
        return {
            "ports": count,
            "from_scratch_s": round(scratch, 3),
            "from_scratch_cpu_s": round(scratch_cpu, 3),
            "noop_s": round(noop, 3),
            "noop_cpu_s": round(noop_cpu, 3),
            "load_average": [round(value, 2) for value in os.getloadavg()],
        }
    finally:
        agent.teardown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--ports", type=int, nargs="*", default=[500])
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: it creates network namespaces")
    prefix = f"bn{secrets.token_hex(3)}-"
    try:
        with tempfile.TemporaryDirectory() as state:
            result = bench_convergence(
                HostConfig.isolated("conv", prefix=prefix), Path(state) / "conv", args.runs
            )
            result["resync"] = [
                bench_resync(
                    HostConfig.isolated(f"scale{n}", prefix=prefix), Path(state) / f"s{n}", n
                )
                for n in args.ports
            ]
    finally:
        remove_namespaces(prefix)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
