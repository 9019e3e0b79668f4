"""IPv6 address modes, end to end through the API, with real packets.

Router advertisements come from radvd on the router's qr- interface (a subnet on a router)
or in the DHCP namespace (on none), DHCPv6 from dnsmasq; instances configure themselves as a
VM does (the kernel's SLAAC, dhclient -6). One server, two networks:

    net1: slaac (on a router)        net2: dhcpv6-stateless (DNS option)
          dhcpv6-stateful (DNS)            slaac without ipv6_ra_mode (another router's)
          vm-a, vm-b                       vm-c
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from neutrino import ipam
from neutrino.agent.instance import NETNS_ETC, exec_in_instance
from tests.conftest import ADMIN_PASSWORD, ApiClient, Databases, dataplane_server, eventually
from tests.conftest import login as sign_in
from tests.netns.multihost import Cloud

LINK_LOCAL = ipaddress.IPv6Network("fe80::/64")
ROGUE_PREFIX = "2001:db8:bad::"
# An RA for ROGUE_PREFIX (autonomous) with a router lifetime, sent from eth0 to all nodes.
SEND_RA = f"""
import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
prefix = struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0)
prefix += socket.inet_pton(socket.AF_INET6, "{ROGUE_PREFIX}")
s.sendto(ra + prefix, ("ff02::1", 0, 0, socket.if_nametoindex("eth0")))
"""


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with dataplane_server(databases, tmp_path_factory, "t6", Cloud) as server:
        yield server


def run(netns: str, *argv: str) -> str:
    rc, out, err = exec_in_instance(netns, list(argv))
    assert rc == 0, f"{argv}: {out}{err}"
    return out


def global_addresses(netns: str) -> set[str]:
    """eth0's global IPv6 addresses, once usable (duplicate address detection done)."""
    found = json.loads(run(netns, "ip", "-6", "-j", "addr", "show", "dev", "eth0"))
    return {
        a["local"]
        for link in found
        for a in link["addr_info"]
        if a["scope"] == "global" and not a.get("tentative")
    }


def default_routes(netns: str) -> list[dict[str, Any]]:
    return json.loads(run(netns, "ip", "-6", "-j", "route", "show", "default"))


def rogue_prefix_taken(netns: str) -> bool:
    """Whether eth0 has an address, usable yet or not, in the rogue advertisement's prefix."""
    found = json.loads(run(netns, "ip", "-6", "-j", "addr", "show", "dev", "eth0"))
    return any(
        a["local"].startswith(ROGUE_PREFIX[:-1]) for link in found for a in link["addr_info"]
    )


def pings(netns: str, address: str, source: str | None = None) -> bool:
    argv = ["ping", "-6", "-c1", "-W1", *(["-I", source] if source else []), address]
    return exec_in_instance(netns, argv)[0] == 0


def subnet(api: ApiClient, network: dict[str, Any], cidr: str, **fields: Any) -> dict[str, Any]:
    return api.create("subnets", network_id=network["id"], ip_version=6, cidr=cidr, **fields)


def instance(api: ApiClient, name: str, network: dict[str, Any]) -> dict[str, Any]:
    lab = dataclasses.replace(api, prefix="/lab/v1")
    return lab.create("instances", name=name, networks=[{"network_id": network["id"]}])


