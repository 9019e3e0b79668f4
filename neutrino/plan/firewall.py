"""Resource security and security groups as nftables tables (libnftables JSON).

Bridged frames are filtered in the bridge family, where the bridge port (the
tap) is known. Two base chains on the forward hook: `egress` (priority -20)
jumps, through a verdict map keyed by input port, to the chain of the sending
port's groups; `ingress` (priority -10) does the same for the output port. An
accept in the first base chain still leaves the frame to the second, so a
frame between two protected ports is checked by both. A port without port
security has no map element: its frames pass its own side unfiltered.

Objects grow as rules + members + combinations of groups, not as ports. Who a
port may claim to be (its MAC, its fixed IPs and allowed address pairs) is set
elements keyed by the port's tap, checked by shared chains (`egress-common`,
`ingress-common`) with a lookup per protocol (two for addresses: a hash set of
them, an interval set of the prefixes). The ports of the same groups share a
chain per direction (`ingress-groups-<digest>`) that jumps there, then to each
group's chain (one rule per SG rule). A remote group is one set of member
addresses. A new port adds elements only (and two short chains if it is the
first of its groups): libnftables reads back every chain of the namespace
before it adds a rule, so chains per port made each rule's change cost as many
ports as the host had. A new member adds an element. A remote address group is
one set per family whose elements (Firewall.elements) the agent changes in
place when the group's addresses change: the rules naming it stay as they are.

Statefulness: conntrack is not available in the bridge family on every kernel
(CONFIG_NF_CONNTRACK_BRIDGE). With br_netfilter (switched on per bridge, on
those where a protected port is plugged: Link.netfilter) a bridge's IP
packets also traverse the inet hooks, where conntrack runs; a
prerouting chain there copies "established or related" into a mark bit that
the bridge chains test. A dropped first packet never confirms its conntrack
entry, so a denied flow cannot become established.

Stateless groups (`stateful` false) filter without conntrack, as Neutron's
drivers do: a bridge prerouting chain, before br_netfilter hands the packet
to the inet hooks, marks frames from a stateless port (by its tap) and to one
(by its MAC) `notrack`. Untracked packets are never "established": replies
pass only when a rule allows them.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import operator
from collections.abc import Collection, Container, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from neutrino import ipam
from neutrino.plan import names
from neutrino.plan.state import Firewall, Resource

TABLE = "neutrino"
BRIDGE = {"family": "bridge", "table": TABLE}
INET = {"family": "inet", "table": TABLE}
LINK_LOCAL = ipaddress.IPv6Network("fe80::/64")
ESTABLISHED_MARK = 0x4E000000  # one bit pattern of the packet mark, owned by neutrino

Expr = dict[str, Any]

PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132}
ICMPV6_ALWAYS_IN = [
    "nd-router-advert",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
    "mld-listener-query",
]
ICMPV6_ALWAYS_OUT = [
    "nd-router-solicit",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
    "mld-listener-report",
    "mld2-listener-report",
]


# --- expression helpers -------------------------------------------------------------


def _match(left: Expr, right: Any, op: str = "==") -> Expr:
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(protocol: str, field: str) -> Expr:
    return {"payload": {"protocol": protocol, "field": field}}


def _meta(key: str) -> Expr:
    return {"meta": {"key": key}}


def _ethertype(family: str) -> Expr:
    return _match(_meta("protocol"), family)


def _l4(proto: str) -> Expr:
    return _match(_meta("l4proto"), PROTOCOL_NUMBERS[proto])


def _ports(proto: str, field: str, low: int, high: int) -> Expr:
    return _match(_payload(proto, field), low if low == high else {"range": [low, high]})


def _address(value: str) -> Any:
    net = ipaddress.ip_network(value, strict=False)
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def _established() -> Expr:
    mark = {"&": [_meta("mark"), ESTABLISHED_MARK]}
    return _match(mark, ESTABLISHED_MARK)


def _rule(family: dict[str, str], chain: str, *expr: Expr) -> dict[str, Any]:
    return {"add": {"rule": {**family, "chain": chain, "expr": list(expr)}}}


ACCEPT: Expr = {"accept": None}
DROP: Expr = {"drop": None}


# --- names ----------------------------------------------------------------------


def groups_chain(sg_ids: tuple[str, ...], direction: str) -> str:
    """The chain, in `direction`, of the ports whose groups are `sg_ids` (port_groups)."""
    digest = hashlib.sha256(" ".join(sg_ids).encode()).hexdigest()[:16]
    return f"{direction}-groups-{digest}"


def port_groups(port: Resource, groups: Container[str]) -> tuple[str, ...]:
    """The port's groups that exist (in `groups`), in one order: ports of the same groups share
    their chains."""
    return tuple(sorted({sg for sg in port.get("security_groups", []) if sg in groups}))


def sg_chain(sg_id: str, direction: str) -> str:
    return f"sg-{sg_id}-{direction}"


def members_set(sg_id: str, ethertype: str) -> str:
    return f"members-{sg_id}-{'v4' if ethertype == 'IPv4' else 'v6'}"


def address_group_set(ag_id: str, ethertype: str) -> str:
    return f"ag-{ag_id}-{'v4' if ethertype == 'IPv4' else 'v6'}"


COMMON_EGRESS, COMMON_INGRESS = "egress-common", "ingress-common"
# Sets of every protected port: (tap, MAC), (tap, MAC, address) and (tap, MAC, prefix). The
# prefixes' are apart: libnftables reads every interval set's elements back before it changes
# any set's, so that a port's change would cost as much as every port's addresses.
PORT_MACS, PORT_V4, PORT_V6 = "port-macs", "port-v4", "port-v6"
PORT_V4_NETS, PORT_V6_NETS = "port-v4-nets", "port-v6-nets"
# Taps and MACs of the ports whose groups are stateless.
STATELESS_TAPS, STATELESS_MACS = "stateless-taps", "stateless-macs"


# --- compile ----------------------------------------------------------------------


def is_protected(port: Resource) -> bool:
    """Service ports (DHCP, routers) are trusted; others follow port_security_enabled."""
    if str(port.get("device_owner") or "").startswith("network:"):
        return False
    return bool(port.get("port_security_enabled", True))


def port_addresses(port: Resource) -> list[tuple[str, str]]:
    """(mac, address or CIDR) pairs a port may send from: fixed IPs + allowed pairs."""
    mac = port["mac_address"]
    pairs = [(mac, ip["ip_address"]) for ip in port.get("fixed_ips", [])]
    for pair in port.get("allowed_address_pairs") or []:
        pairs.append((pair.get("mac_address") or mac, pair["ip_address"]))
    return pairs


@functools.lru_cache(maxsize=1 << 16)
def _link_local(mac: str) -> str:
    """The EUI-64 IPv6 link-local address that a NIC with this MAC configures."""
    return str(ipam.eui64(LINK_LOCAL, mac))


@dataclass(frozen=True)
class FirewallPart:
    """Commands of the bridge table, in-place sets' elements, and their digest."""

    commands: tuple[dict[str, Any], ...]
    elements: tuple[tuple[str, str, str, tuple[Any, ...]], ...] = ()
    digest: str = ""


