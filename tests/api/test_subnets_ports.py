"""Subnets and ports: IPAM defaults, validation, fixed IPs, MACs, port security."""

from __future__ import annotations

import ipaddress

import pytest

from tests.conftest import Api
from tests.conftest import expect_error as error


@pytest.fixture
def net(api: Api) -> dict:
    return api.demo.create("networks", name="n")


def subnet(api: Api, network_id: str, cidr: str, **extra) -> dict:  # type: ignore[no-untyped-def]
    return api.demo.create(
        "subnets", network_id=network_id, cidr=cidr, ip_version=6 if ":" in cidr else 4, **extra
    )


def test_ipv4_defaults_as_neutron(api: Api, net: dict) -> None:
    s = subnet(api, net["id"], "192.168.77.0/24")
    assert s["gateway_ip"] == "192.168.77.1"
    assert s["allocation_pools"] == [{"start": "192.168.77.2", "end": "192.168.77.254"}]
    assert s["enable_dhcp"] is True and s["dns_nameservers"] == [] and s["host_routes"] == []
    assert api.demo.get(f"/networks/{net['id']}").json()["network"]["subnets"] == [s["id"]]


def test_ipv6_without_gateway_uses_subnet_router_address(api: Api, net: dict) -> None:
    s = subnet(api, net["id"], "fd00:77::/64")
    assert s["gateway_ip"] == "fd00:77::" and s["ip_version"] == 6


def test_subnet_validation(api: Api, net: dict) -> None:
    subnet(api, net["id"], "10.0.0.0/24")
    overlap = api.demo.post(
        "/subnets",
        json={"subnet": {"network_id": net["id"], "cidr": "10.0.0.128/25", "ip_version": 4}},
    )
    assert "overlaps" in error(overlap, 400, "InvalidInput")
    bad = api.demo.post(
        "/subnets",
        json={"subnet": {"network_id": net["id"], "cidr": "10.0.300.0/24", "ip_version": 4}},
    )
    error(bad, 400, "InvalidInput")
    mismatch = api.demo.post(
        "/subnets",
        json={"subnet": {"network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 6}},
    )
    error(mismatch, 400, "InvalidInput")
    outside = api.demo.post(
        "/subnets",
        json={
            "subnet": {
                "network_id": net["id"],
                "cidr": "10.8.0.0/24",
                "ip_version": 4,
                "allocation_pools": [{"start": "10.8.1.2", "end": "10.8.1.9"}],
            }
        },
    )
    error(outside, 400, "InvalidInput")
    gw_in_pool = api.demo.post(
        "/subnets",
        json={
            "subnet": {
                "network_id": net["id"],
                "cidr": "10.7.0.0/24",
                "ip_version": 4,
                "gateway_ip": "10.7.0.5",
                "allocation_pools": [{"start": "10.7.0.2", "end": "10.7.0.9"}],
            }
        },
    )
    error(gw_in_pool, 409, "GatewayConflictWithAllocationPools")
    missing = api.demo.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4}})
    assert "cidr" in error(missing, 400, "BadRequest")
    unknown_net = api.demo.post(
        "/subnets",
        json={
            "subnet": {
                "network_id": "8d2b1c7e-0000-4000-8000-000000000000",
                "cidr": "10.6.0.0/24",
                "ip_version": 4,
            }
        },
    )
    error(unknown_net, 404, "NetworkNotFound")


def test_subnet_update_pools_and_gateway(api: Api, net: dict) -> None:
    s = subnet(api, net["id"], "10.2.0.0/24", enable_dhcp=False)
    pools = [{"start": "10.2.0.10", "end": "10.2.0.20"}]
    updated = api.demo.put(
        f"/subnets/{s['id']}",
        json={
            "subnet": {
                "allocation_pools": pools,
                "gateway_ip": None,
                "dns_nameservers": ["9.9.9.9"],
            }
        },
    ).json()["subnet"]
    assert updated["allocation_pools"] == pools and updated["gateway_ip"] is None
    assert updated["dns_nameservers"] == ["9.9.9.9"] and updated["revision_number"] == 2
    port = api.demo.create("ports", network_id=net["id"])
    assert port["fixed_ips"][0]["ip_address"] == "10.2.0.10"
    error(api.demo.delete(f"/subnets/{s['id']}"), 409, "SubnetInUse")


