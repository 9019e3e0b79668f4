"""plan.firewall: the nftables document for port security and security groups."""

from __future__ import annotations

import json
from typing import Any

from neutrino.lab import models
from neutrino.plan import HostConfig, compile_host
from neutrino.plan.firewall import (
    COMMON_INGRESS,
    PORT_MACS,
    PORT_V4,
    PORT_V4_NETS,
    STATELESS_TAPS,
    address_group_set,
    compile_firewall,
    groups_chain,
    members_set,
    sg_chain,
)

HOST = HostConfig.isolated("h1")


def _rules(commands: tuple[dict[str, Any], ...], chain: str) -> list[list[dict[str, Any]]]:
    return [
        c["add"]["rule"]["expr"]
        for c in commands
        if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain
    ]


def _verdicts(commands: tuple[dict[str, Any], ...], name: str) -> list[Any]:
    """A verdict map's values, as its elements are added."""
    return [
        element[1]
        for command in commands
        for element in command.get("add", {}).get("element", {}).get("elem", [])
        if command["add"]["element"]["name"] == name
    ]


def _element_keys(commands: tuple[dict[str, Any], ...], name: str) -> list[Any]:
    """A set's or map's elements (a map's by their keys): those it is made with and those
    added to it."""
    found, made = [], False
    for command in commands:
        for kind in ("map", "set", "element"):
            spec = command.get("add", {}).get(kind)
            if spec and spec["name"] == name:
                made |= kind != "element"
                found += [e[0] if isinstance(e, list) else e for e in spec.get("elem", [])]
    if not made:
        raise KeyError(name)
    return found


def _lab(**port_fields: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    net = models.network()
    sub = models.subnet(net, "10.0.0.0/24")
    sg = models.default_security_group()
    port = models.port(net, sub, "10.0.0.5", host="h1", security_groups=[sg["id"]], **port_fields)
    model = models.snapshot(
        networks=[net],
        subnets=[sub],
        security_groups=[sg],
        ports=[models.dhcp_port(net, sub, "10.0.0.2", host="h1"), port],
    )
    return model, port, sg


def test_protected_port_gets_chains_and_anti_spoofing_elements() -> None:
    model, port, sg = _lab(
        allowed_address_pairs=[{"ip_address": "10.0.0.128/25", "mac_address": "fa:16:3e:00:00:99"}]
    )
    firewall = compile_host(model, HOST).firewall
    tap = f"tap{port['id'][:11]}"

    assert _element_keys(firewall.commands, "egress-ports") == [tap]
    assert _element_keys(firewall.commands, "ingress-ports") == [tap]
    assert _element_keys(firewall.commands, PORT_MACS) == [
        {"concat": [tap, mac]} for mac in sorted([port["mac_address"], "fa:16:3e:00:00:99"])
    ]
    # Addresses and prefixes in sets of their own: only the prefixes' are interval sets.
    assert _element_keys(firewall.commands, PORT_V4) == [
        {"concat": [tap, port["mac_address"], "10.0.0.5"]}
    ]
    assert _element_keys(firewall.commands, PORT_V4_NETS) == [
        {"concat": [tap, "fa:16:3e:00:00:99", {"prefix": {"addr": "10.0.0.128", "len": 25}}]}
    ]
    assert _verdicts(firewall.commands, "ingress-ports") == [
        {"jump": {"target": groups_chain((sg["id"],), "ingress")}}
    ]
    assert _rules(firewall.commands, groups_chain((sg["id"],), "ingress")) == [
        [{"jump": {"target": COMMON_INGRESS}}],
        [{"jump": {"target": sg_chain(sg["id"], "ingress")}}],
        [{"drop": None}],  # default deny
    ]
    assert _rules(firewall.commands, groups_chain((sg["id"],), "egress"))[-1] == [{"drop": None}]


def test_a_port_change_moves_only_that_port_s_part() -> None:
    """A port's chains and its elements of the shared maps and sets are a part of their own:
    the agent reads and changes nothing of the other ports' when one port changes."""
    model, port, sg = _lab()
    net, sub = model["networks"][0], model["subnets"][0]
    other = models.port(net, sub, "10.0.0.6", host="h1", security_groups=[sg["id"]])
    model["ports"].append(other)
    before = compile_host(model, HOST).firewall
    # Another MAC for its own address: who it may claim to be moves, its group's members do not.
    port["allowed_address_pairs"] = [{"ip_address": "10.0.0.5", "mac_address": "fa:16:3e:00:00:42"}]
    after = compile_host(model, HOST).firewall
    had, now = dict(before.parts), dict(after.parts)
    assert len(had.keys() - now.keys()) == 1
    [moved] = now.keys() - had.keys()
    text = json.dumps(now[moved])
    assert port["id"][:11] in text and other["id"][:11] not in text


def test_disabled_port_security_and_service_ports_are_not_filtered() -> None:
    model, _, _ = _lab(port_security_enabled=False)
    firewall = compile_host(model, HOST).firewall
    assert _element_keys(firewall.commands, "egress-ports") == []
    assert firewall.tables == (("inet", "neutrino"), ("bridge", "neutrino"))


def test_remote_group_is_a_set_of_member_addresses_from_every_host() -> None:
    model, _, sg = _lab()
    net, sub = model["networks"][0], model["subnets"][0]
    far = models.port(
        net,
        sub,
        "10.0.0.9",
        host="h2",
        security_groups=[sg["id"]],
        allowed_address_pairs=[{"ip_address": "10.0.1.0/24"}],
    )
    model["ports"].append(far)
    firewall = compile_host(model, HOST).firewall
    assert _element_keys(firewall.commands, members_set(sg["id"], "IPv4")) == [
        "10.0.0.5",
        "10.0.0.9",
        {"prefix": {"addr": "10.0.1.0", "len": 24}},
    ]
    rules = _rules(firewall.commands, sg_chain(sg["id"], "ingress"))
    assert any(
        {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                "right": "@" + members_set(sg["id"], "IPv4"),
            }
        }
        in rule
        for rule in rules
    )