def compile_firewall(
    local_ports: Iterable[Resource],
    all_ports: Iterable[Resource],
    security_groups: Iterable[Resource],
    address_groups: Iterable[Resource] = (),
    qos: Iterable[dict[str, Any]] = (),
) -> Firewall:
    """The tables for this host's ports; `all_ports` (every host's) fill remote groups; `qos`
    adds the ports' QoS chains to the bridge table (plan.qos)."""
    protected = protected_ports(local_ports)
    groups = list(security_groups)
    named = named_groups(protected)
    return firewall_of(
        *port_rules(protected, groups),
        group_rules(named, groups, address_groups),
        member_sets(remote_groups(named, groups), group_members(all_ports)),
        tuple(qos),
    )


def protected_ports(local_ports: Iterable[Resource]) -> list[Resource]:
    return sorted((p for p in local_ports if is_protected(p)), key=lambda p: p["id"])


def port_rules(
    protected: list[Resource], security_groups: Iterable[Resource]
) -> tuple[FirewallPart, FirewallPart, tuple[FirewallPart, ...]]:
    """What the ports make: the part they share (ports_part), the chains of their groups
    (groups_chains), each port's own (port_part); of their groups, only which exist and
    whether they are stateful counts."""
    groups = {sg["id"]: sg for sg in security_groups}
    stateless = [port for port in protected if not is_stateful(port, groups)]
    return (
        ports_part(stateless),
        groups_chains(port_groups(port, groups) for port in protected),
        tuple(port_part(port, groups) for port in protected),
    )


