"""Routers: interfaces, external gateway, static routes, and what they forbid (S2, S3)."""

from __future__ import annotations

import ipaddress

from neutrino import ipam
from tests.api.l3 import (
    add_interface,
    external_network,
    private_subnet,
    remove_interface,
    routed_topology,
)
from tests.conftest import Api
from tests.conftest import expect_error as error

MISSING = "8d2b1c7e-0000-4000-8000-000000000000"


def router_ports(api: Api, router_id: str) -> list[dict]:
    return api.admin.get("/ports", params={"device_id": router_id}).json()["ports"]


def test_create_defaults(api: Api) -> None:
    router = api.demo.create("routers", name="router_100_101")
    assert router["admin_state_up"] is True and router["status"] == "ACTIVE"
    assert router["external_gateway_info"] is None and router["routes"] == []
    assert router["project_id"] == router["tenant_id"] == api.demo.project_id
    assert api.demo.get(f"/routers/{router['id']}").json()["router"]["name"] == "router_100_101"


def test_s2_router_connects_two_subnets(api: Api) -> None:
    """Each interface takes its subnet's gateway IP, on a port owned by the router."""
    router = api.demo.create("routers", name="router_100_101")
    for cidr in ("172.16.100.0/24", "172.16.101.0/24"):
        net, sub = private_subnet(api.demo, cidr)
        response = add_interface(api.demo, router["id"], subnet_id=sub["id"])
        assert response.status_code == 200, response.text
        info = response.json()
        assert set(info) == {
            "id",
            "tenant_id",
            "project_id",
            "port_id",
            "subnet_id",
            "subnet_ids",
            "network_id",
        }
        assert (
            info["id"] == router["id"]
            and info["subnet_id"] == sub["id"]
            and info["subnet_ids"] == [sub["id"]]
        )
        assert info["network_id"] == net["id"] and info["project_id"] == api.demo.project_id
        port = api.demo.get(f"/ports/{info['port_id']}").json()["port"]
        assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": sub["gateway_ip"]}]
        assert (
            port["device_owner"] == "network:router_interface" and port["device_id"] == router["id"]
        )
        assert port["security_groups"] == [] and port["port_security_enabled"] is False
    assert len(router_ports(api, router["id"])) == 2
    assert api.demo.get(f"/routers/{router['id']}").json()["router"]["revision_number"] == 3


def test_interface_rules(api: Api) -> None:
    router = api.demo.create("routers", name="r")
    _net, sub = private_subnet(api.demo, "10.1.0.0/24")
    assert add_interface(api.demo, router["id"], subnet_id=sub["id"]).status_code == 200
    again = add_interface(api.demo, router["id"], subnet_id=sub["id"])
    assert "already has a port on subnet" in error(again, 400, "BadRequest")
    _, overlapping = private_subnet(api.demo, "10.1.0.128/25")
    assert "overlaps" in error(
        add_interface(api.demo, router["id"], subnet_id=overlapping["id"]), 400, "BadRequest"
    )
    _, no_gateway = private_subnet(api.demo, "10.2.0.0/24", gateway_ip=None)
    assert "gateway" in error(
        add_interface(api.demo, router["id"], subnet_id=no_gateway["id"]), 400, "BadRequest"
    )
    error(add_interface(api.demo, router["id"]), 400, "BadRequest")
    error(
        add_interface(api.demo, router["id"], subnet_id=sub["id"], port_id=MISSING),
        400,
        "BadRequest",
    )
    error(add_interface(api.demo, router["id"], subnet_id=MISSING), 404, "SubnetNotFound")
    error(add_interface(api.demo, MISSING, subnet_id=sub["id"]), 404, "RouterNotFound")


