"""Floating IP pools: every IPv4 subnet of every external network, for any caller."""

from __future__ import annotations

import ipaddress

from tests.api.l3 import external_network
from tests.conftest import Api
from tests.conftest import expect_error as error

URL = "/floatingip-pools"


def test_one_pool_per_ipv4_subnet_of_external_networks(api: Api) -> None:
    net, first = external_network(api)
    second = api.admin.create(
        "subnets",
        network_id=net["id"],
        cidr="10.10.20.0/24",
        ip_version=4,
        enable_dhcp=False,
        name="second",
    )
    api.admin.create(
        "subnets", network_id=net["id"], cidr="fd00:10::/64", ip_version=6, enable_dhcp=False
    )
    private = api.demo.create("networks", name="private")
    api.demo.create("subnets", network_id=private["id"], cidr="10.0.0.0/24", ip_version=4)

    pools = api.demo.get(URL).json()["floatingip_pools"]
    assert pools == sorted(
        [
            {
                "subnet_id": first["id"],
                "subnet_name": "",
                "network_id": net["id"],
                "cidr": "10.10.10.0/24",
                "project_id": api.demo.project_id,
            },
            {
                "subnet_id": second["id"],
                "subnet_name": "second",
                "network_id": net["id"],
                "cidr": "10.10.20.0/24",
                "project_id": api.demo.project_id,
            },
        ],
        key=lambda p: p["subnet_id"],
    )
    # A floating IP from the pool a caller picks comes from that subnet.
    fip = api.demo.create("floatingips", floating_network_id=net["id"], subnet_id=second["id"])
    assert ipaddress.ip_address(fip["floating_ip_address"]) in ipaddress.ip_network("10.10.20.0/24")
    fields = api.admin.get(URL, params={"fields": "cidr"}).json()["floatingip_pools"]
    assert sorted(p["cidr"] for p in fields) == ["10.10.10.0/24", "10.10.20.0/24"]
    assert all(set(p) == {"cidr"} for p in fields)


def test_pages_and_read_only(api: Api) -> None:
    net, _ = external_network(api)
    api.admin.create("subnets", network_id=net["id"], cidr="10.10.20.0/24", ip_version=4)
    every = [p["subnet_id"] for p in api.demo.get(URL).json()["floatingip_pools"]]
    first = api.demo.get(URL, params={"limit": 1}).json()
    assert [p["subnet_id"] for p in first["floatingip_pools"]] == every[:1]
    assert [link["rel"] for link in first["floatingip_pools_links"]] == ["next", "previous"]
    rest = api.demo.get(URL, params={"limit": 1, "marker": every[0]}).json()["floatingip_pools"]
    assert [p["subnet_id"] for p in rest] == every[1:]
    error(api.demo.get(URL, params={"cidr": "10.10.10.0/24"}), 400, "HTTPBadRequest")
    assert api.admin.post(URL, json={"floatingip_pool": {}}).status_code == 405
    aliases = {e["alias"] for e in api.demo.get("/extensions").json()["extensions"]}
    assert "floatingip-pools" in aliases
