"""Floating IPs: allocation from an external network, association through a router (S4)."""

from __future__ import annotations

import ipaddress
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event

from neutrino.app import Neutrino
from tests.api.l3 import (
    Topology,
    add_interface,
    external_network,
    private_subnet,
    remove_interface,
    routed_topology,
)
from tests.api.test_agents import heartbeat
from tests.api.test_feed_and_lab import internal
from tests.api.test_loadbalancers import octavia
from tests.conftest import Api
from tests.conftest import expect_error as error

FIELDS = {
    "id",
    "floating_ip_address",
    "floating_network_id",
    "router_id",
    "port_id",
    "fixed_ip_address",
    "status",
    "project_id",
    "tenant_id",
    "description",
    "tags",
    "port_details",
    "port_forwardings",
    "created_at",
    "updated_at",
    "revision_number",
}


@pytest.fixture
def topo(api: Api) -> Topology:
    return routed_topology(api)


def allocate(api: Api, topo: Topology, **body: object) -> dict:
    return api.demo.create("floatingips", floating_network_id=topo.ext_net["id"], **body)


def associate(api: Api, fip_id: str, port_id: str | None, **extra: object) -> object:
    return api.demo.put(
        f"/floatingips/{fip_id}", json={"floatingip": {"port_id": port_id, **extra}}
    )


def test_s4_allocate_then_associate(api: Api, topo: Topology) -> None:
    fip = allocate(api, topo, description="web")
    assert set(fip) == FIELDS
    assert fip["port_id"] is None and fip["router_id"] is None and fip["fixed_ip_address"] is None
    assert fip["port_details"] is None and fip["status"] == "DOWN" and fip["description"] == "web"
    assert ipaddress.ip_address(fip["floating_ip_address"]) in ipaddress.ip_network("10.10.10.0/24")
    response = associate(api, fip["id"], topo.port["id"])
    assert response.status_code == 200, response.text
    body = response.json()["floatingip"]
    assert body["port_id"] == topo.port["id"] and body["router_id"] == topo.router["id"]
    assert body["fixed_ip_address"] == topo.port["fixed_ips"][0]["ip_address"]
    assert body["port_details"] == {
        "name": "vm",
        "network_id": topo.net["id"],
        "mac_address": topo.port["mac_address"],
        "admin_state_up": True,
        "status": "DOWN",
        "device_id": "",
        "device_owner": "",
    }
    # The address is held by a port of the floating IP's own, invisible to the project.
    [port] = api.admin.get("/ports", params={"device_id": fip["id"]}).json()["ports"]
    assert port["device_owner"] == "network:floatingip" and port["network_id"] == topo.ext_net["id"]
    assert port["fixed_ips"][0]["ip_address"] == fip["floating_ip_address"]
    assert api.demo.get("/ports", params={"device_id": fip["id"]}).json()["ports"] == []
    error(api.demo.delete(f"/ports/{port['id']}"), 404, "PortNotFound")
    error(api.admin.delete(f"/ports/{port['id']}"), 409, "PortInUse")


def test_create_associated_and_move(api: Api, topo: Topology) -> None:
    fip = allocate(api, topo, port_id=topo.port["id"])
    assert fip["router_id"] == topo.router["id"]
    other = api.demo.create("ports", network_id=topo.net["id"], name="vm2")
    moved = associate(api, fip["id"], other["id"]).json()["floatingip"]
    assert (
        moved["port_id"] == other["id"]
        and moved["fixed_ip_address"] == other["fixed_ips"][0]["ip_address"]
    )
    # Only the description changes: the association stays.
    described = api.demo.put(
        f"/floatingips/{fip['id']}", json={"floatingip": {"description": "d"}}
    ).json()["floatingip"]
    assert described["port_id"] == other["id"] and described["description"] == "d"
    released = associate(api, fip["id"], None).json()["floatingip"]
    assert (
        released["port_id"] is None
        and released["router_id"] is None
        and released["port_details"] is None
    )
    assert (
        associate(api, fip["id"], topo.port["id"]).json()["floatingip"]["port_id"]
        == topo.port["id"]
    )
    # An empty update disassociates (Neutron's legacy behaviour).
    emptied = api.demo.put(f"/floatingips/{fip['id']}", json={"floatingip": {}})
    assert emptied.status_code == 200 and emptied.json()["floatingip"]["port_id"] is None
    assert emptied.json()["floatingip"]["description"] == "d"


