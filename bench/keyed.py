"""An agent's work per change of the feed, against the size of its host's share.

Drives the agent's own loop (`Runner._reconcile`, the work after each batch
of the feed and each periodic resync: compile, apply to the kernel, the
report's body) on a real host namespace with a built model; the reports go to
a sink instead of a server, which is not measured here. Milliseconds (p50,
p99 and max of `--runs`) of wall time and of the process's CPU time (the
work, apart from the waits of a loaded machine), each with the load average
when it was measured:

- `floatingip_change`: one floating IP associated and disassociated in turn,
  with N floating IPs on one router (the tutorial's, as bench.floatingips).
- `noop_resync`: the periodic resync when nothing changed, 500 ports bound
  to the host (in one group whose rules name it as a remote group).
- `rule_change`: a security group rule added and deleted in turn, the same
  group on 1,000 ports of the host.
- `port_plugged`: one port bound to the host and removed in turn, with N
  ports bound there (`--ports`), in that group: its tap, its network's DHCP
  hosts and the firewall's sets; with the full resync of those N ports from
  an empty kernel (`first_sync`) and when nothing changed (`noop`).

Ports bound here have no VM tap (none is plugged): their firewall, bridges and
statuses are made and reported all the same. They are spread over VLAN
networks of at most 1,000 ports each, as a Linux bridge takes at most 1,024.
Prints JSON; needs root; leaves nothing behind.

    .venv/bin/python -m bench.keyed [--runs 20] [--floatingips 5000 50000] [--ports 500 10000]
"""

from __future__ import annotations

import argparse
import copy
import inspect
import ipaddress
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.api import latencies, remove_namespaces
from bench.floatingips import scale_model
from neutrino.agent import Agent
from neutrino.agent.runner import Model, Runner
from neutrino.lab import models
from neutrino.plan import HostConfig

PER_BRIDGE = 1000  # ports on one network: a Linux bridge takes at most 1,024


class Sink:
    """Where the runner's reports go: kept, not sent."""

    def report(self, host: str, body: dict[str, Any]) -> None:
        self.last = body


def load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def runner_of(host: HostConfig, state: Path, model: dict[str, Any]) -> tuple[Runner, Model]:
    runner = Runner(Agent(host, state), Sink(), resync_seconds=3600)  # type: ignore[arg-type]
    mirror = Model({**model, "anchors": {}})
    runner._reconcile(mirror, full=True)
    return runner, mirror


def once(step: Callable[[], object]) -> dict[str, Any]:
    """Seconds of wall and CPU time of one step, with the load average."""
    started, used = time.perf_counter(), time.process_time()
    step()
    wall, cpu = time.perf_counter() - started, time.process_time() - used
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "load_average": load()}


def feed(
    runner: Runner, mirror: Model, changes: list[tuple[str, dict[str, Any] | None, str]]
) -> None:
    """One batch of the feed: (type, body or None, id), as the server sends it."""
    delta = {
        "revision": mirror.revision + 1,
        "anchors": {},
        "changes": [{"type": t, "id": i, "resource": body} for t, body, i in changes],
    }
    done = mirror.apply(delta)
    keyed = "whole" in inspect.signature(runner._reconcile).parameters
    if keyed:
        runner._reconcile(mirror, full=False, changes=done, whole=False)
    else:
        runner._reconcile(mirror, full=False)


def timed(runs: int, step: Callable[[int], object]) -> dict[str, Any]:
    """Wall time, and the CPU time of the agent's process (its threads in the namespaces
    included): the work itself, apart from the waits a loaded machine adds."""
    wall, cpu = [], []
    for run in range(runs):
        started, used = time.perf_counter(), time.process_time()
        step(run)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    return {"wall": latencies(wall), "cpu": latencies(cpu), "load_average": load()}


def floatingip_change(host: HostConfig, state: Path, count: int, runs: int) -> dict[str, Any]:
    model, fips = scale_model(host, count)
    runner, mirror = runner_of(host, state, model)
    try:
        vm_fip, vm_port = fips[-1], model["ports"][3]

        def step(run: int) -> None:
            body = copy.deepcopy(vm_fip)
            if run % 2 == 0:
                body.update(port_id=None, fixed_ip_address=None)
            else:
                body.update(port_id=vm_port["id"], fixed_ip_address="172.16.101.3")
            feed(runner, mirror, [("floatingip", body, body["id"])])

        return {"floatingips": count + 1, **timed(runs, step)}
    finally:
        runner.agent.teardown()