def realized(api: ApiClient, made: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The instance's namespace, once running, and its port as the API shows it."""
    lab = dataclasses.replace(api, prefix="/lab/v1")

    def netns() -> str | None:
        return lab.get(f"/instances/{made['id']}").json()["instance"].get("netns")

    assert eventually(netns, seconds=30)
    port = api.get(f"/ports/{made['port_ids'][0]}").json()["port"]
    return str(netns()), port


def addresses_on(port: dict[str, Any], *subnets: dict[str, Any]) -> set[str]:
    wanted = {s["id"] for s in subnets}
    return {ip["ip_address"] for ip in port["fixed_ips"] if ip["subnet_id"] in wanted}


def test_address_modes_router_advertisements_and_what_instances_may_send(cloud: Cloud) -> None:
    with httpx.Client(base_url=cloud.url, timeout=60) as http:
        api = sign_in(http, "admin", ADMIN_PASSWORD, "admin")
        net1 = api.create("networks", name="v6-one")
        slaac = subnet(
            api, net1, "2001:db8:a::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac"
        )
        stateful = subnet(
            api,
            net1,
            "2001:db8:b::/64",
            ipv6_ra_mode="dhcpv6-stateful",
            ipv6_address_mode="dhcpv6-stateful",
            dns_nameservers=["2001:db8:b::53"],
        )
        net2 = api.create("networks", name="v6-two")
        stateless = subnet(
            api,
            net2,
            "2001:db8:c::/64",
            ipv6_ra_mode="dhcpv6-stateless",
            ipv6_address_mode="dhcpv6-stateless",
            dns_nameservers=["2001:db8:c::53"],
        )
        elsewhere = subnet(api, net2, "2001:db8:d::/64", ipv6_address_mode="slaac")
        router = api.create("routers", name="v6-router")
        attached = api.put(
            f"/routers/{router['id']}/add_router_interface", json={"subnet_id": slaac["id"]}
        )
        assert attached.status_code == 200, attached.text
        qr_port = api.get(f"/ports/{attached.json()['port_id']}").json()["port"]
        vms = [
            instance(api, "vm-a", net1),
            instance(api, "vm-b", net1),
            instance(api, "vm-c", net2),
        ]
        (ns_a, port_a), (ns_b, port_b), (ns_c, port_c) = (realized(api, vm) for vm in vms)

        # SLAAC from the router's advertisement and the stateful lease from dnsmasq: exactly
        # the addresses the API shows; the default route is the router's link-local address.
        for netns, port in ((ns_a, port_a), (ns_b, port_b)):
            wanted = addresses_on(port, slaac, stateful)
            assert len(wanted) == 2
            assert eventually(lambda n=netns, w=wanted: global_addresses(n) == w, seconds=20)
            router_lla = str(ipam.eui64(LINK_LOCAL, qr_port["mac_address"]))
            assert [(r["gateway"], r["protocol"]) for r in default_routes(netns)] == [
                (router_lla, "ra")
            ]
        # The DHCP namespace takes nothing from the router's advertisements, as Neutron's.
        dhcp_netns = f"{ns_a[: ns_a.index('ninst-')]}qdhcp-{net1['id']}"
        routes = ["ip", "-n", dhcp_netns, "-6", "route", "show", "default"]
        assert subprocess.run(routes, capture_output=True, text=True, check=True).stdout == ""
        resolv_a = NETNS_ETC / ns_a / "resolv.conf"
        assert eventually(lambda: resolv_a.exists() and "2001:db8:b::53" in resolv_a.read_text())

        # Stateless: the address by SLAAC from the DHCP namespace's advertisement (no default
        # route: it routes nothing), the DNS server by DHCPv6; nothing for the subnet whose
        # advertisements are another router's.
        wanted_c = addresses_on(port_c, stateless)
        assert addresses_on(port_c, elsewhere) and len(wanted_c) == 1
        assert eventually(lambda: global_addresses(ns_c) == wanted_c, seconds=20)
        resolv_c = NETNS_ETC / ns_c / "resolv.conf"
        assert eventually(lambda: resolv_c.exists() and "2001:db8:c::53" in resolv_c.read_text())
        assert default_routes(ns_c) == []

        # Neighbour discovery under port security: the instances reach each other (on-link
        # once each has heard the advertisement of the prefix it pings). That took up to 12 s
        # in 2 of 12 runs, and 0.01-0.05 s in the others.
        (b_slaac,) = addresses_on(port_b, slaac)
        (b_stateful,) = addresses_on(port_b, stateful)
        assert eventually(
            lambda: (
                pings(ns_a, b_slaac)
                and pings(ns_a, b_stateful)
                and pings(ns_b, *addresses_on(port_a, slaac))
            ),
            seconds=30,
        )

        # A source the port does not own is dropped (on the way to the router, whose port
        # filters nothing: only vm-a's anti-spoofing stands in the way).
        (a_slaac,) = addresses_on(port_a, slaac)
        spoofed = "2001:db8:a::99"
        run(ns_a, "ip", "addr", "add", f"{spoofed}/64", "dev", "eth0", "nodad")
        assert pings(ns_a, slaac["gateway_ip"], source=a_slaac)
        assert not pings(ns_a, slaac["gateway_ip"], source=spoofed)
        run(ns_a, "ip", "addr", "del", f"{spoofed}/64", "dev", "eth0")

        # An instance's router advertisement is dropped: vm-b takes neither its prefix nor
        # vm-a as a router.
        run(ns_a, "python3", "-c", SEND_RA)
        assert pings(ns_a, b_slaac)  # sent after the advertisement, so arrived after it too
        assert not rogue_prefix_taken(ns_b)
        a_lla = str(ipam.eui64(LINK_LOCAL, port_a["mac_address"]))
        assert a_lla not in {r["gateway"] for r in default_routes(ns_b)}
        # Without port security, the same advertisement reaches vm-b.
        unprotected = api.put(
            f"/ports/{port_a['id']}",
            json={"port": {"port_security_enabled": False, "security_groups": []}},
        )
        assert unprotected.status_code == 200, unprotected.text

        def sent_and_taken() -> bool:
            run(ns_a, "python3", "-c", SEND_RA)
            return rogue_prefix_taken(ns_b)

        assert eventually(sent_and_taken, seconds=10)
        assert a_lla in {r["gateway"] for r in default_routes(ns_b)}