def test_security_group_rule_matches() -> None:
    sg = models.security_group(
        models.rule("ingress", "tcp", 8000, 8080, remote_ip_prefix="192.0.2.0/24"),
        models.rule("ingress", "icmp", 8, 0),
        models.rule("egress", "udp", 53, 53, remote_ip_prefix="::/0", ethertype="IPv6"),
        models.rule("ingress", "tcp", remote_ip_prefix="2001:db8::/32"),  # IPv4 rule: never
    )
    port = {
        "id": "p1",
        "mac_address": "fa:16:3e:00:00:01",
        "network_id": "n",
        "fixed_ips": [],
        "security_groups": [sg["id"]],
        "device_owner": "compute:nova",
    }
    firewall = compile_firewall([port], [port], [sg])
    by_rule = sorted(_rules(firewall.commands, sg_chain(sg["id"], "ingress")), key=len)
    ip = {"match": {"op": "==", "left": {"meta": {"key": "protocol"}}, "right": "ip"}}
    tcp = {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": 6}}
    assert [
        ip,
        {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                "right": {"prefix": {"addr": "192.0.2.0", "len": 24}},
            }
        },
        tcp,
        {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                "right": {"range": [8000, 8080]},
            }
        },
        {"accept": None},
    ] in by_rule
    icmp_rule = next(
        r
        for r in by_rule
        if {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": 1}} in r
    )
    assert {
        "match": {
            "op": "==",
            "left": {"payload": {"protocol": "icmp", "field": "type"}},
            "right": 8,
        }
    } in icmp_rule
    assert len(by_rule) == 2
    [egress] = _rules(firewall.commands, sg_chain(sg["id"], "egress"))
    assert egress[0]["match"]["right"] == "ip6"
    assert len(egress) == 4  # ip6, udp, dport 53, accept: ::/0 matches every peer


def test_kernel_objects_grow_as_rules_plus_members() -> None:
    """One more port of the same groups adds elements only: no rule, no chain, whatever the
    SG's rule count."""

    def rules_and_chains(ports: int) -> int:
        net = models.network()
        sub = models.subnet(net, "10.0.0.0/16")
        sg = models.security_group(*(models.rule("ingress", "tcp", p, p) for p in range(50)))
        local = [
            models.port(
                net, sub, f"10.0.{i // 250}.{i % 250 + 2}", host="h1", security_groups=[sg["id"]]
            )
            for i in range(ports)
        ]
        model = models.snapshot(networks=[net], subnets=[sub], security_groups=[sg], ports=local)
        commands = compile_host(model, HOST).firewall.commands
        return sum("rule" in c.get("add", {}) or "chain" in c.get("add", {}) for c in commands)

    assert rules_and_chains(1) == rules_and_chains(10) == rules_and_chains(100)


def test_digest_follows_content() -> None:
    model, _, sg = _lab()
    first = compile_host(model, HOST).firewall
    assert compile_host(model, HOST).firewall.digest == first.digest
    sg["security_group_rules"].append(models.rule("ingress", "tcp", 22, 22))
    assert compile_host(model, HOST).firewall.digest != first.digest


def test_address_group_addresses_are_set_elements_outside_the_digest() -> None:
    model, _, sg = _lab()
    group: dict[str, Any] = {"id": "ag1", "addresses": ["192.0.2.0/24", "2001:db8::/64"]}
    rule = {**models.rule("ingress", "tcp", 22, 22), "remote_address_group_id": "ag1"}
    sg["security_group_rules"].append({**rule, "security_group_id": sg["id"]})
    model["address_groups"] = [group]
    before = compile_host(model, HOST).firewall
    assert (
        "bridge",
        "neutrino",
        address_group_set("ag1", "IPv4"),
        ({"prefix": {"addr": "192.0.2.0", "len": 24}},),
    ) in before.elements
    assert _element_keys(before.commands, address_group_set("ag1", "IPv4")) == []
    matches = [m for r in _rules(before.commands, sg_chain(sg["id"], "ingress")) for m in r]
    assert {
        "match": {
            "op": "==",
            "left": {"payload": {"protocol": "ip", "field": "saddr"}},
            "right": "@" + address_group_set("ag1", "IPv4"),
        }
    } in matches

    group["addresses"] = ["192.0.2.7/32"]
    after = compile_host(model, HOST).firewall
    assert after.digest == before.digest and after.commands == before.commands
    assert ("bridge", "neutrino", address_group_set("ag1", "IPv4"), ("192.0.2.7",)) in (
        after.elements
    )


def test_only_stateless_ports_skip_conntrack() -> None:
    model, port, sg = _lab()
    assert _element_keys(compile_host(model, HOST).firewall.commands, STATELESS_TAPS) == []
    sg["stateful"] = False
    tap = f"tap{port['id'][:11]}"
    assert _element_keys(compile_host(model, HOST).firewall.commands, STATELESS_TAPS) == [tap]
