"""Routers on the kernel, at the agent level: restart, drift, incremental == fresh,
element-only changes."""

from __future__ import annotations

import copy
import socket
import subprocess
from typing import Any

from netlab import Lab, ping, sync, wait_for

from neutrino.agent.drivers import conntrack
from neutrino.agent.drivers.netns import ensure_namespace, run_in_namespace
from neutrino.agent.runner import KINDS
from neutrino.lab import models
from neutrino.plan import HostConfig, names
from neutrino.plan.keyed import Change, KeyedPlan


def router_netns(host: HostConfig, model: dict[str, Any]) -> str:
    return names.router_netns(host, model["routers"][0]["id"])


def nft(netns: str, *args: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", netns, "nft", *args], capture_output=True, text=True, check=True
    ).stdout


def associate(model: dict[str, Any], fip: dict[str, Any], vm: int | None) -> None:
    target = model["ports"][3 + vm] if vm is not None else None
    fip.update(
        router_id=model["routers"][0]["id"] if target else None,
        port_id=target["id"] if target else None,
        fixed_ip_address=target["fixed_ips"][0]["ip_address"] if target else None,
    )
    model["revision"] += 1


def test_restart_changes_nothing_and_drift_is_repaired(lab: Lab) -> None:
    host = lab.host()
    model = models.tutorial(host.name, vms=1)
    model["floatingips"] = [
        models.floatingip(
            "10.10.10.3", model["networks"][0], model["routers"][0], model["ports"][3]
        )
    ]
    agent = lab.agent(host)
    report = sync(agent, model)
    assert report.floatingips == {model["floatingips"][0]["id"]: "ACTIVE"}
    netns = router_netns(host, model)
    table = nft(netns, "list", "table", "ip", "neutrino")
    vm = lab.wait_ip(host, model["instances"][0], "172.16.101.3")
    assert wait_for(lambda: ping(vm, "10.10.10.1"))
    assert ping(f"{lab.prefix}nout-default", "10.10.10.3")

    agent.close()
    again = lab.agent(host)
    assert sync(again, model).changes == []
    assert nft(netns, "list", "table", "ip", "neutrino") == table
    # The outside asks again who holds the floating IP: the router still answers.
    outside = f"{lab.prefix}nout-default"
    subprocess.run(["ip", "-n", outside, "neigh", "flush", "to", "10.10.10.3"], check=True)
    assert ping(outside, "10.10.10.3")

    # A floating IP deleted by hand (element, local route) comes back at the next full sync,
    # which reads the kernel.
    gateway = names.router_gateway(model["ports"][2]["id"])
    nft(netns, "delete", "element", "ip", "neutrino", "fip_dnat", "{ 10.10.10.3 }")
    route = ["local", "10.10.10.3", "dev", gateway, "table", "local", "proto", "static"]
    subprocess.run(["ip", "-n", netns, "route", "del", *route], check=True)
    changes = " ".join(sync(again, model).changes)
    assert "floating IPs -0 +1" in changes and "local routes" in changes
    assert nft(netns, "list", "table", "ip", "neutrino") == table
    assert ping(f"{lab.prefix}nout-default", "10.10.10.3")
    nft(netns, "delete", "table", "ip", "neutrino")
    assert any("replace NAT table" in change for change in sync(again, model).changes)
    assert nft(netns, "list", "table", "ip", "neutrino") == table


def test_floating_ip_changes_touch_elements_only_and_equal_a_fresh_sync(lab: Lab) -> None:
    """Each change goes the runner's way: compiled by key, applied by element."""
    host = lab.host()
    model = models.tutorial(host.name, vms=3)
    fips = [models.floatingip(f"10.10.10.{20 + i}", model["networks"][0]) for i in range(3)]
    model["floatingips"] = fips
    agent = lab.agent(host)
    items = {name: {r["id"]: r for r in model[name]} for name in KINDS.values() if name in model}
    plan = KeyedPlan(host, items)
    assert agent.apply(plan.desired()).errors == []
    netns = router_netns(host, model)
    handles = nft(netns, "-a", "list", "chain", "ip", "neutrino", "postrouting")

    def change(fip: dict[str, Any], vm: int | None) -> None:
        associate(model, fip, vm)
        before, items["floatingips"][fip["id"]] = items["floatingips"][fip["id"]], dict(fip)
        changed = plan.update(
            [Change("floatingips", fip["id"], before, items["floatingips"][fip["id"]])]
        )
        report = agent.apply_changed(plan, changed, model["revision"])
        assert report is not None and report.errors == []
        assert [c for c in report.changes if "floating IPs" in c], report.changes

    # A change by hand right after one of the agent's own (whose generation it counts
    # instead of reading it): the next full sync finds the tables moved and mends them.
    change(fips[0], 0)
    nft(netns, "delete", "element", "ip", "neutrino", "fip_dnat", "{ 10.10.10.20 }")
    assert "floating IPs -0 +1" in " ".join(agent.apply(plan.desired()).changes)
    for fip, vm in ((fips[1], 1), (fips[0], 2), (fips[1], None), (fips[2], 1), (fips[0], 0)):
        change(fip, vm)
    assert (
        nft(netns, "-a", "list", "chain", "ip", "neutrino", "postrouting") == handles
    )  # rules untouched
    incremental = nft(netns, "list", "table", "ip", "neutrino")
    addresses = answered_addresses(netns)
    assert "local 10.10.10.20 dev" in addresses[1] and "10.10.10.21" not in addresses[1]

    agent.teardown()
    fresh = lab.agent(host)
    sync(fresh, copy.deepcopy(model))
    assert nft(netns, "list", "table", "ip", "neutrino") == incremental
    assert answered_addresses(netns) == addresses


