"""Metering labels on the kernel: real packets through a router's gateway move its counters."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from netlab import Lab, ping, sync, wait_for

from neutrino.agent import inspect
from neutrino.agent.instance import exec_in_instance
from neutrino.lab import models
from neutrino.plan import names

LABEL = "11111111-0000-4000-8000-000000000000"
PACKET = 84  # bytes of one echo request or reply: IP header, ICMP header, 56 bytes of data


def rule(rule_id: str, direction: str, excluded: bool = False, **prefixes: str) -> dict[str, Any]:
    return {"id": rule_id, "direction": direction, "excluded": excluded, **prefixes}


def tables(netns: str) -> list[str]:
    done = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-j", "list", "tables"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(done.stdout)["nftables"]
    return sorted(f"{t['table']['family']} {t['table']['name']}" for t in found if "table" in t)


def counted(netns: str, labels: list[dict[str, Any]]) -> tuple[int, int]:
    """(packets, bytes) of the label, as `inspect router` reads them from the kernel."""
    (found,) = inspect.metering_counters(netns, labels)
    return found["packets"], found["bytes"]


def pings(netns: str, address: str, count: int) -> None:
    rc, out, err = exec_in_instance(
        netns, ["busybox", "ping", "-c", str(count), "-W", "1", address], timeout=count + 5
    )
    assert rc == 0, out + err


def test_gateway_traffic_moves_the_label_counter_and_excluded_prefixes_do_not(lab: Lab) -> None:
    host = lab.host()
    model = models.tutorial(host.name, vms=2)
    router = model["routers"][0]
    router["project_id"] = "p1"
    label = {
        "id": LABEL,
        "name": "internet",
        "project_id": "p1",
        "shared": False,
        "rules": [
            rule("r1", "egress", source_ip_prefix="172.16.0.0/16"),
            rule("r2", "ingress", remote_ip_prefix="172.16.0.0/16"),
            rule("r3", "egress", True, source_ip_prefix="172.16.101.4/32"),
            rule("r4", "ingress", True, destination_ip_prefix="172.16.101.4/32"),
        ],
    }
    model["metering_labels"] = [label]
    agent = lab.agent(host)
    sync(agent, model)
    netns = names.router_netns(host, router["id"])
    vm0 = lab.wait_ip(host, model["instances"][0], "172.16.101.3")
    vm1 = lab.wait_ip(host, model["instances"][1], "172.16.101.4")
    assert wait_for(lambda: ping(vm0, "10.10.10.1")) and wait_for(lambda: ping(vm1, "10.10.10.1"))

    before = counted(netns, [label])
    pings(vm0, "10.10.10.1", 3)  # 3 requests out (egress), 3 replies in (ingress)
    assert counted(netns, [label]) == (before[0] + 6, before[1] + 6 * PACKET)
    pings(vm1, "10.10.10.1", 3)  # its address is excluded both ways
    assert counted(netns, [label]) == (before[0] + 6, before[1] + 6 * PACKET)

    # A rule more changes the table in place: the label's count goes on.
    label["rules"].append(rule("r5", "egress", destination_ip_prefix="192.0.2.0/24"))
    model["revision"] += 1
    assert any("metering" in change for change in sync(agent, model).changes)
    assert counted(netns, [label]) == (before[0] + 6, before[1] + 6 * PACKET)
    pings(vm0, "10.10.10.1", 1)
    assert counted(netns, [label]) == (before[0] + 8, before[1] + 8 * PACKET)
    assert sync(agent, model).changes == []

    # Deleting the label removes its counter, its chain and the table.
    model["metering_labels"] = []
    model["revision"] += 1
    sync(agent, model)
    assert inspect.metering_counters(netns, [label]) == []
    assert tables(netns) == ["ip neutrino"]


def test_a_restarted_agent_keeps_the_counts_and_repairs_the_table(lab: Lab) -> None:
    host = lab.host()
    model = models.tutorial(host.name, vms=1)
    model["routers"][0]["project_id"] = "p1"
    label = {"id": LABEL, "name": "all", "project_id": "p2", "shared": True, "rules": []}
    label["rules"] = [rule("r1", "egress", remote_ip_prefix="0.0.0.0/0")]
    model["metering_labels"] = [label]
    agent = lab.agent(host)
    sync(agent, model)
    netns = names.router_netns(host, model["routers"][0]["id"])
    vm = lab.wait_ip(host, model["instances"][0], "172.16.101.3")
    assert wait_for(lambda: ping(vm, "10.10.10.1"))
    seen = counted(netns, [label])
    assert seen[0] >= 1

    agent.close()
    again = lab.agent(host)
    assert sync(again, model).changes == []
    assert counted(netns, [label]) == seen

    subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "flush", "chain", "inet", "metering", "forward"],
        check=True,
    )
    assert any("metering" in change for change in sync(again, model).changes)
    assert counted(netns, [label]) == seen
    pings(vm, "10.10.10.1", 2)
    assert counted(netns, [label]) == (seen[0] + 2, seen[1] + 2 * PACKET)
