"""Extra DHCP options of ports: create, update and removal as Neutron does them, and its errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.conftest import expect_error as error


def opt(name: str, value: str | None, version: int = 4) -> dict[str, Any]:
    return {"opt_name": name, "opt_value": value, "ip_version": version}


@pytest.fixture
def network(api: Api) -> dict[str, Any]:
    net = api.demo.create("networks", name="net")
    api.demo.create("subnets", network_id=net["id"], cidr="10.8.0.0/24", ip_version=4)
    return net


def test_create_show_and_list(api: Api, network: dict[str, Any]) -> None:
    port = api.demo.create(
        "ports",
        network_id=network["id"],
        extra_dhcp_opts=[
            {"opt_name": "mtu", "opt_value": "1400"},  # ip_version 4 when not given
            {"opt_name": "domain-search", "opt_value": "a.example,b.example", "ip_version": "6"},
            {"opt_name": "router", "opt_value": ""},  # blank: "no router"
            {"opt_name": "tftp-server", "opt_value": None},  # nothing to store
        ],
    )
    expected = [
        opt("domain-search", "a.example,b.example", 6),
        opt("mtu", "1400"),
        opt("router", ""),
    ]
    assert port["extra_dhcp_opts"] == expected
    assert api.demo.get(f"/ports/{port['id']}").json()["port"]["extra_dhcp_opts"] == expected
    listed = api.demo.get("/ports", params={"id": port["id"], "fields": "extra_dhcp_opts"}).json()[
        "ports"
    ]
    assert listed == [{"extra_dhcp_opts": expected}]
    plain = api.demo.create("ports", network_id=network["id"])
    assert plain["extra_dhcp_opts"] == []
    assert api.demo.get(f"/ports/{plain['id']}").json()["port"]["extra_dhcp_opts"] == []


def test_update_changes_only_what_it_names(api: Api, network: dict[str, Any]) -> None:
    port = api.demo.create(
        "ports",
        network_id=network["id"],
        extra_dhcp_opts=[
            opt("mtu", "1400"),
            opt("domain-search", "a.example"),
            opt("mtu", "1280", 6),
        ],
    )

    def update(opts: Any) -> list[dict[str, Any]]:
        response = api.demo.put(f"/ports/{port['id']}", json={"port": {"extra_dhcp_opts": opts}})
        assert response.status_code == 200, response.text
        shown = api.demo.get(f"/ports/{port['id']}").json()["port"]
        assert shown["extra_dhcp_opts"] == response.json()["port"]["extra_dhcp_opts"]
        return response.json()["port"]["extra_dhcp_opts"]

    before = api.demo.get(f"/ports/{port['id']}").json()["port"]["revision_number"]
    # A new value, a new option, the same value again; the others stay.
    assert update(
        [
            {"opt_name": "mtu", "opt_value": "1450"},
            opt("150", "10.8.0.9"),
            opt("domain-search", "a.example"),
        ]
    ) == [
        opt("150", "10.8.0.9"),
        opt("domain-search", "a.example"),
        opt("mtu", "1450"),
        opt("mtu", "1280", 6),
    ]
    assert api.demo.get(f"/ports/{port['id']}").json()["port"]["revision_number"] > before
    # A null value removes that option of that IP version only; unknown ones are ignored.
    assert update([opt("mtu", None, 6), opt("tftp-server", None)]) == [
        opt("150", "10.8.0.9"),
        opt("domain-search", "a.example"),
        opt("mtu", "1450"),
    ]
    # An empty list, or null, changes nothing.
    assert update([]) == [
        opt("150", "10.8.0.9"),
        opt("domain-search", "a.example"),
        opt("mtu", "1450"),
    ]
    assert update(None) == [
        opt("150", "10.8.0.9"),
        opt("domain-search", "a.example"),
        opt("mtu", "1450"),
    ]
    # Removing all takes a null for each.
    assert update([opt("150", None), opt("domain-search", None), opt("mtu", None)]) == []


def test_deleting_the_port_deletes_its_options(api: Api, network: dict[str, Any]) -> None:
    port = api.demo.create("ports", network_id=network["id"], extra_dhcp_opts=[opt("mtu", "1400")])
    assert api.demo.delete(f"/ports/{port['id']}").status_code == 204
    error(api.demo.get(f"/ports/{port['id']}"), 404, "PortNotFound")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mtu", "'mtu' is not a list"),
        ([{"opt_name": "mtu"}], "No valid key specs matched for: {'opt_name': 'mtu'}"),
        (
            [{"opt_name": "mtu", "opt_value": ""}],
            "No valid key specs matched for: {'opt_name': 'mtu', 'opt_value': ''}",
        ),
        (
            [{"opt_name": "mtu", "opt_value": "   "}],
            "No valid key specs matched for: {'opt_name': 'mtu', 'opt_value': '   '}",
        ),
        (
            [{"opt_name": "", "opt_value": "x"}],
            "No valid key specs matched for: {'opt_name': '', 'opt_value': 'x'}",
        ),
        (
            [{"opt_name": "mtu", "opt_value": "1\n2"}],
            "No valid key specs matched for: {'opt_name': 'mtu', 'opt_value': '1\\n2'}",
        ),
        (
            [{"opt_name": "mtu", "opt_value": "1", "ip_version": 5}],
            (
                "No valid key specs matched for: "
                "{'opt_name': 'mtu', 'opt_value': '1', 'ip_version': 5}"
            ),
        ),
        ([{"opt_name": "mtu", "opt_value": "1", "ip_version": "four"}], "'four' is not an integer"),
        (
            [{"opt_name": "mtu", "opt_value": "1", "colour": "red"}],
            (
                "No valid key specs matched for: "
                "{'opt_name': 'mtu', 'opt_value': '1', 'colour': 'red'}"
            ),
        ),
        (
            [{"opt_name": "x" * 65, "opt_value": "1"}],
            "No valid key specs matched for: {'opt_name': '" + "x" * 65 + "', 'opt_value': '1'}",
        ),
        (
            [{"opt_name": "mtu", "opt_value": "1"}, {"opt_name": "mtu", "opt_value": "1"}],
            "Duplicate items in the list: '{'opt_name': 'mtu', 'opt_value': '1'}'",
        ),
        (["mtu"], "No valid key specs matched for: mtu"),
    ],
)
def test_invalid_options(api: Api, network: dict[str, Any], value: Any, message: str) -> None:
    body = {"port": {"network_id": network["id"], "extra_dhcp_opts": value}}
    assert (
        error(api.demo.post("/ports", json=body), 400, "InvalidInput")
        == f"Invalid input for operation: {message}."
    )
    port = api.demo.create("ports", network_id=network["id"], extra_dhcp_opts=[opt("mtu", "1400")])
    response = api.demo.put(f"/ports/{port['id']}", json={"port": {"extra_dhcp_opts": value}})
    error(response, 400, "InvalidInput")
    assert api.demo.get(f"/ports/{port['id']}").json()["port"]["extra_dhcp_opts"] == [
        opt("mtu", "1400")
    ]


def test_the_same_new_option_twice_conflicts(api: Api, network: dict[str, Any]) -> None:
    twice = [opt("mtu", "1400"), opt("mtu", "1300")]
    body = {"port": {"network_id": network["id"], "extra_dhcp_opts": twice}}
    error(api.demo.post("/ports", json=body), 409, "NeutronDbObjectDuplicateEntry")
    mine = {"network_id": network["id"], "device_owner": ""}
    assert api.demo.get("/ports", params=mine).json()["ports"] == []
    port = api.demo.create("ports", network_id=network["id"], extra_dhcp_opts=[opt("150", "x")])
    response = api.demo.put(f"/ports/{port['id']}", json={"port": {"extra_dhcp_opts": twice}})
    error(response, 409, "NeutronDbObjectDuplicateEntry")
    assert api.demo.get(f"/ports/{port['id']}").json()["port"]["extra_dhcp_opts"] == [
        opt("150", "x")
    ]


def test_no_filter_on_options_and_advertised(api: Api, network: dict[str, Any]) -> None:
    error(api.demo.get("/ports", params={"extra_dhcp_opts": "mtu"}), 400, "HTTPBadRequest")
    assert "extra_dhcp_opt" in {
        e["alias"] for e in api.demo.get("/extensions").json()["extensions"]
    }
