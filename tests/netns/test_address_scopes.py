"""Address scopes in the data plane: a router routes, without NAT, between an internal subnet and
the external one when their pools share an address scope, as Neutron's L3 agent does.

One live server with its embedded agent; the outside namespace plays the internet, with a route
to the internal subnet through the router's gateway IP. Without a common scope the instance's
packets reach the outside source-NATed to that gateway IP and the outside opens no connection to
the instance; once both subnets are onboarded into pools of one scope, packets go both ways with
the instance's own address; taking the internal pool out of the scope brings NAT back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from netlab import tcp_reachable, wait_for
from test_routers_api import ECHO, WHOAMI, RoutedCloud

from tests.conftest import Databases, dataplane_server, eventually

EXT_CIDR, INSIDE_CIDR = "10.10.50.0/24", "192.168.80.0/24"
OUTSIDE_GATEWAY = "10.10.50.1"
PORT = 7000


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutedCloud]:
    with dataplane_server(databases, tmp_path_factory, "as", RoutedCloud, host="as") as server:
        yield server


@pytest.fixture(scope="module")
def inside(cloud: RoutedCloud) -> Iterator[dict[str, Any]]:
    """An instance behind a router with a gateway on ext_net; the outside routes to it."""
    routed = cloud.routed_network("inside", EXT_CIDR, INSIDE_CIDR)
    cloud.allow("tcp", PORT)
    vm = cloud.new_instance("inside", routed["net"]["id"])
    router = cloud.get(f"routers/{routed['router']['id']}")["router"]
    gateway_ip = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    cloud.background(cloud.outside, WHOAMI, "8080")
    wait_for(lambda: cloud.ask(cloud.outside, "127.0.0.1"))
    cloud.background(vm["netns"], ECHO, str(PORT))
    wait_for(lambda: tcp_reachable(vm["netns"], "127.0.0.1", PORT))
    cloud.run(cloud.outside, "ip", "route", "add", INSIDE_CIDR, "via", gateway_ip)
    try:
        yield {**routed, "vm": vm, "gateway_ip": gateway_ip}
    finally:
        cloud.run(cloud.outside, "ip", "route", "del", INSIDE_CIDR)


def onboard(cloud: RoutedCloud, scope_id: str, prefix: str, network_id: str) -> dict[str, Any]:
    """A pool of `scope_id` holding the network's subnets."""
    pool = cloud.create(
        "subnetpools",
        "subnetpool",
        name=f"pool-{prefix}",
        prefixes=[prefix],
        address_scope_id=scope_id,
    )
    cloud.put(f"subnetpools/{pool['id']}/onboard_network_subnets", {"network_id": network_id})
    return pool


def test_one_address_scope_routes_without_nat(cloud: RoutedCloud, inside: dict[str, Any]) -> None:
    vm, gateway_ip = inside["vm"], inside["gateway_ip"]
    # No common scope: source NAT, and the outside cannot open a connection to the instance.
    assert eventually(lambda: cloud.ask(vm["netns"], OUTSIDE_GATEWAY) == gateway_ip)
    assert not tcp_reachable(cloud.outside, vm["ip"], PORT)

    scope = cloud.create("address-scopes", "address_scope", name="public", ip_version=4)
    onboard(cloud, scope["id"], "10.10.0.0/16", inside["ext"]["id"])
    pool = onboard(cloud, scope["id"], "192.168.0.0/16", inside["net"]["id"])
    assert (
        cloud.get(f"networks/{inside['net']['id']}")["network"]["ipv4_address_scope"]
        == (scope["id"])
    )
    assert eventually(lambda: cloud.ask(vm["netns"], OUTSIDE_GATEWAY) == vm["ip"])
    assert eventually(lambda: tcp_reachable(cloud.outside, vm["ip"], PORT))

    # Out of the scope, the internal subnet is source-NATed again.
    cloud.put(f"subnetpools/{pool['id']}", {"subnetpool": {"address_scope_id": None}})
    assert eventually(lambda: cloud.ask(vm["netns"], OUTSIDE_GATEWAY) == gateway_ip)
    assert not tcp_reachable(cloud.outside, vm["ip"], PORT)
