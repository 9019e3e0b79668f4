"""Routers on IPv6, end to end through the API, with real packets.

One server; two SLAAC subnets on one router, an instance on each, and an external network
with an IPv4 and an IPv6 subnet (the outside namespace holds their gateway addresses):

    outside (2001:db8:e::1) -- ext_net -- qg- router qr- -- net-a 2001:db8:1::/64 (vm-a)
                                                     qr- -- net-b 2001:db8:2::/64 (vm-b)

IPv6 is routed as it is, both ways: no NAT, as in Neutron. The outside reaches the tenant
prefixes as an upstream router would, by a route via the router's address on ext_net.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from netlab import tcp_reachable

from neutrino import ipam
from neutrino.agent.instance import exec_in_instance
from tests.conftest import ADMIN_PASSWORD, ApiClient, Databases, dataplane_server, eventually
from tests.conftest import login as sign_in
from tests.netns.multihost import Cloud
from tests.netns.test_ipv6_modes import (
    LINK_LOCAL,
    addresses_on,
    default_routes,
    global_addresses,
    instance,
    pings,
    realized,
    run,
    subnet,
)

# Answers every connection with the address it came from, on every address of the namespace.
WHOAMI = (
    "import socket,sys\ns=socket.socket(socket.AF_INET6)\n"
    "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind(('::',int(sys.argv[1])));s.listen()\n"
    "while True:\n c,a=s.accept();c.sendall(a[0].encode());c.close()\n"
)
# Echoes what it is sent: what netlab.tcp_reachable expects.
ECHO = (
    "import socket,sys\ns=socket.socket(socket.AF_INET6)\n"
    "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind(('::',int(sys.argv[1])));s.listen()\n"
    "while True:\n c,_=s.accept();c.sendall(c.recv(64));c.close()\n"
)
ASK = (
    "import socket,sys\n"
    "s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2)\n"
    "print(s.recv(64).decode())\n"
)
OUTSIDE_V6 = "2001:db8:e::1"
# A router advertisement from the interface argv[1] to all nodes: a router lifetime, no prefix.
ADVERTISE_A_ROUTER = (
    "import socket,struct,sys\n"
    "s=socket.socket(socket.AF_INET6,socket.SOCK_RAW,socket.IPPROTO_ICMPV6)\n"
    "s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_MULTICAST_HOPS,255)\n"
    "ra=struct.pack('!BBHBBHII',134,0,0,64,0,1800,0,0)\n"
    "s.sendto(ra,('ff02::1',0,0,socket.if_nametoindex(sys.argv[1])))\n"
)


class RoutedCloud(Cloud):
    @property
    def outside(self) -> str:
        return f"{self.prefix}nout-default"

    def router_netns(self, router_id: str) -> str:
        return f"{self.prefix}{self.host}-qrouter-{router_id}"

    def serve(self, netns: str, code: str, port: int) -> None:
        """A server of `code` on `port` in `netns`, until the module ends."""
        self.processes.append(
            subprocess.Popen(
                ["ip", "netns", "exec", netns, sys.executable, "-c", code, str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutedCloud]:
    with dataplane_server(databases, tmp_path_factory, "r6", RoutedCloud) as server:
        yield server


@pytest.fixture(scope="module")
def api(cloud: RoutedCloud) -> Iterator[ApiClient]:
    with httpx.Client(base_url=cloud.url, timeout=60) as http:
        yield sign_in(http, "admin", ADMIN_PASSWORD, "admin")


def ip(netns: str, *argv: str) -> Any:
    """What `ip -j ARGV` says in `netns`."""
    done = subprocess.run(
        ["ip", "-n", netns, "-j", *argv], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout or "[]")


def trace(cloud: RoutedCloud, source: str, destination: str, *options: str) -> Any:
    return json.loads(
        cloud.neutrino(
            "trace", "--from", source, "--to", destination, *options, "-f", "json"
        ).stdout
    )


def ask(netns: str, address: str, port: int) -> str:
    """What a WHOAMI server at address:port saw as our address ('' when unreachable)."""
    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", ASK, address, str(port)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def topology(cloud: RoutedCloud, api: ApiClient) -> dict[str, Any]:
    """Two SLAAC subnets on one router, an instance on each: its namespace and its port."""
    router = api.create("routers", name="r6")
    made: dict[str, Any] = {"router": router, "qr": {}}
    for name, cidr in (("a", "2001:db8:1::/64"), ("b", "2001:db8:2::/64")):
        net = api.create("networks", name=f"net-{name}")
        sub = subnet(api, net, cidr, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
        attached = api.put(
            f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}
        )
        assert attached.status_code == 200, attached.text
        made["qr"][name] = api.get(f"/ports/{attached.json()['port_id']}").json()["port"]
        made[f"net_{name}"], made[f"sub_{name}"] = net, sub
        made[f"vm_{name}"] = instance(api, f"vm-{name}", net)
    for name in ("a", "b"):
        netns, port = realized(api, made[f"vm_{name}"])
        (address,) = addresses_on(port, made[f"sub_{name}"])
        made[name] = {"netns": netns, "port": port, "address": address}
    for vm in (made["a"], made["b"]):
        assert eventually(
            lambda n=vm["netns"], x=vm["address"]: global_addresses(n) == {x}, seconds=20
        )
    return made


def test_instances_on_two_ipv6_subnets_talk_through_their_router(
    cloud: RoutedCloud, api: ApiClient, topology: dict[str, Any]
) -> None:
    a, b, router = topology["a"], topology["b"], topology["router"]
    # The lab API shows each instance's SLAAC address once the instance has it.
    lab = dataclasses.replace(api, prefix="/lab/v1")
    for name in ("a", "b"):
        url, wanted = f"/instances/{topology[f'vm_{name}']['id']}", topology[name]["address"]
        assert eventually(
            lambda u=url, w=wanted: lab.get(u).json()["instance"]["addresses"] == [f"{w}/64"]
        )
    # Each instance's default route is its router interface's link-local address, learnt by
    # router advertisement.
    for name in ("a", "b"):
        qr_mac = topology["qr"][name]["mac_address"]
        router_lla = str(ipam.eui64(LINK_LOCAL, qr_mac))
        routes = default_routes(topology[name]["netns"])
        assert [(r["gateway"], r["protocol"]) for r in routes] == [(router_lla, "ra")]
    # The router's interfaces hold the addresses the API shows, and answer from both sides.
    router_addresses = {
        fixed["ip_address"] for qr in topology["qr"].values() for fixed in qr["fixed_ips"]
    }
    assert router_addresses == {
        topology["sub_a"]["gateway_ip"],
        topology["sub_b"]["gateway_ip"],
    }
    held = {
        f"{a['local']}/{a['prefixlen']}"
        for link in ip(cloud.router_netns(router["id"]), "-6", "addr", "show")
        for a in link["addr_info"]
        if a["scope"] == "global"
    }
    assert held == {f"{address}/64" for address in router_addresses}
    for address in sorted(router_addresses):
        assert eventually(lambda x=address: pings(a["netns"], x) and pings(b["netns"], x))
    # Across the router, both ways: ping and TCP.
    assert eventually(lambda: pings(a["netns"], b["address"]) and pings(b["netns"], a["address"]))
    cloud.serve(b["netns"], ECHO, 7000)
    assert eventually(lambda: tcp_reachable(a["netns"], b["address"], 7000))


def test_a_group_that_allows_only_tcp_80_over_ipv6_does_so_through_the_router(
    cloud: RoutedCloud, api: ApiClient, topology: dict[str, Any]
) -> None:
    a, b, router = topology["a"], topology["b"], topology["router"]
    web = api.create("security-groups", name="web6")
    api.create(
        "security-group-rules",
        security_group_id=web["id"],
        direction="ingress",
        ethertype="IPv6",
        protocol="tcp",
        port_range_min=80,
        port_range_max=80,
    )
    for port in (80, 7001):
        cloud.serve(b["netns"], ECHO, port)
    assert eventually(lambda: tcp_reachable(a["netns"], b["address"], 7001))
    default_groups = b["port"]["security_groups"]
    changed = api.put(f"/ports/{b['port']['id']}", json={"port": {"security_groups": [web["id"]]}})
    assert changed.status_code == 200, changed.text
    try:
        assert eventually(lambda: not tcp_reachable(a["netns"], b["address"], 7001))
        # Neighbour discovery passes the group: the router and vm-b, having forgotten each
        # other, find each other again.
        for netns in (cloud.router_netns(router["id"]), b["netns"]):
            run(netns, "ip", "-6", "neigh", "flush", "all")
        assert tcp_reachable(a["netns"], b["address"], 80)
        assert not pings(a["netns"], b["address"])
        assert not tcp_reachable(a["netns"], b["address"], 7001)
        assert global_addresses(b["netns"]) == {b["address"]}
    finally:
        restored = api.put(
            f"/ports/{b['port']['id']}", json={"port": {"security_groups": default_groups}}
        )
        assert restored.status_code == 200, restored.text
    assert eventually(lambda: tcp_reachable(a["netns"], b["address"], 7001))


def test_an_ipv6_external_network_reaches_instances_without_nat(
    cloud: RoutedCloud, api: ApiClient, topology: dict[str, Any]
) -> None:
    a, router = topology["a"], topology["router"]
    ext = api.create(
        "networks",
        name="ext_net",
        **{
            "router:external": True,
            "provider:network_type": "flat",
            "provider:physical_network": "default",
        },
    )
    v4 = api.create(
        "subnets", network_id=ext["id"], ip_version=4, cidr="10.66.0.0/24", enable_dhcp=False
    )
    v6 = subnet(api, ext, "2001:db8:e::/64", gateway_ip=OUTSIDE_V6, enable_dhcp=False)
    gateway = api.put(
        f"/routers/{router['id']}",
        json={"router": {"external_gateway_info": {"network_id": ext["id"]}}},
    )
    assert gateway.status_code == 200, gateway.text
    fixed = gateway.json()["router"]["external_gateway_info"]["external_fixed_ips"]
    assert [f["subnet_id"] for f in fixed] == [v4["id"], v6["id"]]
    gateway_v6 = fixed[1]["ip_address"]
    # The router's qg- interface holds it, and its IPv6 default route is the external subnet's
    # gateway.
    netns = cloud.router_netns(router["id"])

    def routed() -> bool:
        held = {
            a["local"]
            for link in ip(netns, "-6", "addr", "show")
            if link["ifname"].startswith("qg-")
            for a in link["addr_info"]
        }
        defaults = [
            (r["gateway"], r["dev"][:3]) for r in ip(netns, "-6", "route", "show", "default")
        ]
        upstream = {
            a["local"] for link in ip(cloud.outside, "-6", "addr") for a in link["addr_info"]
        }
        return gateway_v6 in held and defaults == [(OUTSIDE_V6, "qg-")] and OUTSIDE_V6 in upstream

    prefix = topology["sub_a"]["cidr"]
    try:
        # The agent gives the outside its gateway address after the router its own.
        assert eventually(routed, seconds=20)
        # The outside, with a route to net-a's prefix through the router (an upstream
        # router's), reaches vm-a at its own address once a rule lets it in; vm-a reaches the
        # outside, which sees vm-a's own address.
        cloud.serve(cloud.outside, WHOAMI, 8080)
        cloud.serve(a["netns"], WHOAMI, 8081)
        run(cloud.outside, "ip", "-6", "route", "add", prefix, "via", gateway_v6)
        assert eventually(lambda: ask(a["netns"], OUTSIDE_V6, 8080) == a["address"], seconds=20)
        assert pings(a["netns"], OUTSIDE_V6)
        assert ask(cloud.outside, a["address"], 8081) == ""  # the default group keeps it out
        rule = api.create(
            "security-group-rules",
            security_group_id=a["port"]["security_groups"][0],
            direction="ingress",
            ethertype="IPv6",
            protocol="tcp",
            port_range_min=8081,
            port_range_max=8081,
            remote_ip_prefix=v6["cidr"],
        )
        try:
            assert eventually(lambda: ask(cloud.outside, a["address"], 8081) == OUTSIDE_V6)
        finally:
            api.delete(f"/security-group-rules/{rule['id']}")
        # The trace follows a packet out: through the gateway, untranslated.
        traced = trace(cloud, "vm-a", OUTSIDE_V6, "--proto", "tcp", "--port", "8080")
        assert [hop["hop"] for hop in traced["hops"]][-4:] == [
            "nat",
            "router gateway",
            "bridge",
            "outside",
        ]
        assert traced["nat"].startswith("none: IPv6 is routed without NAT")
        assert traced["hops"][-3]["address"] == gateway_v6
        assert traced["confirmed"] and traced["probe"]["reached"]
    finally:
        exec_in_instance(cloud.outside, ["ip", "-6", "route", "del", prefix])
        cleared = api.put(
            f"/routers/{router['id']}", json={"router": {"external_gateway_info": {}}}
        )
        deleted = api.delete(f"/networks/{ext['id']}")
    assert cleared.status_code == 200, cleared.text
    assert deleted.status_code == 204, deleted.text
    assert eventually(lambda: ask(a["netns"], OUTSIDE_V6, 8080) == "")


def test_without_an_ipv6_gateway_ip_the_router_takes_its_default_route_from_upstream(
    cloud: RoutedCloud, api: ApiClient, topology: dict[str, Any]
) -> None:
    """As Neutron's L3 agent: an external IPv6 subnet without a gateway IP leaves the router's
    IPv6 default route to the upstream router's advertisements."""
    a, router = topology["a"], topology["router"]
    ext = api.create(
        "networks",
        name="ext_net",
        **{
            "router:external": True,
            "provider:network_type": "flat",
            "provider:physical_network": "default",
        },
    )
    v6 = subnet(api, ext, "2001:db8:f::/64", gateway_ip=None, enable_dhcp=False)
    set_gateway = {"router": {"external_gateway_info": {"network_id": ext["id"]}}}
    gateway = api.put(f"/routers/{router['id']}", json=set_gateway)
    assert gateway.status_code == 200, gateway.text
    (fixed,) = gateway.json()["router"]["external_gateway_info"]["external_fixed_ips"]
    assert fixed["subnet_id"] == v6["id"]
    gateway_port = api.get(
        "/ports", params={"device_id": router["id"], "device_owner": "network:router_gateway"}
    ).json()["ports"][0]
    gateway_lla = str(ipam.eui64(LINK_LOCAL, gateway_port["mac_address"]))
    netns, prefix, far = (
        cloud.router_netns(router["id"]),
        topology["sub_a"]["cidr"],
        "2001:db8:ff::1",
    )
    # The outside: an address beyond, a route back to net-a, and an advertisement from its
    # interface on ext_net (a router lifetime, no prefix). It forwards on that interface, as a
    # router does: a neighbour advertisement without the router flag would make the router
    # drop its default route through it.
    run(cloud.outside, "ip", "addr", "add", f"{far}/128", "dev", "lo")
    run(cloud.outside, "sysctl", "-qw", "net.ipv6.conf.phys.forwarding=1")
    # No address of the outside is on ext_net's IPv6 subnet: it routes to the gateway's
    # link-local address, as upstream routers do.
    run(cloud.outside, "ip", "-6", "route", "add", prefix, "via", gateway_lla, "dev", "phys")
    upstream_lla = next(
        a["local"]
        for link in ip(cloud.outside, "-6", "addr", "show", "dev", "phys")
        for a in link["addr_info"]
        if a["scope"] == "link"
    )

    def advertised() -> bool:
        run(cloud.outside, sys.executable, "-c", ADVERTISE_A_ROUTER, "phys")
        return [
            (r["gateway"], r["protocol"]) for r in ip(netns, "-6", "route", "show", "default")
        ] == [(upstream_lla, "ra")]

    try:
        assert eventually(advertised, seconds=20, interval=0.5)
        assert eventually(lambda: pings(a["netns"], far))
    finally:
        run(cloud.outside, "ip", "-6", "route", "del", prefix)
        run(cloud.outside, "ip", "addr", "del", f"{far}/128", "dev", "lo")
        run(cloud.outside, "sysctl", "-qw", "net.ipv6.conf.phys.forwarding=0")
        cleared = api.put(
            f"/routers/{router['id']}", json={"router": {"external_gateway_info": {}}}
        )
        assert cleared.status_code == 200, cleared.text
        assert api.delete(f"/networks/{ext['id']}").status_code == 204


