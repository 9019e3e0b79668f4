"""A floating IP checked from the outside world, and why it does not answer when the kernel can
tell.

A project's user asks whether their floating IP answers from outside: a ping,
a TCP connect or an HTTP GET, built from validated fields (never a command of
the caller's), sent from the outside namespace of the floating IP's external
network by the agent that reports it, from the address the outside holds on
that network. While it runs, the agents of the router's host and of the
target port's host watch its packets as a trace does (neutrino.agent.trace).
A drop at the end of a port's ingress chain means that none of the port's
security groups has a rule letting the packet in (plan.firewall): the answer
names the groups and the rule that would, in the shape one POSTs to
/v2.0/security-group-rules. Other failures are said in words: not associated,
nothing listening, no route, or no answer although the packet reached the
port. A load balancer's VIP that answers 503 is reachable, and the answer says
why it served nothing: the members of the listener's pool and their health.

A probe checks what the user has configured: before it sends, it waits (a
few seconds at most) until the agents of those hosts have applied the last
change of the floating IP, its port, router and security groups, so that a
rule added just before is in the kernel.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from sqlalchemy import and_, func, or_, select

from neutrino import errors
from neutrino.api.v2.attrs import dict_of, invalid, ip_address, uuid_str
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.lab import outside
from neutrino.lab.trace import Ask
from neutrino.plan import names
from neutrino.plan.firewall import groups_chain, port_groups
from neutrino.services import feed

KINDS = ("ping", "tcp", "http")
SETTLE_SECONDS = 5.0  # the longest a probe waits for the hosts to apply the last change


def _kind(value: Any) -> str:
    if value not in KINDS:
        raise invalid(f"'{value}' is not a kind of probe: use ping, tcp or http")
    return str(value)


def _port(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise invalid(f"'{value}' is not a TCP port: use a number from 1 to 65535")
    return value


def _path(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or len(value) > 1024
        or any(c.isspace() or not c.isprintable() for c in value)
    ):
        raise invalid(f"'{value}' is not a path: it starts with '/' and has no spaces")
    return value


PROBE = dict_of(
    {
        "floating_ip_address": (ip_address(), False),
        "floating_ip_id": (uuid_str(), False),
        "kind": (_kind, False),
        "port": (_port, False),
        "path": (_path, False),
    }
)


def wanted_probe(body: Any) -> dict[str, Any]:
    """The probe a request asks for, with its defaults; a 400 for anything else."""

    def bad(msg: str) -> errors.BadRequest:
        return errors.BadRequest(resource="probe", msg=msg)

    if not isinstance(body, dict) or set(body) != {"probe"}:
        raise bad('expected {"probe": {"floating_ip_address": ..., "kind": ...}}')
    wanted = PROBE(body["probe"])
    if ("floating_ip_address" in wanted) == ("floating_ip_id" in wanted):
        raise bad("give either floating_ip_address or floating_ip_id")
    kind = wanted.get("kind", "ping")
    if kind == "tcp" and "port" not in wanted:
        raise bad("a tcp probe needs a port")
    if kind == "ping" and "port" in wanted:
        raise bad("a ping has no port")
    if kind != "http" and "path" in wanted:
        raise bad("only an http probe has a path")
    if kind == "http":
        wanted = {"port": 80, "path": "/", **wanted}
    return {"kind": kind, **wanted}


def _floatingip(model: dict[str, Any], ctx: Context, wanted: dict[str, Any]) -> dict[str, Any]:
    """The floating IP the caller names, if their project owns it (any, for an administrator);
    another project's is not found, as an unknown one."""
    field, ref = (
        ("id", wanted["floating_ip_id"])
        if "floating_ip_id" in wanted
        else ("floating_ip_address", wanted["floating_ip_address"])
    )
    found = next(
        (
            fip
            for fip in model["floatingips"]
            if fip[field] == ref and (ctx.is_admin or fip["project_id"] == ctx.project_id)
        ),
        None,
    )
    if found is None:
        raise errors.FloatingIPNotFound(floatingip_id=ref)
    return dict(found)


