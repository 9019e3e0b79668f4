"""Subnets and ports: IPAM defaults, validation, fixed IPs, MACs, port security."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.conftest import expect_error as error


@pytest.fixture
def net(api: Api) -> dict:
    return api.demo.create("networks", name="n")


def subnet(api: Api, network_id: str, cidr: str, **extra) -> dict:  # type: ignore[no-untyped-def]
    return api.demo.create("subnets", network_id=network_id, cidr=cidr,
                           ip_version=6 if ":" in cidr else 4, **extra)


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
    overlap = api.demo.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.0.0.128/25", "ip_version": 4}})
    assert "overlaps" in error(overlap, 400, "InvalidInput")
    bad = api.demo.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.0.300.0/24", "ip_version": 4}})
    error(bad, 400, "InvalidInput")
    mismatch = api.demo.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 6}})
    error(mismatch, 400, "InvalidInput")
    outside = api.demo.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.8.0.0/24", "ip_version": 4,
                                                          "allocation_pools": [{"start": "10.8.1.2", "end": "10.8.1.9"}]}})
    error(outside, 400, "InvalidInput")
    gw_in_pool = api.demo.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.7.0.0/24", "ip_version": 4,
                                                             "gateway_ip": "10.7.0.5",
                                                             "allocation_pools": [{"start": "10.7.0.2", "end": "10.7.0.9"}]}})
    error(gw_in_pool, 409, "GatewayConflictWithAllocationPools")
    missing = api.demo.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4}})
    assert "cidr" in error(missing, 400, "BadRequest")
    unknown_net = api.demo.post("/subnets", json={"subnet": {"network_id": "8d2b1c7e-0000-4000-8000-000000000000",
                                                              "cidr": "10.6.0.0/24", "ip_version": 4}})
    error(unknown_net, 404, "NetworkNotFound")


def test_subnet_update_pools_and_gateway(api: Api, net: dict) -> None:
    s = subnet(api, net["id"], "10.2.0.0/24", enable_dhcp=False)
    pools = [{"start": "10.2.0.10", "end": "10.2.0.20"}]
    updated = api.demo.put(f"/subnets/{s['id']}", json={"subnet": {"allocation_pools": pools, "gateway_ip": None,
                                                                     "dns_nameservers": ["9.9.9.9"]}}).json()["subnet"]
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
    assert port["device_owner"] == "" and port["device_id"] == "" and port["allowed_address_pairs"] == []
    assert port["binding:host_id"] == "" and port["binding:vif_type"] == "unbound"
    assert len(port["security_groups"]) == 1  # the project's default group


def test_fixed_ips_by_address_subnet_and_several(api: Api, net: dict) -> None:
    s1 = subnet(api, net["id"], "10.5.0.0/24", enable_dhcp=False)
    s2 = subnet(api, net["id"], "fd00:5::/64", enable_dhcp=False)
    by_ip = api.demo.create("ports", network_id=net["id"], fixed_ips=[{"ip_address": "10.5.0.50"}])
    assert by_ip["fixed_ips"] == [{"subnet_id": s1["id"], "ip_address": "10.5.0.50"}]
    taken = api.demo.post("/ports", json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.5.0.50"}]}})
    error(taken, 409, "IpAddressAlreadyAllocated")
    gateway = api.demo.post("/ports", json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.5.0.1"}]}})
    error(gateway, 409, "IpAddressAlreadyAllocated")
    broadcast = api.demo.post("/ports", json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.5.0.255"}]}})
    error(broadcast, 400, "InvalidIpForSubnet")
    elsewhere = api.demo.post("/ports", json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.99.0.5"}]}})
    error(elsewhere, 400, "InvalidIpForNetwork")
    wrong = api.demo.post("/ports", json={"port": {"network_id": net["id"],
                                                   "fixed_ips": [{"subnet_id": s2["id"], "ip_address": "10.5.0.9"}]}})
    error(wrong, 400, "InvalidIpForSubnet")
    both = api.demo.create("ports", network_id=net["id"], fixed_ips=[{"subnet_id": s1["id"]}, {"subnet_id": s2["id"]}])
    assert [f["subnet_id"] for f in both["fixed_ips"]] == [s1["id"], s2["id"]]
    dual = api.demo.create("ports", network_id=net["id"])  # one IPv4 and one IPv6 by default
    assert {f["subnet_id"] for f in dual["fixed_ips"]} == {s1["id"], s2["id"]}


def test_create_answers_what_show_returns(api: Api, net: dict) -> None:
    s4 = subnet(api, net["id"], "10.6.0.0/24", enable_dhcp=False)
    s6 = subnet(api, net["id"], "fd00:6::/64", enable_dhcp=False)
    web, db = (api.demo.create("security-groups", name=name) for name in ("web", "db"))
    bodies = [
        {},
        {"name": "p", "description": "d", "admin_state_up": False, "mac_address": "fa:16:3e:00:06:01",
         "device_id": "vm", "device_owner": "compute:nova"},
        {"fixed_ips": [{"subnet_id": s6["id"]}, {"ip_address": "10.6.0.77"}, {"subnet_id": s4["id"]}]},
        {"security_groups": [web["id"], db["id"]], "allowed_address_pairs": [
            {"ip_address": "10.6.0.128/25"}, {"ip_address": "10.6.0.9", "mac_address": "fa:16:3e:00:06:02"}]},
        {"port_security_enabled": False},
    ]
    for body in bodies:
        created = api.demo.create("ports", network_id=net["id"], **body)
        assert created == api.demo.get(f"/ports/{created['id']}").json()["port"]


def test_update_fixed_ip_frees_the_old_one(api: Api, net: dict) -> None:
    subnet(api, net["id"], "10.81.0.0/24", enable_dhcp=False)
    port = api.demo.create("ports", network_id=net["id"], fixed_ips=[{"ip_address": "10.81.0.50"}])
    moved = api.demo.put(f"/ports/{port['id']}", json={"port": {"fixed_ips": [{"ip_address": "10.81.0.60"}]}})
    assert moved.json()["port"]["fixed_ips"][0]["ip_address"] == "10.81.0.60"
    found = api.demo.get("/ports", params={"fixed_ips": "ip_address=10.81.0.60"}).json()["ports"]
    assert [p["id"] for p in found] == [port["id"]]
    reused = api.demo.create("ports", network_id=net["id"], fixed_ips=[{"ip_address": "10.81.0.50"}])
    assert reused["fixed_ips"][0]["ip_address"] == "10.81.0.50"


def test_mac_address_given_and_unique(api: Api, net: dict) -> None:
    port = api.demo.create("ports", network_id=net["id"], mac_address="FA:16:3E:00:00:01")
    assert port["mac_address"] == "fa:16:3e:00:00:01"
    again = api.demo.post("/ports", json={"port": {"network_id": net["id"], "mac_address": "fa:16:3e:00:00:01"}})
    error(again, 409, "MacAddressInUse")
    multicast = api.demo.post("/ports", json={"port": {"network_id": net["id"], "mac_address": "01:00:5e:00:00:01"}})
    error(multicast, 400, "InvalidInput")


def test_port_security_rules(api: Api, net: dict) -> None:
    subnet(api, net["id"], "10.9.0.0/24", enable_dhcp=False)
    open_port = api.demo.create("ports", network_id=net["id"], port_security_enabled=False)
    assert open_port["security_groups"] == [] and open_port["port_security_enabled"] is False
    pairs = api.demo.post("/ports", json={"port": {"network_id": net["id"], "port_security_enabled": False,
                                                   "allowed_address_pairs": [{"ip_address": "10.9.0.200"}]}})
    error(pairs, 409, "AddressPairAndPortSecurityRequired")
    port = api.demo.create("ports", network_id=net["id"], allowed_address_pairs=[{"ip_address": "10.9.0.128/25"}])
    assert port["allowed_address_pairs"] == [{"ip_address": "10.9.0.128/25", "mac_address": port["mac_address"]}]
    disable = api.demo.put(f"/ports/{port['id']}", json={"port": {"port_security_enabled": False}})
    error(disable, 400, "PortSecurityAndIPRequiredForSecurityGroups")
    cleared = api.demo.put(f"/ports/{port['id']}", json={"port": {
        "port_security_enabled": False, "security_groups": [], "allowed_address_pairs": []}})
    assert cleared.status_code == 200 and cleared.json()["port"]["port_security_enabled"] is False


def test_member_cannot_bind_or_pick_ip_on_foreign_shared_network(api: Api) -> None:
    shared = api.admin.create("networks", shared=True)
    api.admin.create("subnets", network_id=shared["id"], cidr="10.10.0.0/24", ip_version=4)
    port = api.demo.create("ports", network_id=shared["id"])
    assert port["project_id"] == api.demo.project_id
    chosen = api.demo.post("/ports", json={"port": {"network_id": shared["id"], "fixed_ips": [{"ip_address": "10.10.0.77"}]}})
    error(chosen, 403, "PolicyNotAuthorized")
    bind = api.demo.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": "h1"}})
    error(bind, 403, "PolicyNotAuthorized")
    error(api.demo2.get(f"/ports/{port['id']}"), 404, "PortNotFound")
    assert api.admin.get(f"/ports/{port['id']}").status_code == 200


def test_ip_exhaustion_is_409(api: Api, net: dict) -> None:
    subnet(api, net["id"], "10.11.0.0/29", enable_dhcp=False)  # .2-.6 usable
    for _ in range(5):
        api.demo.create("ports", network_id=net["id"])
    error(api.demo.post("/ports", json={"port": {"network_id": net["id"]}}), 409, "IpAddressGenerationFailure")
