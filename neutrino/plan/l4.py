"""UDP and SCTP listeners -> an nftables table in the load balancer's namespace.

haproxy speaks neither UDP nor SCTP; Octavia's amphora serves them with LVS
(IPVS, configured by keepalived). This kernel's other layer-4 balancer is
nftables NAT, and it is what runs here. The load balancer's namespace
(plan.loadbalancer) gets one table, `neutrino-l4`, of the VIP's family:

- prerouting (nat): per listener, a packet of a new flow to VIP:port has its
  connection marked with the listener's number (`ct mark`) and is DNATed to a
  member: `numgen inc mod N` over the members for ROUND_ROBIN, `jhash ip
  saddr mod N` for SOURCE_IP (IPVS's source hashing), `jhash ip saddr . udp
  sport mod N` for SOURCE_IP_PORT (IPVS's `sh` with its port flag, the hash
  Octavia's OVN provider offers), each member appearing
  as often as its weight (reduced by their common divisor; a weight of 0 gets
  no new flows, as in IPVS). Conntrack keeps the rest of the flow on it.
- postrouting (nat): flows that were DNATed are masqueraded, as the amphora
  does for UDP, so that members reply through the namespace whatever their
  default route.
- SOURCE_IP session persistence (Octavia's `persistence_timeout`, default
  360 s, and `persistence_granularity`, a netmask, default the whole address):
  one dynamic set per member holds the masked sources it served; a filter
  chain at postrouting refreshes the entry with every packet sent to the
  member, and in prerouting a source found in a member's set goes to that
  member before the algorithm is asked. IPVS keeps such templates across
  configuration changes; here the sets live in the table, so a change of the
  serving members (which rewrites the table) starts them afresh, while
  established flows keep their member through conntrack.

Members in the table are those the agent finds healthy (its own checks, as
keepalived's for the amphora: drivers/l4.py) and enabled, of the VIP's
address family, with a weight; backup members only while no other one
serves. With no member, nothing is DNATed: the namespace itself answers a
UDP datagram with an ICMP port unreachable.

LEAST_CONNECTIONS has no nft primitive. The agent counts the flows conntrack
holds for each member (by the listener's mark) and each render sends new
flows to the members with the fewest flows per weight, in turn. IPVS decides
per connection with exact counts; here the choice is refreshed with every
sync of the agent (every few seconds, and on every change), so a burst of new
flows within one interval all go to the same least loaded members.

A listener's flows carry a mark of its own, its protocol and port
(`mark`), so that a flow keeps naming its listener when others come and go.

A second table, `neutrino-l4-count` (`render_l4_counting`), limits and counts
flows in the forward hook, where the packets of DNATed flows pass both ways.
It holds what depends on the configuration alone, not on the members' health
or load, so the rewrites of `neutrino-l4` leave its state alone:

- `connection_limit`: the amphora makes it each real server's `uthreshold`
  (keepalived), the number of connections at which IPVS gives the member no
  new ones; it gives them to members with room (ROUND_ROBIN,
  LEAST_CONNECTIONS; `sh` drops them) and answers with an ICMP port
  unreachable once every member is full. Here each member's new flows of the
  listener pass a `ct count over LIMIT` and are dropped beyond it: the
  member's flows that conntrack still holds (a UDP flow lives 30 s after its
  last packet, 120 s once it streams both ways) count, so established flows go on
  and new ones are served again once some expire. And as for
  LEAST_CONNECTIONS, members found full at a sync leave the balancing table
  of the algorithms that take members in turn until conntrack holds fewer of
  their flows (`serving`); with all of them full, nothing is DNATed and the
  namespace answers the port unreachable. A limit of -1 (or 0, no
  `uthreshold`) is none.
- statistics, as the amphora reads them from `ipvsadm --stats`: named
  counters per listener of the packets and bytes of its flows from the client
  (`in-ID`) and back (`out-ID`, both the whole IP packets, as IPVS counts
  them) and of its new flows (`new-ID`). A rewrite of this table (a change of
  the listener, its pool or members) starts them from zero, as a reload of
  haproxy starts its counters: the agent reports them with the table's handle
  as the counting worker.

Everything here is pure: `render_l4_table` and `render_l4_counting` turn the
listeners, the members the agent finds up and their flow counts into nft JSON
commands.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Mapping
from functools import reduce
from math import gcd
from typing import Any

from neutrino.plan.state import Firewall, L4Listener, L4Member, L4Monitor

TABLE = "neutrino-l4"
COUNTING = "neutrino-l4-count"
PROTOCOLS = {"UDP": "udp", "SCTP": "sctp"}
IP_PROTOCOLS = {"UDP": 17, "SCTP": 132}
# The algorithms that hash the client to a member (the rest take members in turn).
HASHED = ("SOURCE_IP", "SOURCE_IP_PORT")
DEFAULT_PERSISTENCE_SECONDS = 360  # the amphora's keepalived default
# Fixed, so that a source keeps its member across table rewrites (the kernel draws one without).
HASH_SEED = 0x6E657574


def compile_l4(lb: dict[str, Any]) -> tuple[L4Listener, ...]:
    """The load balancer's enabled UDP and SCTP listeners that have a default pool."""
    if not lb.get("admin_state_up", True):
        return ()
    pools = {pool["id"]: pool for pool in lb.get("pools", [])}
    out = []
    for listener in sorted(lb.get("listeners", []), key=lambda li: li["protocol_port"]):
        pool = pools.get(listener.get("default_pool_id") or "")
        if listener["protocol"] not in PROTOCOLS or pool is None:
            continue
        if not listener.get("admin_state_up", True):
            continue
        out.append(
            L4Listener(
                id=listener["id"],
                protocol=listener["protocol"],
                vip=lb["vip_address"],
                port=listener["protocol_port"],
                algorithm=pool["lb_algorithm"],
                members=_members(pool, lb["vip_address"]),
                monitor=_monitor(pool.get("healthmonitor")),
                persistence=_persistence(pool.get("session_persistence"), lb["vip_address"]),
                connection_limit=listener.get("connection_limit", -1),
            )
        )
    return tuple(out)


