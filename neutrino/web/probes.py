"""Check from outside: a floating IP probed from the outside world, on its page and on its load
balancer's.

The form asks the lab API's probe (`POST /lab/v1/probes`) with the user's own
token: a ping, a TCP port or an HTTP path. When a security group dropped it,
the answer carries the rule that would let it in, and a button adds exactly
that rule through the networking API, as the user, before the page probes
again. A page also says beforehand when the port's security groups let
nothing in from outside (the tutorial's S4 needs such a rule), and a load
balancer's page when its members' groups keep the load balancer out (S6).
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from neutrino.web.clients import ApiError
from neutrino.web.networks import LAB, NET
from neutrino.web.ui import Dashboard, Ui

RULE_FIELDS = (
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
)


def admits_outside(rule: dict[str, Any]) -> bool:
    """Whether an ingress rule may let in a packet from the outside world (any IPv4 source,
    not only members of a group)."""
    return (
        rule["direction"] == "ingress"
        and rule["ethertype"] == "IPv4"
        and not rule.get("remote_group_id")
        and not rule.get("remote_address_group_id")
    )


async def outside_hint(ui: Ui, port_id: str | None) -> str | None:
    """What to say when the security groups of the port a floating IP leads to let nothing in
    from outside."""
    if not port_id:
        return None
    try:
        port = (await ui.api.get(NET, f"/v2.0/ports/{port_id}"))["port"]
    except ApiError:
        return None  # a port of another project's (an administrator's view): nothing to hint
    if not port.get("port_security_enabled") or not port.get("security_groups"):
        return None
    found = await ui.api.get(NET, "/v2.0/security-groups", id=port["security_groups"])
    groups = found["security_groups"]
    if any(admits_outside(rule) for group in groups for rule in group["security_group_rules"]):
        return None
    names = ", ".join(group["name"] or group["id"] for group in groups)
    return (
        f"Security group {names} of this port lets nothing in from outside: the outside world "
        "reaches it once a rule allows what it sends (check below, which offers the rule)."
    )


def admits_port(rule: dict[str, Any], port: int) -> bool:
    """Whether a rule admitting the outside world (see admits_outside) lets in TCP `port`."""
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    return (
        admits_outside(rule)
        and rule.get("protocol") in (None, "tcp", "6")
        and (low is None or low <= port <= (high or low))
    )


async def members_hint(ui: Ui, tree: dict[str, Any]) -> str | None:
    """What to say when members' security groups let nothing in on their port from outside
    their groups: the load balancer, in a group of its own, cannot reach them (S6)."""
    blocked: dict[tuple[str, int], list[str]] = {}  # (groups, port) -> members
    for listener in tree.get("listeners", []):
        for pool in listener.get("pools", []):
            for member in pool.get("members", []):
                found = await ui.api.get(
                    NET, "/v2.0/ports", fixed_ips=f"ip_address={member['address']}"
                )
                for port in found["ports"]:
                    if not port.get("port_security_enabled") or not port["security_groups"]:
                        continue
                    groups = (
                        await ui.api.get(NET, "/v2.0/security-groups", id=port["security_groups"])
                    )["security_groups"]
                    rules = [rule for group in groups for rule in group["security_group_rules"]]
                    if not any(admits_port(rule, member["protocol_port"]) for rule in rules):
                        names = ", ".join(group["name"] or group["id"] for group in groups)
                        key = (names, member["protocol_port"])
                        blocked.setdefault(key, []).append(member["name"] or member["address"])
    return (
        " ".join(
            f"Security group {names} of members {', '.join(members)} lets nothing in on TCP port "
            f"{port} from outside: the load balancer cannot reach them until a rule allows it."
            for (names, port), members in blocked.items()
        )
        or None
    )


def routes(d: Dashboard) -> list[BaseRoute]:
    async def probe(ui: Ui, form: dict[str, Any]) -> Any:
        """The form: {"floating_ip_id", "kind", "port", "path"} in, {"probe": its answer} out."""
        wanted: dict[str, Any] = {
            "floating_ip_id": str(form.get("floating_ip_id", "")),
            "kind": str(form.get("kind") or "ping"),
        }
        if wanted["kind"] != "ping" and str(form.get("port", "")).strip():
            port = str(form["port"]).strip()
            wanted["port"] = int(port) if port.isdigit() else port
        if wanted["kind"] == "http":
            wanted["path"] = str(form.get("path") or "/")
        return await ui.api.post(LAB, "/v1/probes", {"probe": wanted})

    async def allow(ui: Ui, form: dict[str, Any]) -> Any:
        """The suggested rule in, added to its group as the user."""
        rule = {key: form[key] for key in RULE_FIELDS if key in form}
        return await ui.api.post(NET, "/v2.0/security-group-rules", {"security_group_rule": rule})

    return [d.json_action("/probe", probe), d.json_action("/probe/allow", allow)]
