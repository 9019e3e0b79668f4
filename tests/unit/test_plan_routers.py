"""plan.routers: router namespaces, NAT tables, floating IPs as elements, the outside;
incremental == full."""

from __future__ import annotations

import copy
import itertools
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from neutrino.lab import models
from neutrino.plan import HostConfig, Link, VethPeer, compile_host, names
from neutrino.plan.routers import (
    FIP_DNAT,
    FIP_SNAT,
    PF_ADDR,
    PF_PORT,
    fip_elements,
    forward_elements,
    map_elements,
    parse_forward_element,
)
from neutrino.plan.state import Address, FloatingIp, PortForwarding, Route, Upstream

HOST = HostConfig.isolated("h1", prefix="t-")


@pytest.fixture(autouse=True)
def predictable_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    counter = itertools.count(1)
    monkeypatch.setattr(
        models, "new_id", lambda: f"{next(counter):08x}-0000-4000-8000-000000000000"
    )
    yield


def tutorial(enable_snat: bool = True, vms: int = 2) -> dict[str, Any]:
    return models.tutorial("h1", vms=vms, enable_snat=enable_snat)


def associate(model: dict[str, Any], address: str, vm_index: int) -> dict[str, Any]:
    fip = models.floatingip(
        address, model["networks"][0], model["routers"][0], model["ports"][3 + vm_index]
    )
    model["floatingips"].append(fip)
    return fip


def test_router_golden() -> None:
    model = tutorial()
    fip = associate(model, "10.10.10.3", 1)
    state = compile_host(model, HOST)
    router = model["routers"][0]
    qr100, qr101, gw = model["ports"][:3]
    netns = f"t-h1-qrouter-{router['id']}"

    assert netns in state.namespaces
    for port, inside in (
        (qr100, names.router_interface(qr100["id"])),
        (qr101, names.router_interface(qr101["id"])),
        (gw, names.router_gateway(gw["id"])),
    ):
        assert inside.startswith(("qr-", "qg-")) and len(inside) == 14
        assert (
            Link(
                "t-nhost-h1",
                names.tap(port["id"]),
                "veth",
                master=names.bridge(port["network_id"]),
                peer=VethPeer(netns, inside, mac=port["mac_address"], mtu=1500),
                mtu=1500,
                ipv6_off=True,
            )
            in state.links
        )
        assert state.ports[port["id"]] == names.tap(port["id"])
    qg = names.router_gateway(gw["id"])
    assert not [a for a in state.addresses if a.netns == netns]  # the router's own, below

    (compiled,) = state.routers
    assert (compiled.id, compiled.netns, compiled.forwarding, compiled.gateway) == (
        router["id"],
        netns,
        True,
        qg,
    )
    assert compiled.routes == (Route("0.0.0.0/0", "10.10.10.1"),)
    assert compiled.floatingips == (FloatingIp(fip["id"], "10.10.10.3", "172.16.101.4"),)
    assert compiled.addresses == tuple(
        sorted(
            [
                Address(netns, names.router_interface(qr100["id"]), "172.16.100.1/24"),
                Address(netns, names.router_interface(qr101["id"]), "172.16.101.1/24"),
                Address(netns, qg, "10.10.10.2/24"),
            ],
            key=lambda a: (a.ifname, a.cidr),
        )
    )  # the floating IPs' /32s go with the floating IPs
    text = json.dumps(compiled.nat.commands)
    assert '"data": "@fip_dnat"' in text and '"data": "@fip_snat"' in text
    assert '{"prefix": {"addr": "172.16.100.0", "len": 23}}' in text  # the internal subnets, merged
    assert (
        text.count('"drop": null') == 1 and "10.10.10.3" not in text
    )  # floating IPs are elements only
    assert Upstream("t-nout-default", "phys", ("10.10.10.1/24",)) in state.upstreams


def test_without_snat_the_outside_is_routed_but_floating_ips_still_nat() -> None:
    with_snat = compile_host(tutorial(), HOST).routers[0].nat
    without = compile_host(tutorial(enable_snat=False), HOST).routers[0].nat
    assert with_snat.digest != without.digest
    text = json.dumps(without.commands)
    assert '"data": "@fip_snat"' in text and "drop" not in text and text.count('"snat"') == 2