def test_dhcp_port_takes_an_address(api: Api, net: dict) -> None:
    subnet(api, net["id"], "10.3.0.0/24")
    dhcp = api.admin.get("/ports", params={"device_owner": "network:dhcp"}).json()["ports"]
    assert len(dhcp) == 1 and dhcp[0]["fixed_ips"][0]["ip_address"] == "10.3.0.2"
    port = api.demo.create("ports", network_id=net["id"])
    assert port["fixed_ips"][0]["ip_address"] == "10.3.0.3"


def test_port_shape_and_defaults(api: Api, net: dict) -> None:
    s = subnet(api, net["id"], "10.4.0.0/24", enable_dhcp=False)
    port = api.demo.create("ports", network_id=net["id"], name="p")
    assert port["fixed_ips"] == [{"subnet_id": s["id"], "ip_address": "10.4.0.2"}]
    assert port["mac_address"].startswith("fa:16:3e:") and port["status"] == "DOWN"
    assert port["admin_state_up"] is True and port["port_security_enabled"] is True
    assert (
        port["device_owner"] == ""
        and port["device_id"] == ""
        and port["allowed_address_pairs"] == []
    )
    assert port["binding:vnic_type"] == "normal"
    assert len(port["security_groups"]) == 1  # the project's default group
    # The binding's host, profile and VIF are an administrator's to see, as Neutron's policy
    # has it, however the owner reads the port.
    admin_read = {"binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details"}
    listed = api.demo.get("/ports", params={"id": port["id"]}).json()["ports"][0]
    picked = api.demo.get(
        f"/ports/{port['id']}", params={"fields": ["id", "binding:host_id", "binding:vif_type"]}
    ).json()["port"]
    for seen in (port, api.demo.get(f"/ports/{port['id']}").json()["port"], listed):
        assert not admin_read & seen.keys()
    assert picked == {"id": port["id"]}
    as_admin = api.admin.get(f"/ports/{port['id']}").json()["port"]
    assert {k: as_admin[k] for k in sorted(admin_read)} == {
        "binding:host_id": "",
        "binding:profile": {},
        "binding:vif_details": {},
        "binding:vif_type": "unbound",
    }


def test_fixed_ips_by_address_subnet_and_several(api: Api, net: dict) -> None:
    s1 = subnet(api, net["id"], "10.5.0.0/24", enable_dhcp=False)
    s2 = subnet(api, net["id"], "fd00:5::/64", enable_dhcp=False)
    by_ip = api.demo.create("ports", network_id=net["id"], fixed_ips=[{"ip_address": "10.5.0.50"}])
    assert by_ip["fixed_ips"] == [{"subnet_id": s1["id"], "ip_address": "10.5.0.50"}]
    taken = api.demo.post(
        "/ports",
        json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.5.0.50"}]}},
    )
    error(taken, 409, "IpAddressAlreadyAllocated")
    gateway = api.demo.post(
        "/ports",
        json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.5.0.1"}]}},
    )
    error(gateway, 409, "IpAddressAlreadyAllocated")
    broadcast = api.demo.post(
        "/ports",
        json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.5.0.255"}]}},
    )
    error(broadcast, 400, "InvalidIpForSubnet")
    elsewhere = api.demo.post(
        "/ports",
        json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.99.0.5"}]}},
    )
    error(elsewhere, 400, "InvalidIpForNetwork")
    wrong = api.demo.post(
        "/ports",
        json={
            "port": {
                "network_id": net["id"],
                "fixed_ips": [{"subnet_id": s2["id"], "ip_address": "10.5.0.9"}],
            }
        },
    )
    error(wrong, 400, "InvalidIpForSubnet")
    both = api.demo.create(
        "ports", network_id=net["id"], fixed_ips=[{"subnet_id": s1["id"]}, {"subnet_id": s2["id"]}]
    )
    assert [f["subnet_id"] for f in both["fixed_ips"]] == [s1["id"], s2["id"]]
    dual = api.demo.create("ports", network_id=net["id"])  # one IPv4 and one IPv6 by default
    assert {f["subnet_id"] for f in dual["fixed_ips"]} == {s1["id"], s2["id"]}


