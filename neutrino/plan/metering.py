"""Metering labels as named counters in a router's namespace.

A label applies to every router of its project, or to every router when
shared, as Neutron's metering agent applies it, if the router is up and has a
gateway: what it counts is traffic the router forwards across its gateway.
Each router with labels gets one nftables table of its own, beside the NAT
table:

    table inet metering
      counter label-<id>                          the label's packets and bytes
      chain forward  hook forward, priority 10    after the NAT table's filter (0):
        jump label-<id>   (each label)            only what the router lets through
      chain label-<id>
        <excluded rule's match> return            first: never counted
        <rule's match> counter name label-<id> return

A rule matches the gateway as its direction says (ingress: arriving on it,
egress: leaving by it) and addresses as Neutron's iptables driver matches
them: `remote_ip_prefix` is the source of egress traffic and the destination
of ingress traffic; `source_ip_prefix` and `destination_ip_prefix` are what
they say. The forward hook sees a packet before source NAT and after
destination NAT, so these are internal (fixed) addresses on the router's
side and outside addresses on the other. A matching rule counts a packet
once, however many rules of the label would match it.

The table is apart from the NAT table so that its counters keep counting
when the NAT rules change (that table is replaced whole), and of family
inet so that IPv6 rules count too. The agent changes it in place (flush and
refill in one transaction), which keeps the counters of labels that stay.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable
from typing import Any

from neutrino.plan.state import Firewall, Resource

TABLE = "metering"
FAMILY = "inet"
METERING = {"family": FAMILY, "table": TABLE}
FORWARD = "forward"
PRIORITY = 10


def counter_name(label_id: str) -> str:
    """The label's counter, and its chain, in every router it applies to."""
    return f"label-{label_id}"


def applies(label: Resource, router: Resource) -> bool:
    return bool(label.get("shared")) or label.get("project_id") == router.get("project_id")


def compile_metering(
    router: Resource, gateway: str | None, labels: Iterable[Resource]
) -> Firewall | None:
    """The router's metering table; None when no label counts anything here."""
    if not gateway or not router.get("admin_state_up", True):
        return None
    mine = sorted((label for label in labels if applies(label, router)), key=lambda x: x["id"])
    if not mine:
        return None
    commands: list[dict[str, Any]] = [
        {"add": {"table": {"family": FAMILY, "name": TABLE}}},
        {
            "add": {
                "chain": {
                    **METERING,
                    "name": FORWARD,
                    "type": "filter",
                    "hook": "forward",
                    "prio": PRIORITY,
                    "policy": "accept",
                }
            }
        },
    ]
    for label in mine:
        name = counter_name(label["id"])
        commands += [
            {"add": {"counter": {**METERING, "name": name}}},
            {"add": {"chain": {**METERING, "name": name}}},
            _rule(FORWARD, {"jump": {"target": name}}),
        ]
        for rule in sorted(label.get("rules") or [], key=lambda r: (not r["excluded"], r["id"])):
            matches = rule_matches(gateway, rule)
            if matches is None:
                continue
            verdict = [] if rule["excluded"] else [{"counter": name}]
            commands.append(_rule(name, *matches, *verdict, {"return": None}))
    digest = hashlib.sha256(json.dumps(commands, sort_keys=True).encode()).hexdigest()[:16]
    return Firewall.whole(((FAMILY, TABLE),), tuple(commands), digest)


def rule_matches(gateway: str, rule: Resource) -> list[dict[str, Any]] | None:
    """The rule's matches; None for one that no packet can match (IPv4 and IPv6 mixed)."""
    egress = rule["direction"] == "egress"
    device = {"meta": {"key": "oifname" if egress else "iifname"}}
    source, destination = rule.get("source_ip_prefix"), rule.get("destination_ip_prefix")
    remote = rule.get("remote_ip_prefix")
    if remote:
        source, destination = (remote, None) if egress else (None, remote)
    prefixes = {
        field: ipaddress.ip_network(value, strict=False)
        for field, value in (("saddr", source), ("daddr", destination))
        if value
    }
    if len({net.version for net in prefixes.values()}) > 1:
        return None
    matches = [_match(device, gateway)]
    for field, net in prefixes.items():
        protocol = "ip" if net.version == 4 else "ip6"
        if net.prefixlen == 0:  # every address of the family
            matches.append(_match({"meta": {"key": "nfproto"}}, f"ipv{net.version}"))
            continue
        matches.append(
            _match(
                {"payload": {"protocol": protocol, "field": field}},
                {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}},
            )
        )
    return matches


def _match(key: dict[str, Any], right: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": key, "right": right}}


def _rule(chain: str, *expr: dict[str, Any]) -> dict[str, Any]:
    return {"add": {"rule": {**METERING, "chain": chain, "expr": list(expr)}}}
