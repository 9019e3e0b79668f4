"""Network IP availability: totals and used counts per network and subnet, admin only."""

from __future__ import annotations

import ipaddress
from typing import Any

from tests.conftest import Api
from tests.conftest import expect_error as error

URL = "/network-ip-availabilities"


def network_with_subnets(
    api: Api, name: str = "net"
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A demo network with a /28 (13 usable beyond the gateway) and an IPv6 /64, no DHCP."""
    net = api.demo.create("networks", name=name)
    v4 = api.demo.create(
        "subnets",
        network_id=net["id"],
        cidr="10.9.0.0/28",
        ip_version=4,
        name="v4",
        enable_dhcp=False,
    )
    v6 = api.demo.create(
        "subnets",
        network_id=net["id"],
        cidr="fd00:9::/64",
        ip_version=6,
        name="v6",
        enable_dhcp=False,
    )
    return net, v4, v6


def test_totals_and_used_per_subnet(api: Api) -> None:
    net, v4, v6 = network_with_subnets(api)
    api.demo.create("ports", network_id=net["id"])  # one address in each subnet
    api.demo.create("ports", network_id=net["id"], fixed_ips=[{"subnet_id": v4["id"]}])
    v6_total = sum(
        int(ipaddress.ip_address(p["end"])) - int(ipaddress.ip_address(p["start"])) + 1
        for p in v6["allocation_pools"]
    )
    assert v6_total > 2**63  # beyond what a 64-bit JSON encoder can write
    body = api.admin.get(f"{URL}/{net['id']}").json()["network_ip_availability"]
    body["subnet_ip_availability"].sort(key=lambda s: s["ip_version"])
    assert body == {
        "network_id": net["id"],
        "network_name": "net",
        "project_id": api.demo.project_id,
        "tenant_id": api.demo.project_id,
        "total_ips": 13 + v6_total,
        "used_ips": 3,
        "subnet_ip_availability": [
            {
                "subnet_id": v4["id"],
                "subnet_name": "v4",
                "cidr": "10.9.0.0/28",
                "ip_version": 4,
                "total_ips": 13,
                "used_ips": 2,
                "ip_availability_details": {
                    "total_ips_in_subnet": 14,
                    "total_ips_in_allocation_pool": 13,
                    "used_ips_in_subnet": 2,
                    "used_ips_in_allocation_pool": 2,
                },
            },
            {
                "subnet_id": v6["id"],
                "subnet_name": "v6",
                "cidr": "fd00:9::/64",
                "ip_version": 6,
                "total_ips": v6_total,
                "used_ips": 1,
                "ip_availability_details": {
                    "total_ips_in_subnet": 2**64,
                    "total_ips_in_allocation_pool": v6_total,
                    "used_ips_in_subnet": 1,
                    "used_ips_in_allocation_pool": 1,
                },
            },
        ],
        "ip_availability_details": {
            "total_ips_in_subnet": 14 + 2**64,
            "total_ips_in_allocation_pool": 13 + v6_total,
            "used_ips_in_subnet": 3,
            "used_ips_in_allocation_pool": 3,
        },
    }
    [listed] = [
        n
        for n in api.admin.get(URL).json()["network_ip_availabilities"]
        if n["network_id"] == net["id"]
    ]
    listed["subnet_ip_availability"].sort(key=lambda s: s["ip_version"])
    assert listed == body


def test_network_without_subnets_and_port_delete(api: Api) -> None:
    empty = api.demo.create("networks", name="empty")
    shown = api.admin.get(f"{URL}/{empty['id']}").json()["network_ip_availability"]
    assert (shown["total_ips"], shown["used_ips"], shown["subnet_ip_availability"]) == (0, 0, [])
    net, v4, _ = network_with_subnets(api)
    port = api.demo.create("ports", network_id=net["id"], fixed_ips=[{"subnet_id": v4["id"]}])
    assert api.admin.get(f"{URL}/{net['id']}").json()["network_ip_availability"]["used_ips"] == 1
    assert api.demo.delete(f"/ports/{port['id']}").status_code == 204
    assert api.admin.get(f"{URL}/{net['id']}").json()["network_ip_availability"]["used_ips"] == 0


def test_a_subnet_with_dhcp_counts_its_dhcp_port(api: Api) -> None:
    net = api.demo.create("networks", name="dhcp")
    api.demo.create("subnets", network_id=net["id"], cidr="10.9.1.0/24", ip_version=4)
    owners = {
        p["device_owner"]
        for p in api.admin.get("/ports", params={"network_id": net["id"]}).json()["ports"]
    }
    body = api.admin.get(f"{URL}/{net['id']}").json()["network_ip_availability"]
    assert (body["total_ips"], body["used_ips"]) == (253, len(owners))


def test_filters_fields_and_sorting(api: Api) -> None:
    first, v4, _ = network_with_subnets(api, "first")
    second = api.demo.create("networks", name="second")
    api.demo.create(
        "subnets", network_id=second["id"], cidr="10.9.2.0/24", ip_version=4, enable_dhcp=False
    )
    third = api.demo2.create("networks", name="third")

    def ids(**params: Any) -> list[str]:
        response = api.admin.get(URL, params=params)
        assert response.status_code == 200, response.text
        return [n["network_id"] for n in response.json()["network_ip_availabilities"]]

    assert ids(network_id=first["id"]) == [first["id"]]
    assert ids(network_name=["second", "third"]) == sorted([second["id"], third["id"]])
    assert set(ids(project_id=api.demo.project_id)) == {first["id"], second["id"]}
    assert ids(tenant_id=api.demo2.project_id) == [third["id"]]
    assert ids(ip_version=6) == [first["id"]]
    assert ids(ip_version=4, network_name="second") == [second["id"]]
    # With ip_version only the subnets of that version are counted.
    only_v4 = api.admin.get(URL, params={"ip_version": 4, "network_id": first["id"]}).json()
    assert [
        s["subnet_id"] for s in only_v4["network_ip_availabilities"][0]["subnet_ip_availability"]
    ] == [v4["id"]]
    assert only_v4["network_ip_availabilities"][0]["total_ips"] == 13
    every = ids()
    assert every == sorted(every)
    assert ids(sort_key="network_id", sort_dir="desc") == sorted(every, reverse=True)
    picked = api.admin.get(
        URL, params={"fields": ["network_id", "used_ips"], "network_id": second["id"]}
    ).json()
    assert picked == {"network_ip_availabilities": [{"network_id": second["id"], "used_ips": 0}]}
    error(api.admin.get(URL, params={"used_ips": 0}), 400, "HTTPBadRequest")
    error(api.admin.get(URL, params={"colour": "red"}), 400, "HTTPBadRequest")
    error(api.admin.get(URL, params={"ip_version": "four"}), 400, "InvalidInput")
    error(api.admin.get(URL, params={"sort_key": "used_ips"}), 400, "HTTPBadRequest")


def test_pages_by_network_id(api: Api) -> None:
    for n in range(3):
        api.demo.create("networks", name=f"n{n}")
    every = [n["network_id"] for n in api.admin.get(URL).json()["network_ip_availabilities"]]
    first = api.admin.get(URL, params={"limit": 2}).json()
    assert [n["network_id"] for n in first["network_ip_availabilities"]] == every[:2]
    assert [link["rel"] for link in first["network_ip_availabilities_links"]] == [
        "next",
        "previous",
    ]
    rest = api.admin.get(URL, params={"limit": 2, "marker": every[1]}).json()
    assert [n["network_id"] for n in rest["network_ip_availabilities"]] == every[2:4]
    error(
        api.admin.get(URL, params={"marker": "00000000-0000-0000-0000-000000000000"}),
        404,
        "NotFound",
    )


def test_advertised(api: Api) -> None:
    aliases = {e["alias"] for e in api.demo.get("/extensions").json()["extensions"]}
    assert {"network-ip-availability", "network-ip-availability-details"} <= aliases


def test_admin_only_and_unknown_network(api: Api) -> None:
    net, _, _ = network_with_subnets(api)
    assert api.demo.get(URL).json() == {"network_ip_availabilities": []}
    message = error(api.demo.get(f"{URL}/{net['id']}"), 404, "HTTPNotFound")
    assert message == "The resource could not be found."
    missing = "00000000-0000-0000-0000-000000000001"
    message = error(api.admin.get(f"{URL}/{missing}"), 404, "NetworkNotFound")
    assert message == f"Network {missing} could not be found."
    assert api.admin.post(URL, json={"network_ip_availability": {}}).status_code == 405
    assert api.admin.delete(f"{URL}/{net['id']}").status_code == 405
