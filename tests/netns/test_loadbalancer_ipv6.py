"""Load balancers on IPv6 with real packets, through the APIs.

One live `neutrino serve` with its embedded agent (isolated mode, a unique namespace prefix).
A dual-stack network: an IPv4 subnet and a SLAAC one, on a router. WEB1 and WEB2 run a web
server that answers its name, a TCP server that answers with the address it was reached from
and a UDP server that answers its name; CLIENT asks. The instances take their IPv6 addresses
as a VM does (the kernel's SLAAC from the router's advertisements) and the members are those
addresses. Load balancers are made in one call each (Octavia's fully populated create).
"""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from netlab import wait_for
from test_loadbalancer_s6 import WEB_PORT, LbCloud
from test_routers_api import WHOAMI, eventually

from tests.conftest import Databases, dataplane_server

TCP_PORT = 9000
# Answers each connection with the address it came from, on IPv6 and IPv4 alike.
WHOAMI6 = WHOAMI.replace("socket.socket()", "socket.socket(socket.AF_INET6)").replace(
    "'0.0.0.0'", "'::'"
)
UDP_PORT = 5300
# Answers every datagram on [::]:argv[1] with the name argv[2].
UDP_SERVER = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);s.bind(('::',int(sys.argv[1])))\n"
    "while True:\n"
    "  d,a=s.recvfrom(512);s.sendto(sys.argv[2].encode(),a)\n"
)
# Asks [argv[1]]:argv[2] argv[3] times, each from a new socket (a new flow); prints the answers.
UDP_ASK = (
    "import socket,sys\n"
    "for _ in range(int(sys.argv[3])):\n"
    "  s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);s.settimeout(1)\n"
    "  s.sendto(b'?',(sys.argv[1],int(sys.argv[2])))\n"
    "  try: print(s.recv(64).decode())\n"
    "  except OSError: print('-')\n"
    "  s.close()\n"
)


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LbCloud]:
    with dataplane_server(databases, tmp_path_factory, "t6l", LbCloud, host=LbCloud.host) as server:
        server.www = tmp_path_factory.mktemp("www")
        yield server


def global_ipv6(cloud: LbCloud, netns: str) -> set[str]:
    """eth0's global IPv6 addresses that are usable (duplicate address detection done)."""
    shown = json.loads(cloud.run(netns, "ip", "-6", "-j", "addr", "show", "dev", "eth0").stdout)
    return {
        a["local"]
        for link in shown
        for a in link["addr_info"]
        if a["scope"] == "global" and not a.get("tentative")
    }


@pytest.fixture(scope="module")
def web(cloud: LbCloud) -> dict[str, Any]:
    """WEB1, WEB2 and CLIENT on a dual-stack network behind a router, each with its IPv6
    address (`ip6`) by SLAAC, the one the API shows."""
    routed = cloud.routed_network("dual", "10.10.61.0/24", "192.168.61.0/24")
    v6 = cloud.create(
        "subnets",
        "subnet",
        network_id=routed["net"]["id"],
        ip_version=6,
        cidr="fd00:61::/64",
        ipv6_ra_mode="slaac",
        ipv6_address_mode="slaac",
        name="dual-v6",
    )
    cloud.put(f"routers/{routed['router']['id']}/add_router_interface", {"subnet_id": v6["id"]})
    for prefix in ("192.168.61.0/24", "fd00:61::/64"):
        cloud.allow("tcp", WEB_PORT, prefix)
        cloud.allow("tcp", TCP_PORT, prefix)
    cloud.allow("udp", UDP_PORT, "fd00:61::/64")
    vms = {}
    for name in ("WEB1", "WEB2", "CLIENT"):
        vm = {**cloud.new_instance(name, routed["net"]["id"]), "name": name}
        port = cloud.get(f"ports?device_id={vm['id']}")["ports"][0]
        (vm["ip6"],) = (ip["ip_address"] for ip in port["fixed_ips"] if ip["subnet_id"] == v6["id"])
        vms[name] = vm
    for vm in vms.values():
        wait_for(lambda vm=vm: vm["ip6"] in global_ipv6(cloud, vm["netns"]), timeout=30)
    for name in ("WEB1", "WEB2"):
        cloud.start_web(vms[name])
        cloud.background(vms[name]["netns"], WHOAMI6, str(TCP_PORT))
        cloud.background(vms[name]["netns"], UDP_SERVER, str(UDP_PORT), name)
        assert eventually(
            lambda vm=vms[name]: (
                cloud.answers(vms["CLIENT"]["netns"], f"[{vm['ip6']}]", 1, WEB_PORT) == [vm["name"]]
            )
        )
    return {**routed, "v6": v6, **vms}


