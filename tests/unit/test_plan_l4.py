"""plan.l4: UDP and SCTP listeners rendered as an nftables table."""

from __future__ import annotations

from typing import Any

from neutrino.plan.l4 import compile_l4, render_l4_counting, render_l4_table, rotation, serving
from neutrino.plan.loadbalancer import render_proxies
from neutrino.plan.state import L4Member


def member(member_id: str, address: str, **fields: Any) -> dict[str, Any]:
    return {"id": member_id, "address": address, "protocol_port": 53, **fields}


def udp_lb(**pool: Any) -> dict[str, Any]:
    return {
        "id": "lb1",
        "vip_address": "10.0.0.5",
        "listeners": [
            {"id": "l1", "protocol": "UDP", "protocol_port": 53, "default_pool_id": "p1"},
            {"id": "l2", "protocol": "TCP", "protocol_port": 53, "default_pool_id": "p2"},
        ],
        "pools": [
            {
                "id": "p1",
                "protocol": "UDP",
                "lb_algorithm": "ROUND_ROBIN",
                "members": [
                    member("a", "10.0.0.11", weight=3),
                    member("b", "10.0.0.12", weight=1, monitor_address="10.0.0.99"),
                    member("c", "10.0.0.13", backup=True),
                    member("off", "10.0.0.14", admin_state_up=False),
                    member("v6", "fd00::1"),
                ],
                **pool,
            },
            {"id": "p2", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN", "members": []},
        ],
    }


def rules(table: Any) -> list[list[Any]]:
    return [c["add"]["rule"]["expr"] for c in table.commands if "rule" in c.get("add", {})]


def test_udp_listeners_go_to_nftables_and_tcp_ones_to_haproxy() -> None:
    [listener] = compile_l4(udp_lb())
    assert (listener.id, listener.protocol, listener.vip, listener.port) == (
        "l1",
        "UDP",
        "10.0.0.5",
        53,
    )
    # disabled members and those of the other address family are left out
    assert [m.id for m in listener.members] == ["a", "b", "c"]
    assert listener.members[1].check_address == "10.0.0.99"
    assert listener.monitor is None and listener.persistence is None
    config = render_proxies(udp_lb())
    assert "frontend l2" in config and "l1" not in config and "p1" not in config
    only_udp = {**udp_lb(), "listeners": udp_lb()["listeners"][:1]}
    assert render_proxies(only_udp) == ""
    assert compile_l4({**udp_lb(), "admin_state_up": False}) == ()


def test_source_ip_persistence_defaults_as_the_amphora() -> None:
    [listener] = compile_l4(udp_lb(session_persistence={"type": "SOURCE_IP"}))
    assert listener.persistence == (360, "255.255.255.255")
    given = {"type": "SOURCE_IP", "persistence_timeout": 30, "persistence_granularity": "255.0.0.0"}
    [listener] = compile_l4(udp_lb(session_persistence=given))
    assert listener.persistence == (30, "255.0.0.0")


def test_backups_serve_only_when_no_other_member_is_up() -> None:
    [listener] = compile_l4(udp_lb())
    assert [m.id for m in serving(listener, frozenset({"a", "b", "c"}), {})] == ["a", "b"]
    assert [m.id for m in serving(listener, frozenset({"b", "c"}), {})] == ["b"]
    assert [m.id for m in serving(listener, frozenset({"c"}), {})] == ["c"]
    assert serving(listener, frozenset(), {}) == ()


def test_least_connections_sends_new_flows_to_the_least_loaded_per_weight() -> None:
    [listener] = compile_l4(udp_lb(lb_algorithm="LEAST_CONNECTIONS"))
    up = frozenset({"a", "b"})
    assert [m.id for m in serving(listener, up, {"a": 6, "b": 1})] == ["b"]
    assert [m.id for m in serving(listener, up, {"a": 2, "b": 1})] == ["a"]  # 2/3 < 1/1
    assert [m.id for m in serving(listener, up, {"a": 3, "b": 1})] == ["a", "b"]


def test_full_members_take_no_new_flows_unless_clients_are_hashed() -> None:
    lb = udp_lb()
    lb["listeners"][0]["connection_limit"] = 2
    [listener] = compile_l4(lb)
    up = frozenset({"a", "b", "c"})
    assert [m.id for m in serving(listener, up, {"a": 2, "b": 1})] == ["b"]
    # the backup serves once the others are full, and nobody once it is too
    assert [m.id for m in serving(listener, up, {"a": 2, "b": 3})] == ["c"]
    assert serving(listener, up, {"a": 2, "b": 2, "c": 2}) == ()
    [hashed] = compile_l4({**lb, "pools": [{**lb["pools"][0], "lb_algorithm": "SOURCE_IP"}]})
    assert [m.id for m in serving(hashed, up, {"a": 2, "b": 2})] == ["a", "b"]


def test_weights_repeat_members_interleaved() -> None:
    a, b = (L4Member(x, "10.0.0.1", 1, w, False, "10.0.0.1", 1) for x, w in (("a", 3), ("b", 1)))
    assert [m.id for m in rotation((a, b))] == ["a", "a", "b", "a"]
    even = (L4Member("a", "x", 1, 2, False, "x", 1), L4Member("b", "x", 1, 2, False, "x", 1))
    assert [m.id for m in rotation(even)] == ["a", "b"]


def test_round_robin_and_source_ip_rules() -> None:
    [listener] = compile_l4(udp_lb())
    table = render_l4_table((listener,), frozenset({"a", "b"}), {})
    assert table.tables == (("ip", "neutrino-l4"),)
    [dnat, masquerade] = rules(table)
    assert dnat[:3] == [
        {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                "right": "10.0.0.5",
            }
        },
        {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "udp", "field": "dport"}},
                "right": 53,
            }
        },
        # the listener's mark: UDP (17) and its port
        {"mangle": {"key": {"ct": {"key": "mark"}}, "value": 17 << 16 | 53}},
    ]
    mapping = dnat[3]["dnat"]["addr"]["map"]
    assert mapping["key"] == {"numgen": {"mode": "inc", "mod": 4, "offset": 0}}
    assert [target for _, target in mapping["data"]["set"]] == [
        {"concat": ["10.0.0.11", 53]},
        {"concat": ["10.0.0.11", 53]},
        {"concat": ["10.0.0.12", 53]},
        {"concat": ["10.0.0.11", 53]},
    ]
    assert masquerade[-1] == {"masquerade": None}

    [hashed] = compile_l4(udp_lb(lb_algorithm="SOURCE_IP"))
    table = render_l4_table((hashed,), frozenset({"a", "b"}), {})
    key = rules(table)[0][3]["dnat"]["addr"]["map"]["key"]
    assert key["jhash"]["expr"] == {"payload": {"protocol": "ip", "field": "saddr"}}
    assert key["jhash"]["mod"] == 4 and "seed" in key["jhash"]
    [tupled] = compile_l4(udp_lb(lb_algorithm="SOURCE_IP_PORT"))
    table = render_l4_table((tupled,), frozenset({"a", "b"}), {})
    key = rules(table)[0][3]["dnat"]["addr"]["map"]["key"]
    assert key["jhash"]["expr"] == {
        "concat": [
            {"payload": {"protocol": "ip", "field": "saddr"}},
            {"payload": {"protocol": "udp", "field": "sport"}},
        ]
    }
    # nobody up: nothing is translated (the namespace answers port unreachable)
    table = render_l4_table((hashed,), frozenset(), {})
    assert [r[-1] for r in rules(table)] == [{"masquerade": None}]


