"""Routers, source NAT and floating IPs as plain data.

A router lives in its own namespace `qrouter-<id>` with forwarding on (off
while `admin_state_up` is false). Each attached subnet is a veth: `tap<port>`
on the network's bridge in the host, `qr-<port>` in the router with the
subnet's gateway IP; the gateway port is the same with `qg-<port>`, which
also answers for the floating IPs: where the tutorial shows each as a /32
address of `qg-`, the agent gives each a local route on `qg-` (`ip route
show table local`), which is what makes the kernel answer ARP for an
address and take its packets, without the interface's address list that
every new address walks whole (see agent/drivers/routers.py). A router's
addresses are its own (`Router.addresses`), apart from the host's. The
default route points at the external subnet's gateway, one per IP version;
`routes` add static ones. IPv6 is routed without NAT, as in Neutron: the
tenant's prefixes are reached as they are, through a route upstream to the
gateway's IPv6 address. An external IPv6 subnet without a gateway IP leaves
the IPv6 default route to the upstream router's advertisements, which the
gateway interface then accepts (`accept_ra` 2, as Neutron's L3 agent sets it).

NAT is one nftables table per router, in its namespace:

    prerouting  l4proto tcp/udp: dnat to                port forwardings:
                  l4proto . daddr . dport map @pf_addr   floating:port(s) -> internal:port
                  : (the same) map @pf_port
                dnat to ip daddr map @fip_dnat          floating -> fixed
    postrouting oif != qg, ct status dnat, from @internal
                  snat to the gateway IP                 hairpin: replies
                                                         come back through us
                oif qg: snat to ip saddr map @fip_snat   fixed -> floating
                oif qg, from @internal, not from        source NAT
                  @routed: snat to the gateway IP        (enable_snat only)
    helpers     ct state new: ct helper set             conntrack helpers
                  l4proto . dport map {...}              (only when it has some)
    forward     from qg: established, DNATed or to       the outside opens no
                  @routed, else drop                     connection to a fixed IP
                                                         (enable_snat only)

A port forwarding's floating IP has no fixed IP, so it is in neither
floating IP map; each forwarding is one element of `pf_addr` and `pf_port`
(interval maps: an external range to one internal port is one element, a range to a
range of the same size an element per port, as Neutron unrolls it). Replies
and the forward chain's `ct status dnat` work for it as for floating IPs.

A conntrack helper (ftp, tftp, sip, ...) reads a connection's payload and
expects the connections it announces (an FTP data connection, a TFTP
transfer), which then pass as `related` and follow the first one's NAT, with
the addresses inside its payload rewritten. Since Linux 4.7 no connection
gets a helper unless a rule gives it one: a `ct helper` object per helper
and protocol, and one rule, before NAT (priority mangle), that gives a new
connection the helper of its protocol and original destination port. A
connection takes one helper: of two on the same port, the first by name.
The kernel loads a helper's module when the table names it.

Metering labels that apply to the router count in a table of their own
(`Router.metering`, see plan/metering.py), so that replacing the NAT table
leaves their counts alone.

`routed` holds the internal subnets in the external subnet's address scope:
their addresses are unique in that scope, so the router routes them as they
are, both ways, as Neutron's L3 agent does.

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

import dataclasses
import hashlib
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from neutrino.plan import names
from neutrino.plan.host import HostConfig
from neutrino.plan.metering import compile_metering
from neutrino.plan.state import (
    Address,
    Firewall,
    FloatingIp,
    Link,
    PortForwarding,
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
FIP_DNAT, FIP_SNAT, INTERNAL, ROUTED = "fip_dnat", "fip_snat", "internal", "routed"
PF_ADDR, PF_PORT = "pf_addr", "pf_port"  # port forwardings: internal address, internal port
DEFAULT_ROUTE, DEFAULT_ROUTE_V6 = "0.0.0.0/0", "::/0"
HELPERS = "helpers"  # the chain giving connections their conntrack helper
# Linux's conntrack helpers by their module's name (nf_conntrack_NAME), as Neutron's
# allowed_conntrack_helpers names them: the protocols each tracks, and its name in the
# kernel for each (H.323's are two).
CONNTRACK_HELPERS: dict[str, dict[str, str]] = {
    "amanda": {"udp": "amanda"},
    "ftp": {"tcp": "ftp"},
    "h323": {"udp": "RAS", "tcp": "Q.931"},
    "irc": {"tcp": "irc"},
    "netbios-ns": {"udp": "netbios-ns"},
    "pptp": {"tcp": "pptp"},
    "sane": {"tcp": "sane"},
    "sip": {"udp": "sip", "tcp": "sip"},
    "snmp": {"udp": "snmp"},
    "tftp": {"udp": "tftp"},
}


@dataclass(frozen=True)
class RouterPiece:
    """What one router adds to its host's desired state (compile_router): its namespace, the
    veths of its ports and the router itself, without its floating IPs and port forwardings,
    which are pieces of their own (compile_floatingip)."""

    netns: str
    links: tuple[Link, ...]
    devices: dict[str, str]  # port id -> host-side device
    router: Router


@dataclass(frozen=True)
class FloatingIpPiece:
    """One floating IP's elements in its router's maps (compile_floatingip)."""

    router_id: str | None
    floatingips: tuple[FloatingIp, ...]  # its mapping, if it has one
    port_forwardings: tuple[PortForwarding, ...] = ()


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


def compile_router(
    host: HostConfig,
    router: Resource,
    ports: Iterable[Resource],
    subnets: dict[str, Resource],
    realized: set[str] | frozenset[str],
    metering_labels: Iterable[Resource] = (),
) -> RouterPiece:
    """Namespace, veths, addresses, NAT and metering of a router that lives here, from its
    ports (interfaces and gateway: see local_routers); `realized`: the networks this host
    has."""
    router_id = router["id"]
    netns = names.router_netns(host, router_id)
    links: list[Link] = []
    devices: dict[str, str] = {}
    gateway = gateway_ip = next_hop = gateway_scope = gateway_v6 = next_hop_v6 = None
    internal: list[tuple[str, str | None]] = []  # (cidr, address scope)
    own: list[Address] = []
    for port in ports:
        if port["network_id"] not in realized:
            continue
        is_gateway = port["device_owner"] == GATEWAY
        inside = (names.router_gateway if is_gateway else names.router_interface)(port["id"])
        devices[port["id"]] = names.tap(port["id"])
        links.append(
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
                # IPv6 is routed as it is, without NAT, as in Neutron.
                if is_gateway:
                    gateway_v6 = inside
                    next_hop_v6 = next_hop_v6 or subnet.get("gateway_ip")
                continue
            if not is_gateway:
                internal.append((str(cidr), subnet.get("address_scope_id")))
            elif gateway_ip is None:
                gateway, gateway_ip, next_hop, gateway_scope = (
                    inside,
                    ip["ip_address"],
                    subnet.get("gateway_ip"),
                    subnet.get("address_scope_id"),
                )
    routes = [Route(DEFAULT_ROUTE, next_hop)] if next_hop else []
    routes += [Route(DEFAULT_ROUTE_V6, next_hop_v6)] if next_hop_v6 else []
    routes += [Route(r["destination"], r["nexthop"]) for r in router.get("routes") or []]
    snat = bool((router.get("external_gateway_info") or {}).get("enable_snat", True))
    compiled = Router(
        id=router_id,
        netns=netns,
        forwarding=bool(router.get("admin_state_up", True)),
        gateway=gateway,
        routes=tuple(sorted(set(routes), key=lambda r: (r.destination, r.nexthop))),
        nat=compile_nat(
            gateway,
            gateway_ip,
            [cidr for cidr, _ in internal],
            snat,
            [cidr for cidr, scope in internal if scope and scope == gateway_scope],
            router.get("conntrack_helpers") or [],
        ),
        floatingips=(),
        addresses=tuple(sorted(own, key=lambda a: (a.ifname, a.cidr))),
        metering=compile_metering(router, gateway, metering_labels),
        # As Neutron's L3 agent: without an IPv6 gateway IP, the upstream's advertisements.
        accept_ra=((gateway_v6, 0 if next_hop_v6 else 2),) if gateway_v6 else (),
    )
    return RouterPiece(netns, tuple(links), devices, compiled)


def compile_floatingip(fip: Resource) -> FloatingIpPiece:
    """A floating IP's mapping (associated with a fixed IP through a router), or its port
    forwardings (not associated, on a router)."""
    router_id = fip.get("router_id") or None
    if router_id and fip.get("port_id") and fip.get("fixed_ip_address"):
        mapping = FloatingIp(fip["id"], fip["floating_ip_address"], fip["fixed_ip_address"])
        return FloatingIpPiece(router_id, (mapping,))
    if router_id and not fip.get("port_id"):
        return FloatingIpPiece(router_id, (), tuple(port_forwardings(fip)))
    return FloatingIpPiece(router_id, ())


def with_floatingips(
    piece: RouterPiece, fips: Iterable[FloatingIpPiece], only: bool = False
) -> Router:
    """The router with the elements of its floating IPs' pieces (a router without a gateway
    maps none); `only`: and without its own addresses (a part of the router, see the agent's
    RouterDriver.ensure_elements)."""
    router = dataclasses.replace(piece.router, addresses=()) if only else piece.router
    if router.gateway is None:
        return router
    fips = list(fips)
    return dataclasses.replace(
        router,
        floatingips=tuple(sorted((f for p in fips for f in p.floatingips), key=fip_order)),
        port_forwardings=tuple(
            sorted((f for p in fips for f in p.port_forwardings), key=forward_key)
        ),
    )


def fip_order(fip: FloatingIp) -> str:
    return fip.address


def port_forwardings(fip: Resource) -> list[PortForwarding]:
    """A floating IP's forwardings as map elements: a range to a range of the same size is
    one element per port; to one port, one element."""
    found = []
    for pf in fip.get("port_forwardings") or []:
        low, high = (int(p) for p in pf["external_port_range"].split(":"))
        first, last = (int(p) for p in pf["internal_port_range"].split(":"))
        pairs = (
            [((low, high), first)]
            if first == last
            else [((port, port), first + port - low) for port in range(low, high + 1)]
        )
        found += [
            PortForwarding(
                fip["id"],
                pf["protocol"],
                fip["floating_ip_address"],
                external,
                pf["internal_ip_address"],
                internal,
            )
            for external, internal in pairs
        ]
    return found


def router_port_networks(router_ports: dict[str, list[Resource]]) -> set[str]:
    return {port["network_id"] for ports in router_ports.values() for port in ports}


# --- the NAT table ------------------------------------------------------------------


def prefix_set(name: str, cidrs: Iterable[str]) -> dict[str, Any]:
    """A named set of IPv4 prefixes, overlapping ones merged (nft refuses overlaps)."""
    nets = sorted(ipaddress.collapse_addresses(ipaddress.IPv4Network(c) for c in cidrs))
    found: dict[str, Any] = {**NAT, "name": name, "type": "ipv4_addr", "flags": ["interval"]}
    if nets:
        found["elem"] = [
            {"prefix": {"addr": str(n.network_address), "len": n.prefixlen}} for n in nets
        ]
    return found


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
L4PROTO = {"meta": {"key": "l4proto"}}
DPORT = {"payload": {"protocol": "th", "field": "dport"}}
# Two maps with the same keys rather than one to `ipv4_addr . inet_service`: libnftables 1.0.6
# cannot make a map of concatenated data from JSON.
FORWARD_KEY = {"concat": [L4PROTO, DADDR, DPORT]}
FORWARD_ADDR = {"key": FORWARD_KEY, "data": f"@{PF_ADDR}"}
FORWARD_PORT = {"key": FORWARD_KEY, "data": f"@{PF_PORT}"}


def compile_nat(
    gateway: str | None,
    gateway_ip: str | None,
    internal: list[str],
    snat: bool,
    routed: list[str],
    helpers: Iterable[Resource] = (),
) -> Firewall:
    """The router's table: rules and empty floating IP maps (floating IPs are elements), and
    its conntrack helpers."""
    commands: list[dict[str, Any]] = [
        {"add": {"table": {"family": "ip", "name": TABLE}}},
        {"add": {"map": {**NAT, "name": FIP_DNAT, "type": "ipv4_addr", "map": "ipv4_addr"}}},
        {"add": {"map": {**NAT, "name": FIP_SNAT, "type": "ipv4_addr", "map": "ipv4_addr"}}},
        {"add": {"set": prefix_set(INTERNAL, internal)}},
        {"add": {"set": prefix_set(ROUTED, routed)}},
        *[
            {
                "add": {
                    "map": {
                        **NAT,
                        "name": name,
                        "type": ["inet_proto", "ipv4_addr", "inet_service"],
                        "map": data,
                        "flags": ["interval"],
                    }
                }
            }
            for name, data in ((PF_ADDR, "ipv4_addr"), (PF_PORT, "inet_service"))
        ],
        _chain("prerouting", "nat", "prerouting", -100),
        _chain("postrouting", "nat", "postrouting", 100),
        _chain("forward", "filter", "forward", 0),
        _rule(
            "prerouting",
            _match(L4PROTO, {"set": ["tcp", "udp"]}),
            {"dnat": {"addr": {"map": FORWARD_ADDR}, "port": {"map": FORWARD_PORT}}},
        ),
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
                _match(SADDR, f"@{ROUTED}", "!="),
                {"snat": {"addr": gateway_ip}},
            ),
            _rule(
                "forward",
                _match(IIF, gateway),
                _match(CT_STATE, ["established", "related"], "in"),
                {"accept": None},
            ),
            _rule("forward", _match(IIF, gateway), _match(DADDR, f"@{ROUTED}"), {"accept": None}),
            _rule(
                "forward", _match(IIF, gateway), _match(CT_STATUS, "dnat", "in"), {"accept": None}
            ),
            _rule("forward", _match(IIF, gateway), {"drop": None}),
        ]
    commands += helper_commands(helpers)
    digest = hashlib.sha256(json.dumps(commands, sort_keys=True).encode()).hexdigest()[:16]
    return Firewall.whole((("ip", TABLE),), tuple(commands), digest)


def helper_commands(helpers: Iterable[Resource]) -> list[dict[str, Any]]:
    """A `ct helper` object per helper and protocol, and the rule that gives new connections
    to a helper's port (before DNAT: the port they were sent to) that helper."""
    assigned: dict[tuple[str, int], str] = {}  # (protocol, port) -> helper
    for helper in sorted(helpers, key=lambda h: (h["protocol"], h["port"], h["helper"])):
        if helper["protocol"] in CONNTRACK_HELPERS.get(helper["helper"], {}):  # the API checks
            assigned.setdefault((helper["protocol"], helper["port"]), helper["helper"])
    if not assigned:
        return []
    objects = sorted({(helper, protocol) for (protocol, _), helper in assigned.items()})
    by_port = [
        [{"concat": [protocol, port]}, f"{helper}-{protocol}"]
        for (protocol, port), helper in assigned.items()
    ]
    return [
        *[
            {
                "add": {
                    "ct helper": {
                        **NAT,
                        "name": f"{helper}-{protocol}",
                        "type": CONNTRACK_HELPERS[helper][protocol],
                        "protocol": protocol,
                        "l3proto": "ip",
                    }
                }
            }
            for helper, protocol in objects
        ],
        _chain(HELPERS, "filter", "prerouting", -150),
        _rule(
            HELPERS,
            _match(CT_STATE, "new", "in"),
            {"ct helper": {"map": {"key": {"concat": [L4PROTO, DPORT]}, "data": {"set": by_port}}}},
        ),
    ]