def test_extra_routes_with_ipv6_destinations_and_next_hops(
    cloud: RoutedCloud, api: ApiClient, topology: dict[str, Any]
) -> None:
    """vm-b routes 2001:db8:99::/64 (it holds 2001:db8:99::1, and may send from that prefix):
    vm-a reaches it through the router only along the router's extra route."""
    a, b, router = topology["a"], topology["b"], topology["router"]
    behind, prefix = "2001:db8:99::1", "2001:db8:99::/64"
    run(b["netns"], "ip", "addr", "add", f"{behind}/128", "dev", "lo")
    paired = api.put(
        f"/ports/{b['port']['id']}",
        json={"port": {"allowed_address_pairs": [{"ip_address": prefix}]}},
    )
    assert paired.status_code == 200, paired.text
    netns = cloud.router_netns(router["id"])

    def installed() -> list[tuple[str, str]]:
        return [(r["gateway"], r["protocol"]) for r in ip(netns, "-6", "route", "show", prefix)]

    try:
        assert eventually(lambda: pings(a["netns"], b["address"]))
        assert not pings(a["netns"], behind)
        routes = [{"destination": prefix, "nexthop": b["address"]}]
        changed = api.put(f"/routers/{router['id']}", json={"router": {"routes": routes}})
        assert changed.status_code == 200, changed.text
        assert eventually(lambda: installed() == [(b["address"], "static")])
        assert eventually(lambda: pings(a["netns"], behind))
        changed = api.put(f"/routers/{router['id']}", json={"router": {"routes": []}})
        assert changed.status_code == 200, changed.text
        assert eventually(lambda: installed() == [])
        assert not pings(a["netns"], behind)
    finally:
        api.put(f"/ports/{b['port']['id']}", json={"port": {"allowed_address_pairs": []}})
        run(b["netns"], "ip", "addr", "del", f"{behind}/128", "dev", "lo")