def ports_part(stateless: list[Resource]) -> FirewallPart:
    """The ports' shared part: the base chains and their maps, the sets of who each port is
    and the chains that check them, the ports that are stateless. Only the last depends on
    the ports: the maps' and sets' elements are each port's own."""
    untracked = _untracked(stateless)
    return FirewallPart((*SHARED, *untracked), digest=_digest([SHARED_DIGEST, untracked]))


def port_part(port: Resource, groups: Container[str]) -> FirewallPart:
    """One port's part: its elements of the shared part's maps (to the chains of its groups
    that exist, in `groups`) and sets: a port's change touches nothing else."""
    sg_ids = port_groups(port, groups)
    tap = names.device(port)
    identities = zip(
        (PORT_MACS, PORT_V4, PORT_V4_NETS, PORT_V6, PORT_V6_NETS),
        _port_identities(port),
        strict=True,
    )
    commands = [
        _element(f"{way}-ports", [[tap, {"jump": {"target": groups_chain(sg_ids, way)}}]])
        for way in ("egress", "ingress")
    ]
    commands += [_element(name, items) for name, items in identities if items]
    return FirewallPart(tuple(commands), digest=_digest(commands))


def groups_chains(combinations: Iterable[tuple[str, ...]]) -> FirewallPart:
    """The chains of the ports' combinations of groups (port_groups), each once: the common
    checks, then the groups' own chains; what none accepts is dropped. However many ports
    share them, libnftables reads back (before each rule it adds) only these."""
    commands: list[dict[str, Any]] = []
    for sg_ids in sorted(set(combinations)):
        for direction, common in (("egress", COMMON_EGRESS), ("ingress", COMMON_INGRESS)):
            chain = groups_chain(sg_ids, direction)
            commands.append({"add": {"chain": {**BRIDGE, "name": chain}}})
            commands.append(_rule(BRIDGE, chain, {"jump": {"target": common}}))
            commands += [
                _rule(BRIDGE, chain, {"jump": {"target": sg_chain(sg, direction)}}) for sg in sg_ids
            ]
            commands.append(_rule(BRIDGE, chain, DROP))
    return FirewallPart(tuple(commands), digest=_digest(commands))


def named_groups(protected: list[Resource]) -> list[str]:
    """The groups the ports name (some may not exist)."""
    return sorted({sg for port in protected for sg in port.get("security_groups", [])})


def remote_groups(named: list[str], security_groups: Iterable[Resource]) -> list[str]:
    """The groups whose members the rules of the groups `named` name."""
    groups = {sg["id"]: sg for sg in security_groups}
    return sorted(
        {
            rule["remote_group_id"]
            for sg in named
            for rule in groups.get(sg, {}).get("security_group_rules", [])
            if rule.get("remote_group_id")
        }
    )