def test_deleting_the_external_network_deletes_its_floating_ips(api: Api, topo: Topology) -> None:
    fip = allocate(api, topo)
    api.demo.put(f"/routers/{topo.router['id']}", json={"router": {"external_gateway_info": None}})
    assert api.admin.delete(f"/networks/{topo.ext_net['id']}").status_code == 204
    error(api.demo.get(f"/floatingips/{fip['id']}"), 404, "FloatingIPNotFound")
    fip_ports = api.admin.get("/ports", params={"device_owner": "network:floatingip"}).json()
    assert fip_ports["ports"] == []


def test_addresses_are_random_and_unique(api: Api, topo: Topology) -> None:
    addresses = [allocate(api, topo)["floating_ip_address"] for _ in range(12)]
    assert len(set(addresses)) == 12
    assert addresses != sorted(addresses, key=ipaddress.ip_address)


def test_chosen_address_is_admin_only(api: Api, topo: Topology) -> None:
    body = {
        "floatingip": {
            "floating_network_id": topo.ext_net["id"],
            "floating_ip_address": "10.10.10.77",
        }
    }
    error(api.demo.post("/floatingips", json=body), 403, "PolicyNotAuthorized")
    fip = api.admin.post("/floatingips", json=body)
    assert (
        fip.status_code == 201 and fip.json()["floatingip"]["floating_ip_address"] == "10.10.10.77"
    )
    error(api.admin.post("/floatingips", json=body), 409, "IpAddressAlreadyAllocated")
    # The router's gateway address is taken too.
    gateway_ip = topo.router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    taken = {
        "floatingip": {"floating_network_id": topo.ext_net["id"], "floating_ip_address": gateway_ip}
    }
    error(api.admin.post("/floatingips", json=taken), 409, "IpAddressAlreadyAllocated")
    outside = {
        "floatingip": {
            "floating_network_id": topo.ext_net["id"],
            "floating_ip_address": "192.0.2.1",
        }
    }
    error(api.admin.post("/floatingips", json=outside), 400, "InvalidIpForNetwork")


def test_exhausted_external_subnet(api: Api) -> None:
    ext = external_network(
        api, "10.11.0.0/29", allocation_pools=[{"start": "10.11.0.2", "end": "10.11.0.4"}]
    )
    for _ in range(3):
        api.demo.create("floatingips", floating_network_id=ext[0]["id"])
    exhausted = api.demo.post(
        "/floatingips", json={"floatingip": {"floating_network_id": ext[0]["id"]}}
    )
    error(exhausted, 409, "IpAddressGenerationFailure")
    # A second subnet gives room again; an IPv6-only external network has none for floating IPs.
    api.admin.create(
        "subnets", network_id=ext[0]["id"], cidr="10.11.1.0/29", ip_version=4, enable_dhcp=False
    )
    assert api.demo.create("floatingips", floating_network_id=ext[0]["id"])[
        "floating_ip_address"
    ].startswith("10.11.1.")
    v6 = api.admin.create("networks", name="ext6", **{"router:external": True})
    api.admin.create(
        "subnets", network_id=v6["id"], cidr="fd00:99::/64", ip_version=6, enable_dhcp=False
    )
    error(
        api.demo.post("/floatingips", json={"floatingip": {"floating_network_id": v6["id"]}}),
        400,
        "ExternalIpAddressExhausted",
    )


def test_network_must_be_external(api: Api) -> None:
    net, _ = private_subnet(api.demo, "10.12.0.0/24")
    body = {"floatingip": {"floating_network_id": net["id"]}}
    assert "not a valid external network" in error(
        api.demo.post("/floatingips", json=body), 400, "BadRequest"
    )
    missing = {"floatingip": {"floating_network_id": "8d2b1c7e-0000-4000-8000-000000000000"}}
    error(api.demo.post("/floatingips", json=missing), 404, "NetworkNotFound")
    error(api.demo.post("/floatingips", json={"floatingip": {}}), 400, "BadRequest")


def test_association_needs_a_router_to_the_external_network(api: Api, topo: Topology) -> None:
    unrouted_net, _ = private_subnet(api.demo, "10.13.0.0/24")
    port = api.demo.create("ports", network_id=unrouted_net["id"])
    fip = allocate(api, topo)
    error(associate(api, fip["id"], port["id"]), 404, "ExternalGatewayForFloatingIPNotFound")
    # A router with an interface there but no gateway is not enough either.
    router = api.demo.create("routers", name="no-gw")
    add_interface(api.demo, router["id"], subnet_id=port["fixed_ips"][0]["subnet_id"])
    error(associate(api, fip["id"], port["id"]), 404, "ExternalGatewayForFloatingIPNotFound")