def map_elements(verb: str, name: str, elements: list[Any]) -> list[dict[str, Any]]:
    """`verb` ("add" or "delete") `elements` of the map `name` (keys, or [key, value] to add)."""
    return [{verb: {"element": {**NAT, "name": name, "elem": elements}}}] if elements else []


def fip_elements(fips: Iterable[FloatingIp]) -> list[dict[str, Any]]:
    """Adds these floating IPs to both maps."""
    fips = list(fips)
    return map_elements("add", FIP_DNAT, [[f.address, f.fixed_ip] for f in fips]) + map_elements(
        "add", FIP_SNAT, [[f.fixed_ip, f.address] for f in fips]
    )


ForwardKey = tuple[str, str, int, int]  # protocol, floating IP, first and last external port


def forward_key(pf: PortForwarding) -> ForwardKey:
    return (pf.protocol, pf.address, *pf.external)


def forward_element_key(key: ForwardKey) -> dict[str, Any]:
    protocol, address, low, high = key
    return {"concat": [protocol, address, low if low == high else {"range": [low, high]}]}


def forward_elements(pfs: Iterable[PortForwarding]) -> list[dict[str, Any]]:
    """Adds these port forwardings to both maps."""
    keyed = [(forward_element_key(forward_key(p)), p) for p in pfs]
    return map_elements("add", PF_ADDR, [[k, p.internal_ip] for k, p in keyed]) + map_elements(
        "add", PF_PORT, [[k, p.internal_port] for k, p in keyed]
    )


def parse_forward_element(element: list[Any]) -> tuple[ForwardKey, Any]:
    """A listed element of a port forwarding map, as its key and value."""
    protocol, address, port = element[0]["concat"]
    low, high = port["range"] if isinstance(port, dict) else (port, port)
    return (str(protocol), str(address), int(low), int(high)), element[1]


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