def test_create_answers_what_show_returns(api: Api, net: dict) -> None:
    s4 = subnet(api, net["id"], "10.6.0.0/24", enable_dhcp=False)
    s6 = subnet(api, net["id"], "fd00:6::/64", enable_dhcp=False)
    web, db = (api.demo.create("security-groups", name=name) for name in ("web", "db"))
    bodies = [
        {},
        {
            "name": "p",
            "description": "d",
            "admin_state_up": False,
            "mac_address": "fa:16:3e:00:06:01",
            "device_id": "vm",
            "device_owner": "compute:nova",
        },
        {
            "fixed_ips": [
                {"subnet_id": s6["id"]},
                {"ip_address": "10.6.0.77"},
                {"subnet_id": s4["id"]},
            ]
        },
        {
            "security_groups": [web["id"], db["id"]],
            "allowed_address_pairs": [
                {"ip_address": "10.6.0.128/25"},
                {"ip_address": "10.6.0.9", "mac_address": "fa:16:3e:00:06:02"},
            ],
        },
        {"port_security_enabled": False},
    ]
    for body in bodies:
        created = api.demo.create("ports", network_id=net["id"], **body)
        assert created == api.demo.get(f"/ports/{created['id']}").json()["port"]


def test_update_fixed_ip_frees_the_old_one(api: Api, net: dict) -> None:
    subnet(api, net["id"], "10.81.0.0/24", enable_dhcp=False)
    port = api.demo.create("ports", network_id=net["id"], fixed_ips=[{"ip_address": "10.81.0.50"}])
    moved = api.demo.put(
        f"/ports/{port['id']}", json={"port": {"fixed_ips": [{"ip_address": "10.81.0.60"}]}}
    )
    assert moved.json()["port"]["fixed_ips"][0]["ip_address"] == "10.81.0.60"
    found = api.demo.get("/ports", params={"fixed_ips": "ip_address=10.81.0.60"}).json()["ports"]
    assert [p["id"] for p in found] == [port["id"]]
    reused = api.demo.create(
        "ports", network_id=net["id"], fixed_ips=[{"ip_address": "10.81.0.50"}]
    )
    assert reused["fixed_ips"][0]["ip_address"] == "10.81.0.50"


def test_mac_address_given_and_unique(api: Api, net: dict) -> None:
    port = api.demo.create("ports", network_id=net["id"], mac_address="FA:16:3E:00:00:01")
    assert port["mac_address"] == "fa:16:3e:00:00:01"
    again = api.demo.post(
        "/ports", json={"port": {"network_id": net["id"], "mac_address": "fa:16:3e:00:00:01"}}
    )
    error(again, 409, "MacAddressInUse")
    multicast = api.demo.post(
        "/ports", json={"port": {"network_id": net["id"], "mac_address": "01:00:5e:00:00:01"}}
    )
    error(multicast, 400, "InvalidInput")