def test_subnets_in_the_gateways_address_scope_are_routed_not_natted() -> None:
    """Neutron's L3 agent: no source NAT, and the outside may connect, within one scope."""
    model = tutorial()
    ext_sub, s100, s101 = model["subnets"][:3]
    assert (ext_sub["cidr"], s100["cidr"], s101["cidr"]) == (
        "10.10.10.0/24",
        "172.16.100.0/24",
        "172.16.101.0/24",
    )
    unscoped = compile_host(model, HOST).routers[0].nat
    ext_sub["address_scope_id"] = s100["address_scope_id"] = "public"
    s101["address_scope_id"] = "other"
    scoped = compile_host(model, HOST).routers[0].nat
    assert scoped.digest != unscoped.digest

    def routed(nat: Any) -> list[Any]:
        (found,) = [
            c["add"]["set"] for c in nat.commands if c["add"].get("set", {}).get("name") == "routed"
        ]
        return list(found.get("elem", []))

    assert routed(unscoped) == []
    assert routed(scoped) == [{"prefix": {"addr": "172.16.100.0", "len": 24}}]
    text = json.dumps(scoped.commands)
    assert (
        '"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": '
        '"@routed"' in text
    )
    assert '"field": "daddr"}}, "right": "@routed"}}, {"accept": null}' in text


def test_admin_down_stops_forwarding_and_no_gateway_means_no_nat() -> None:
    model = tutorial()
    model["routers"][0]["admin_state_up"] = False
    associate(model, "10.10.10.3", 0)
    assert compile_host(model, HOST).routers[0].forwarding is False
    model["ports"] = [p for p in model["ports"] if p["device_owner"] != "network:router_gateway"]
    (router,) = compile_host(model, HOST).routers
    assert router.gateway is None and router.floatingips == () and router.routes == ()
    assert '"snat"' not in json.dumps(router.nat.commands)


def test_an_idle_router_has_its_namespace_forwarding_and_nat_table() -> None:
    """As Neutron's L3 agent: every router scheduled here has its qrouter- namespace."""
    idle = models.router(name="idle")
    state = compile_host(models.snapshot(routers=[idle]), HOST)
    (router,) = state.routers
    assert router.netns == names.router_netns(HOST, idle["id"]) in state.namespaces
    assert router.forwarding and router.gateway is None and router.addresses == ()
    assert [link for link in state.links if link.peer and link.peer.netns == router.netns] == []
    assert {"add": {"table": {"family": "ip", "name": "neutrino"}}} in router.nat.commands
    elsewhere = HostConfig("h3", serves_dhcp=False)  # not a network node: no unbound router
    assert compile_host(models.snapshot(routers=[idle]), elsewhere).routers == ()


def test_conntrack_helpers_are_objects_and_one_rule_by_protocol_and_port() -> None:
    """Each helper and protocol is a `ct helper` object of the kernel's name; one rule, before
    NAT, gives new connections to a helper's port theirs (the first by name on a shared one:
    a connection takes one helper)."""
    model = tutorial()
    plain = compile_host(model, HOST).routers[0].nat
    model["routers"][0]["conntrack_helpers"] = [
        {"protocol": "tcp", "port": 21, "helper": "irc"},
        {"protocol": "udp", "port": 69, "helper": "tftp"},
        {"protocol": "tcp", "port": 21, "helper": "ftp"},
        {"protocol": "udp", "port": 1719, "helper": "h323"},
        {"protocol": "tcp", "port": 1720, "helper": "h323"},
        {"protocol": "udp", "port": 70, "helper": "ftp"},  # not one Linux has: none
    ]
    nat = compile_host(model, HOST).routers[0].nat
    added = [c for c in nat.commands if c not in plain.commands]
    table = {"family": "ip", "table": "neutrino"}
    assert added == [
        {"add": {"ct helper": {**table, "name": n, "type": t, "protocol": p, "l3proto": "ip"}}}
        for n, t, p in (
            ("ftp-tcp", "ftp", "tcp"),
            ("h323-tcp", "Q.931", "tcp"),
            ("h323-udp", "RAS", "udp"),
            ("tftp-udp", "tftp", "udp"),
        )
    ] + [
        {
            "add": {
                "chain": {
                    **table,
                    "name": "helpers",
                    "type": "filter",
                    "hook": "prerouting",
                    "prio": -150,
                    "policy": "accept",
                }
            }
        },
        {
            "add": {
                "rule": {
                    **table,
                    "chain": "helpers",
                    "expr": [
                        {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}},
                        {
                            "ct helper": {
                                "map": {
                                    "key": {
                                        "concat": [
                                            {"meta": {"key": "l4proto"}},
                                            {"payload": {"protocol": "th", "field": "dport"}},
                                        ]
                                    },
                                    "data": {
                                        "set": [
                                            [{"concat": ["tcp", 21]}, "ftp-tcp"],
                                            [{"concat": ["tcp", 1720]}, "h323-tcp"],
                                            [{"concat": ["udp", 69]}, "tftp-udp"],
                                            [{"concat": ["udp", 1719]}, "h323-udp"],
                                        ]
                                    },
                                }
                            }
                        },
                    ],
                }
            }
        },
    ]
    assert nat.digest != plain.digest  # a helper changes the rules: the table is replaced
    model["routers"][0]["conntrack_helpers"] = []
    assert compile_host(model, HOST).routers[0].nat == plain


