"""Conntrack helpers of routers: their shapes, rules, policy and errors as Neutron has them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.l3 import external_network
from tests.api.test_no_500 import ODD_VALUES
from tests.api.test_policy_matrix import reader
from tests.conftest import Api, ApiClient
from tests.conftest import expect_error as error


@pytest.fixture
def router(api: Api) -> dict:
    ext_net, _ = external_network(api)
    return api.demo.create("routers", name="r", external_gateway_info={"network_id": ext_net["id"]})


def helpers_of(router_id: str) -> str:
    return f"/routers/{router_id}/conntrack_helpers"


def add_helper(client: ApiClient, router_id: str, **body: Any) -> Any:
    return client.post(helpers_of(router_id), json={"conntrack_helper": body})


def shown(client: ApiClient, router_id: str) -> dict:
    return client.get(f"/routers/{router_id}").json()["router"]


def test_life_cycle_and_the_routers_attribute(api: Api, router: dict) -> None:
    aliases = {e["alias"] for e in api.demo.get("/extensions").json()["extensions"]}
    assert {"l3-conntrack-helper", "expose-l3-conntrack-helper"} <= aliases
    assert router["conntrack_helpers"] == []
    answer = add_helper(api.demo, router["id"], protocol="udp", port=69, helper="tftp")
    assert answer.status_code == 201, answer.text
    cth = answer.json()["conntrack_helper"]
    assert cth == {
        "id": cth["id"],
        "router_id": router["id"],
        "protocol": "udp",
        "port": 69,
        "helper": "tftp",
    }
    base = helpers_of(router["id"])
    assert api.demo.get(f"{base}/{cth['id']}").json()["conntrack_helper"] == cth
    assert api.demo.get(base).json()["conntrack_helpers"] == [cth]
    # The router shows its helpers (expose-l3-conntrack-helper) and changed with them.
    after = shown(api.demo, router["id"])
    assert after["conntrack_helpers"] == [{"protocol": "udp", "port": 69, "helper": "tftp"}]
    assert after["revision_number"] > router["revision_number"]

    ftp = add_helper(api.demo, router["id"], protocol="tcp", port="21", helper="ftp")
    assert ftp.json()["conntrack_helper"]["port"] == 21  # converted, as Neutron's convert_to_int
    updated = api.demo.put(f"{base}/{cth['id']}", json={"conntrack_helper": {"port": 6969}})
    assert updated.status_code == 200, updated.text
    assert updated.json()["conntrack_helper"] == {**cth, "port": 6969}
    assert shown(api.demo, router["id"])["conntrack_helpers"] == [
        {"protocol": "tcp", "port": 21, "helper": "ftp"},
        {"protocol": "udp", "port": 6969, "helper": "tftp"},
    ]
    listed = api.demo.get(base, params={"helper": "ftp"}).json()["conntrack_helpers"]
    assert [c["helper"] for c in listed] == ["ftp"]
    by_port = api.demo.get(base, params={"sort_key": "port", "sort_dir": "desc"})
    assert [c["port"] for c in by_port.json()["conntrack_helpers"]] == [6969, 21]
    fields = api.demo.get(f"/routers/{router['id']}", params={"fields": "conntrack_helpers"})
    assert fields.json()["router"] == {
        "conntrack_helpers": shown(api.demo, router["id"])["conntrack_helpers"]
    }

    assert api.demo.delete(f"{base}/{cth['id']}").status_code == 204
    assert error(api.demo.get(f"{base}/{cth['id']}"), 404, "ConntrackHelperNotFound") == (
        f"Conntrack Helper {cth['id']} could not be found."
    )
    assert shown(api.demo, router["id"])["conntrack_helpers"] == [
        {"protocol": "tcp", "port": 21, "helper": "ftp"}
    ]
    # The helpers go with their router.
    assert api.demo.delete(f"/routers/{router['id']}").status_code == 204
    assert api.admin.get(base).json()["conntrack_helpers"] == []


def test_a_helper_is_seen_only_under_its_own_router(api: Api, router: dict) -> None:
    other = api.demo.create("routers", name="other")
    cth = add_helper(api.demo, router["id"], protocol="tcp", port=21, helper="ftp").json()[
        "conntrack_helper"
    ]
    wrong = f"{helpers_of(other['id'])}/{cth['id']}"
    error(api.demo.get(wrong), 404, "ConntrackHelperNotFound")
    error(
        api.demo.put(wrong, json={"conntrack_helper": {"port": 2121}}),
        404,
        "ConntrackHelperNotFound",
    )
    error(api.demo.delete(wrong), 404, "ConntrackHelperNotFound")
    assert api.demo.get(helpers_of(other["id"])).json()["conntrack_helpers"] == []


@pytest.mark.parametrize(
    ("body", "kind", "message"),
    [
        (
            {"helper": "nope"},
            "ConntrackHelperNotAllowed",
            "Conntrack Helper nope is not allowed.",
        ),
        (
            {"helper": "ftp", "protocol": "udp"},
            "InvalidProtocolForHelper",
            "Conntrack Helper ftp does not support: udp. Supported protocols are: tcp",
        ),
        (
            {"helper": "sip", "protocol": "icmp"},
            "InvalidProtocolForHelper",
            "Conntrack Helper sip does not support: icmp. Supported protocols are: udp, tcp",
        ),
        (
            {"port": 0},
            "HTTPBadRequest",
            "Invalid input for port. Reason: '0' is too small - must be at least '1'.",
        ),
        (
            {"port": 65536},
            "HTTPBadRequest",
            (
                "Invalid input for port. Reason: '65536' is too large - must be no larger than "
                "'65535'."
            ),
        ),
        ({"port": "x"}, "InvalidInput", "Invalid input for operation: 'x' is not an integer."),
        ({"port": None}, "InvalidInput", "Invalid input for operation: 'None' is not an integer."),
        (
            {"protocol": "TCP"},
            "HTTPBadRequest",
            "Invalid input for protocol. Reason: TCP is not in valid_values.",
        ),
        (
            {"protocol": "6"},
            "HTTPBadRequest",
            "Invalid input for protocol. Reason: 6 is not in valid_values.",
        ),
        (
            {"protocol": "foo"},
            "InvalidInput",
            (
                "Invalid input for operation: IP protocol 'foo' is not supported. Only protocol "
                "names and their integer representation (0 to 255) are supported."
            ),
        ),
        (
            {"protocol": 6},
            "InvalidInput",
            "Invalid input for operation: Input value 6 must be string type.",
        ),
        (
            {"helper": "x" * 65},
            "HTTPBadRequest",
            f"Invalid input for helper. Reason: '{'x' * 65}' exceeds maximum length of 64.",
        ),
        (
            {"helper": None},
            "HTTPBadRequest",
            "Invalid input for helper. Reason: 'None' is not a valid string.",
        ),
    ],
)
def test_refused_values_change_nothing(
    api: Api, router: dict, body: dict, kind: str, message: str
) -> None:
    valid = {"protocol": "tcp", "port": 21, "helper": "ftp"}
    assert error(add_helper(api.demo, router["id"], **{**valid, **body}), 400, kind) == message
    cth = add_helper(api.demo, router["id"], **valid).json()["conntrack_helper"]
    path = f"{helpers_of(router['id'])}/{cth['id']}"
    assert error(api.demo.put(path, json={"conntrack_helper": body}), 400, kind) == message
    assert api.demo.get(path).json()["conntrack_helper"] == cth
    assert shown(api.demo, router["id"])["conntrack_helpers"] == [
        {"protocol": "tcp", "port": 21, "helper": "ftp"}
    ]


def test_a_duplicate_is_refused_as_neutron_words_it(api: Api, router: dict) -> None:
    """Neutron answers a clash with its unique constraint as BadRequest, with the values."""
    tftp = {"protocol": "udp", "port": 69, "helper": "tftp"}
    assert add_helper(api.demo, router["id"], **tftp).status_code == 201
    clash = (
        "Bad conntrack_helper request: A duplicate conntrack helper entry with same attributes "
        f"already exists, conflicting values are {{'router_id': '{router['id']}', "
        "'protocol': 'udp', 'port': 69, 'helper': 'tftp'}."
    )
    assert error(add_helper(api.demo, router["id"], **tftp), 400, "BadRequest") == clash
    # The same port with another helper, and the same helper on another router, are no clash.
    other = api.demo.create("routers", name="other")
    assert add_helper(api.demo, other["id"], **tftp).status_code == 201
    moved = add_helper(api.demo, router["id"], **{**tftp, "port": 70}).json()["conntrack_helper"]
    path = f"{helpers_of(router['id'])}/{moved['id']}"
    assert error(
        api.demo.put(path, json={"conntrack_helper": {"port": 69}}), 400, "BadRequest"
    ) == (clash)
    assert api.demo.get(path).json()["conntrack_helper"]["port"] == 70
    assert len(api.demo.get(helpers_of(router["id"])).json()["conntrack_helpers"]) == 2


def test_the_routers_owner_and_admins_only(api: Api, router: dict) -> None:
    """Another project's router has no helpers to see and takes none, as if it did not exist;
    a reader of the owner's project reads only."""
    base = helpers_of(router["id"])
    cth = add_helper(api.demo, router["id"], protocol="tcp", port=21, helper="ftp").json()[
        "conntrack_helper"
    ]
    path = f"{base}/{cth['id']}"
    stranger = api.demo2
    assert stranger.get(base).json()["conntrack_helpers"] == []
    assert error(stranger.get(path), 404, "ConntrackHelperNotFound") == (
        f"Conntrack Helper {cth['id']} could not be found."
    )
    error(
        stranger.put(path, json={"conntrack_helper": {"port": 2121}}),
        404,
        "ConntrackHelperNotFound",
    )
    error(stranger.delete(path), 404, "ConntrackHelperNotFound")
    assert (
        error(
            add_helper(stranger, router["id"], protocol="udp", port=69, helper="tftp"),
            404,
            "RouterNotFound",
        )
        == f"Router {router['id']} could not be found."
    )
    assert error(
        add_helper(
            api.demo,
            router["id"],
            protocol="udp",
            port=69,
            helper="tftp",
            project_id=stranger.project_id,
        ),
        400,
        "HTTPBadRequest",
    ) == (
        "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request "
        "requires admin privileges"
    )

    read_only = reader(api)
    assert read_only.get(base).json()["conntrack_helpers"] == [cth]
    assert read_only.get(path).json()["conntrack_helper"] == cth
    for denied in (
        add_helper(read_only, router["id"], protocol="udp", port=69, helper="tftp"),
        read_only.put(path, json={"conntrack_helper": {"port": 2121}}),
        read_only.delete(path),
    ):
        error(denied, 403, "PolicyNotAuthorized")

    assert api.admin.get(base).json()["conntrack_helpers"] == [cth]
    by_admin = api.admin.put(path, json={"conntrack_helper": {"port": 2121}})
    assert by_admin.json()["conntrack_helper"]["port"] == 2121
    assert (
        add_helper(api.admin, router["id"], protocol="udp", port=69, helper="tftp").status_code
        == 201
    )
    assert len(api.demo.get(base).json()["conntrack_helpers"]) == 2