def test_interface_by_port(api: Api) -> None:
    router = api.demo.create("routers", name="r")
    net, sub = private_subnet(api.demo, "10.3.0.0/24")
    port = api.demo.create("ports", network_id=net["id"], fixed_ips=[{"ip_address": "10.3.0.10"}])
    info = add_interface(api.demo, router["id"], port_id=port["id"]).json()
    assert info["port_id"] == port["id"] and info["subnet_ids"] == [sub["id"]]
    adopted = api.demo.get(f"/ports/{port['id']}").json()["port"]
    assert (
        adopted["device_owner"] == "network:router_interface"
        and adopted["device_id"] == router["id"]
    )
    assert adopted["fixed_ips"][0]["ip_address"] == "10.3.0.10" and adopted["security_groups"] == []
    # A port with a device is in use, by this router or any other device.
    other = api.demo.create("routers", name="other")
    error(add_interface(api.demo, other["id"], port_id=port["id"]), 409, "PortInUse")
    busy = api.demo.create("ports", network_id=net["id"], device_id="some-vm")
    error(add_interface(api.demo, other["id"], port_id=busy["id"]), 409, "PortInUse")
    # Removing by port deletes the port, as in Neutron.
    removed = remove_interface(api.demo, router["id"], port_id=port["id"])
    assert removed.status_code == 200 and removed.json()["port_id"] == port["id"]
    error(api.demo.get(f"/ports/{port['id']}"), 404, "PortNotFound")


def test_remove_interface(api: Api) -> None:
    router = api.demo.create("routers", name="r")
    _, sub = private_subnet(api.demo, "10.4.0.0/24")
    _, other_sub = private_subnet(api.demo, "10.5.0.0/24")
    info = add_interface(api.demo, router["id"], subnet_id=sub["id"]).json()
    error(
        remove_interface(api.demo, router["id"], subnet_id=other_sub["id"]),
        404,
        "RouterInterfaceNotFoundForSubnet",
    )
    error(remove_interface(api.demo, router["id"], subnet_id=MISSING), 404, "SubnetNotFound")
    error(remove_interface(api.demo, router["id"], port_id=MISSING), 404, "RouterInterfaceNotFound")
    mismatch = remove_interface(
        api.demo, router["id"], port_id=info["port_id"], subnet_id=other_sub["id"]
    )
    error(mismatch, 400, "SubnetMismatchForPort")
    removed = remove_interface(api.demo, router["id"], subnet_id=sub["id"])
    assert removed.status_code == 200 and removed.json() == info
    assert router_ports(api, router["id"]) == []


def test_interface_on_a_shared_network_belongs_to_the_router(api: Api) -> None:
    shared = api.admin.create("networks", name="shared", shared=True)
    sub = api.admin.create("subnets", network_id=shared["id"], cidr="10.50.0.0/24", ip_version=4)
    router = api.demo.create("routers", name="r")
    # As in Neutron, a member may not take the gateway address of a network shared with all.
    refused = error(add_interface(api.demo, router["id"], subnet_id=sub["id"]), 400, "BadRequest")
    assert refused == (
        "Bad router request: Cannot add interface to router because subnet "
        f"{sub['id']} is not owned by project making the request."
    )
    info = add_interface(api.admin, router["id"], subnet_id=sub["id"]).json()
    port = api.demo.get(f"/ports/{info['port_id']}").json()["port"]
    assert port["project_id"] == api.demo.project_id and port["network_id"] == shared["id"]


def test_router_ports_cannot_be_deleted_directly(api: Api) -> None:
    router = api.demo.create("routers", name="r")
    _, sub = private_subnet(api.demo, "10.6.0.0/24")
    info = add_interface(api.demo, router["id"], subnet_id=sub["id"]).json()
    error(api.demo.delete(f"/ports/{info['port_id']}"), 409, "PortInUse")