def test_routes_and_where_routers_live() -> None:
    model = tutorial()
    model["routers"][0]["routes"] = [{"destination": "192.168.0.0/16", "nexthop": "172.16.100.254"}]
    assert compile_host(model, HOST).routers[0].routes == (
        Route("0.0.0.0/0", "10.10.10.1"),
        Route("192.168.0.0/16", "172.16.100.254"),
    )
    for port in model["ports"][:3]:
        port["binding:host_id"] = "h2"
    assert compile_host(model, HOST).routers == ()
    assert compile_host(model, HostConfig.isolated("h2", prefix="t-")).routers != ()
    assert compile_host(model, HostConfig("h3", serves_dhcp=False)).routers == ()
    # Where the server scheduled it, whatever its ports say; scheduled nowhere: nowhere.
    model["routers"][0]["l3_agent_host"] = "h1"
    assert compile_host(model, HOST).routers != ()
    assert compile_host(model, HostConfig.isolated("h2", prefix="t-")).routers == ()
    model["routers"][0]["l3_agent_host"] = ""
    assert compile_host(model, HOST).routers == ()


def test_an_ipv6_gateway_is_a_default_route_and_ipv6_is_not_natted() -> None:
    model = tutorial()
    model["routers"][0]["routes"] = [
        {"destination": "2001:db8:99::/64", "nexthop": "2001:db8:1::5"}
    ]
    before = compile_host(model, HOST).routers[0]
    ext = model["networks"][0]
    v6 = models.subnet(ext, "2001:db8:e::/64", ip_version=6, enable_dhcp=False)
    model["subnets"].append(v6)
    gateway = next(p for p in model["ports"] if p["device_owner"] == "network:router_gateway")
    gateway["fixed_ips"].append({"subnet_id": v6["id"], "ip_address": "2001:db8:e::5"})
    router = compile_host(model, HOST).routers[0]
    assert router.routes == (
        Route("0.0.0.0/0", "10.10.10.1"),
        Route("2001:db8:99::/64", "2001:db8:1::5"),
        Route("::/0", "2001:db8:e::1"),
    )
    assert set(router.addresses) - set(before.addresses) == {
        Address(router.netns, router.gateway or "", "2001:db8:e::5/64")
    }
    assert router.nat == before.nat  # IPv4's table, unchanged
    assert before.accept_ra == () and router.accept_ra == ((router.gateway, 0),)
    # Without a gateway address on the IPv6 subnet, no IPv6 default route: the gateway takes
    # it from the upstream's advertisements.
    v6["gateway_ip"] = None
    without = compile_host(model, HOST).routers[0]
    assert without.routes == before.routes and without.accept_ra == ((router.gateway, 2),)


def test_vlan_external_network_ends_on_its_segment_bridge_outside() -> None:
    ext = models.network("vlan", 120, **{"router:external": True})
    state = compile_host(
        models.snapshot(networks=[ext], subnets=[models.subnet(ext, "10.30.0.0/24")]), HOST
    )
    assert Link("t-nout-default", "vlan120", "bridge") in state.links
    assert Upstream("t-nout-default", "vlan120", ("10.30.0.1/24",)) in state.upstreams
    assert Upstream("t-nout-default", "phys", ()) in state.upstreams  # what is there goes