def test_the_routers_attribute_is_read_only(api: Api, router: dict) -> None:
    helpers = [{"protocol": "tcp", "port": 21, "helper": "ftp"}]
    for answer in (
        api.demo.put(f"/routers/{router['id']}", json={"router": {"conntrack_helpers": helpers}}),
        api.demo.post("/routers", json={"router": {"conntrack_helpers": helpers}}),
    ):
        error(answer, 400, "BadRequest")
    assert shown(api.demo, router["id"])["conntrack_helpers"] == []


def test_odd_values_are_4xx_never_5xx(api: Api, router: dict) -> None:
    valid = {"protocol": "tcp", "port": 21, "helper": "ftp"}
    base = helpers_of(router["id"])
    cth = add_helper(api.demo, router["id"], **valid).json()["conntrack_helper"]
    for attribute in (*valid, "id", "project_id"):
        for value in ODD_VALUES:
            created = add_helper(api.demo, router["id"], **{**valid, "port": 22, attribute: value})
            assert created.status_code < 500, (attribute, value, created.text)
            if created.status_code == 201:
                api.demo.delete(f"{base}/{created.json()['conntrack_helper']['id']}")
            updated = api.demo.put(
                f"{base}/{cth['id']}", json={"conntrack_helper": {attribute: value}}
            )
            assert updated.status_code < 500, (attribute, value, updated.text)
            listed = api.demo.get(base, params={attribute: str(value)})
            assert listed.status_code < 500, (attribute, value, listed.text)