def test_a_router_interface_keeps_its_ipv4_address(api: Api) -> None:
    router = api.demo.create("routers", name="r")
    net, sub = private_subnet(api.demo, "10.7.0.0/24")
    v6 = api.demo.create(
        "subnets", network_id=net["id"], cidr="fd00:7::/64", ip_version=6, gateway_ip=None
    )
    info = add_interface(api.demo, router["id"], subnet_id=sub["id"]).json()
    path = f"/ports/{info['port_id']}"
    for fixed_ips in (
        [{"subnet_id": sub["id"], "ip_address": "10.7.0.9"}],
        [{"subnet_id": sub["id"], "ip_address": "10.7.0.1"}, {"ip_address": "10.7.0.9"}],
        [],
    ):
        refused = api.demo.put(path, json={"port": {"fixed_ips": fixed_ips}})
        assert error(refused, 400, "BadRequest") == (
            f"Bad ports request: IP updates for port {info['port_id']} are not allowed."
        )
    # Naming only its subnet keeps the address it has there.
    same = api.demo.put(path, json={"port": {"fixed_ips": [{"subnet_id": sub["id"]}]}})
    assert same.status_code == 200, same.text
    assert [f["ip_address"] for f in api.demo.get(path).json()["port"]["fixed_ips"]] == ["10.7.0.1"]
    # Its IPv6 addresses may change.
    both = [{"subnet_id": sub["id"], "ip_address": "10.7.0.1"}, {"subnet_id": v6["id"]}]
    added = api.demo.put(path, json={"port": {"fixed_ips": both}})
    assert added.status_code == 200, added.text
    assert {f["subnet_id"] for f in added.json()["port"]["fixed_ips"]} == {sub["id"], v6["id"]}


def test_delete_router_and_what_it_holds(api: Api) -> None:
    ext_net, _ = external_network(api)
    router = api.demo.create(
        "routers", name="r", external_gateway_info={"network_id": ext_net["id"]}
    )
    net, sub = private_subnet(api.demo, "10.7.0.0/24")
    add_interface(api.demo, router["id"], subnet_id=sub["id"])
    error(api.demo.delete(f"/routers/{router['id']}"), 409, "RouterInUse")
    error(api.demo.delete(f"/subnets/{sub['id']}"), 409, "SubnetInUse")
    error(api.demo.delete(f"/networks/{net['id']}"), 409, "NetworkInUse")
    remove_interface(api.demo, router["id"], subnet_id=sub["id"])
    assert api.demo.delete(f"/routers/{router['id']}").status_code == 204
    # The gateway port went with the router.
    assert router_ports(api, router["id"]) == []
    error(api.demo.get(f"/routers/{router['id']}"), 404, "RouterNotFound")
    assert api.demo.delete(f"/networks/{net['id']}").status_code == 204


def test_s3_gateway_on_external_network(api: Api) -> None:
    ext_net, ext_sub = external_network(api)
    router = api.demo.create("routers", name="r")
    response = api.demo.put(
        f"/routers/{router['id']}",
        json={"router": {"external_gateway_info": {"network_id": ext_net["id"]}}},
    )
    assert response.status_code == 200, response.text
    gateway = response.json()["router"]["external_gateway_info"]
    assert gateway == {
        "network_id": ext_net["id"],
        "enable_snat": True,
        "external_fixed_ips": [{"subnet_id": ext_sub["id"], "ip_address": "10.10.10.2"}],
    }
    [port] = router_ports(api, router["id"])
    assert port["device_owner"] == "network:router_gateway" and port["project_id"] == ""
    assert port["port_security_enabled"] is False and port["security_groups"] == []
    # The gateway port is nobody's: the project neither sees it nor pays quota for it.
    assert api.demo.get("/ports", params={"device_id": router["id"]}).json()["ports"] == []
    # Clearing: `{}` (what `openstack router unset --external-gateway` sends) or null.
    cleared = api.demo.put(
        f"/routers/{router['id']}", json={"router": {"external_gateway_info": {}}}
    ).json()["router"]
    assert cleared["external_gateway_info"] is None and router_ports(api, router["id"]) == []
    api.demo.put(
        f"/routers/{router['id']}",
        json={"router": {"external_gateway_info": {"network_id": ext_net["id"]}}},
    )
    cleared = api.demo.put(
        f"/routers/{router['id']}", json={"router": {"external_gateway_info": None}}
    ).json()["router"]
    assert cleared["external_gateway_info"] is None