def test_port_security_rules(api: Api, net: dict) -> None:
    subnet(api, net["id"], "10.9.0.0/24", enable_dhcp=False)
    open_port = api.demo.create("ports", network_id=net["id"], port_security_enabled=False)
    assert open_port["security_groups"] == [] and open_port["port_security_enabled"] is False
    pairs = api.demo.post(
        "/ports",
        json={
            "port": {
                "network_id": net["id"],
                "port_security_enabled": False,
                "allowed_address_pairs": [{"ip_address": "10.9.0.200"}],
            }
        },
    )
    error(pairs, 409, "AddressPairAndPortSecurityRequired")
    port = api.demo.create(
        "ports", network_id=net["id"], allowed_address_pairs=[{"ip_address": "10.9.0.128/25"}]
    )
    assert port["allowed_address_pairs"] == [
        {"ip_address": "10.9.0.128/25", "mac_address": port["mac_address"]}
    ]
    disable = api.demo.put(f"/ports/{port['id']}", json={"port": {"port_security_enabled": False}})
    error(disable, 409, "PortSecurityPortHasSecurityGroup")
    cleared = api.demo.put(
        f"/ports/{port['id']}",
        json={
            "port": {
                "port_security_enabled": False,
                "security_groups": [],
                "allowed_address_pairs": [],
            }
        },
    )
    assert cleared.status_code == 200 and cleared.json()["port"]["port_security_enabled"] is False


def test_member_cannot_bind_or_pick_ip_on_foreign_shared_network(api: Api) -> None:
    shared = api.admin.create("networks", shared=True)
    api.admin.create("subnets", network_id=shared["id"], cidr="10.10.0.0/24", ip_version=4)
    port = api.demo.create("ports", network_id=shared["id"])
    assert port["project_id"] == api.demo.project_id
    chosen = api.demo.post(
        "/ports",
        json={"port": {"network_id": shared["id"], "fixed_ips": [{"ip_address": "10.10.0.77"}]}},
    )
    error(chosen, 403, "PolicyNotAuthorized")
    bind = api.demo.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": "h1"}})
    error(bind, 403, "PolicyNotAuthorized")
    error(api.demo2.get(f"/ports/{port['id']}"), 404, "PortNotFound")
    assert api.admin.get(f"/ports/{port['id']}").status_code == 200


def test_ip_exhaustion_is_409(api: Api, net: dict) -> None:
    subnet(api, net["id"], "10.11.0.0/29", enable_dhcp=False)  # .2-.6 usable
    for _ in range(5):
        api.demo.create("ports", network_id=net["id"])
    error(
        api.demo.post("/ports", json={"port": {"network_id": net["id"]}}),
        409,
        "IpAddressGenerationFailure",
    )


def test_member_leaves_port_security_to_the_shared_network_owner(api: Api) -> None:
    shared = api.admin.create("networks", shared=True)
    api.admin.create("subnets", network_id=shared["id"], cidr="10.11.0.0/24", ip_version=4)
    pairs = [{"ip_address": "10.11.0.9"}]
    for body in ({"port_security_enabled": False}, {"allowed_address_pairs": pairs}):
        refused = api.demo.post("/ports", json={"port": {"network_id": shared["id"], **body}})
        error(refused, 403, "PolicyNotAuthorized")
    port = api.demo.create("ports", network_id=shared["id"])
    unprotect = api.demo.put(
        f"/ports/{port['id']}", json={"port": {"port_security_enabled": False}}
    )
    error(unprotect, 403, "PolicyNotAuthorized")
    own = api.demo.create("networks")
    unprotected = api.demo.create("ports", network_id=own["id"], port_security_enabled=False)
    assert unprotected["port_security_enabled"] is False


def test_member_cannot_create_for_another_project(api: Api, net: dict) -> None:
    foreign = api.demo.post(
        "/ports", json={"port": {"network_id": net["id"], "project_id": api.demo2.project_id}}
    )
    assert "requires admin privileges" in error(foreign, 400, "HTTPBadRequest")


