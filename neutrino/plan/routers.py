"""Routers, source NAT and floating IPs as plain data.

A router lives in its own namespace `qrouter-<id>` with forwarding on (off
while `admin_state_up` is false). Each attached subnet is a veth: `tap<port>`
on the network's bridge in the host, `qr-<port>` in the router with the
subnet's gateway IP; the gateway port is the same with `qg-<port>`, which
also holds the floating IPs (/32), as the tutorial shows. The agent changes
those addresses one by one with the floating IPs, so a router's addresses
are its own (`Router.addresses`), apart from the host's. The default route
points at the external subnet's gateway; `routes` add static ones.

NAT is one nftables table per router, in its namespace:

    prerouting  dnat to ip daddr map @fip_dnat          floating -> fixed
    postrouting oif != qg, ct status dnat, from @internal
                  snat to the gateway IP                 hairpin: replies
                                                         come back through us
                oif qg: snat to ip saddr map @fip_snat   fixed -> floating
                oif qg, from @internal: snat to the      source NAT
                  gateway IP                             (enable_snat only)
    forward     from qg: established or DNATed, else     the outside opens no
                  drop                                   connection to a fixed IP
                                                         (enable_snat only)

Floating IPs are only map elements, so associating or moving one is a single
element change in one transaction that leaves every rule alone, and a lookup
costs the same with 10 or 50,000 of them. The compiled table (`Router.nat`)
therefore carries the rules and empty maps; the agent diffs the elements.
NAT chains see only a connection's first packet: conntrack keeps the rest on
the old mapping, which is why the agent deletes a floating IP's conntrack
entries when its mapping goes or changes.

A router lives on the host of the L3 agent the server scheduled it to
(`l3_agent_host` in the feed's body; "" for none: nowhere). In a model that
no scheduler placed, it lives where its ports are bound, or, when they are
unbound, on hosts that serve unbound DHCP ports (network nodes). A router
has its namespace there whether or not it has ports, as Neutron's L3 agent
makes `qrouter-` for every router scheduled to it: an idle router (no
interface, no gateway) is a namespace with forwarding on and its NAT table,
maps empty. Attaching an interface then adds a veth to what exists,
`inspect` reads the same objects for every router, and the agent repairs an
idle router's namespace like any other.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from neutrino.plan import names
from neutrino.plan.host import HostConfig
from neutrino.plan.state import (
    Address,
    Firewall,
    FloatingIp,
    Link,
    Resource,
    Route,
    Router,
    Upstream,
    VethPeer,
)

INTERFACE, GATEWAY = "network:router_interface", "network:router_gateway"
ROUTER_OWNERS = (INTERFACE, GATEWAY)
L3_AGENT_HOST = "l3_agent_host"  # in the feed's router bodies: where the router lives
TABLE = "neutrino"
NAT = {"family": "ip", "table": TABLE}
FIP_DNAT, FIP_SNAT, INTERNAL = "fip_dnat", "fip_snat", "internal"
DEFAULT_ROUTE = "0.0.0.0/0"


@dataclass
class RouterPlan:
    """What the routers of one host add to its desired state."""

    namespaces: set[str] = field(default_factory=set)
    links: list[Link] = field(default_factory=list)
    routers: list[Router] = field(default_factory=list)
    devices: dict[str, str] = field(default_factory=dict)  # port id -> host-side device


def placed_here(scheduled: str | None, bound: set[str], host: HostConfig) -> bool:
    """Whether something lives on `host`: where the server scheduled it, or, in a model without
    schedules, where it is bound (unbound: on hosts that serve unbound DHCP ports)."""
    if scheduled is not None:
        return scheduled == host.name
    return host.name in bound or (not bound and host.serves_dhcp)


def local_routers(
    routers: Iterable[Resource], ports: Iterable[Resource], host: HostConfig
) -> dict[str, list[Resource]]:
    """Routers that live on `host`, each with its ports (interfaces and gateway)."""
    owned: dict[str, list[Resource]] = {}
    for port in ports:
        if port.get("device_owner") in ROUTER_OWNERS:
            owned.setdefault(port.get("device_id") or "", []).append(port)
    found = {}
    for router in routers:
        its_ports = sorted(owned.get(router["id"], []), key=lambda p: p["id"])
        bound = {p.get("binding:host_id") or "" for p in its_ports} - {""}
        if placed_here(router.get(L3_AGENT_HOST), bound, host):
            found[router["id"]] = its_ports
    return found


def compile_routers(
    host: HostConfig,
    routers: dict[str, Resource],
    router_ports: dict[str, list[Resource]],
    subnets: dict[str, Resource],
    floatingips: Iterable[Resource],
    realized: set[str],
) -> RouterPlan:
    """Namespaces, veths, addresses and NAT of the routers in `router_ports` (see local_routers)."""
    plan = RouterPlan()
    fips_by_router: dict[str, list[FloatingIp]] = {}
    for fip in floatingips:
        if fip.get("router_id") and fip.get("port_id") and fip.get("fixed_ip_address"):
            fips_by_router.setdefault(fip["router_id"], []).append(
                FloatingIp(fip["id"], fip["floating_ip_address"], fip["fixed_ip_address"])
            )
    for router_id in sorted(router_ports):
        router = routers[router_id]
        netns = names.router_netns(host, router_id)
        plan.namespaces.add(netns)
        gateway = gateway_ip = next_hop = None
        internal: list[str] = []
        own: list[Address] = []
        for port in router_ports[router_id]:
            if port["network_id"] not in realized:
                continue
            is_gateway = port["device_owner"] == GATEWAY
            inside = (names.router_gateway if is_gateway else names.router_interface)(port["id"])
            plan.devices[port["id"]] = names.tap(port["id"])
            plan.links.append(
                Link(
                    host.netns,
                    names.tap(port["id"]),
                    "veth",
                    master=names.bridge(port["network_id"]),
                    up=bool(port.get("admin_state_up", True)),
                    peer=VethPeer(netns, inside, mac=port["mac_address"]),
                )
            )
            for ip in port.get("fixed_ips", []):
                subnet = subnets.get(ip["subnet_id"])
                if subnet is None:
                    continue
                cidr = ipaddress.ip_network(subnet["cidr"])
                own.append(Address(netns, inside, f"{ip['ip_address']}/{cidr.prefixlen}"))
                if cidr.version != 4:
                    continue
                if not is_gateway:
                    internal.append(str(cidr))
                elif gateway_ip is None:
                    gateway, gateway_ip, next_hop = (
                        inside,
                        ip["ip_address"],
                        subnet.get("gateway_ip"),
                    )
        fips = sorted(fips_by_router.get(router_id, []), key=lambda f: f.address) if gateway else []
        routes = [Route(DEFAULT_ROUTE, next_hop)] if next_hop else []
        routes += [Route(r["destination"], r["nexthop"]) for r in router.get("routes") or []]
        snat = bool((router.get("external_gateway_info") or {}).get("enable_snat", True))
        plan.routers.append(
            Router(
                id=router_id,
                netns=netns,
                forwarding=bool(router.get("admin_state_up", True)),
                gateway=gateway,
                routes=tuple(sorted(set(routes), key=lambda r: (r.destination, r.nexthop))),
                nat=compile_nat(gateway, gateway_ip, internal, snat),
                floatingips=tuple(fips),
                addresses=tuple(sorted(own, key=lambda a: (a.ifname, a.cidr))),
            )
        )
    return plan


def router_port_networks(router_ports: dict[str, list[Resource]]) -> set[str]:
    return {port["network_id"] for ports in router_ports.values() for port in ports}


# --- the NAT table ------------------------------------------------------------------


def _match(key: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": key, "right": right}}


def _rule(chain: str, *expr: dict[str, Any]) -> dict[str, Any]:
    return {"add": {"rule": {**NAT, "chain": chain, "expr": list(expr)}}}


def _chain(name: str, kind: str, hook: str, prio: int) -> dict[str, Any]:
    return {
        "add": {
            "chain": {
                **NAT,
                "name": name,
                "type": kind,
                "hook": hook,
                "prio": prio,
                "policy": "accept",
            }
        }
    }


OIF, IIF = {"meta": {"key": "oifname"}}, {"meta": {"key": "iifname"}}
SADDR, DADDR = (
    {"payload": {"protocol": "ip", "field": "saddr"}},
    {"payload": {"protocol": "ip", "field": "daddr"}},
)
CT_STATUS, CT_STATE = {"ct": {"key": "status"}}, {"ct": {"key": "state"}}


def compile_nat(
    gateway: str | None, gateway_ip: str | None, internal: list[str], snat: bool
) -> Firewall:
    """The router's table: rules and empty floating IP maps (floating IPs are elements)."""
    nets = sorted(ipaddress.collapse_addresses(ipaddress.IPv4Network(c) for c in internal))
    elements = [{"prefix": {"addr": str(n.network_address), "len": n.prefixlen}} for n in nets]
    internal_set: dict[str, Any] = {
        **NAT,
        "name": INTERNAL,
        "type": "ipv4_addr",
        "flags": ["interval"],
    }
    if elements:
        internal_set["elem"] = elements
    commands: list[dict[str, Any]] = [
        {"add": {"table": {"family": "ip", "name": TABLE}}},
        {"add": {"map": {**NAT, "name": FIP_DNAT, "type": "ipv4_addr", "map": "ipv4_addr"}}},
        {"add": {"map": {**NAT, "name": FIP_SNAT, "type": "ipv4_addr", "map": "ipv4_addr"}}},
        {"add": {"set": internal_set}},
        _chain("prerouting", "nat", "prerouting", -100),
        _chain("postrouting", "nat", "postrouting", 100),
        _chain("forward", "filter", "forward", 0),
        _rule("prerouting", {"dnat": {"addr": {"map": {"key": DADDR, "data": f"@{FIP_DNAT}"}}}}),
    ]
    if gateway and gateway_ip:
        commands += [
            _rule(
                "postrouting",
                _match(OIF, gateway, "!="),
                _match(CT_STATUS, "dnat", "in"),
                _match(SADDR, f"@{INTERNAL}"),
                {"snat": {"addr": gateway_ip}},
            ),
            _rule(
                "postrouting",
                _match(OIF, gateway),
                {"snat": {"addr": {"map": {"key": SADDR, "data": f"@{FIP_SNAT}"}}}},
            ),
        ]
    if gateway and gateway_ip and snat:
        commands += [
            _rule(
                "postrouting",
                _match(OIF, gateway),
                _match(SADDR, f"@{INTERNAL}"),
                {"snat": {"addr": gateway_ip}},
            ),
            _rule(
                "forward",
                _match(IIF, gateway),
                _match(CT_STATE, ["established", "related"], "in"),
                {"accept": None},
            ),
            _rule(
                "forward", _match(IIF, gateway), _match(CT_STATUS, "dnat", "in"), {"accept": None}
            ),
            _rule("forward", _match(IIF, gateway), {"drop": None}),
        ]
    digest = hashlib.sha256(json.dumps(commands, sort_keys=True).encode()).hexdigest()[:16]
    return Firewall(tables=(("ip", TABLE),), commands=tuple(commands), digest=digest)