def test_a_gateway_takes_an_address_on_each_ipv6_subnet_of_the_external_network(
    api: Api,
) -> None:
    """As in Neutron: one address from the IPv4 subnets, one from those whose IPv6 addresses
    are assigned, and the EUI-64 one on each automatic-address subnet."""
    ext_net, ext_sub = external_network(api)
    assigned = api.admin.create(
        "subnets",
        network_id=ext_net["id"],
        cidr="2001:db8:e::/64",
        ip_version=6,
        enable_dhcp=False,
    )
    router = api.demo.create(
        "routers", name="r", external_gateway_info={"network_id": ext_net["id"]}
    )
    [port] = router_ports(api, router["id"])
    v4, v6 = router["external_gateway_info"]["external_fixed_ips"]
    assert v4 == {"subnet_id": ext_sub["id"], "ip_address": "10.10.10.2"}
    assert v6["subnet_id"] == assigned["id"]
    assert ipaddress.ip_address(v6["ip_address"]) in ipaddress.ip_network(assigned["cidr"])
    # A SLAAC subnet added later gives the gateway its EUI-64 address there, as to any port but
    # a router interface; deleting the subnet takes it back.
    slaac = api.admin.create(
        "subnets",
        network_id=ext_net["id"],
        cidr="2001:db8:f::/64",
        ip_version=6,
        ipv6_address_mode="slaac",
    )
    eui64 = str(ipam.eui64(ipaddress.IPv6Network(slaac["cidr"]), port["mac_address"]))
    shown = api.demo.get(f"/routers/{router['id']}").json()["router"]["external_gateway_info"]
    assert shown["external_fixed_ips"][2:] == [{"subnet_id": slaac["id"], "ip_address": eui64}]
    assert api.admin.delete(f"/subnets/{slaac['id']}").status_code == 204
    shown = api.demo.get(f"/routers/{router['id']}").json()["router"]["external_gateway_info"]
    assert len(shown["external_fixed_ips"]) == 2
    # A gateway set anew on a network with a SLAAC subnet takes its EUI-64 address at once.
    slaac = api.admin.create(
        "subnets",
        network_id=ext_net["id"],
        cidr="2001:db8:f::/64",
        ip_version=6,
        ipv6_address_mode="slaac",
    )
    other = api.demo.create(
        "routers", name="r2", external_gateway_info={"network_id": ext_net["id"]}
    )
    [other_port] = router_ports(api, other["id"])
    eui64 = str(ipam.eui64(ipaddress.IPv6Network(slaac["cidr"]), other_port["mac_address"]))
    assert {"subnet_id": slaac["id"], "ip_address": eui64} in other["external_gateway_info"][
        "external_fixed_ips"
    ]