def indirect_port(api: Api, topo: Topology) -> tuple[dict, dict]:
    """A port on a subnet that only an inner router (no gateway) joins to the project's subnet,
    where topo.router, with its gateway on ext_net, reaches it by an extra route."""
    net, sub = private_subnet(api.demo, "172.16.102.0/24")
    inner = api.demo.create("routers", name="inner")
    add_interface(api.demo, inner["id"], subnet_id=sub["id"])
    transit = api.demo.create("ports", network_id=topo.net["id"], name="transit")
    add_interface(api.demo, inner["id"], port_id=transit["id"])
    route = {"destination": sub["cidr"], "nexthop": transit["fixed_ips"][0]["ip_address"]}
    api.demo.put(f"/routers/{topo.router['id']}", json={"router": {"routes": [route]}})
    return api.demo.create("ports", network_id=net["id"], name="inner-vm"), inner


def test_a_named_router_holds_a_floating_ip_it_reaches_by_a_route(api: Api, topo: Topology) -> None:
    port, _ = indirect_port(api, topo)
    subnet_id = port["fixed_ips"][0]["subnet_id"]
    body = {"floatingip": {"floating_network_id": topo.ext_net["id"], "port_id": port["id"]}}
    # Not named, the router is looked for among those on the port's subnet, as before.
    assert error(
        api.demo.post("/floatingips", json=body), 404, "ExternalGatewayForFloatingIPNotFound"
    ) == (
        f"External network {topo.ext_net['id']} is not reachable from subnet {subnet_id}. "
        f"Therefore, cannot associate Port {port['id']} with a Floating IP."
    )
    body["floatingip"]["router_id"] = topo.router["id"]
    fip = api.demo.post("/floatingips", json=body).json()["floatingip"]
    assert (fip["router_id"], fip["port_id"]) == (topo.router["id"], port["id"])
    assert fip["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    assert (
        api.demo.get(f"/floatingips/{fip['id']}").json()["floatingip"]["router_id"]
        == (topo.router["id"])
    )
    # The hosting router keeps its gateway while it holds the floating IP.
    dropped = {"router": {"external_gateway_info": None}}
    error(
        api.demo.put(f"/routers/{topo.router['id']}", json=dropped),
        409,
        "RouterExternalGatewayInUseByFloatingIp",
    )
    # Disassociated, it is associated again by an update naming the router.
    released = associate(api, fip["id"], None).json()["floatingip"]
    assert released["router_id"] is None
    again = associate(api, fip["id"], port["id"], router_id=topo.router["id"])
    assert again.status_code == 200, again.text
    assert again.json()["floatingip"]["router_id"] == topo.router["id"]


def test_router_id_alone_moves_the_association_to_that_router(api: Api, topo: Topology) -> None:
    fip = allocate(api, topo, port_id=topo.port["id"])
    other = api.demo.create(
        "routers", name="other", external_gateway_info={"network_id": topo.ext_net["id"]}
    )
    moved = api.demo.put(
        f"/floatingips/{fip['id']}", json={"floatingip": {"router_id": other["id"]}}
    ).json()["floatingip"]
    assert (moved["router_id"], moved["port_id"]) == (other["id"], topo.port["id"])
    assert moved["fixed_ip_address"] == fip["fixed_ip_address"] and moved["status"] == "DOWN"
    # Named as null, the router is found again among those on the port's subnet.
    back = api.demo.put(f"/floatingips/{fip['id']}", json={"floatingip": {"router_id": None}})
    assert back.json()["floatingip"]["router_id"] == topo.router["id"]