def map_elements(verb: str, name: str, elements: list[Any]) -> list[dict[str, Any]]:
    """`verb` ("add" or "delete") `elements` of the map `name` (keys, or [key, value] to add)."""
    return [{verb: {"element": {**NAT, "name": name, "elem": elements}}}] if elements else []


def fip_elements(fips: Iterable[FloatingIp]) -> list[dict[str, Any]]:
    """Adds these floating IPs to both maps."""
    fips = list(fips)
    return map_elements("add", FIP_DNAT, [[f.address, f.fixed_ip] for f in fips]) + map_elements(
        "add", FIP_SNAT, [[f.fixed_ip, f.address] for f in fips]
    )


# --- the outside (isolated mode) ----------------------------------------------------


def compile_upstreams(
    host: HostConfig, networks: Iterable[Resource], subnets: Iterable[Resource]
) -> tuple[list[Link], list[Upstream]]:
    """The upstream router of every external network on an isolated physical network.

    The outside namespace holds each external subnet's gateway address, on the
    physical network's bridge there (flat) or on the segment's bridge (VLAN).
    """
    by_network: dict[str, list[Resource]] = {}
    for subnet in subnets:
        if subnet.get("gateway_ip"):
            by_network.setdefault(subnet["network_id"], []).append(subnet)
    links: list[Link] = []
    wanted: dict[tuple[str, str], set[str]] = {}
    for config in host.physnets.values():
        if config.outside_netns is not None:
            wanted[(config.outside_netns, names.outside_bridge(None))] = set()
    for network in networks:
        physnet = host.physnets.get(network.get("provider:physical_network") or "")
        if not network.get("router:external") or physnet is None or physnet.outside_netns is None:
            continue
        kind = network.get("provider:network_type")
        if kind not in ("flat", "vlan"):
            continue
        bridge = names.outside_bridge(
            int(network["provider:segmentation_id"]) if kind == "vlan" else None
        )
        if kind == "vlan":
            links.append(Link(physnet.outside_netns, bridge, "bridge"))
        cidrs = wanted.setdefault((physnet.outside_netns, bridge), set())
        for subnet in by_network.get(network["id"], []):
            prefixlen = ipaddress.ip_network(subnet["cidr"]).prefixlen
            cidrs.add(f"{subnet['gateway_ip']}/{prefixlen}")
    upstreams = [
        Upstream(netns, bridge, tuple(sorted(cidrs)))
        for (netns, bridge), cidrs in sorted(wanted.items())
    ]
    return links, upstreams