def _members(pool: dict[str, Any], vip: str) -> tuple[L4Member, ...]:
    if not pool.get("admin_state_up", True):
        return ()
    family = ipaddress.ip_address(vip).version
    return tuple(
        L4Member(
            id=m["id"],
            address=m["address"],
            port=m["protocol_port"],
            weight=m.get("weight", 1),
            backup=bool(m.get("backup")),
            check_address=m.get("monitor_address") or m["address"],
            check_port=m.get("monitor_port") or m["protocol_port"],
        )
        for m in pool.get("members", [])
        if m.get("admin_state_up", True) and ipaddress.ip_address(m["address"]).version == family
    )


def _monitor(monitor: dict[str, Any] | None) -> L4Monitor | None:
    if monitor is None or not monitor.get("admin_state_up", True):
        return None
    return L4Monitor(
        type=monitor["type"],
        delay=monitor["delay"],
        timeout=monitor["timeout"],
        rise=monitor["max_retries"],
        fall=monitor.get("max_retries_down") or 3,
        http_method=monitor.get("http_method") or "GET",
        url_path=monitor.get("url_path") or "/",
        expected_codes=monitor.get("expected_codes") or "200",
    )


def _persistence(persistence: dict[str, Any] | None, vip: str) -> tuple[int, str] | None:
    if (persistence or {}).get("type") != "SOURCE_IP":
        return None
    assert persistence is not None
    whole = str(ipaddress.ip_network(vip).netmask)
    return (
        persistence.get("persistence_timeout") or DEFAULT_PERSISTENCE_SECONDS,
        persistence.get("persistence_granularity") or whole,
    )


def mark(listener: L4Listener) -> int:
    """The connection mark of the listener's flows: its IP protocol and port (a load balancer
    takes each port once per protocol)."""
    return IP_PROTOCOLS[listener.protocol] << 16 | listener.port