def create_lb(cloud: LbCloud, subnet: dict[str, Any], **body: Any) -> dict[str, Any]:
    """A load balancer (a fully populated create), once ACTIVE."""
    lb = cloud.api.call(
        "POST",
        f"{cloud.lbaas}/loadbalancers",
        json={"loadbalancer": {"vip_subnet_id": subnet["id"], **body}},
    )["loadbalancer"]

    def provisioned() -> str:
        return str(cloud.lb(f"loadbalancers/{lb['id']}")["loadbalancer"]["provisioning_status"])

    wait_for(lambda: provisioned() in ("ACTIVE", "ERROR"), timeout=30)
    assert provisioned() == "ACTIVE"
    return dict(cloud.lb(f"loadbalancers/{lb['id']}")["loadbalancer"])


def listener(
    protocol: str, port: int, members: list[dict[str, Any]], **pool: Any
) -> dict[str, Any]:
    return {
        "protocol": protocol,
        "protocol_port": port,
        "default_pool": {
            "protocol": protocol,
            "lb_algorithm": "ROUND_ROBIN",
            "members": members,
            **pool,
        },
    }


def members(web: dict[str, Any], key: str, port: int) -> list[dict[str, Any]]:
    return [
        {"name": name, "address": web[name][key], "protocol_port": port}
        for name in ("WEB1", "WEB2")
    ]


def test_an_ipv6_vip_serves_http_and_tcp_to_ipv6_members_once_active(
    cloud: LbCloud, web: dict[str, Any]
) -> None:
    client = web["CLIENT"]["netns"]
    lb = create_lb(
        cloud,
        web["v6"],
        name="v6",
        listeners=[
            listener("HTTP", 80, members(web, "ip6", WEB_PORT)),
            listener("TCP", TCP_PORT, members(web, "ip6", TCP_PORT)),
        ],
    )
    vip = lb["vip_address"]
    assert ipaddress.ip_address(vip) in ipaddress.ip_network(web["v6"]["cidr"])
    # Served at once: asked right after ACTIVE, without waiting for anything.
    assert set(cloud.answers(client, f"[{vip}]", 4)) == {"WEB1", "WEB2"}
    # The members are reached over IPv6, from the VIP's namespace: they see its address.
    assert {cloud.ask(client, vip, TCP_PORT) for _ in range(2)} == {vip}
    cloud.api.call("DELETE", f"{cloud.lbaas}/loadbalancers/{lb['id']}?cascade=true")


