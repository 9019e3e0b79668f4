"""Routers: provisioning time at the agent, and throughput through the floating IP NAT.

Prints JSON.
(a) provisioning: the agent's apply driven by a change (compile excluded,
    reported apart; no read-back of the routers already there, which the
    periodic full sync does) that adds one router (namespace, forwarding, an
    interface, a gateway, routes, the NAT table) to a host whose networks exist
    already, p50/p95 over
    --runs; then 50 routers added in one apply.
(b) throughput: iperf3 from the outside to an instance through its floating
    IP (outside -> external bridge -> qg- DNAT -> qr- -> bridge -> tap, with
    port security on), against a direct veth pair between two namespaces, in
    the same run.
Needs root; leaves nothing behind.

    .venv/bin/python -m bench.routers [--runs 30] [--routers 50] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.api import latencies, remove_namespaces, wait_for_address
from neutrino.agent import Agent
from neutrino.agent.drivers.netns import delete_namespace, ensure_namespace
from neutrino.lab import models
from neutrino.plan import HostConfig, compile_host, names


def host_with_networks(
    host: HostConfig, count: int
) -> tuple[dict[str, Any], list[tuple[dict[str, Any], ...]]]:
    """An external network and `count` VXLAN networks, realized (a bound port each) but
    routerless."""
    ext = models.network("flat", **{"router:external": True})
    ext_sub = models.subnet(ext, "10.30.0.0/16")
    model = models.snapshot(networks=[ext], subnets=[ext_sub])
    slots = []
    for i in range(count):
        net = models.network("vxlan", 2000 + i)
        sub = models.subnet(net, f"172.30.{i}.0/24")
        model["networks"].append(net)
        model["subnets"].append(sub)
        model["ports"].append(
            models.port(net, sub, f"172.30.{i}.9", host=host.name, device_owner="compute:nova")
        )
        slots.append((net, sub, ext, ext_sub))
    return model, slots


def add_router(model: dict[str, Any], slot: tuple[dict[str, Any], ...], index: int) -> None:
    net, sub, ext, ext_sub = slot
    rtr = models.router(name=f"r{index}")
    model["routers"].append(rtr)
    model["ports"] += [
        models.router_interface(rtr, net, sub),
        models.router_gateway(rtr, ext, ext_sub, f"10.30.{index // 250}.{index % 250 + 2}"),
    ]
    model["revision"] += 1


def bench_provisioning(host: HostConfig, state: Path, runs: int, batch: int) -> dict[str, Any]:
    agent = Agent(host, state)
    try:
        model, slots = host_with_networks(host, runs + batch)
        report = agent.sync(model)
        assert not report.errors, report.errors
        applies, compiles = [], []
        for index in range(runs):
            add_router(model, slots[index], index)
            started = time.perf_counter()
            desired = compile_host(model, host)
            compiled = time.perf_counter()
            report = agent.apply(desired, verify=False)
            applies.append(time.perf_counter() - compiled)
            compiles.append(compiled - started)
            assert not report.errors, report.errors
        for index in range(runs, runs + batch):
            add_router(model, slots[index], index)
        desired = compile_host(model, host)
        started = time.perf_counter()
        report = agent.apply(desired, verify=False)
        together = time.perf_counter() - started
        assert not report.errors and len(desired.routers) == runs + batch, report.errors
        totals = [a + c for a, c in zip(applies, compiles)]
        return {
            "one_router_apply": latencies(applies, (50, 95)),
            "one_router_compile_and_apply": latencies(totals, (50, 95)),
            "one_router_compile_ms_p50": round(statistics.median(compiles) * 1000, 1),
            f"{batch}_routers_in_one_apply_s": round(together, 3),
        }
    finally:
        agent.teardown()


def iperf(server_ns: str, client_ns: str, address: str, seconds: int) -> float:
    """Gbit/s received by an iperf3 server in `server_ns` from a client in `client_ns`."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        done = subprocess.run(
            ["ip", "netns", "exec", client_ns, "iperf3", "-c", address, "-t", str(seconds), "-J"],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        )
        return round(json.loads(done.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9, 2)
    finally:
        server.kill()
        server.wait()


def bench_throughput(host: HostConfig, state: Path, prefix: str, seconds: int) -> dict[str, Any]:
    agent = Agent(host, state)
    pair = (f"{prefix}veth-a", f"{prefix}veth-b")
    try:
        model = models.tutorial(host.name, vms=1)
        model["floatingips"] = [
            models.floatingip(
                "10.10.10.3", model["networks"][0], model["routers"][0], model["ports"][3]
            )
        ]
        assert not agent.sync(model).errors
        vm = names.instance_netns(host, model["instances"][0]["id"])
        wait_for_address(vm, "172.16.101.3")
        through_nat = iperf(vm, str(host.physnets["default"].outside_netns), "10.10.10.3", seconds)
        for name in pair:
            ensure_namespace(name)
        for argv in (
            [
                "ip",
                "-n",
                pair[0],
                "link",
                "add",
                "dev",
                "a",
                "type",
                "veth",
                "peer",
                "name",
                "b",
                "netns",
                pair[1],
            ],
            ["ip", "-n", pair[0], "addr", "add", "192.0.2.1/24", "dev", "a"],
            ["ip", "-n", pair[1], "addr", "add", "192.0.2.2/24", "dev", "b"],
            ["ip", "-n", pair[0], "link", "set", "dev", "a", "up"],
            ["ip", "-n", pair[1], "link", "set", "dev", "b", "up"],
        ):
            subprocess.run(argv, check=True)
        direct = iperf(pair[1], pair[0], "192.0.2.2", seconds)
        return {
            "through_floating_ip_gbps": through_nat,
            "direct_veth_gbps": direct,
            "ratio": round(through_nat / direct, 3),
            "seconds": seconds,
        }
    finally:
        for name in pair:
            delete_namespace(name)
        agent.teardown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--routers", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: it creates network namespaces")
    prefix = f"br{secrets.token_hex(3)}-"
    try:
        with tempfile.TemporaryDirectory() as state:
            result = {
                "provisioning": bench_provisioning(
                    HostConfig.isolated("prov", prefix=prefix),
                    Path(state) / "prov",
                    args.runs,
                    args.routers,
                ),
                "throughput": bench_throughput(
                    HostConfig.isolated("tput", prefix=prefix),
                    Path(state) / "tput",
                    prefix,
                    args.seconds,
                ),
            }
    finally:
        remove_namespaces(prefix)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