def serving(
    listener: L4Listener, healthy: frozenset[str], flows: Mapping[str, int]
) -> tuple[L4Member, ...]:
    """The members that get the listener's new flows: healthy ones with a weight, backups only
    when no other is; for LEAST_CONNECTIONS, those with the fewest flows per weight. Under a
    connection limit, members that hold as many flows take no new ones (IPVS's overloaded
    servers), except for the hashing algorithms, which would move other clients (IPVS's `sh`
    drops the flows of a client whose server is full)."""
    up = [m for m in listener.members if m.id in healthy and m.weight > 0]
    if listener.connection_limit > 0 and listener.algorithm not in HASHED:
        up = [m for m in up if flows.get(m.id, 0) < listener.connection_limit]
    chosen = [m for m in up if not m.backup] or up
    if listener.algorithm == "LEAST_CONNECTIONS" and chosen:
        load = {m.id: flows.get(m.id, 0) / m.weight for m in chosen}
        fewest = min(load.values())
        chosen = [m for m in chosen if load[m.id] == fewest]
    return tuple(chosen)


def rotation(members: tuple[L4Member, ...]) -> list[L4Member]:
    """Each member as often as its weight (over the weights' common divisor), interleaved as a
    smooth weighted round robin does it (3:1 -> a a b a, not a a a b)."""
    divisor = reduce(gcd, (m.weight for m in members), 0) or 1
    weights = {m.id: m.weight // divisor for m in members}
    current = dict.fromkeys(weights, 0)
    total, out = sum(weights.values()), []
    for _ in range(total):
        for m in members:
            current[m.id] += weights[m.id]
        best = max(members, key=lambda m: current[m.id])
        current[best.id] -= total
        out.append(best)
    return out


def render_l4_table(
    listeners: tuple[L4Listener, ...], healthy: frozenset[str], flows: Mapping[str, int]
) -> Firewall:
    """The namespace's balancing table for `listeners` with the members `healthy` serving."""
    family = vip_family(listeners)
    commands: list[dict[str, Any]] = [
        _chain(family, TABLE, "prerouting", "nat", "prerouting", -100),
        _chain(family, TABLE, "postrouting", "nat", "postrouting", 100),
        _chain(family, TABLE, "persistence", "filter", "postrouting", 0),
    ]
    for listener in listeners:
        commands += _listener(family, listener, serving(listener, healthy, flows))
    commands.append(
        _rule(
            family,
            TABLE,
            "postrouting",
            {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}},
            {"masquerade": None},
        )
    )
    return _firewall(family, TABLE, commands)


def render_l4_counting(listeners: tuple[L4Listener, ...]) -> Firewall:
    """The namespace's table that limits each member's flows per listener and counts the
    listeners' flows and bytes (named counters `new-`, `in-` and `out-` and the listener id)."""
    family = vip_family(listeners)
    commands = [_chain(family, COUNTING, "forward", "filter", "forward", 0)]
    new = _match({"ct": {"key": "state"}}, "new")
    for listener in listeners:
        marked = _match({"ct": {"key": "mark"}}, mark(listener))
        if listener.connection_limit > 0:
            proto = PROTOCOLS[listener.protocol]
            commands += [
                _rule(
                    family,
                    COUNTING,
                    "forward",
                    new,
                    marked,
                    _match({"payload": {"protocol": family, "field": "daddr"}}, member.address),
                    _match({"payload": {"protocol": proto, "field": "dport"}}, member.port),
                    {"ct count": {"val": listener.connection_limit, "inv": True}},  # "over"
                    {"drop": None},
                )
                for member in listener.members
            ]
        for name, match in (
            ("new", new),
            ("in", _match({"ct": {"key": "direction"}}, "original")),
            ("out", _match({"ct": {"key": "direction"}}, "reply")),
        ):
            counter = f"{name}-{listener.id}"
            commands.append(
                {"add": {"counter": {"family": family, "table": COUNTING, "name": counter}}}
            )
            commands.append(_rule(family, COUNTING, "forward", marked, match, {"counter": counter}))
    return _firewall(family, COUNTING, commands)