def answered_addresses(netns: str) -> list[str]:
    """The router's addresses and the local routes of its floating IPs."""
    return [
        subprocess.run(
            ["ip", "-n", netns, "-4", "-o", *what], capture_output=True, text=True, check=True
        ).stdout
        for what in (("addr",), ("route", "show", "table", "local", "proto", "static"))
    ]


def test_admin_down_stops_forwarding(lab: Lab) -> None:
    host = lab.host()
    model = models.tutorial(host.name, vms=1)
    agent = lab.agent(host)
    sync(agent, model)
    vm = lab.wait_ip(host, model["instances"][0], "172.16.101.3")
    assert wait_for(lambda: ping(vm, "10.10.10.1"))
    model["routers"][0]["admin_state_up"] = False
    sync(agent, model)
    assert not ping(vm, "10.10.10.1")
    model["routers"][0]["admin_state_up"] = True
    sync(agent, model)
    assert ping(vm, "10.10.10.1")


def test_forgetting_a_mapping_deletes_its_connections_either_way_and_no_others(lab: Lab) -> None:
    netns = f"{lab.prefix}ct"
    ensure_namespace(netns)
    tracking = (
        "table ip t {\n chain out {\n  type filter hook output priority 0\n"
        "  ct state new accept\n }\n}\n"
    )
    subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-f", "-"], input=tracking, text=True, check=True
    )

    def send(source: str, destination: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((source, 0))
            sock.sendto(b"x", (destination, 9))

    def forget(*mappings: tuple[str, str]) -> list[str]:
        """The entries left after forgetting `mappings`."""
        run_in_namespace(netns, lambda: conntrack.forget_mappings(list(mappings)))
        return conntrack.entries(netns)

    # Without NAT a connection's (floating, fixed) are one address.
    run_in_namespace(
        netns, lambda: [send("127.0.0.5", "127.0.0.9"), send("127.0.0.7", "127.0.0.8")]
    )
    assert len(conntrack.entries(netns)) == 2
    # to .9, but answered by .9: not that mapping's
    assert len(forget(("127.0.0.9", "127.0.0.99"))) == 2
    # outbound: from the fixed IP, replies to the floating
    assert len(forget(("127.0.0.5", "127.0.0.5"))) == 1
    # inbound: to the floating IP, answered by the fixed
    assert forget(("127.0.0.8", "127.0.0.8")) == []

    # Where the kernel takes no filter on a flush, the conntrack tool does the same.
    run_in_namespace(
        netns, lambda: [send("127.0.0.5", "127.0.0.9"), send("127.0.0.7", "127.0.0.8")]
    )
    by_tool = run_in_namespace(
        netns,
        lambda: conntrack.forget_by_tool([("127.0.0.9", "127.0.0.99"), ("127.0.0.8", "127.0.0.8")]),
    )
    [left] = conntrack.entries(netns)
    assert by_tool == 1 and "dst=127.0.0.9" in left
    assert forget(("127.0.0.5", "127.0.0.5")) == []

    # Many mappings at once: one pass over the table, same outcome.
    many = [f"127.0.1.{i}" for i in range(1, conntrack.FEW + 2)]
    run_in_namespace(
        netns, lambda: [send("127.0.0.7", address) for address in [*many, "127.0.0.8"]]
    )
    [left] = forget(*[(address, address) for address in many])
    assert "dst=127.0.0.8" in left