def test_subnet_filters_shared_and_external(api: Api, net: dict) -> None:
    own = subnet(api, net["id"], "10.12.0.0/24")
    assert own["router:external"] is False
    shared = api.admin.create("networks", shared=True)
    common = api.admin.create("subnets", network_id=shared["id"], cidr="10.13.0.0/24", ip_version=4)
    external = api.admin.create("networks", **{"router:external": True})
    public = api.admin.create(
        "subnets", network_id=external["id"], cidr="10.14.0.0/24", ip_version=4
    )
    assert public["router:external"] is True

    def ids(**params: str) -> set[str]:
        response = api.demo.get("/subnets", params=params)
        assert response.status_code == 200, response.text
        return {s["id"] for s in response.json()["subnets"]}

    assert ids() == {own["id"], common["id"], public["id"]}  # external networks' subnets: public
    assert ids(shared="False") == {own["id"], public["id"]} and ids(shared="true") == {common["id"]}
    assert ids(**{"router:external": "True"}) == {public["id"]}


def test_ip_version_as_a_string(api: Api, net: dict) -> None:
    made = api.demo.create("subnets", network_id=net["id"], cidr="10.15.0.0/24", ip_version="4")
    assert made["ip_version"] == 4
    bad = api.demo.post(
        "/subnets",
        json={"subnet": {"network_id": net["id"], "cidr": "10.16.0.0/24", "ip_version": "5"}},
    )
    error(bad, 400, "InvalidInput")


def test_a_full_subnet_leaves_the_port_to_the_next(api: Api, net: dict) -> None:
    # Two subnets of one free address each (.2: .1 is the gateway).
    subnets = [
        subnet(api, net["id"], cidr, enable_dhcp=False) for cidr in ("10.17.0.0/30", "10.18.0.0/30")
    ]
    ports = [api.demo.create("ports", network_id=net["id"]) for _ in subnets]
    taken = {(f["subnet_id"], f["ip_address"]) for p in ports for f in p["fixed_ips"]}
    assert taken == {(subnets[0]["id"], "10.17.0.2"), (subnets[1]["id"], "10.18.0.2")}
    error(
        api.demo.post("/ports", json={"port": {"network_id": net["id"]}}),
        409,
        "IpAddressGenerationFailure",
    )


@pytest.mark.parametrize(
    ("modes", "fragment"),
    [
        (
            {"ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"},
            "they must be the same value",
        ),
        (
            {"ipv6_ra_mode": "dhcpv6-stateless", "ipv6_address_mode": "slaac"},
            "they must be the same value",
        ),
        (
            {"ipv6_address_mode": "slaac", "enable_dhcp": False},
            "cannot be set when enable_dhcp is set to False",
        ),
        ({"ipv6_address_mode": "slaac", "cidr": "fd00:19::/80"}, "requires the prefix to be /64"),
        (
            {"ipv6_ra_mode": "slaac", "cidr": "10.19.0.0/24", "ip_version": 4},
            "not valid when ip_version is 4",
        ),
    ],
)
def test_ipv6_mode_combinations(api: Api, net: dict, modes: dict, fragment: str) -> None:
    body = {"network_id": net["id"], "cidr": "fd00:19::/64", "ip_version": 6, **modes}
    assert fragment in error(api.demo.post("/subnets", json={"subnet": body}), 400, "InvalidInput")