def test_inspect_and_trace_show_the_ipv6_path_through_the_router(
    cloud: RoutedCloud, api: ApiClient, topology: dict[str, Any]
) -> None:
    a, b, router = topology["a"], topology["b"], topology["router"]
    seen = json.loads(cloud.neutrino("inspect", "router", router["id"], "-f", "json").stdout)
    assert seen["forwarding"] is True and seen["ipv6_forwarding"] is True
    links = {i["port_id"]: i["link"] for i in seen["interfaces"]}
    for name in ("a", "b"):
        qr, sub = topology["qr"][name], topology[f"sub_{name}"]
        assert links[qr["id"]]["addresses"] == [f"{sub['gateway_ip']}/64"]
        lla = ipam.eui64(LINK_LOCAL, qr["mac_address"])
        assert links[qr["id"]]["link_local"] == f"{lla}/64"
        assert {
            "destination": sub["cidr"],
            "via": None,
            "device": links[qr["id"]]["name"],
            "protocol": "kernel",
            "ip_version": 6,
        }.items() <= next(r for r in seen["routes"] if r["destination"] == sub["cidr"]).items()
    assert all(r["ip_version"] == 4 or ":" in r["destination"] for r in seen["routes"])

    cloud.serve(b["netns"], ECHO, 7002)
    assert eventually(lambda: tcp_reachable(a["netns"], b["address"], 7002))
    traced = trace(cloud, "vm-a", b["address"], "--proto", "tcp", "--port", "7002")
    assert traced["from"]["address"] == a["address"]
    assert [hop["hop"] for hop in traced["hops"]] == [
        "instance",
        "tap",
        "bridge",
        "router interface",
        "router interface",
        "bridge",
        "tap",
    ]
    into = traced["hops"][3]
    qr_a = topology["qr"]["a"]
    assert into["link_local"] == str(ipam.eui64(LINK_LOCAL, qr_a["mac_address"]))
    assert into["address"] == topology["sub_a"]["gateway_ip"]
    assert traced["hops"][-1]["address"] == b["address"]
    assert traced["confirmed"] and traced["probe"]["reached"]
    assert all(hop["seen"] for hop in traced["hops"] if "seen" in hop)
    # A ping the other way, to the router's own address on net-a.
    back = trace(cloud, "vm-b", topology["sub_a"]["gateway_ip"])
    assert back["probe"]["reached"] and back["from"]["address"] == b["address"]