def test_a_health_monitor_checks_ipv6_members(cloud: LbCloud, web: dict[str, Any]) -> None:
    """The status tree turns ONLINE once haproxy has checked the members; a member that stops
    answering goes ERROR (its pool and the load balancer DEGRADED) and gets no more requests."""
    client = web["CLIENT"]["netns"]
    monitor = {"type": "HTTP", "delay": 1, "timeout": 1, "max_retries": 1, "max_retries_down": 1}
    lb = create_lb(
        cloud,
        web["v6"],
        name="v6-checked",
        listeners=[listener("HTTP", 80, members(web, "ip6", WEB_PORT), healthmonitor=monitor)],
    )

    def statuses() -> tuple[str, str, str, dict[str, str]]:
        tree = cloud.lb(f"loadbalancers/{lb['id']}/status")["statuses"]["loadbalancer"]
        (li,) = tree["listeners"]
        (pool,) = li["pools"]
        names = {m["name"]: m["operating_status"] for m in pool["members"]}
        return tree["operating_status"], li["operating_status"], pool["operating_status"], names

    online = ("ONLINE", "ONLINE", "ONLINE", {"WEB1": "ONLINE", "WEB2": "ONLINE"})
    assert eventually(lambda: statuses() == online)
    cloud.stop_web(web["WEB2"])
    try:
        degraded = ("DEGRADED", "ONLINE", "DEGRADED", {"WEB1": "ONLINE", "WEB2": "ERROR"})
        assert eventually(lambda: statuses() == degraded)
        assert set(cloud.answers(client, f"[{lb['vip_address']}]", 4)) == {"WEB1"}
    finally:
        cloud.start_web(web["WEB2"])
    assert eventually(lambda: statuses() == online)
    cloud.api.call("DELETE", f"{cloud.lbaas}/loadbalancers/{lb['id']}?cascade=true")


def test_members_of_the_other_family(cloud: LbCloud, web: dict[str, Any]) -> None:
    """haproxy's pools take members of either family whatever the VIP's, as Octavia allows,
    reached from the VIP port's address of their family: an IPv4 VIP's port has its SLAAC
    address; an IPv6 VIP on a port made with an address on each subnet."""
    client = web["CLIENT"]["netns"]
    v4 = create_lb(
        cloud,
        web["subnet"],
        name="v4-to-v6",
        listeners=[listener("HTTP", 80, members(web, "ip6", WEB_PORT))],
    )
    assert set(cloud.answers(client, v4["vip_address"], 4)) == {"WEB1", "WEB2"}
    dual = cloud.create(
        "ports",
        "port",
        network_id=web["net"]["id"],
        fixed_ips=[{"subnet_id": web["subnet"]["id"]}, {"subnet_id": web["v6"]["id"]}],
    )
    v6 = create_lb(
        cloud,
        web["v6"],
        name="v6-to-v4",
        vip_port_id=dual["id"],
        listeners=[listener("HTTP", 80, members(web, "ip", WEB_PORT))],
    )
    assert ":" in v6["vip_address"]
    assert set(cloud.answers(client, f"[{v6['vip_address']}]", 4)) == {"WEB1", "WEB2"}
    for lb in (v4, v6):
        cloud.api.call("DELETE", f"{cloud.lbaas}/loadbalancers/{lb['id']}?cascade=true")


def test_an_ipv6_vip_reaches_ipv4_members_of_its_network_from_their_subnet(
    cloud: LbCloud, web: dict[str, Any]
) -> None:
    """IPv4 members named on the IPv4 subnet of an IPv6 VIP's network: as Octavia's amphora, the
    VIP port takes an address on that subnet, which the namespace holds and haproxy reaches them
    from (the members see it)."""
    v4_members = [
        {**member, "subnet_id": web["subnet"]["id"]} for member in members(web, "ip", WEB_PORT)
    ]
    lb = create_lb(
        cloud,
        web["v6"],
        name="v6-to-v4-subnet",
        listeners=[
            listener("HTTP", 80, v4_members),
            listener("TCP", TCP_PORT, [{**m, "protocol_port": TCP_PORT} for m in v4_members]),
        ],
    )
    port = cloud.get(f"ports/{lb['vip_port_id']}")["port"]
    (own_v4,) = (ip["ip_address"] for ip in port["fixed_ips"] if ":" not in ip["ip_address"])
    client = web["CLIENT"]["netns"]
    vip = f"[{lb['vip_address']}]"
    assert eventually(lambda: set(cloud.answers(client, vip, 4)) == {"WEB1", "WEB2"})
    # WEB1 and WEB2 listen on IPv6 sockets: an IPv4 peer shows as an IPv4-mapped address.
    seen = {cloud.ask(client, lb["vip_address"], TCP_PORT) for _ in range(2)}
    assert {address.removeprefix("::ffff:") for address in seen} == {own_v4}
    cloud.api.call("DELETE", f"{cloud.lbaas}/loadbalancers/{lb['id']}?cascade=true")