def group_rules(
    named: list[str],
    security_groups: Iterable[Resource],
    address_groups: Iterable[Resource],
) -> FirewallPart:
    """What the groups `named` by the ports make: their chains, and the sets of the address
    groups they name (their members' sets are `member_sets`)."""
    groups = {sg["id"]: sg for sg in security_groups}
    known_address_groups = {ag["id"]: ag for ag in address_groups}
    used = [sg for sg in named if sg in groups]
    rules = [rule for sg in used for rule in groups[sg].get("security_group_rules", [])]
    remote = {rule["remote_group_id"] for rule in rules if rule.get("remote_group_id")}
    remote_address_groups = sorted(
        {
            rule["remote_address_group_id"]
            for rule in rules
            if rule.get("remote_address_group_id") in known_address_groups
        }
    )
    commands: list[dict[str, Any]] = []
    elements = []
    for ag_id in remote_address_groups:
        for ethertype, type_ in (("IPv4", "ipv4_addr"), ("IPv6", "ipv6_addr")):
            name = address_group_set(ag_id, ethertype)
            commands.append(_set(name, type_, []))
            wanted = _addresses_of(known_address_groups[ag_id], ethertype)
            elements.append(("bridge", TABLE, name, wanted))
    for sg_id in used:
        commands += _security_group(groups[sg_id], remote, set(remote_address_groups))
    return FirewallPart(tuple(commands), tuple(elements), _digest(commands))


def group_members(all_ports: Iterable[Resource]) -> dict[str, dict[str, int]]:
    """Each group's members' addresses (`all_ports`: every host's), each with how many ports
    claim it (count_members keeps it as ports change)."""
    members: dict[str, dict[str, int]] = {}
    for port in all_ports:
        count_members(members, port, 1)
    return members


def count_members(members: dict[str, dict[str, int]], port: Resource, sign: int) -> None:
    """Count a port's addresses in (`sign` 1) or out of (-1) the members of its groups."""
    for sg_id in port.get("security_groups", []):
        addresses = members.setdefault(sg_id, {})
        for _, address in port_addresses(port):
            count = addresses.get(address, 0) + sign
            if count:
                addresses[address] = count
            else:
                del addresses[address]
        if not addresses:
            del members[sg_id]


def member_sets(remote: list[str], members: dict[str, dict[str, int]]) -> FirewallPart:
    """The sets of the remote groups' members' addresses (`members`: group_members)."""
    return members_part([member_set(sg_id, members.get(sg_id, {})) for sg_id in remote])


def member_set(sg_id: str, addresses: Collection[str]) -> FirewallPart:
    """One remote group's sets, one per family: a member's change touches its groups' only."""
    v4 = frozenset(address for address in addresses if ":" not in address)
    v6 = frozenset(addresses) - v4
    commands = (
        _set(members_set(sg_id, "IPv4"), "ipv4_addr", list(_sorted_addresses(v4))),
        _set(members_set(sg_id, "IPv6"), "ipv6_addr", list(_sorted_addresses(v6))),
    )
    return FirewallPart(commands, digest=_digest(commands))


def members_part(sets: list[FirewallPart]) -> FirewallPart:
    """The remote groups' sets (member_set) as one part."""
    return FirewallPart(
        tuple(command for part in sets for command in part.commands),
        digest=_digest([part.digest for part in sets]),
    )


_DIGEST_OF, _COMMANDS_OF = operator.attrgetter("digest"), operator.attrgetter("commands")