def test_a_named_router_needs_its_gateway_on_the_floating_network(api: Api, topo: Topology) -> None:
    port, inner = indirect_port(api, topo)
    other_ext = api.admin.create("networks", name="ext2", **{"router:external": True})
    api.admin.create("subnets", network_id=other_ext["id"], cidr="10.10.20.0/24", ip_version=4)
    elsewhere = api.demo.create(
        "routers", name="elsewhere", external_gateway_info={"network_id": other_ext["id"]}
    )
    fip = allocate(api, topo)
    for router in (inner, elsewhere):
        refused = associate(api, fip["id"], port["id"], router_id=router["id"])
        assert refused.json() == {
            "NeutronError": {
                "type": "FloatingIPRouterWithoutGateway",
                "message": (
                    f"Router {router['id']} has no gateway on external network "
                    f"{topo.ext_net['id']}. Therefore, it cannot hold a Floating IP of that "
                    "network."
                ),
                "detail": "",
            }
        }
        assert refused.status_code == 409
    body = {
        "floatingip": {
            "floating_network_id": topo.ext_net["id"],
            "port_id": port["id"],
            "router_id": inner["id"],
        }
    }
    error(api.demo.post("/floatingips", json=body), 409, "FloatingIPRouterWithoutGateway")
    # Nothing changed: the refused floating IPs are neither associated nor created.
    [only] = api.demo.get("/floatingips").json()["floatingips"]
    assert (only["id"], only["port_id"], only["router_id"]) == (fip["id"], None, None)


def test_a_named_router_must_be_one_the_project_sees(api: Api, topo: Topology) -> None:
    port, _ = indirect_port(api, topo)
    hidden = api.demo2.create(
        "routers", name="hidden", external_gateway_info={"network_id": topo.ext_net["id"]}
    )
    fip = allocate(api, topo)
    missing = "0b6e1a9c-3f4d-4c8e-9a51-7d2f0c1e8b34"
    for router_id in (hidden["id"], missing):
        refused = associate(api, fip["id"], port["id"], router_id=router_id)
        assert error(refused, 404, "RouterNotFound") == f"Router {router_id} could not be found."
    assert error(associate(api, fip["id"], port["id"], router_id="r1"), 400, "InvalidInput") == (
        "Invalid input for operation: 'r1' is not a valid UUID."
    )
    assert error(
        associate(api, fip["id"], None, router_id=topo.router["id"]), 400, "BadRequest"
    ) == ("Bad floatingip request: router_id cannot be specified without a port_id.")
    assert api.demo.get(f"/floatingips/{fip['id']}").json()["floatingip"]["port_id"] is None


def test_one_floating_ip_per_fixed_ip(api: Api, topo: Topology) -> None:
    allocate(api, topo, port_id=topo.port["id"])
    second = allocate(api, topo)
    error(associate(api, second["id"], topo.port["id"]), 409, "FloatingIPPortAlreadyAssociated")
    body = {"floatingip": {"floating_network_id": topo.ext_net["id"], "port_id": topo.port["id"]}}
    error(api.demo.post("/floatingips", json=body), 409, "FloatingIPPortAlreadyAssociated")


def test_fixed_ip_address_choice(api: Api, topo: Topology) -> None:
    subnet_id = topo.subnet["id"]
    two = api.demo.create(
        "ports",
        network_id=topo.net["id"],
        fixed_ips=[
            {"subnet_id": subnet_id, "ip_address": "172.16.101.50"},
            {"subnet_id": subnet_id, "ip_address": "172.16.101.51"},
        ],
    )
    fip = allocate(api, topo)
    assert "multiple fixed IPv4" in error(associate(api, fip["id"], two["id"]), 400, "BadRequest")
    error(associate(api, fip["id"], two["id"], fixed_ip_address="172.16.101.99"), 400, "BadRequest")
    chosen = associate(api, fip["id"], two["id"], fixed_ip_address="172.16.101.51").json()[
        "floatingip"
    ]
    assert chosen["fixed_ip_address"] == "172.16.101.51"
    # Each fixed IP of a port may have its own floating IP.
    other = allocate(api, topo, port_id=two["id"], fixed_ip_address="172.16.101.50")
    assert other["fixed_ip_address"] == "172.16.101.50"
    no_port = api.demo.put(
        f"/floatingips/{fip['id']}", json={"floatingip": {"fixed_ip_address": "172.16.101.51"}}
    )
    error(no_port, 400, "BadRequest")