def test_a_udp_pool_over_ipv6(cloud: LbCloud, web: dict[str, Any]) -> None:
    """The kernel balances UDP on an IPv6 VIP to IPv6 members, checked by UDP-CONNECT."""
    monitor = {"type": "UDP-CONNECT", "delay": 3, "timeout": 1, "max_retries": 1}
    lb = create_lb(
        cloud,
        web["v6"],
        name="v6-udp",
        listeners=[listener("UDP", UDP_PORT, members(web, "ip6", UDP_PORT), healthmonitor=monitor)],
    )

    def answers() -> set[str]:
        argv = (lb["vip_address"], str(UDP_PORT), "6")
        asked = cloud.run(web["CLIENT"]["netns"], sys.executable, "-c", UDP_ASK, *argv)
        return set(asked.stdout.split())

    assert eventually(lambda: answers() == {"WEB1", "WEB2"})

    def members_online() -> bool:
        tree = cloud.lb(f"loadbalancers/{lb['id']}/status")["statuses"]["loadbalancer"]
        (pool,) = tree["listeners"][0]["pools"]
        return {m["operating_status"] for m in pool["members"]} == {"ONLINE"}

    assert eventually(members_online)
    cloud.api.call("DELETE", f"{cloud.lbaas}/loadbalancers/{lb['id']}?cascade=true")


def test_an_active_standby_ipv6_vip(cloud: LbCloud, web: dict[str, Any]) -> None:
    """Two amphorae on the IPv6 subnet: keepalived gives the VIP (a /128) to the MASTER alone,
    over VRRP between their IPv6 addresses, which their ports' group lets in with the clients'
    IPv6 traffic."""
    profile = cloud.api.call(
        "POST",
        f"{cloud.lbaas}/flavorprofiles",
        json={
            "flavorprofile": {
                "name": "ha6",
                "provider_name": "amphora",
                "flavor_data": json.dumps({"loadbalancer_topology": "ACTIVE_STANDBY"}),
            }
        },
    )["flavorprofile"]
    flavor = cloud.api.call(
        "POST",
        f"{cloud.lbaas}/flavors",
        json={"flavor": {"name": "ha6", "flavor_profile_id": profile["id"]}},
    )["flavor"]
    lb = create_lb(
        cloud,
        web["v6"],
        name="v6-ha",
        flavor_id=flavor["id"],
        listeners=[listener("HTTP", 80, members(web, "ip6", WEB_PORT))],
    )
    vip = lb["vip_address"]
    url = cloud.api.endpoint("load-balancer") + "/v2/octavia/amphorae"
    found = cloud.api.call("GET", f"{url}?loadbalancer_id={lb['id']}")["amphorae"]

    def holding() -> set[str]:
        return {
            a["role"]
            for a in found
            if f" {vip}/128 "
            in cloud.run(f"{lb_netns(cloud, lb)}-{a['id'][:11]}", "ip", "-o", "addr").stdout
        }

    # As for IPv4, keepalived's amphorae elect their master (nopreempt: both start BACKUP)
    # a few advertisements after they start.
    assert eventually(lambda: holding() == {"MASTER"})
    assert eventually(
        lambda: set(cloud.answers(web["CLIENT"]["netns"], f"[{vip}]", 4)) == {"WEB1", "WEB2"}
    )
    port = cloud.get(f"ports/{found[0]['vrrp_port_id']}")["port"]
    (group,) = port["security_groups"]
    rules = cloud.get(f"security-group-rules?security_group_id={group}")["security_group_rules"]
    assert {"ingress", "IPv6"} in [{r["direction"], r["ethertype"]} for r in rules]
    cloud.api.call("DELETE", f"{cloud.lbaas}/loadbalancers/{lb['id']}?cascade=true")


def lb_netns(cloud: LbCloud, lb: dict[str, Any]) -> str:
    return f"{cloud.prefix}{cloud.host}-qlbaas-{lb['id']}"