def _source(model: dict[str, Any], fip: dict[str, Any]) -> str | None:
    """The outside's address on the floating IP's subnet: the gateway of that subnet."""
    address = ipaddress.ip_address(fip["floating_ip_address"])
    for subnet in model["subnets"]:
        if subnet["network_id"] == fip["floating_network_id"] and address in ipaddress.ip_network(
            subnet["cidr"]
        ):
            gateway: str | None = subnet.get("gateway_ip")
            return gateway
    return None


def _what(kind: str, port: int | None) -> str:
    return "ICMP" if kind == "ping" else f"TCP port {port}"


def _suggested_rule(group: dict[str, Any], kind: str, port: int | None) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "security_group_id": group["id"],
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": "icmp" if kind == "ping" else "tcp",
    }
    if kind != "ping":
        rule |= {"port_range_min": port, "port_range_max": port}
    label = "ICMP" if kind == "ping" else f"TCP {port}"
    return {
        "security_group_rule": rule,
        "security_group_name": group["name"],
        "label": f"Allow {label} in security group {group['name'] or group['id']}",
    }


def _why(
    model: dict[str, Any],
    fip: dict[str, Any],
    wanted: dict[str, Any],
    result: dict[str, Any],
    lines: list[str],
) -> tuple[str | None, dict[str, Any] | None]:
    """Why the probe was not answered, in words, and the security group rule that would let it
    in when a group dropped it."""
    kind, port = wanted["kind"], wanted.get("port")
    if not fip.get("port_id"):
        return "the floating IP is not associated with a port", None
    drop = next((line for line in lines if "(verdict drop)" in line), None)
    if drop is not None:
        # The probe's way in ends at the floating IP's port: dropped by its groups' chain?
        target = next((p for p in model["ports"] if p["id"] == fip["port_id"]), None)
        groups = {g["id"]: g for g in model["security_groups"]}
        chain = groups_chain(port_groups(target, groups), "ingress") if target else None
        if target is None or chain not in drop.split():
            return f"dropped by {drop.split(' ', 3)[-1]}", None
        dropping = [groups[g] for g in target["security_groups"] if g in groups]
        if not dropping:
            return "dropped by the port's firewall: the port has no security group", None
        listed = ", ".join(g["name"] or g["id"] for g in dropping)
        return (
            f"dropped by security group {listed} (no rule allows {_what(kind, port)} in)",
            _suggested_rule(dropping[0], kind, port),
        )
    error, fixed = result.get("error", ""), fip["fixed_ip_address"]
    if "refused" in error:
        return f"nothing listens on TCP port {port} on {fixed}: connection refused", None
    if "unreachable" in error or "no route" in error:
        return f"no route to {fip['floating_ip_address']} from the outside: {error}", None
    if error == "the answer is not http":  # neutrino.agent.trace's HTTP GET
        return f"TCP port {port} on {fixed} answers, but not with HTTP", None
    target = next((p for p in model["ports"] if p["id"] == fip["port_id"]), {"id": fip["port_id"]})
    if any(f'"{names.device(target)}"' in line for line in lines):  # its tap, a VM's, a veth
        return f"the packet reached {fixed}, which did not answer ({error})", None
    return f"no answer ({error}); the kernel saw no drop on the way", None


def _unserved(
    model: dict[str, Any], fip: dict[str, Any], wanted: dict[str, Any], result: dict[str, Any]
) -> str | None:
    """Why a load balancer's VIP answered 503 (haproxy's "No server is available"): the members
    of the pool of the listener on the probed port, none of them healthy, as the agents saw
    them."""
    if result.get("http_status") != 503:
        return None
    port = wanted.get("port")
    lb = next((b for b in model["loadbalancers"] if b["vip_port_id"] == fip.get("port_id")), None)
    listener = next(
        (li for li in (lb or {}).get("listeners", []) if li["protocol_port"] == port), None
    )
    if lb is None or listener is None:
        return None
    pool = next((p for p in lb.get("pools", []) if p["id"] == listener["default_pool_id"]), None)
    if pool is None:
        return f"listener {listener['name'] or listener['id']} has no pool to send it to"
    members = ", ".join(
        f"{m['name'] or m['address']} {m['address']}:{m['protocol_port']} {m['operating_status']}"
        for m in pool["members"]
    )
    named = pool["name"] or pool["id"]
    if not members:
        return f"pool {named} of load balancer {lb['name'] or lb['id']} has no members"
    return f"no member of pool {named} is healthy to send it to ({members})"


