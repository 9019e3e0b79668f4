"""Ports filtered by part of an address (`fixed_ips=ip_address_substr=...`), combined as Neutron."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.conftest import expect_error as error


def ids(api: Api, *filters: str, **params: Any) -> list[str]:
    response = api.demo.get("/ports", params={"fixed_ips": list(filters), **params})
    assert response.status_code == 200, response.text
    return sorted(p["id"] for p in response.json()["ports"])


def test_substring_alone_and_with_other_keys(api: Api) -> None:
    net = api.demo.create("networks", name="net")
    v4 = api.demo.create(
        "subnets", network_id=net["id"], cidr="10.7.0.0/24", ip_version=4, enable_dhcp=False
    )
    v6 = api.demo.create(
        "subnets", network_id=net["id"], cidr="fd00:7::/64", ip_version=6, enable_dhcp=False
    )
    first = api.demo.create(
        "ports",
        network_id=net["id"],
        fixed_ips=[{"ip_address": "10.7.0.15"}, {"ip_address": "fd00:7::15"}],
    )
    second = api.demo.create(
        "ports",
        network_id=net["id"],
        fixed_ips=[{"ip_address": "10.7.0.25"}, {"ip_address": "fd00:7::25"}],
    )
    both = sorted([first["id"], second["id"]])

    assert ids(api, "ip_address_substr=10.7.0.1") == [first["id"]]
    assert ids(api, "ip_address_substr=.0.") == both
    assert ids(api, "ip_address_substr=7::2") == [second["id"]]
    assert ids(api, "ip_address_substr=192.168.") == []
    # Repeated values of one key: either; different keys: all, each on any of the addresses.
    assert ids(api, "ip_address_substr=::15", "ip_address_substr=::25") == both
    assert ids(api, "ip_address_substr=10.7.0.", f"subnet_id={v4['id']}") == both
    assert ids(api, "ip_address_substr=10.7.0.1", "ip_address=fd00:7::25") == []
    assert ids(api, "ip_address_substr=10.7.0.1", "ip_address=fd00:7::15") == [first["id"]]
    assert ids(api, f"subnet_id={v6['id']}", "ip_address=10.7.0.25") == [second["id"]]
    assert ids(api, "ip_address_substr=%") == []  # no wildcards of SQL
    assert ids(api, "ip_address_substr=10.7.0.", limit=1) == [min(both)]
    error(
        api.demo.get("/ports", params={"fixed_ips": "ip_address_prefix=10."}), 400, "HTTPBadRequest"
    )
    aliases = {e["alias"] for e in api.demo.get("/extensions").json()["extensions"]}
    assert "ip-substring-filtering" in aliases