def eui64(prefix: str, mac: str) -> str:
    """What RFC 4291 gives, spelled out independently of the code under test."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    groups = [
        f"{octets[0]:02x}{octets[1]:02x}",
        f"{octets[2]:02x}ff",
        f"fe{octets[3]:02x}",
        f"{octets[4]:02x}{octets[5]:02x}",
    ]
    return str(ipaddress.ip_address(prefix + ":".join(groups)))


def test_automatic_addresses_are_eui64_on_every_such_subnet(api: Api, net: dict) -> None:
    v4 = subnet(api, net["id"], "10.20.0.0/24")
    slaac = subnet(api, net["id"], "fd00:20::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    stateless = subnet(api, net["id"], "fd00:21::/64", ipv6_address_mode="dhcpv6-stateless")
    port = api.demo.create("ports", network_id=net["id"], mac_address="fa:16:3e:12:34:56")
    assert sorted((f["subnet_id"], f["ip_address"]) for f in port["fixed_ips"]) == sorted(
        [
            (v4["id"], port["fixed_ips"][0]["ip_address"]),
            (slaac["id"], eui64("fd00:20::", "fa:16:3e:12:34:56")),
            (stateless["id"], eui64("fd00:21::", "fa:16:3e:12:34:56")),
        ]
    )
    assert eui64("fd00:20::", "fa:16:3e:12:34:56") == "fd00:20::f816:3eff:fe12:3456"
    chosen = api.demo.post(
        "/ports",
        json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "fd00:20::5"}]}},
    )
    assert "automatic addresses" in error(chosen, 400, "InvalidInput")
    # An update of the other addresses keeps the automatic ones.
    moved = api.demo.put(
        f"/ports/{port['id']}", json={"port": {"fixed_ips": [{"subnet_id": v4["id"]}]}}
    ).json()["port"]
    assert {f["subnet_id"] for f in moved["fixed_ips"]} == {v4["id"], slaac["id"], stateless["id"]}
    # Deleting the subnet takes the automatic addresses with it.
    assert api.demo.delete(f"/subnets/{slaac['id']}").status_code == 204
    left = api.demo.get(f"/ports/{port['id']}").json()["port"]
    assert {f["subnet_id"] for f in left["fixed_ips"]} == {v4["id"], stateless["id"]}
    assert left["revision_number"] > port["revision_number"]


def test_automatic_addresses_reach_every_port_asked_for_or_not(api: Api, net: dict) -> None:
    v4 = subnet(api, net["id"], "10.23.0.0/24")
    before = api.demo.create("ports", network_id=net["id"], mac_address="fa:16:3e:12:34:57")
    router = api.demo.create("routers", name="r")
    attach = f"/routers/{router['id']}/add_router_interface"
    qr = api.demo.put(attach, json={"subnet_id": v4["id"]}).json()["port_id"]
    dhcp = api.admin.get(f"/ports?network_id={net['id']}&device_owner=network:dhcp")
    # A new SLAAC subnet gives the network's ports, its DHCP port too, their EUI-64 address
    # there; a router's interface takes none.
    slaac = subnet(api, net["id"], "fd00:23::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    for port in [before, *dhcp.json()["ports"]]:
        now = api.admin.get(f"/ports/{port['id']}").json()["port"]
        wanted = (slaac["id"], eui64("fd00:23::", port["mac_address"]))
        assert wanted in {(f["subnet_id"], f["ip_address"]) for f in now["fixed_ips"]}
        assert now["revision_number"] > port["revision_number"]
    interface = api.demo.get(f"/ports/{qr}").json()["port"]
    assert [f["subnet_id"] for f in interface["fixed_ips"]] == [v4["id"]]
    # Asking for addresses on other subnets brings the automatic ones all the same.
    asked = api.demo.create(
        "ports",
        network_id=net["id"],
        mac_address="fa:16:3e:12:34:58",
        fixed_ips=[{"subnet_id": v4["id"]}],
    )
    assert [f["subnet_id"] for f in asked["fixed_ips"]] == [v4["id"], slaac["id"]]
    assert asked["fixed_ips"][1]["ip_address"] == eui64("fd00:23::", "fa:16:3e:12:34:58")
    # A subnet whose advertisements come from a router outside goes on no router here.
    outside = subnet(api, net["id"], "fd00:24::/64", ipv6_address_mode="slaac")
    refused = api.demo.put(attach, json={"subnet_id": outside["id"]})
    assert error(refused, 400, "BadRequest") == (
        f"Bad router request: IPv6 subnet {outside['id']} configured to receive RAs from an "
        "external router cannot be added to Neutron Router.."  # Neutron's template adds one
    )


def test_gateway_held_by_a_router_cannot_move(api: Api, net: dict) -> None:
    s = subnet(
        api,
        net["id"],
        "10.22.0.0/24",
        allocation_pools=[{"start": "10.22.0.2", "end": "10.22.0.99"}],
    )
    router = api.demo.create("routers", name="r")
    api.demo.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": s["id"]})
    moved = api.demo.put(f"/subnets/{s['id']}", json={"subnet": {"gateway_ip": "10.22.0.254"}})
    assert "10.22.0.1 already in use by port" in error(moved, 409, "GatewayIpInUse")
    same = api.demo.put(
        f"/subnets/{s['id']}", json={"subnet": {"gateway_ip": "10.22.0.1", "name": "x"}}
    )
    assert same.status_code == 200


def test_a_null_mac_address_regenerates_it_while_unbound(api: Api, net: dict) -> None:
    v4 = subnet(api, net["id"], "10.21.0.0/24")
    slaac = subnet(api, net["id"], "fd00:22::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    port = api.admin.create("ports", network_id=net["id"], mac_address=None)
    old = port["mac_address"]
    assert old.startswith("fa:16:3e:")
    regenerated = api.admin.put(f"/ports/{port['id']}", json={"port": {"mac_address": None}})
    new = regenerated.json()["port"]["mac_address"]
    assert new.startswith("fa:16:3e:") and new != old
    assert regenerated.json()["port"]["revision_number"] == port["revision_number"] + 1
    # Its automatic IPv6 address follows the MAC; the IPv4 one stays.
    assert {f["subnet_id"]: f["ip_address"] for f in regenerated.json()["port"]["fixed_ips"]} == {
        v4["id"]: port["fixed_ips"][0]["ip_address"],
        slaac["id"]: eui64("fd00:22::", new),
    }
    # Only an admin may change it, as any MAC change.
    member = api.demo.put(f"/ports/{port['id']}", json={"port": {"mac_address": None}})
    assert error(member, 403, "PolicyNotAuthorized") == (
        "rule:update_port:mac_address is disallowed by policy"
    )

    # A bound port keeps its MAC: the instance plugged into it has it.
    bound = api.admin.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": "h1"}})
    assert bound.status_code == 200
    refused = api.admin.put(f"/ports/{port['id']}", json={"port": {"mac_address": None}})
    message = error(refused, 409, "PortBound")
    assert message.startswith(
        f"Unable to complete operation on port {port['id']}, port is already bound, "
        f"port type: bridge, old_mac {new}, new_mac fa:16:3e:"
    )
    same = api.admin.put(f"/ports/{port['id']}", json={"port": {"mac_address": new}})
    assert same.status_code == 200
    assert api.admin.get(f"/ports/{port['id']}").json()["port"]["mac_address"] == new

    # Nor does the router's port.
    router = api.admin.create("routers", name="r")
    api.admin.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": v4["id"]})
    (interface,) = api.admin.get(
        "/ports", params={"device_owner": "network:router_interface"}
    ).json()["ports"]
    refused = api.admin.put(f"/ports/{interface['id']}", json={"port": {"mac_address": None}})
    assert error(refused, 409, "UnsupportedPortDeviceOwner") == (
        "Operation mac address update is not supported for device_owner "
        f"network:router_interface on port {interface['id']}."
    )


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("224.0.0.5", "IP 224.0.0.5 is a multicast address, which is not supported."),
        ("ff02::1", "IP ff02::1 is a multicast address, which is not supported."),
        (
            "239.1.0.0/16",
            (
                "Subnet 239.1.0.0/16 overlaps with multicast range 224.0.0.0/4, "
                "which is not supported."
            ),
        ),
        (
            "128.0.0.0/1",
            "Subnet 128.0.0.0/1 overlaps with multicast range 224.0.0.0/4, which is not supported.",
        ),
        ("::/0", "Subnet ::/0 overlaps with multicast range ff00::/8, which is not supported."),
    ],
)
def test_allowed_address_pairs_are_never_multicast(
    api: Api, net: dict, address: str, message: str
) -> None:
    subnet(api, net["id"], "10.23.0.0/24")
    pairs = {"allowed_address_pairs": [{"ip_address": address}]}
    created = api.demo.post("/ports", json={"port": {"network_id": net["id"], **pairs}})
    assert error(created, 400, "HTTPBadRequest") == message
    owned = {"network_id": net["id"], "device_owner": ""}  # not the DHCP server's
    assert api.demo.get("/ports", params=owned).json()["ports"] == []
    port = api.demo.create("ports", network_id=net["id"])
    updated = api.demo.put(f"/ports/{port['id']}", json={"port": pairs})
    assert error(updated, 400, "HTTPBadRequest") == message
    # Everything else, unicast ranges and the whole IPv4 space among them, is allowed.
    for allowed in ("10.23.0.50", "0.0.0.0/0", "fd00::/64"):
        body = {"port": {"allowed_address_pairs": [{"ip_address": allowed}]}}
        assert api.demo.put(f"/ports/{port['id']}", json=body).status_code == 200


def test_a_fixed_ip_naming_only_its_subnet_keeps_the_address(api: Api, net: dict) -> None:
    s = subnet(api, net["id"], "10.24.0.0/24")
    port = api.demo.create("ports", network_id=net["id"])
    (address,) = [f["ip_address"] for f in port["fixed_ips"]]
    same_subnet = [{"subnet_id": s["id"]}]
    kept = api.demo.put(f"/ports/{port['id']}", json={"port": {"fixed_ips": same_subnet}})
    assert [f["ip_address"] for f in kept.json()["port"]["fixed_ips"]] == [address]
    # Named twice, the second takes another address.
    twice = api.demo.put(f"/ports/{port['id']}", json={"port": {"fixed_ips": same_subnet * 2}})
    addresses = [f["ip_address"] for f in twice.json()["port"]["fixed_ips"]]
    assert addresses[0] == address and len(set(addresses)) == 2


def test_device_profile_is_kept_as_created(api: Api, net: dict) -> None:
    plain = api.demo.create("ports", network_id=net["id"])
    assert plain["device_profile"] is None
    port = api.demo.create("ports", network_id=net["id"], device_profile="accel-gpu")
    assert port["device_profile"] == "accel-gpu"
    shown = api.demo.get(f"/ports/{port['id']}", params={"fields": "device_profile"}).json()
    assert shown == {"port": {"device_profile": "accel-gpu"}}
    # Set once, by whoever asks for the port; never changed afterwards.
    changed = api.demo.put(f"/ports/{port['id']}", json={"port": {"device_profile": "other"}})
    error(changed, 400, "BadRequest")
    too_long = api.demo.post(
        "/ports", json={"port": {"network_id": net["id"], "device_profile": "x" * 256}}
    )
    error(too_long, 400, "InvalidInput")
    listed = api.demo.get("/ports", params={"device_profile": "accel-gpu"})
    error(listed, 400, "HTTPBadRequest")


def test_numa_affinity_policy_takes_novas_policies(api: Api, net: dict) -> None:
    port = api.demo.create("ports", network_id=net["id"], numa_affinity_policy="socket")
    assert port["numa_affinity_policy"] == "socket"
    for policy in ("required", "preferred", "legacy", None):
        updated = api.demo.put(
            f"/ports/{port['id']}", json={"port": {"numa_affinity_policy": policy}}
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["port"]["numa_affinity_policy"] == policy
        shown = api.demo.get(f"/ports/{port['id']}").json()["port"]
        assert shown["numa_affinity_policy"] == policy
    assert shown["revision_number"] == 5
    wrong = api.demo.put(f"/ports/{port['id']}", json={"port": {"numa_affinity_policy": "near"}})
    assert "'near' is not in" in error(wrong, 400, "InvalidInput")
    assert api.demo.get(f"/ports/{port['id']}").json()["port"]["numa_affinity_policy"] is None
    plain = api.demo.create("ports", network_id=net["id"])
    assert plain["numa_affinity_policy"] is None