def test_persistence_keeps_a_source_on_its_member_for_the_timeout() -> None:
    persistence = {"type": "SOURCE_IP", "persistence_timeout": 30}
    [listener] = compile_l4(udp_lb(session_persistence=persistence))
    table = render_l4_table((listener,), frozenset({"a"}), {})
    [persist_set] = [c["add"]["set"] for c in table.commands if "set" in c["add"]]
    assert (persist_set["name"], persist_set["timeout"]) == ("persist-1114165-0", 30)
    source = {"&": [{"payload": {"protocol": "ip", "field": "saddr"}}, "255.255.255.255"]}
    sticky, refresh, algorithm, _ = rules(table)
    assert {"match": {"op": "==", "left": source, "right": "@persist-1114165-0"}} in sticky
    assert sticky[-1] == {"dnat": {"family": "ip", "addr": "10.0.0.11", "port": 53}}
    assert "map" in algorithm[-1]["dnat"]["addr"]
    assert refresh[-1] == {"set": {"op": "update", "elem": source, "set": "@persist-1114165-0"}}


def test_ipv6_vip_makes_an_ip6_table() -> None:
    lb = {**udp_lb(), "vip_address": "fd00::5"}
    [listener] = compile_l4(lb)
    assert [m.id for m in listener.members] == ["v6"]
    table = render_l4_table((listener,), frozenset({"v6"}), {})
    assert table.tables == (("ip6", "neutrino-l4"),)


def test_counting_table_limits_each_member_and_counts_per_listener() -> None:
    lb = udp_lb()
    lb["listeners"][0]["connection_limit"] = 2
    [listener] = compile_l4(lb)
    table = render_l4_counting((listener,))
    assert table.tables == (("ip", "neutrino-l4-count"),)
    counters = [c["add"]["counter"]["name"] for c in table.commands if "counter" in c["add"]]
    assert counters == ["new-l1", "in-l1", "out-l1"]
    limits = [r for r in rules(table) if r[-1] == {"drop": None}]
    new, marked = (
        {"match": {"op": "==", "left": {"ct": {"key": key}}, "right": value}}
        for key, value in (("state", "new"), ("mark", 17 << 16 | 53))
    )
    # one per enabled member of the VIP's family, whatever its health: health changes leave the
    # table (and the flows it counted) alone
    assert [r[:2] for r in limits] == [[new, marked]] * 3
    assert [r[2]["match"]["right"] for r in limits] == ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
    assert {str(r[-2]) for r in limits} == {str({"ct count": {"val": 2, "inv": True}})}
    assert [r[-1] for r in rules(table) if r not in limits] == [
        {"counter": "new-l1"},
        {"counter": "in-l1"},
        {"counter": "out-l1"},
    ]
    for unlimited in (-1, 0):
        lb["listeners"][0]["connection_limit"] = unlimited
        [listener] = compile_l4(lb)
        assert not [r for r in rules(render_l4_counting((listener,))) if {"drop": None} in r]