def test_floating_ip_elements() -> None:
    fips = [
        FloatingIp("a", "10.10.10.3", "172.16.101.3"),
        FloatingIp("b", "10.10.10.4", "172.16.101.4"),
    ]
    assert fip_elements(fips) == [
        {
            "add": {
                "element": {
                    "family": "ip",
                    "table": "neutrino",
                    "name": FIP_DNAT,
                    "elem": [["10.10.10.3", "172.16.101.3"], ["10.10.10.4", "172.16.101.4"]],
                }
            }
        },
        {
            "add": {
                "element": {
                    "family": "ip",
                    "table": "neutrino",
                    "name": FIP_SNAT,
                    "elem": [["172.16.101.3", "10.10.10.3"], ["172.16.101.4", "10.10.10.4"]],
                }
            }
        },
    ]
    assert map_elements("delete", FIP_DNAT, []) == []


def test_port_forwardings_are_elements_and_the_floating_ip_an_address() -> None:
    model = tutorial()
    router, vm = model["routers"][0], model["ports"][3]
    fip = models.floatingip("10.10.10.7", model["networks"][0])
    ip = vm["fixed_ips"][0]["ip_address"]
    rules = compile_host(model, HOST).routers[0].nat
    fip["router_id"] = router["id"]
    fip["port_forwardings"] = [
        {
            "protocol": "tcp",
            "internal_ip_address": ip,
            "external_port_range": "22:22",
            "internal_port_range": "2022:2022",
        },
        {
            "protocol": "udp",
            "internal_ip_address": ip,
            "external_port_range": "100:109",
            "internal_port_range": "53:53",
        },
        {
            "protocol": "tcp",
            "internal_ip_address": ip,
            "external_port_range": "80:81",
            "internal_port_range": "8080:8081",
        },
    ]
    model["floatingips"].append(fip)
    (compiled,) = compile_host(model, HOST).routers
    assert compiled.nat == rules  # the rules stay; forwardings are elements
    assert compiled.port_forwardings == (
        PortForwarding(fip["id"], "tcp", "10.10.10.7", (22, 22), ip, 2022),
        PortForwarding(fip["id"], "tcp", "10.10.10.7", (80, 80), ip, 8080),
        PortForwarding(fip["id"], "tcp", "10.10.10.7", (81, 81), ip, 8081),
        PortForwarding(fip["id"], "udp", "10.10.10.7", (100, 109), ip, 53),
    )
    added = forward_elements(compiled.port_forwardings[2:])
    assert [c["add"]["element"]["name"] for c in added] == [PF_ADDR, PF_PORT]
    assert added[1]["add"]["element"]["elem"] == [
        [{"concat": ["tcp", "10.10.10.7", 81]}, 8081],
        [{"concat": ["udp", "10.10.10.7", {"range": [100, 109]}]}, 53],
    ]
    assert [parse_forward_element(e) for e in added[0]["add"]["element"]["elem"]] == [
        (("tcp", "10.10.10.7", 81, 81), ip),
        (("udp", "10.10.10.7", 100, 109), ip),
    ]


def test_incremental_equals_full_and_floating_ips_never_touch_the_rules() -> None:
    """Associate, move and drop floating IPs at random: each state equals a fresh compile,
    and the NAT table's rules (its digest) never change: floating IPs are only elements."""
    rng = random.Random(7)
    model = tutorial(vms=6)
    rules = compile_host(model, HOST).routers[0].nat
    fips = [associate(model, f"10.10.10.{50 + i}", i) for i in range(3)]
    for step in range(40):
        fip = rng.choice(fips)
        free = [
            i for i in range(6) if model["ports"][3 + i]["id"] not in {f["port_id"] for f in fips}
        ]
        if fip["port_id"] and rng.random() < 0.4:
            fip.update(router_id=None, port_id=None, fixed_ip_address=None)
        elif free:
            target = model["ports"][3 + rng.choice(free)]
            fip.update(
                router_id=model["routers"][0]["id"],
                port_id=target["id"],
                fixed_ip_address=target["fixed_ips"][0]["ip_address"],
            )
        model["revision"] = step
        incremental = compile_host(model, HOST)
        fresh = copy.deepcopy(model)
        for key in ("ports", "floatingips", "networks", "subnets"):
            rng.shuffle(fresh[key])
        assert compile_host(fresh, HOST) == incremental
        assert incremental.routers[0].nat == rules
        assert {f.address for f in incremental.routers[0].floatingips} == {
            f["floating_ip_address"] for f in fips if f["port_id"]
        }