def bound_ports(host: HostConfig, count: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """`count` ports bound to `host`, in one group that names itself, spread over VLAN
    networks (two at least) of at most PER_BRIDGE ports each."""
    group = models.security_group()
    group["security_group_rules"].append(
        {**models.rule("ingress", remote_group_id=group["id"]), "security_group_id": group["id"]}
    )
    spread = max(2, -(-count // PER_BRIDGE))
    networks = [models.network("vlan", 200 + i, name=f"bench{i}") for i in range(spread)]
    subnets = [models.subnet(net, f"10.{60 + i}.0.0/16") for i, net in enumerate(networks)]
    hosts = [ipaddress.ip_network(s["cidr"]).hosts() for s in subnets]
    for addresses in hosts:
        next(addresses), next(addresses)
    ports = [
        models.port(
            networks[n % spread],
            subnets[n % spread],
            str(next(hosts[n % spread])),
            host=host.name,
            device_owner="compute:nova",
            security_groups=[group["id"]],
        )
        for n in range(count)
    ]
    model = models.snapshot(
        networks=networks, subnets=subnets, ports=ports, security_groups=[group]
    )
    return model, group


def noop_resync(host: HostConfig, state: Path, count: int, runs: int) -> dict[str, Any]:
    model, _ = bound_ports(host, count)
    runner, mirror = runner_of(host, state, model)
    try:
        return {
            "ports": count,
            **timed(runs, lambda _run: runner._reconcile(mirror, full=True)),
        }
    finally:
        runner.agent.teardown()


def rule_change(host: HostConfig, state: Path, count: int, runs: int) -> dict[str, Any]:
    model, group = bound_ports(host, count)
    runner, mirror = runner_of(host, state, model)
    try:
        rule = {**models.rule("ingress", "tcp", 80, 80), "security_group_id": group["id"]}

        def step(run: int) -> None:
            body = copy.deepcopy(mirror.items["security_groups"][group["id"]])
            if run % 2 == 0:
                body["security_group_rules"].append(rule)
            else:
                body["security_group_rules"].remove(rule)
            feed(runner, mirror, [("security_group", body, body["id"])])

        return {"ports": count, **timed(runs, step)}
    finally:
        runner.agent.teardown()


def port_plugged(host: HostConfig, state: Path, count: int, runs: int) -> dict[str, Any]:
    model, _ = bound_ports(host, count + 1)
    plugged = model["ports"].pop()
    made: list[tuple[Runner, Model]] = []
    first_sync = once(lambda: made.append(runner_of(host, state, model)))
    runner, mirror = made[0]
    try:
        noop = once(lambda: runner._reconcile(mirror, full=True))

        def step(run: int) -> None:
            body = copy.deepcopy(plugged) if run % 2 == 0 else None
            feed(runner, mirror, [("port", body, plugged["id"])])

        return {"ports": count, "first_sync": first_sync, "noop": noop, **timed(runs, step)}
    finally:
        runner.agent.teardown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--floatingips", type=int, nargs="*", default=[5000, 50000])
    parser.add_argument("--ports", type=int, nargs="*", default=[500])
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: it creates network namespaces")
    prefix = f"bk{secrets.token_hex(3)}-"
    result: dict[str, Any] = {"benchmark": "keyed", "unit": "ms"}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            state = Path(scratch)
            result["floatingip_change"] = [
                floatingip_change(
                    HostConfig.isolated(f"f{n}", prefix=prefix), state / f"f{n}", n, args.runs
                )
                for n in args.floatingips
            ]
            result["noop_resync"] = noop_resync(
                HostConfig.isolated("r", prefix=prefix), state / "r", 500, args.runs
            )
            result["rule_change"] = rule_change(
                HostConfig.isolated("g", prefix=prefix), state / "g", 1000, args.runs
            )
            result["port_plugged"] = [
                port_plugged(
                    HostConfig.isolated(f"p{n}", prefix=prefix), state / f"p{n}", n, args.runs
                )
                for n in args.ports
            ]
    finally:
        remove_namespaces(prefix)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