def test_an_ipv6_load_balancer_vip_takes_no_floating_ip(api: Api, topo: Topology) -> None:
    """Floating IPs are IPv4: Neutron refuses a port with only an IPv6 address (an IPv6 VIP's)
    and an IPv6 fixed_ip_address."""
    v6 = api.demo.create("subnets", network_id=topo.net["id"], ip_version=6, cidr="fd00:7::/64")
    lb = octavia(api.demo).create("loadbalancers", vip_subnet_id=v6["id"])
    fip = allocate(api, topo)
    refused = associate(api, fip["id"], lb["vip_port_id"])
    assert error(refused, 400, "BadRequest") == (
        f"Bad floatingip request: Cannot add floating IP to port {lb['vip_port_id']} that has "
        "no fixed IPv4 addresses."
    )
    refused = associate(api, fip["id"], lb["vip_port_id"], fixed_ip_address=lb["vip_address"])
    assert error(refused, 400, "BadRequest") == (
        f"Bad floatingip request: Cannot process floating IP association with "
        f"{lb['vip_address']}, since that is not an IPv4 address."
    )
    assert api.demo.get(f"/floatingips/{fip['id']}").json()["floatingip"]["port_id"] is None


def test_cannot_use_another_projects_port(api: Api, topo: Topology) -> None:
    """demo2 routes its own subnet to ext_net; demo's port is still out of its reach."""
    routed_topology(api, api.demo2, "10.40.0.0/24", ext=(topo.ext_net, topo.ext_subnet))
    fip2 = api.demo2.create("floatingips", floating_network_id=topo.ext_net["id"])
    error(
        api.demo2.put(
            f"/floatingips/{fip2['id']}", json={"floatingip": {"port_id": topo.port["id"]}}
        ),
        404,
        "PortNotFound",
    )
    # A port on demo's network that demo2 owns is visible to demo, but not demo's to associate.
    shared_port = api.admin.create(
        "ports", network_id=topo.net["id"], project_id=api.demo2.project_id
    )
    fip = allocate(api, topo)
    error(associate(api, fip["id"], shared_port["id"]), 400, "BadRequest")


def test_floating_ips_are_private_to_their_project(api: Api, topo: Topology) -> None:
    fip = allocate(api, topo)
    error(api.demo2.get(f"/floatingips/{fip['id']}"), 404, "FloatingIPNotFound")
    error(
        api.demo2.put(f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}}),
        404,
        "FloatingIPNotFound",
    )
    error(api.demo2.delete(f"/floatingips/{fip['id']}"), 404, "FloatingIPNotFound")
    assert api.demo2.get("/floatingips").json()["floatingips"] == []
    assert [f["id"] for f in api.admin.get("/floatingips").json()["floatingips"]] == [fip["id"]]


def test_delete_releases_address(api: Api) -> None:
    ext = external_network(
        api, "10.14.0.0/29", allocation_pools=[{"start": "10.14.0.2", "end": "10.14.0.2"}]
    )
    fip = api.demo.create("floatingips", floating_network_id=ext[0]["id"])
    assert api.demo.delete(f"/floatingips/{fip['id']}").status_code == 204
    assert api.admin.get("/ports", params={"device_id": fip["id"]}).json()["ports"] == []
    again = api.demo.create("floatingips", floating_network_id=ext[0]["id"])
    assert again["floating_ip_address"] == fip["floating_ip_address"]


def test_deleting_the_fixed_port_disassociates(api: Api, topo: Topology) -> None:
    fip = allocate(api, topo, port_id=topo.port["id"])
    assert api.demo.delete(f"/ports/{topo.port['id']}").status_code == 204
    body = api.demo.get(f"/floatingips/{fip['id']}").json()["floatingip"]
    assert (
        body["port_id"] is None and body["fixed_ip_address"] is None and body["router_id"] is None
    )


def test_router_keeps_interfaces_used_by_floating_ips(api: Api, topo: Topology) -> None:
    fip = allocate(api, topo, port_id=topo.port["id"])
    blocked = remove_interface(api.demo, topo.router["id"], subnet_id=topo.subnet["id"])
    error(blocked, 409, "RouterInterfaceInUseByFloatingIP")
    error(api.demo.delete(f"/routers/{topo.router['id']}"), 409, "RouterInUse")
    associate(api, fip["id"], None)
    assert (
        remove_interface(api.demo, topo.router["id"], subnet_id=topo.subnet["id"]).status_code
        == 200
    )