def test_gateway_rules(api: Api) -> None:
    ext_net, ext_sub = external_network(api)
    internal, _ = private_subnet(api.demo, "10.8.0.0/24")
    not_external = api.demo.post(
        "/routers",
        json={"router": {"name": "r", "external_gateway_info": {"network_id": internal["id"]}}},
    )
    assert "not an external network" in error(not_external, 400, "BadRequest")
    unknown = api.demo.post(
        "/routers", json={"router": {"external_gateway_info": {"network_id": MISSING}}}
    )
    error(unknown, 404, "NetworkNotFound")
    # enable_snat and chosen external addresses are the admin's (Neutron's default policy).
    snat = api.demo.post(
        "/routers",
        json={
            "router": {"external_gateway_info": {"network_id": ext_net["id"], "enable_snat": False}}
        },
    )
    error(snat, 403, "PolicyNotAuthorized")
    fixed = {"network_id": ext_net["id"], "external_fixed_ips": [{"ip_address": "10.10.10.50"}]}
    error(
        api.demo.post("/routers", json={"router": {"external_gateway_info": fixed}}),
        403,
        "PolicyNotAuthorized",
    )
    router = api.admin.create(
        "routers", name="r", external_gateway_info={**fixed, "enable_snat": False}
    )
    assert router["external_gateway_info"]["enable_snat"] is False
    assert router["external_gateway_info"]["external_fixed_ips"] == [
        {"subnet_id": ext_sub["id"], "ip_address": "10.10.10.50"}
    ]
    taken = api.admin.post("/routers", json={"router": {"external_gateway_info": fixed}})
    error(taken, 409, "IpAddressAlreadyAllocated")
    # The gateway subnet and an interface subnet may not overlap.
    _, overlapping = private_subnet(api.admin, "10.10.10.0/25")
    error(add_interface(api.admin, router["id"], subnet_id=overlapping["id"]), 400, "BadRequest")
    # On a network without subnets the gateway has no address yet, as in Neutron.
    empty = api.admin.create("networks", name="empty", **{"router:external": True})
    bare = api.demo.create("routers", name="r", external_gateway_info={"network_id": empty["id"]})
    gateway = bare["external_gateway_info"]
    assert gateway["network_id"] == empty["id"] and gateway["external_fixed_ips"] == []


def test_gateway_in_use_by_floating_ips(api: Api) -> None:
    topo = routed_topology(api)
    fip = api.demo.create(
        "floatingips", floating_network_id=topo.ext_net["id"], port_id=topo.port["id"]
    )
    clear = api.demo.put(
        f"/routers/{topo.router['id']}", json={"router": {"external_gateway_info": None}}
    )
    error(clear, 409, "RouterExternalGatewayInUseByFloatingIp")
    api.demo.put(f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}})
    clear = api.demo.put(
        f"/routers/{topo.router['id']}", json={"router": {"external_gateway_info": None}}
    )
    assert clear.status_code == 200


def test_routes(api: Api) -> None:
    router = api.demo.create("routers", name="r")
    _, sub = private_subnet(api.demo, "10.9.0.0/24")
    add_interface(api.demo, router["id"], subnet_id=sub["id"])
    routes = [{"destination": "192.168.0.0/16", "nexthop": "10.9.0.254"}]
    updated = api.demo.put(f"/routers/{router['id']}", json={"router": {"routes": routes}})
    assert updated.status_code == 200 and updated.json()["router"]["routes"] == routes

    def put(route: dict) -> object:
        return api.demo.put(f"/routers/{router['id']}", json={"router": {"routes": [route]}})

    assert "not connected" in error(
        put({"destination": "192.168.0.0/16", "nexthop": "10.99.0.1"}), 400, "InvalidRoutes"
    )
    assert "used by router" in error(
        put({"destination": "192.168.0.0/16", "nexthop": "10.9.0.1"}), 400, "InvalidRoutes"
    )
    error(put({"destination": "192.168.0.1/16", "nexthop": "10.9.0.254"}), 400, "InvalidInput")
    error(put({"destination": "not-a-cidr", "nexthop": "10.9.0.254"}), 400, "InvalidInput")
    error(put({"destination": "fd00::/64", "nexthop": "10.9.0.254"}), 400, "InvalidRoutes")
    # An interface stays while a route needs it.
    error(
        remove_interface(api.demo, router["id"], subnet_id=sub["id"]),
        409,
        "RouterInterfaceInUseByRoute",
    )
    api.demo.put(f"/routers/{router['id']}", json={"router": {"routes": []}})
    api.demo.put(f"/routers/{router['id']}", json={"router": {"routes": routes}})
    cleared = api.demo.put(f"/routers/{router['id']}", json={"router": {"routes": None}})
    assert cleared.status_code == 200 and cleared.json()["router"]["routes"] == []  # null means []
    assert remove_interface(api.demo, router["id"], subnet_id=sub["id"]).status_code == 200
    error(api.demo.post("/routers", json={"router": {"routes": routes}}), 400, "BadRequest")