def firewall_of(
    shared: FirewallPart,
    chains: FirewallPart,
    own: Sequence[FirewallPart],
    groups: FirewallPart,
    members: FirewallPart,
    qos: tuple[dict[str, Any], ...],
) -> Firewall:
    """The tables: the ports' shared part, their groups' (after their members' sets), the
    chains of the ports' combinations of groups, each port's own (port_rules), then the QoS
    chains. Its digest is of the parts' digests, so a part compiled again costs no more than
    itself."""
    parts = (
        (TABLES_DIGEST, TABLES),
        (shared.digest, shared.commands),
        (members.digest, members.commands),
        (groups.digest, groups.commands),
        (chains.digest, chains.commands),
        # at C speed: a host may have 10,000 ports
        *zip(map(_DIGEST_OF, own), map(_COMMANDS_OF, own), strict=True),
        (_digest(qos), qos),
    )
    digests = "".join(map(operator.itemgetter(0), parts))
    return Firewall(
        tables=(("inet", TABLE), ("bridge", TABLE)),
        parts=parts,
        digest=hashlib.sha256(digests.encode()).hexdigest()[:16],
        elements=groups.elements,
    )


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def is_stateful(port: Resource, groups: dict[str, Resource]) -> bool:
    """A port's traffic is tracked unless its groups are stateless (they all agree: the API
    refuses a mix)."""
    own = [groups[sg] for sg in port.get("security_groups", []) if sg in groups]
    return not own or any(sg.get("stateful", True) for sg in own)


def _addresses_of(address_group: Resource, ethertype: str) -> tuple[Any, ...]:
    version = 4 if ethertype == "IPv4" else 6
    addresses = address_group.get("addresses", [])
    return _sorted_addresses(frozenset(a for a in addresses if (":" in a) == (version == 6)))


def _untracked(ports: list[Resource]) -> list[dict[str, Any]]:
    """Frames from and to stateless ports skip conntrack (see the module's docstring)."""
    chain = "notrack"
    taps = sorted(names.device(p) for p in ports)
    macs = sorted(p["mac_address"] for p in ports)
    taps_set: dict[str, Any] = {**BRIDGE, "name": STATELESS_TAPS, "type": "ifname"}
    macs_set: dict[str, Any] = {**BRIDGE, "name": STATELESS_MACS, "type": "ether_addr"}
    if taps:
        taps_set["elem"], macs_set["elem"] = taps, macs
    return [
        {"add": {"set": taps_set}},
        {"add": {"set": macs_set}},
        {
            "add": {
                "chain": {
                    **BRIDGE,
                    "name": chain,
                    "type": "filter",
                    "hook": "prerouting",
                    "prio": -300,
                    "policy": "accept",
                }
            }
        },
        _rule(BRIDGE, chain, _match(_meta("iifname"), "@" + STATELESS_TAPS), {"notrack": None}),
        _rule(
            BRIDGE,
            chain,
            _match(_payload("ether", "daddr"), "@" + STATELESS_MACS),
            {"notrack": None},
        ),
    ]


def _inet_table() -> list[dict[str, Any]]:
    chain = "conntrack"
    return [
        {"add": {"table": {"family": "inet", "name": TABLE}}},
        # After conntrack (-200) has classified the packet.
        {
            "add": {
                "chain": {
                    **INET,
                    "name": chain,
                    "type": "filter",
                    "hook": "prerouting",
                    "prio": -150,
                    "policy": "accept",
                }
            }
        },
        _rule(
            INET,
            chain,
            _match({"ct": {"key": "state"}}, ["established", "related"], "in"),
            {"mangle": {"key": _meta("mark"), "value": {"|": [_meta("mark"), ESTABLISHED_MARK]}}},
        ),
    ]


# The tables themselves and the inet table's chain: the same on every host.
TABLES = (*_inet_table(), {"add": {"table": {"family": "bridge", "name": TABLE}}})
TABLES_DIGEST = _digest(TABLES)


def _bridge_skeleton() -> list[dict[str, Any]]:
    """The base chains, each jumping to the chain of the frame's port through a map (whose
    elements are the ports' own: port_part)."""
    commands: list[dict[str, Any]] = []
    # Both before br_netfilter's own forward hook (priority 0), which re-injects
    # the frame past every hook of its priority: a chain there could be skipped.
    for direction, key, prio in (("egress", "iifname", -20), ("ingress", "oifname", -10)):
        vmap = {**BRIDGE, "name": f"{direction}-ports", "type": "ifname", "map": "verdict"}
        commands.append({"add": {"map": vmap}})
        commands.append(
            {
                "add": {
                    "chain": {
                        **BRIDGE,
                        "name": direction,
                        "type": "filter",
                        "hook": "forward",
                        "prio": prio,
                        "policy": "accept",
                    }
                }
            }
        )
        commands.append(
            _rule(BRIDGE, direction, {"vmap": {"key": _meta(key), "data": f"@{direction}-ports"}})
        )
    return commands


