"""Quality of service of this host's ports: what a port's QoS policy asks of the kernel.

A port's policy is its own, else its network's (not for ports a network owns:
DHCP, routers), as in Neutron. Directions are Neutron's, seen from the
instance: `egress` is what the instance sends, `ingress` what it receives. The
instance's tap in the host sees them the other way round: what the instance
sends arrives on the tap (its ingress), what it receives leaves through it
(its egress).

- Bandwidth limits are token buckets (tc tbf) of rate `max_kbps` and size
  `max_burst_kbps`. A qdisc shapes only what leaves a device, so `ingress`
  (to the instance) is a tbf at the root of the tap, and `egress` (from the
  instance) is a tbf at the root of an ifb device, to which an ingress filter
  of the tap redirects everything the instance sends: shaped, where Neutron's
  Linux bridge agent polices with tc's police action (not in every kernel).
  What waits longer than the bucket's latency is dropped.
- DSCP marking: the port's QoS chain in the bridge table of the firewall sets
  the DSCP field of the IPv4 and IPv6 packets the instance sends, as they
  enter the bridge.

Rates are Neutron's kbps (1,000 bits per second). A burst of 0 means Neutron's
default, 80% of the rate for one second; a bucket smaller than one frame of
the network would pass nothing, so it holds one at least.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from neutrino.plan import names
from neutrino.plan.firewall import BRIDGE, _match, _meta, _payload, _rule
from neutrino.plan.state import Link, Resource, Shaper

DEFAULT_BURST_RATE = 0.8  # Neutron's qos_consts.DEFAULT_BURST_RATE
ETHERNET_HEADER = 14
QOS_PORTS = "qos-ports"


def qos_chain(port_id: str) -> str:
    return f"qos-{port_id}"


@dataclass(frozen=True)
class Qos:
    shapers: tuple[Shaper, ...]
    links: tuple[Link, ...]  # the ifb devices of egress limits
    commands: tuple[dict[str, Any], ...]  # for the bridge table of the firewall


def policy_of(port: Resource, networks: dict[str, Resource]) -> str | None:
    if port.get("qos_policy_id"):
        return str(port["qos_policy_id"])
    if str(port.get("device_owner") or "").startswith("network:"):
        return None
    return (networks.get(port["network_id"]) or {}).get("qos_policy_id")


def bucket(rule: Resource, mtu: int) -> tuple[int, int]:
    """(rate in bits/s, burst in bytes) of a bandwidth limit rule."""
    kbps = int(rule["max_kbps"])
    burst_kbits = rule.get("max_burst_kbps") or kbps * DEFAULT_BURST_RATE
    return kbps * 1000, max(int(burst_kbits * 1000 / 8), mtu + ETHERNET_HEADER)


def compile_qos(
    netns: str | None,
    local_ports: Iterable[Resource],
    networks: dict[str, Resource],
    policies: Iterable[Resource],
) -> Qos:
    rules = {policy["id"]: policy.get("rules", []) for policy in policies}
    shapers: list[Shaper] = []
    marks: dict[str, tuple[str, int]] = {}  # port id -> its device, the DSCP mark
    for port in sorted(local_ports, key=lambda p: p["id"]):
        tap = names.device(port)
        mtu = int((networks.get(port["network_id"]) or {}).get("mtu") or 1500)
        for rule in rules.get(policy_of(port, networks) or "", []):
            if rule["type"] == "dscp_marking":
                marks[port["id"]] = (tap, int(rule["dscp_mark"]))
            elif rule["type"] == "bandwidth_limit" and rule.get("direction") == "ingress":
                shapers.append(Shaper(netns, tap, *bucket(rule, mtu)))
            elif rule["type"] == "bandwidth_limit":
                ifb = names.ifb(port["id"])
                shapers.append(Shaper(netns, ifb, *bucket(rule, mtu), redirect_from=tap))
    links = tuple(Link(s.netns, s.device, "ifb") for s in shapers if s.redirect_from)
    return Qos(tuple(shapers), links, tuple(marking(marks)))


def marking(marks: dict[str, tuple[str, int]]) -> list[dict[str, Any]]:
    """Each marked port's chain, then a base chain after the security group chains (and before
    br_netfilter's hook at 0) that jumps there by input port."""
    if not marks:
        return []
    commands: list[dict[str, Any]] = []
    for port_id, (_, mark) in marks.items():
        chain = qos_chain(port_id)
        commands.append({"add": {"chain": {**BRIDGE, "name": chain}}})
        for family in ("ip", "ip6"):
            dscp = {"mangle": {"key": _payload(family, "dscp"), "value": mark}}
            commands.append(_rule(BRIDGE, chain, _match(_meta("protocol"), family), dscp))
    elements = [
        [device, {"jump": {"target": qos_chain(port_id)}}] for port_id, (device, _) in marks.items()
    ]
    base = {"name": "qos", "type": "filter", "hook": "forward", "prio": -5, "policy": "accept"}
    return [
        *commands,
        {"add": {"map": {**BRIDGE, "name": QOS_PORTS, "type": "ifname", "map": "verdict"}}},
        {"add": {"element": {**BRIDGE, "name": QOS_PORTS, "elem": elements}}},
        {"add": {"chain": {**BRIDGE, **base}}},
        _rule(BRIDGE, "qos", {"vmap": {"key": _meta("iifname"), "data": "@" + QOS_PORTS}}),
    ]