def test_atomic_route_changes(api: Api) -> None:
    router = api.demo.create("routers", name="r")
    _, sub = private_subnet(api.demo, "10.10.0.0/24")
    add_interface(api.demo, router["id"], subnet_id=sub["id"])
    one = {"destination": "192.168.1.0/24", "nexthop": "10.10.0.5"}
    two = {"destination": "192.168.2.0/24", "nexthop": "10.10.0.6"}

    def change(action: str, *routes: dict) -> object:
        return api.demo.put(
            f"/routers/{router['id']}/{action}", json={"router": {"routes": list(routes)}}
        )

    assert change("add_extraroutes", one).json()["router"]["routes"] == [one]
    assert change("add_extraroutes", one, two).json()["router"]["routes"] == [one, two]
    assert change("remove_extraroutes", one, {**one, "nexthop": "10.10.0.7"}).json()["router"][
        "routes"
    ] == [two]
    error(
        change("add_extraroutes", {"destination": "192.168.3.0/24", "nexthop": "10.77.0.1"}),
        400,
        "InvalidRoutes",
    )
    error(
        api.demo.put(f"/routers/{router['id']}/add_extraroutes", json={"routes": [one]}),
        400,
        "BadRequest",
    )


def test_update_and_list(api: Api) -> None:
    router = api.demo.create("routers", name="r")
    updated = api.demo.put(
        f"/routers/{router['id']}", json={"router": {"admin_state_up": False, "name": "r2"}}
    )
    body = updated.json()["router"]
    assert body["admin_state_up"] is False and body["name"] == "r2" and body["revision_number"] == 2
    stale = api.demo.put(
        f"/routers/{router['id']}",
        headers={"If-Match": "revision_number=1"},
        json={"router": {"name": "r3"}},
    )
    error(stale, 412, "RevisionNumberConstraintFailed")
    api.demo.create("routers", name="another")
    names = [
        r["name"] for r in api.demo.get("/routers", params={"sort_key": "name"}).json()["routers"]
    ]
    assert names == ["another", "r2"]
    assert [
        r["name"]
        for r in api.demo.get("/routers", params={"admin_state_up": "false"}).json()["routers"]
    ] == ["r2"]
    assert api.demo.put(f"/routers/{router['id']}/tags/blue").status_code == 201
    assert [
        r["id"] for r in api.demo.get("/routers", params={"tags": "blue"}).json()["routers"]
    ] == [router["id"]]


def test_routers_are_private_to_their_project(api: Api) -> None:
    router = api.demo.create("routers", name="mine")
    error(api.demo2.get(f"/routers/{router['id']}"), 404, "RouterNotFound")
    assert api.demo2.get("/routers").json()["routers"] == []
    error(
        api.demo2.put(f"/routers/{router['id']}", json={"router": {"name": "x"}}),
        404,
        "RouterNotFound",
    )
    error(api.demo2.delete(f"/routers/{router['id']}"), 404, "RouterNotFound")
    _, sub2 = private_subnet(api.demo2, "10.20.0.0/24")
    error(add_interface(api.demo2, router["id"], subnet_id=sub2["id"]), 404, "RouterNotFound")
    # Nor may a router take another project's subnet or port.
    error(add_interface(api.demo, router["id"], subnet_id=sub2["id"]), 404, "SubnetNotFound")
    port2 = api.demo2.create("ports", network_id=sub2["network_id"])
    error(add_interface(api.demo, router["id"], port_id=port2["id"]), 404, "PortNotFound")
    assert {r["id"] for r in api.admin.get("/routers").json()["routers"]} == {router["id"]}


