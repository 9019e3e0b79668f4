"""plan.metering: a router's metering labels as named counters in a table of their own."""

from __future__ import annotations

import copy
from typing import Any

from neutrino.lab import models
from neutrino.plan import HostConfig, compile_host, names
from neutrino.plan.state import Firewall

HOST = HostConfig.isolated("h1", prefix="t-")
LABEL = "11111111-0000-4000-8000-000000000000"
TABLE = {"family": "inet", "table": "metering"}


def label(project_id: str = "p1", shared: bool = False, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"id": LABEL, "project_id": project_id, "shared": shared, "rules": list(rules)}


def rule(rule_id: str, direction: str, excluded: bool = False, **prefixes: str) -> dict[str, Any]:
    return {"id": rule_id, "direction": direction, "excluded": excluded, **prefixes}


def metering(model: dict[str, Any]) -> Firewall | None:
    (router,) = compile_host(model, HOST).routers
    return router.metering


def tutorial(*labels: dict[str, Any]) -> dict[str, Any]:
    model = models.tutorial("h1", vms=1)
    model["routers"][0]["project_id"] = "p1"
    model["metering_labels"] = list(labels)
    return model


def match(key: dict[str, Any], right: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": key, "right": right}}


def test_a_label_is_a_counter_and_a_chain_its_excluded_rules_first() -> None:
    model = tutorial(
        label(
            "p1",
            False,
            rule("r1", "egress", remote_ip_prefix="172.16.0.0/16"),
            rule(
                "r2", "ingress", source_ip_prefix="192.0.2.7/24", destination_ip_prefix="0.0.0.0/0"
            ),
            rule("r3", "egress", True, remote_ip_prefix="172.16.101.0/24"),
            rule("r4", "egress", source_ip_prefix="10.0.0.0/8", destination_ip_prefix="fd00::/64"),
        )
    )
    found = metering(model)
    assert found is not None and found.tables == (("inet", "metering"),)
    qg = names.router_gateway(model["ports"][2]["id"])
    name = f"label-{LABEL}"
    oif, iif = {"meta": {"key": "oifname"}}, {"meta": {"key": "iifname"}}
    saddr = {"payload": {"protocol": "ip", "field": "saddr"}}

    def add_rule(chain: str, *expr: dict[str, Any]) -> dict[str, Any]:
        return {"add": {"rule": {**TABLE, "chain": chain, "expr": list(expr)}}}

    assert list(found.commands) == [
        {"add": {"table": {"family": "inet", "name": "metering"}}},
        {
            "add": {
                "chain": {
                    **TABLE,
                    "name": "forward",
                    "type": "filter",
                    "hook": "forward",
                    "prio": 10,
                    "policy": "accept",
                }
            }
        },
        {"add": {"counter": {**TABLE, "name": name}}},
        {"add": {"chain": {**TABLE, "name": name}}},
        add_rule("forward", {"jump": {"target": name}}),
        add_rule(
            name,
            match(oif, qg),
            match(saddr, {"prefix": {"addr": "172.16.101.0", "len": 24}}),
            {"return": None},
        ),
        add_rule(
            name,
            match(oif, qg),
            match(saddr, {"prefix": {"addr": "172.16.0.0", "len": 16}}),
            {"counter": name},
            {"return": None},
        ),
        add_rule(
            name,
            match(iif, qg),
            match(saddr, {"prefix": {"addr": "192.0.2.0", "len": 24}}),
            match({"meta": {"key": "nfproto"}}, "ipv4"),
            {"counter": name},
            {"return": None},
        ),
        # r4 mixes IPv4 and IPv6: no packet can match it.
    ]


def test_a_label_meters_its_projects_routers_or_every_router_when_shared() -> None:
    ingress = rule("r1", "ingress", remote_ip_prefix="172.16.0.0/16")
    assert metering(tutorial(label("p1", False, ingress))) is not None
    assert metering(tutorial(label("p2", False, ingress))) is None
    assert metering(tutorial(label("p2", True, ingress))) is not None
    assert metering(tutorial()) is None


def test_only_a_router_that_is_up_with_a_gateway_is_metered() -> None:
    down = tutorial(label())
    down["routers"][0]["admin_state_up"] = False
    assert metering(down) is None
    without_gateway = tutorial(label())
    without_gateway["ports"] = [
        p for p in without_gateway["ports"] if p["device_owner"] != "network:router_gateway"
    ]
    assert metering(without_gateway) is None


def test_the_digest_follows_the_rules() -> None:
    model = tutorial(label("p1", False, rule("r1", "ingress", remote_ip_prefix="::/0")))
    first, same = metering(model), metering(copy.deepcopy(model))
    model["metering_labels"][0]["rules"][0]["direction"] = "egress"
    other = metering(model)
    assert first is not None and same is not None and other is not None
    assert first.digest == same.digest != other.digest