def test_list_filters(api: Api, topo: Topology) -> None:
    bound = allocate(api, topo, port_id=topo.port["id"])
    free = allocate(api, topo)

    def ids(**params: str) -> list[str]:
        return [f["id"] for f in api.demo.get("/floatingips", params=params).json()["floatingips"]]

    assert ids(port_id=topo.port["id"]) == [bound["id"]]
    assert ids(router_id=topo.router["id"]) == [bound["id"]]
    assert ids(fixed_ip_address=bound["fixed_ip_address"]) == [bound["id"]]
    assert ids(floating_ip_address=free["floating_ip_address"]) == [free["id"]]
    assert sorted(ids(floating_network_id=topo.ext_net["id"])) == sorted([bound["id"], free["id"]])
    assert sorted(ids(status="DOWN")) == sorted([bound["id"], free["id"]])
    assert ids(status="ACTIVE") == []
    fields = api.demo.get("/floatingips", params={"fields": "floating_ip_address"}).json()[
        "floatingips"
    ]
    assert all(set(f) == {"floating_ip_address"} for f in fields)


def test_floating_ip_quota_under_concurrency(api: Api) -> None:
    ext_net, _ = external_network(api)
    api.admin.put(f"/quotas/{api.demo.project_id}", json={"quota": {"floatingip": 5}})

    def attempt(_: int) -> int:
        body = {"floatingip": {"floating_network_id": ext_net["id"]}}
        return api.demo.post("/floatingips", json=body).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(attempt, range(16)))
    assert codes.count(201) == 5 and codes.count(409) == 11
    assert len(api.demo.get("/floatingips").json()["floatingips"]) == 5


def test_status_follows_the_revision_its_routers_host_applied(api: Api, topo: Topology) -> None:
    """ACTIVE once the host of its router has applied the floating IP's latest change (DOWN
    while it fails it); the router itself does not change, nor does its revision."""
    heartbeat(api, "h1")  # the only L3 agent: it takes the router
    heartbeat(api, "h2")
    router_revision = api.demo.get(f"/routers/{topo.router['id']}").json()["router"][
        "revision_number"
    ]
    before = internal(api, "/snapshot").json()["revision"]
    fip = allocate(api, topo, port_id=topo.port["id"])
    head = internal(api, "/snapshot").json()["revision"]

    def report(host: str, revision: int, failed: list[str] | tuple[()] = ()) -> str:
        body = {"revision": revision, "failed": {"floatingips": list(failed)}}
        assert internal(api, f"/agents/{host}/report", method="POST", json=body).status_code == 204
        return str(api.demo.get(f"/floatingips/{fip['id']}").json()["floatingip"]["status"])

    assert fip["status"] == "DOWN"
    assert report("h1", before) == "DOWN"  # not applied there yet
    assert report("h2", head) == "DOWN"  # not its router's host
    assert report("h1", head, failed=[fip["id"]]) == "DOWN"
    assert report("h1", head) == "ACTIVE"  # the same revision, applied after all
    assert report("h1", head) == "ACTIVE"  # a heartbeat repeats it
    moved = associate(api, fip["id"], None).json()["floatingip"]  # type: ignore[attr-defined]
    assert moved["status"] == "DOWN"
    assert report("h1", internal(api, "/snapshot").json()["revision"]) == "DOWN"
    router = api.demo.get(f"/routers/{topo.router['id']}").json()["router"]
    assert router["revision_number"] == router_revision


def sqlite_steps(core: Neutrino) -> Callable[[], int]:
    """How many steps of its virtual machine SQLite has run for the service so far: the work its
    statements did, rows read included, whatever the machine's load."""
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    def count(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.set_progress_handler(step, 1)

    core.db.engine.dispose()  # the connections made from now on count
    event.listen(core.db.engine, "connect", count)
    return lambda: steps


@pytest.mark.parametrize("backend", ["sqlite"])  # counts the steps of SQLite's virtual machine
def test_associated_create_costs_the_same_on_a_crowded_subnet(
    api: Api, topo: Topology, core: Neutrino
) -> None:
    """A floating IP made for a port reads as much of the database with 200 other ports on the
    port's subnet as with none: it finds the router between them from the router's interfaces,
    not among the subnet's addresses (which made bulk creates of thousands slow down as they
    went)."""
    steps = sqlite_steps(core)

    def associated_create() -> int:
        port = api.demo.create("ports", network_id=topo.net["id"])
        before = steps()
        allocate(api, topo, port_id=port["id"])
        return steps() - before

    alone = associated_create()
    others = [{"network_id": topo.net["id"]}] * 200
    api.admin.post("/ports", json={"ports": others}).raise_for_status()
    crowded = associated_create()
    assert crowded < alone * 1.1