def test_router_quota(api: Api) -> None:
    api.admin.put(f"/quotas/{api.demo.project_id}", json={"quota": {"router": 1}})
    api.demo.create("routers", name="one")
    error(api.demo.post("/routers", json={"router": {"name": "two"}}), 409, "OverQuota")


def test_router_changes_reach_the_feed(api: Api, core) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from neutrino.db import schema

    router = api.demo.create("routers", name="r")
    _, sub = private_subnet(api.demo, "10.30.0.0/24")
    add_interface(api.demo, router["id"], subnet_id=sub["id"])
    with core.db.read() as conn:
        ops = (
            conn.execute(
                select(schema.changes.c.op)
                .where(
                    schema.changes.c.resource_type == "router",
                    schema.changes.c.resource_id == router["id"],
                )
                .order_by(schema.changes.c.revision)
            )
            .scalars()
            .all()
        )
    assert ops == ["create", "update"]


def test_extensions_listed(api: Api) -> None:
    aliases = {e["alias"] for e in api.demo.get("/extensions").json()["extensions"]}
    assert aliases >= {
        "router",
        "extraroute",
        "ext-gw-mode",
        "fip-port-details",
        "security-group",
        "security-groups-normalized-cidr",
        "quotas",
        "quota_details",
        "quota-check-limit",
        "extraroute-atomic",
        "flavors",
        "l3-flavors",
        "l3-conntrack-helper",
        "expose-l3-conntrack-helper",
        "metering",
    }


def test_ha_and_distributed_are_the_admins_and_change_only_while_down(api: Api) -> None:
    router = api.demo.create("routers", name="r")
    assert "ha" not in router and "distributed" not in router
    shown = api.admin.get(f"/routers/{router['id']}").json()["router"]
    assert (shown["ha"], shown["distributed"]) == (False, False)
    for key in ("ha", "distributed"):
        created = api.demo.post("/routers", json={"router": {key: True}})
        assert error(created, 403, "PolicyNotAuthorized") == (
            f"rule:create_router:{key} is disallowed by policy"
        )
        updated = api.demo.put(f"/routers/{router['id']}", json={"router": {key: False}})
        assert error(updated, 403, "PolicyNotAuthorized") == (
            f"rule:update_router:{key} is disallowed by policy"
        )

    # While the router is up, neither changes.
    path = f"/routers/{router['id']}"
    refused = api.admin.put(path, json={"router": {"distributed": True}})
    assert error(refused, 400, "BadRequest") == (
        "Bad router request: Cannot change the 'distributed' attribute of active routers. "
        "Please set router admin_state_up to False prior to upgrade."
    )
    refused = api.admin.put(path, json={"router": {"ha": True}})
    assert error(refused, 400, "BadRequest") == (
        "Bad router request: Cannot change HA attribute of active routers. "
        "Please set router admin_state_up to False prior to upgrade."
    )
    # Taking it down in the same request is enough for ha, not for distributed.
    both = api.admin.put(path, json={"router": {"admin_state_up": False, "distributed": True}})
    error(both, 400, "BadRequest")
    down = api.admin.put(path, json={"router": {"admin_state_up": False, "ha": True}})
    assert down.json()["router"]["ha"] is True
    changed = api.admin.put(path, json={"router": {"distributed": True}}).json()["router"]
    assert (changed["ha"], changed["distributed"], changed["admin_state_up"]) == (True, True, False)
    same = api.admin.put(path, json={"router": {"admin_state_up": True, "ha": None}})
    assert same.json()["router"]["ha"] is True
    assert api.admin.put(path, json={"router": {"distributed": True}}).status_code == 200
    assert "ha" not in api.demo.get(path).json()["router"]
    made = api.admin.create("routers", ha=True, distributed=None, admin_state_up=False)
    assert (made["ha"], made["distributed"]) == (True, False)
