"""Subnet service types: which device owners' ports take addresses from a subnet."""

from __future__ import annotations

import ipaddress

import pytest

from tests.conftest import Api
from tests.conftest import expect_error as error


@pytest.fixture
def net(api: Api) -> dict:
    return api.admin.create("networks", name="n")


def subnet(api: Api, network_id: str, cidr: str, **extra) -> dict:  # type: ignore[no-untyped-def]
    return api.admin.create("subnets", network_id=network_id, cidr=cidr, ip_version=4, **extra)


def test_ports_take_addresses_from_the_subnets_of_their_device_owner(api: Api, net: dict) -> None:
    plain = subnet(api, net["id"], "10.30.0.0/24")
    assert plain["service_types"] == []
    typed = subnet(api, net["id"], "10.31.0.0/24", service_types=["compute:nova", "test:type_1"])
    assert typed["service_types"] == ["compute:nova", "test:type_1"]
    assert api.admin.get(f"/subnets/{typed['id']}").json()["subnet"]["service_types"] == [
        "compute:nova",
        "test:type_1",
    ]

    # A subnet reserved for the owner comes first; a port of another owner never gets it.
    for owner in ("compute:nova", "test:type_1"):
        port = api.admin.create("ports", network_id=net["id"], device_owner=owner)
        assert [f["subnet_id"] for f in port["fixed_ips"]] == [typed["id"]]
    for owner in ("", "compute:other"):
        port = api.admin.create("ports", network_id=net["id"], device_owner=owner)
        assert [f["subnet_id"] for f in port["fixed_ips"]] == [plain["id"]]
    # Nor by asking for it.
    asked = api.admin.post(
        "/ports",
        json={"port": {"network_id": net["id"], "fixed_ips": [{"subnet_id": typed["id"]}]}},
    )
    assert error(asked, 400, "InvalidInput") == (
        f"Invalid input for operation: Failed to create port on network {net['id']}, "
        f"because fixed_ips included invalid subnet {typed['id']}."
    )
    by_address = api.admin.post(
        "/ports",
        json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.31.0.50"}]}},
    )
    assert error(by_address, 400, "InvalidIpForNetwork") == (
        "IP address 10.31.0.50 is not a valid IP for any of the subnets on the specified network."
    )

    # Once the untyped subnet is reserved too, a port of no listed owner gets nothing.
    api.admin.put(f"/subnets/{plain['id']}", json={"subnet": {"service_types": ["network:foo"]}})
    refused = api.admin.post("/ports", json={"port": {"network_id": net["id"]}})
    assert error(refused, 409, "IpAddressGenerationFailureNoMatchingSubnet") == (
        f"No valid service subnet for the given device owner, network {net['id']}, service type ."
    )
    # The DHCP server still serves both subnets.
    (server,) = api.admin.get(
        "/ports", params={"network_id": net["id"], "device_owner": "network:dhcp"}
    ).json()["ports"]
    assert {f["subnet_id"] for f in server["fixed_ips"]} == {plain["id"], typed["id"]}


def test_floating_ips_come_from_the_subnet_reserved_for_them(api: Api) -> None:
    ext = api.admin.create("networks", name="ext", **{"router:external": True})
    subnet(api, ext["id"], "198.51.100.0/24", service_types=["network:router_gateway"])
    fips = subnet(api, ext["id"], "203.0.113.0/24", service_types=["network:floatingip"])
    for _ in range(3):
        fip = api.admin.create("floatingips", floating_network_id=ext["id"])
        assert ipaddress.ip_address(fip["floating_ip_address"]) in ipaddress.ip_network(
            fips["cidr"]
        )
    router = api.admin.create("routers", external_gateway_info={"network_id": ext["id"]})
    (gateway,) = router["external_gateway_info"]["external_fixed_ips"]
    assert gateway["ip_address"].startswith("198.51.100.")


def test_updates_replace_the_list_and_bump_the_revision(api: Api, net: dict) -> None:
    s = subnet(api, net["id"], "10.32.0.0/24")
    for types in (["compute:"], ["network:floatingip", "network:floatingip"], [], None):
        updated = api.admin.put(f"/subnets/{s['id']}", json={"subnet": {"service_types": types}})
        assert updated.status_code == 200, updated.text
        assert updated.json()["subnet"]["service_types"] == list(dict.fromkeys(types or []))
        assert updated.json()["subnet"]["revision_number"] > s["revision_number"]
        s = updated.json()["subnet"]


@pytest.mark.parametrize(
    ("types", "status", "kind", "message"),
    [
        ("compute:nova", 400, "HTTPBadRequest", "Subnet service types must be a list."),
        (
            ["compute:nova", 7],
            400,
            "InvalidInputSubnetServiceType",
            "Subnet service type 7 is not a string.",
        ),
        (
            ["baremetal:none"],
            400,
            "InvalidSubnetServiceType",
            "Subnet service type baremetal:none does not correspond to a valid device owner.",
        ),
    ],
)
def test_service_types_are_checked_as_neutron(
    api: Api, net: dict, types: object, status: int, kind: str, message: str
) -> None:
    body = {"network_id": net["id"], "cidr": "10.33.0.0/24", "ip_version": 4}
    created = api.admin.post("/subnets", json={"subnet": {**body, "service_types": types}})
    assert error(created, status, kind) == message
    assert api.admin.get("/subnets", params={"network_id": net["id"]}).json()["subnets"] == []
    s = subnet(api, net["id"], "10.33.0.0/24")
    updated = api.admin.put(f"/subnets/{s['id']}", json={"subnet": {"service_types": types}})
    assert error(updated, status, kind) == message
    assert api.admin.get(f"/subnets/{s['id']}").json()["subnet"]["service_types"] == []


def test_service_types_is_no_filter(api: Api) -> None:
    listed = api.admin.get("/subnets", params={"service_types": "compute:nova"})
    assert (
        error(listed, 400, "HTTPBadRequest") == "service_types is invalid attribute for filtering"
    )