def _settle(db: Database, needs: dict[str, dict[str, list[str]]]) -> None:
    """Wait until the agent of each host has applied the last change of the resources it
    implements for the probe (`needs`: host -> resource type -> IDs), or SETTLE_SECONDS have
    passed."""
    C, A = schema.changes, schema.agents
    last: dict[str, int] = {}
    with db.read() as conn:
        for host, resources in needs.items():
            touched = [
                and_(C.c.resource_type == kind, C.c.resource_id.in_(ids))
                for kind, ids in resources.items()
            ]
            found = conn.execute(select(func.max(C.c.revision)).where(or_(*touched))).scalar()
            last[host] = found or 0
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        with db.read() as conn:
            applied = dict(
                conn.execute(select(A.c.host, A.c.applied_revision).where(A.c.host.in_(last)))
                .tuples()
                .all()
            )
        if all(applied.get(host, 0) >= revision for host, revision in last.items()):
            return
        time.sleep(0.05)


def probe(
    db: Database, ctx: Context, wanted: dict[str, Any], prefer: str, ask: Ask
) -> dict[str, Any]:
    """Run the probe `wanted` (see wanted_probe) against a floating IP of the caller's."""
    model = feed.snapshot(db)
    fip = _floatingip(model, ctx, wanted)
    network = next(n for n in model["networks"] if n["id"] == fip["floating_network_id"])
    physnet = network.get("provider:physical_network")
    if not physnet:
        raise errors.Conflict(
            f"External network {network['name'] or network['id']} is on no physical network: "
            "there is no outside to probe from."
        )
    where, outside_netns = outside.outside_netns(db, physnet, prefer)
    kind, port, path = wanted["kind"], wanted.get("port"), wanted.get("path")
    address, source = fip["floating_ip_address"], _source(model, fip)
    target = next((p for p in model["ports"] if p["id"] == fip.get("port_id")), None)
    watching: dict[str, str | None] = {}  # host -> the router's namespace there
    if target is not None and fip.get("router_id"):
        needs: dict[str, dict[str, list[str]]] = {}
        try:
            router_host, router_netns = outside.realized_netns(
                db, "routers", fip["router_id"], prefer
            )
            watching[router_host] = router_netns
            needs[router_host] = {"floatingip": [fip["id"]], "router": [fip["router_id"]]}
        except errors.Conflict:
            pass  # not realized yet: the probe says what the outside sees all the same
        port_host = target.get("binding:host_id") or prefer
        watching.setdefault(port_host, None)
        needs.setdefault(port_host, {}).update(
            port=[target["id"]], security_group=target.get("security_groups") or []
        )
        _settle(db, needs)
    protocol = "icmp" if kind == "ping" else kind
    match = {
        "source": source,
        "destinations": [address, fip["fixed_ip_address"]] if target else [address],
        "protocol": protocol,
        "port": port,
    }
    watches: dict[str, str] = {}
    try:
        for host, netns in watching.items():
            watches[host] = ask(host, "POST", "/v1/watches", {**match, "router_netns": netns})["id"]
        sent = {"destination": address, "protocol": protocol, "port": port, "path": path}
        result = ask(where, "POST", "/v1/probe", {**sent, "source": source, "netns": outside_netns})
    finally:
        ended = {host: ask(host, "DELETE", f"/v1/watches/{w}", None) for host, w in watches.items()}
    traced = [
        f"{host}: {line}" for host, parts in ended.items() for p in parts for line in p["trace"]
    ]
    if result["reached"]:
        why, rule = _unserved(model, fip, wanted, result), None
    else:
        why, rule = _why(model, fip, wanted, result, traced)
    return {
        "probe": {
            "floating_ip_id": fip["id"],
            "floating_ip_address": address,
            "fixed_ip_address": fip.get("fixed_ip_address"),
            "port_id": fip.get("port_id"),
            "kind": kind,
            "port": port,
            "path": path,
            "source": source,
            "sent": result["sent"],
            "reachable": result["reached"],
            "elapsed_ms": result.get("elapsed_ms"),
            "http_status": result.get("http_status"),
            "first_bytes": result.get("first_bytes"),
            "error": result.get("error"),
            "why": why,
            "suggested_rule": rule,
            "trace": traced,
        }
    }