def vip_family(listeners: tuple[L4Listener, ...]) -> str:
    """The nftables family of the listeners' VIP."""
    return "ip6" if listeners and ":" in listeners[0].vip else "ip"


def _firewall(family: str, table: str, commands: list[dict[str, Any]]) -> Firewall:
    return Firewall.whole(
        ((family, table),),
        ({"add": {"table": {"family": family, "name": table}}}, *commands),
        hashlib.sha256(json.dumps(commands, sort_keys=True).encode()).hexdigest()[:16],
    )


def _listener(
    family: str, listener: L4Listener, members: tuple[L4Member, ...]
) -> list[dict[str, Any]]:
    if not members:
        return []
    proto, number = PROTOCOLS[listener.protocol], mark(listener)
    match = [
        _match({"payload": {"protocol": family, "field": "daddr"}}, listener.vip),
        _match({"payload": {"protocol": proto, "field": "dport"}}, listener.port),
    ]
    marked = {"mangle": {"key": {"ct": {"key": "mark"}}, "value": number}}
    out: list[dict[str, Any]] = []
    if listener.persistence is not None:
        seconds, mask = listener.persistence
        source = {"&": [{"payload": {"protocol": family, "field": "saddr"}}, mask]}
        for index, member in enumerate(members):
            name = f"persist-{number}-{index}"
            out.append(
                {
                    "add": {
                        "set": {
                            "family": family,
                            "table": TABLE,
                            "name": name,
                            "type": "ipv6_addr" if family == "ip6" else "ipv4_addr",
                            "flags": ["timeout"],
                            "timeout": seconds,
                        }
                    }
                }
            )
            out.append(
                _rule(
                    family,
                    TABLE,
                    "prerouting",
                    *match,
                    _match(source, f"@{name}"),
                    marked,
                    {"dnat": {"family": family, "addr": member.address, "port": member.port}},
                )
            )
            out.append(
                _rule(
                    family,
                    TABLE,
                    "persistence",
                    _match({"ct": {"key": "mark"}}, number),
                    _match({"ct": {"key": "direction"}}, "original"),
                    _match({"payload": {"protocol": family, "field": "daddr"}}, member.address),
                    _match({"payload": {"protocol": proto, "field": "dport"}}, member.port),
                    {"set": {"op": "update", "elem": source, "set": f"@{name}"}},
                )
            )
    turns = rotation(members)
    if listener.algorithm in HASHED:
        client: Any = {"payload": {"protocol": family, "field": "saddr"}}
        if listener.algorithm == "SOURCE_IP_PORT":
            client = {"concat": [client, {"payload": {"protocol": proto, "field": "sport"}}]}
        key: dict[str, Any] = {"jhash": {"mod": len(turns), "seed": HASH_SEED, "expr": client}}
    else:
        key = {"numgen": {"mode": "inc", "mod": len(turns), "offset": 0}}
    targets = [[index, {"concat": [m.address, m.port]}] for index, m in enumerate(turns)]
    out.append(
        _rule(
            family,
            TABLE,
            "prerouting",
            *match,
            marked,
            {"dnat": {"family": family, "addr": {"map": {"key": key, "data": {"set": targets}}}}},
        )
    )
    return out


def _chain(
    family: str, table: str, name: str, kind: str, hook: str, priority: int
) -> dict[str, Any]:
    return {
        "add": {
            "chain": {
                "family": family,
                "table": table,
                "name": name,
                "type": kind,
                "hook": hook,
                "prio": priority,
                "policy": "accept",
            }
        }
    }


def _match(left: Any, right: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": left, "right": right}}


def _rule(family: str, table: str, chain: str, *expr: dict[str, Any]) -> dict[str, Any]:
    return {"add": {"rule": {"family": family, "table": table, "chain": chain, "expr": list(expr)}}}
