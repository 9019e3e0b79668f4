"""plan.keyed: a random model changed by a random stream of the feed's changes, compiled key by
key, is after every step exactly what compile_host makes of the whole model from scratch; and
the batches such streams were once found to compile wrongly."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from neutrino.lab import models
from neutrino.plan import HostConfig, compile_host
from neutrino.plan.firewall import group_members
from neutrino.plan.keyed import Change, KeyedPlan
from neutrino.plan.state import Resource
from tests.unit.test_plan_share import HOSTS, configs, multihost

Mutation = Callable[[random.Random, Resource, dict[str, dict[str, Resource]]], None]


def _pick(rng: random.Random, items: dict[str, dict[str, Resource]], collection: str) -> Any:
    found = list(items.get(collection, {}).values())
    return rng.choice(found) if found else None


def _fip(rng: random.Random, fip: Resource, items: dict[str, dict[str, Resource]]) -> None:
    """Associated elsewhere, through another router, or not at all."""
    port, router = _pick(rng, items, "ports"), _pick(rng, items, "routers")
    if rng.random() < 0.3 or port is None or not port.get("fixed_ips"):
        fip.update(
            port_id=None, fixed_ip_address=None, router_id=rng.choice([None, fip["router_id"]])
        )
        return
    fip.update(
        port_id=port["id"],
        fixed_ip_address=port["fixed_ips"][0]["ip_address"],
        router_id=router["id"] if router else fip["router_id"],
    )


def _port(rng: random.Random, port: Resource, items: dict[str, dict[str, Resource]]) -> None:
    groups = list(items.get("security_groups", {}))
    change = rng.randrange(6)
    if change == 0:
        port["binding:host_id"] = rng.choice(["", *HOSTS])
    elif change == 5:
        pairs = [{"ip_address": f"192.0.2.{rng.randint(1, 254)}/32"}]
        port["allowed_address_pairs"] = pairs[: rng.randint(0, 1)]
    elif change == 1:
        port["admin_state_up"] = not port.get("admin_state_up", True)
    elif change == 2:
        port["security_groups"] = rng.sample(groups, rng.randint(0, min(2, len(groups))))
    elif change == 3:
        port["port_security_enabled"] = not port.get("port_security_enabled", True)
    elif change == 4:
        port["qos_policy_id"] = rng.choice([None, *items["qos_policies"]])
    elif port.get("fixed_ips"):
        address = port["fixed_ips"][0]["ip_address"].rsplit(".", 1)[0]
        port["fixed_ips"][0]["ip_address"] = f"{address}.{rng.randint(100, 199)}"


def _group(rng: random.Random, sg: Resource, items: dict[str, dict[str, Resource]]) -> None:
    rules = sg["security_group_rules"]
    if rules and rng.random() < 0.4:
        rules.remove(rng.choice(rules))
    elif rng.random() < 0.2:
        sg["stateful"] = not sg.get("stateful", True)
    else:
        remote = rng.choice([None, *items["security_groups"]])
        low = rng.randint(1, 1000)
        rule = models.rule("ingress", "tcp", low, low, remote_group_id=remote)
        rules.append({**rule, "security_group_id": sg["id"]})


def _router(rng: random.Random, router: Resource, items: dict[str, dict[str, Resource]]) -> None:
    change = rng.randrange(3)
    if change == 0:
        router["l3_agent_host"] = rng.choice(["", *HOSTS])
    elif change == 1:
        router["admin_state_up"] = not router.get("admin_state_up", True)
    else:
        router["routes"] = [{"destination": "192.168.7.0/24", "nexthop": "203.0.113.1"}][
            : rng.randint(0, 1)
        ]


def _network(rng: random.Random, net: Resource, items: dict[str, dict[str, Resource]]) -> None:
    change = rng.randrange(3)
    if change == 0:
        net["admin_state_up"] = not net.get("admin_state_up", True)
    elif change == 1:
        net["mtu"] = rng.choice([1400, 1450, 1500])
    else:
        net["dhcp_agent_host"] = rng.choice(["", *HOSTS])


def _subnet(rng: random.Random, sub: Resource, items: dict[str, dict[str, Resource]]) -> None:
    sub["gateway_ip"] = rng.choice([None, sub["cidr"].replace("0/24", "1").replace(".0/", ".1/")])
    sub["address_scope_id"] = rng.choice([None, "scope"])


def _instance(rng: random.Random, vm: Resource, items: dict[str, dict[str, Resource]]) -> None:
    """Moved, or a port plugged into it or unplugged."""
    port = _pick(rng, items, "ports")
    if rng.random() < 0.5 or port is None:
        vm["host"] = rng.choice(HOSTS)
    elif port["id"] in vm["port_ids"]:
        vm["port_ids"].remove(port["id"])
    else:
        vm["port_ids"].append(port["id"])


def _address_group(rng: random.Random, ag: Resource, items: dict[str, Any]) -> None:
    ag["addresses"] = [f"198.51.100.{rng.randint(0, 255)}/32"][: rng.randint(0, 1)]


def _label(rng: random.Random, label: Resource, items: dict[str, Any]) -> None:
    label["shared"] = not label.get("shared")


def _qos(rng: random.Random, policy: Resource, items: dict[str, Any]) -> None:
    policy["rules"] = [{"type": "dscp_marking", "dscp_mark": rng.choice([8, 16, 24])}]


MUTATIONS: dict[str, Mutation] = {
    "floatingips": _fip,
    "ports": _port,
    "security_groups": _group,
    "routers": _router,
    "networks": _network,
    "subnets": _subnet,
    "instances": _instance,
    "address_groups": _address_group,
    "metering_labels": _label,
    "qos_policies": _qos,
}
COLLECTIONS = [*MUTATIONS, "loadbalancers", "vxlan_endpoints"]


def stream(
    rng: random.Random, items: dict[str, dict[str, Resource]], gone: list[tuple[str, Resource]]
) -> Change:
    """One change of the feed: a resource changed, deleted or back (its body replaced, as the
    feed replaces it)."""
    if gone and rng.random() < 0.15:
        collection, body = gone.pop(rng.randrange(len(gone)))
        items[collection][body["id"]] = body
        return Change(collection, body["id"], None, body)
    collection = rng.choice([name for name in COLLECTIONS if items[name]])
    before = _pick(rng, items, collection)
    if rng.random() < 0.15 or collection not in MUTATIONS:
        del items[collection][before["id"]]
        gone.append((collection, before))
        return Change(collection, before["id"], before, None)
    after = copy.deepcopy(before)
    MUTATIONS[collection](rng, after, items)
    items[collection][after["id"]] = after
    return Change(collection, after["id"], before, after)


@settings(max_examples=100, deadline=None)
@given(st.randoms(use_true_random=False))
def test_changes_compiled_by_key_give_what_the_whole_model_compiles_to(
    rng: random.Random,
) -> None:
    model = multihost(rng)
    for body in model["vxlan_endpoints"]:
        body["id"] = body["host"]
    for body in [*model["networks"], *model["ports"]]:  # most ports stand alone (plan.keyed)
        if rng.random() < 0.8:
            body["qos_policy_id"] = None
    items = {name: {body["id"]: body for body in model.get(name, [])} for name in COLLECTIONS}
    host = rng.choice(configs(rng.choice(HOSTS)))
    plan = KeyedPlan(host, items)
    gone: list[tuple[str, Resource]] = []
    for _ in range(25):
        batch = [stream(rng, items, gone) for _ in range(rng.choice([1, 1, 1, 3]))]
        plan.update(batch)
        whole = {name: list(bodies.values()) for name, bodies in items.items()}
        reference = compile_host(whole, host)
        assert plan.desired() == reference
        assert plan.outline() == reference.outline(), "the report's outline moved"
        assert plan.members == group_members(whole["ports"]), "the members' index moved"
    assert not plan.resync(), "a change touched a key the index did not find"


def test_a_group_deleted_with_a_port_changed_leaves_no_port_jumping_to_it() -> None:
    """One batch deletes a group and changes an unrelated port: every port that named the
    group no longer jumps to its chain, as a fresh compile has it (a port whose body did not
    move depends on which of its groups exist)."""
    host = HostConfig.isolated("h1")
    net = models.network("vlan", 100)
    sub = models.subnet(net, "10.0.0.0/24")
    kept, gone = models.default_security_group(), models.security_group(models.rule("ingress"))
    naming = models.port(
        net,
        sub,
        "10.0.0.10",
        host="h1",
        device_owner="compute:nova",
        security_groups=[kept["id"], gone["id"]],
    )
    other = models.port(
        net, sub, "10.0.0.11", host="h1", device_owner="compute:nova", security_groups=[kept["id"]]
    )
    model = models.snapshot(
        networks=[net], subnets=[sub], ports=[naming, other], security_groups=[kept, gone]
    )
    items = {name: {body["id"]: body for body in model.get(name, [])} for name in COLLECTIONS}
    plan = KeyedPlan(host, items)
    plan.desired()
    renamed = {**other, "name": "renamed"}
    del items["security_groups"][gone["id"]]
    items["ports"][other["id"]] = renamed
    plan.update(
        [
            Change("security_groups", gone["id"], gone, None),
            Change("ports", other["id"], other, renamed),
        ]
    )
    whole = {name: list(bodies.values()) for name, bodies in items.items()}
    firewall = plan.desired().firewall
    assert f"sg-{gone['id']}" not in str(firewall.commands)
    assert firewall == compile_host(whole, host).firewall