def _element(name: str, elements: list[Any]) -> dict[str, Any]:
    """Elements added to a set or map of the bridge table that another part makes."""
    return {"add": {"element": {**BRIDGE, "name": name, "elem": elements}}}


def _set(name: str, type_: str | list[str], elements: list[Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {**BRIDGE, "name": name, "type": type_, "flags": ["interval"]}
    if elements:
        spec["elem"] = elements
    return {"add": {"set": spec}}


# A host compiles the same ports' addresses over and over, and parsing them is most
# of a compile: merged sets are remembered (pure functions of their arguments), and so is
# each address's range.
@functools.lru_cache(maxsize=1 << 16)
def _sorted_addresses(addresses: frozenset[str]) -> tuple[Any, ...]:
    """One family's addresses, overlaps (and neighbours) merged, as the fewest prefixes: the
    kernel rejects overlapping intervals."""
    merged: list[list[int]] = []
    for start, end in sorted(_range(address) for address in addresses):
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    if not merged:
        return ()
    kind = _kind(next(iter(addresses)))
    found: list[Any] = []
    for start, end in merged:
        if start == end:
            found.append(str(kind(start)))
        else:
            nets = ipaddress.summarize_address_range(kind(start), kind(end))
            found += (_address(str(net)) for net in nets)
    return tuple(found)


@functools.lru_cache(maxsize=1 << 17)
def _range(address: str) -> tuple[int, int]:
    """The first and last address of an address or prefix, as integers (of one family)."""
    net = ipaddress.ip_network(address, strict=False)
    return int(net.network_address), int(net.broadcast_address)


def _kind(address: str) -> type[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    return ipaddress.IPv6Address if ":" in address else ipaddress.IPv4Address


def _collapse_pairs(pairs: list[tuple[str, str]], version: int) -> list[tuple[str, Any]]:
    by_mac: dict[str, set[str]] = {}
    for mac, address in pairs:
        if (":" in address) == (version == 6):
            by_mac.setdefault(mac, set()).add(address)
    return [(mac, address) for mac in sorted(by_mac) for address in _merged(by_mac[mac])]


def _merged(addresses: set[str]) -> tuple[Any, ...]:
    """_sorted_addresses, but one address alone is only written as the kernel shows it."""
    if len(addresses) == 1 and "/" not in (address := next(iter(addresses))):
        return (str(ipaddress.ip_address(address)),)
    return _sorted_addresses(frozenset(addresses))


def _security_group(
    sg: Resource, remote_groups: set[str], address_groups: set[str]
) -> list[dict[str, Any]]:
    commands: list[dict[str, Any]] = []
    for direction in ("ingress", "egress"):
        chain = sg_chain(sg["id"], direction)
        commands.append({"add": {"chain": {**BRIDGE, "name": chain}}})
        rules = [r for r in sg.get("security_group_rules", []) if r["direction"] == direction]
        for rule in sorted(rules, key=lambda r: r["id"]):
            expr = _sg_rule(rule, remote_groups, address_groups)
            if expr is not None:
                commands.append(_rule(BRIDGE, chain, *expr, ACCEPT))
    return commands


def _sg_rule(
    rule: Resource, remote_groups: set[str], address_groups: set[str]
) -> list[Expr] | None:
    """The match of one SG rule, or None when it can never match (family mismatch)."""
    ip = "ip" if rule.get("ethertype", "IPv4") == "IPv4" else "ip6"
    expr = [_ethertype(ip)]
    peer_field = "saddr" if rule["direction"] == "ingress" else "daddr"
    if rule.get("remote_group_id"):
        if rule["remote_group_id"] not in remote_groups:
            return None
        expr.append(
            _match(
                _payload(ip, peer_field),
                "@" + members_set(rule["remote_group_id"], rule["ethertype"]),
            )
        )
    elif rule.get("remote_address_group_id"):
        if rule["remote_address_group_id"] not in address_groups:
            return None
        expr.append(
            _match(
                _payload(ip, peer_field),
                "@" + address_group_set(rule["remote_address_group_id"], rule["ethertype"]),
            )
        )
    elif rule.get("remote_ip_prefix"):
        net = ipaddress.ip_network(rule["remote_ip_prefix"], strict=False)
        if (net.version == 4) != (ip == "ip"):
            return None
        if net.prefixlen:
            expr.append(_match(_payload(ip, peer_field), _address(str(net))))
    protocol = rule.get("protocol")
    if protocol is None or protocol == "any":
        return expr
    number = PROTOCOL_NUMBERS.get(str(protocol).lower())
    if number is None:
        number = int(protocol) if str(protocol).isdigit() else None
    if number is None:
        return None
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if number in (1, 58):
        icmp = "icmp" if ip == "ip" else "icmpv6"
        expr.append(_l4(icmp))
        if low is not None:
            expr.append(_match(_payload(icmp, "type"), low))
            if high is not None:
                expr.append(_match(_payload(icmp, "code"), high))
        return expr
    name = {6: "tcp", 17: "udp", 132: "sctp"}.get(number)
    if name is None:
        expr.append(_match(_meta("l4proto"), number))
        return expr
    expr.append(_l4(name))
    if low is not None:
        expr.append(_ports(name, "dport", low, high if high is not None else low))
    return expr


def _port_identities(port: Resource) -> tuple[list[Any], ...]:
    """A port's elements of PORT_MACS, PORT_V4, PORT_V4_NETS, PORT_V6, PORT_V6_NETS: what it
    may send from."""
    tap = names.device(port)
    pairs = port_addresses(port)
    port_macs = sorted({mac for mac, _ in pairs} | {port["mac_address"]})
    pairs += [(mac, _link_local(mac)) for mac in port_macs]
    found: list[list[Any]] = [[{"concat": [tap, mac]} for mac in port_macs]]
    for version in (4, 6):
        merged = _collapse_pairs(pairs, version)
        found.append([{"concat": [tap, m, a]} for m, a in merged if isinstance(a, str)])
        found.append([{"concat": [tap, m, a]} for m, a in merged if not isinstance(a, str)])
    return tuple(found)


def _claims(claimed: Expr, version: int) -> list[Expr]:
    """Matches that what a frame claims (tap, MAC, address) is none of its port's addresses
    nor in any of its prefixes."""
    exact, nets = (PORT_V4, PORT_V4_NETS) if version == 4 else (PORT_V6, PORT_V6_NETS)
    return [_match(claimed, "@" + exact, "!="), _match(claimed, "@" + nets, "!=")]


def _common_chains() -> list[dict[str, Any]]:
    """The checks of who a port claims to be, against the sets of every port's identities
    (whose elements are the ports' own: port_part)."""
    egress, ingress = COMMON_EGRESS, COMMON_INGRESS
    iif, ether_src = _meta("iifname"), _payload("ether", "saddr")
    return [
        {"add": {"set": {**BRIDGE, "name": PORT_MACS, "type": ["ifname", "ether_addr"]}}},
        {
            "add": {
                "set": {**BRIDGE, "name": PORT_V4, "type": ["ifname", "ether_addr", "ipv4_addr"]}
            }
        },
        _set(PORT_V4_NETS, ["ifname", "ether_addr", "ipv4_addr"], []),
        {
            "add": {
                "set": {**BRIDGE, "name": PORT_V6, "type": ["ifname", "ether_addr", "ipv6_addr"]}
            }
        },
        _set(PORT_V6_NETS, ["ifname", "ether_addr", "ipv6_addr"], []),
        {"add": {"chain": {**BRIDGE, "name": egress}}},
        {"add": {"chain": {**BRIDGE, "name": ingress}}},
        # Egress: who the port claims to be.
        _rule(BRIDGE, egress, _match({"concat": [iif, ether_src]}, "@" + PORT_MACS, "!="), DROP),
        _rule(
            BRIDGE,
            egress,
            _ethertype("arp"),
            *_claims(
                {"concat": [iif, _payload("arp", "saddr ether"), _payload("arp", "saddr ip")]}, 4
            ),
            DROP,
        ),
        _rule(BRIDGE, egress, _ethertype("arp"), ACCEPT),
        _rule(BRIDGE, egress, _ethertype("ip"), _l4("udp"), _ports("udp", "sport", 67, 67), DROP),
        _rule(
            BRIDGE,
            egress,
            _ethertype("ip"),
            _l4("udp"),
            _ports("udp", "sport", 68, 68),
            _ports("udp", "dport", 67, 67),
            ACCEPT,
        ),
        _rule(
            BRIDGE,
            egress,
            _ethertype("ip"),
            *_claims({"concat": [iif, ether_src, _payload("ip", "saddr")]}, 4),
            DROP,
        ),
        _rule(
            BRIDGE,
            egress,
            _ethertype("ip6"),
            _l4("icmpv6"),
            _match(_payload("icmpv6", "type"), {"set": ["nd-router-advert", "nd-redirect"]}),
            DROP,
        ),
        _rule(
            BRIDGE, egress, _ethertype("ip6"), _l4("udp"), _ports("udp", "sport", 547, 547), DROP
        ),
        _rule(
            BRIDGE, egress, _ethertype("ip6"), _match(_payload("ip6", "saddr"), "::"), ACCEPT
        ),  # duplicate address detection
        _rule(
            BRIDGE,
            egress,
            _ethertype("ip6"),
            *_claims({"concat": [iif, ether_src, _payload("ip6", "saddr")]}, 6),
            DROP,
        ),
        _rule(
            BRIDGE,
            egress,
            _ethertype("ip6"),
            _l4("icmpv6"),
            _match(_payload("icmpv6", "type"), {"set": ICMPV6_ALWAYS_OUT}),
            ACCEPT,
        ),
        _rule(
            BRIDGE,
            egress,
            _ethertype("ip6"),
            _l4("udp"),
            _ports("udp", "sport", 546, 546),
            _ports("udp", "dport", 547, 547),
            ACCEPT,
        ),
        _rule(BRIDGE, egress, _match(_meta("protocol"), {"set": ["ip", "ip6"]}, "!="), DROP),
        _rule(BRIDGE, egress, _established(), ACCEPT),
        # Ingress: what reaches every port whatever its groups say.
        _rule(BRIDGE, ingress, _ethertype("arp"), ACCEPT),
        _rule(BRIDGE, ingress, _established(), ACCEPT),
        _rule(
            BRIDGE,
            ingress,
            _ethertype("ip"),
            _l4("udp"),
            _ports("udp", "sport", 67, 67),
            _ports("udp", "dport", 68, 68),
            ACCEPT,
        ),
        _rule(
            BRIDGE,
            ingress,
            _ethertype("ip6"),
            _l4("udp"),
            _ports("udp", "sport", 547, 547),
            _ports("udp", "dport", 546, 546),
            ACCEPT,
        ),
        _rule(
            BRIDGE,
            ingress,
            _ethertype("ip6"),
            _l4("icmpv6"),
            _match(_payload("icmpv6", "type"), {"set": ICMPV6_ALWAYS_IN}),
            ACCEPT,
        ),
    ]


# The ports' shared part but for the stateless ports: the same on every host.
SHARED = (*_bridge_skeleton(), *_common_chains())
SHARED_DIGEST = _digest(SHARED)
