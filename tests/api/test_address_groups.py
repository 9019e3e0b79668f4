"""Address groups: addresses normalized as Neutron does, add/remove actions, their use as the
remote of security group rules, visibility to their project and admins."""

from __future__ import annotations

import pytest

from tests.conftest import Api, ApiClient
from tests.conftest import expect_error as error

MISSING = "8d2b1c7e-0000-4000-8000-000000000000"
SENT = ["10.10.10.3/32", "192.168.0.10/24", "2001:db8::f00/64"]
STORED = ["10.10.10.3/32", "192.168.0.0/24", "2001:db8::/64"]


@pytest.fixture
def group(api: Api) -> dict:
    return api.demo.create("address-groups", name="web", description="servers", addresses=SENT)


def change(client: ApiClient, group_id: str, action: str, addresses: list) -> object:
    return client.put(f"/address-groups/{group_id}/{action}", json={"addresses": addresses})


def addresses(client: ApiClient, group_id: str) -> list[str]:
    return sorted(client.get(f"/address-groups/{group_id}").json()["address_group"]["addresses"])


def test_lifecycle(api: Api, group: dict) -> None:
    assert sorted(group["addresses"]) == sorted(STORED)
    assert (group["name"], group["description"]) == ("web", "servers")
    assert group["project_id"] == group["tenant_id"] == api.demo.project_id
    assert group["revision_number"] == 1
    updated = api.demo.put(
        f"/address-groups/{group['id']}", json={"address_group": {"description": "new"}}
    ).json()["address_group"]
    assert updated["description"] == "new" and sorted(updated["addresses"]) == sorted(STORED)
    listed = api.demo.get("/address-groups", params={"name": "web"}).json()["address_groups"]
    assert [g["id"] for g in listed] == [group["id"]]
    assert api.demo.delete(f"/address-groups/{group['id']}").status_code == 204
    message = error(api.demo.get(f"/address-groups/{group['id']}"), 404, "AddressGroupNotFound")
    assert message == f"Address group {group['id']} could not be found."


def test_addresses_must_be_prefixes(api: Api) -> None:
    for bad in ("10.20.30.40", "this is bad IP address"):
        body = {"address_group": {"name": "x", "addresses": [bad]}}
        message = error(api.demo.post("/address-groups", json=body), 400, "InvalidInput")
        assert message == f"Invalid input for operation: '{bad}' is not a valid IP subnet."
    addresses_not_list = {"address_group": {"addresses": ["10.0.0.0/8", "10.0.0.0/8"]}}
    error(api.demo.post("/address-groups", json=addresses_not_list), 400, "InvalidInput")
    assert api.demo.get("/address-groups").json()["address_groups"] == []


def test_add_and_remove_addresses(api: Api, group: dict) -> None:
    added = change(api.demo, group["id"], "add_addresses", ["10.20.30.40"])
    assert added.status_code == 200
    body = added.json()["address_group"]
    assert sorted(body["addresses"]) == sorted([*STORED, "10.20.30.40/32"])
    assert body["revision_number"] == 2
    removed = change(api.demo, group["id"], "remove_addresses", ["10.10.10.3/32", "192.168.0.7/24"])
    assert sorted(removed.json()["address_group"]["addresses"]) == [
        "10.20.30.40/32",
        "2001:db8::/64",
    ]


def test_wrong_addresses_change_nothing(api: Api, group: dict) -> None:
    message = error(
        change(api.demo, group["id"], "add_addresses", ["this is bad IP address"]),
        400,
        "AddrFormatError",
    )
    assert message == "invalid IPNetwork this is bad IP address"
    message = error(
        change(api.demo, group["id"], "add_addresses", ["10.0.0.1", "10.10.10.3"]),
        400,
        "AddressesAlreadyExist",
    )
    assert message == (
        f"Addresses ['10.10.10.3/32'] already exist in the address group {group['id']}."
    )
    message = error(
        change(api.demo, group["id"], "remove_addresses", ["10.200.200.200", "10.10.10.3/32"]),
        404,
        "AddressesNotFound",
    )
    assert message == (
        f"Addresses ['10.200.200.200/32'] not found in the address group {group['id']}."
    )
    error(change(api.demo, group["id"], "remove_addresses", ["bad"]), 400, "AddrFormatError")
    assert addresses(api.demo, group["id"]) == sorted(STORED)


def test_visible_to_its_project_and_admins(api: Api, group: dict) -> None:
    assert api.admin.get(f"/address-groups/{group['id']}").status_code == 200
    for response in (
        api.demo2.get(f"/address-groups/{group['id']}"),
        api.demo2.put(f"/address-groups/{group['id']}", json={"address_group": {"name": "x"}}),
        api.demo2.delete(f"/address-groups/{group['id']}"),
        change(api.demo2, group["id"], "add_addresses", ["10.9.9.9/32"]),
    ):
        error(response, 404, "AddressGroupNotFound")
    assert api.demo2.get("/address-groups").json()["address_groups"] == []
    assert addresses(api.demo, group["id"]) == sorted(STORED)


def test_rules_with_a_remote_address_group(api: Api, group: dict) -> None:
    sg = api.demo.create("security-groups", name="web")
    rule = {"security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp"}
    created = api.demo.create("security-group-rules", **rule, remote_address_group_id=group["id"])
    assert created["remote_address_group_id"] == group["id"]
    assert created["remote_ip_prefix"] is None and created["remote_group_id"] is None
    same = api.demo.post(
        "/security-group-rules",
        json={"security_group_rule": {**rule, "remote_address_group_id": group["id"]}},
    )
    error(same, 409, "SecurityGroupRuleExists")
    listed = api.demo.get(
        "/security-group-rules", params={"remote_address_group_id": group["id"]}
    ).json()["security_group_rules"]
    assert [r["id"] for r in listed] == [created["id"]]
    for other in ({"remote_ip_prefix": "10.0.0.0/8"}, {"remote_group_id": sg["id"]}):
        both = {**rule, "remote_address_group_id": group["id"], **other}
        message = error(
            api.demo.post("/security-group-rules", json={"security_group_rule": both}),
            400,
            "SecurityGroupMultipleRemoteEntites",
        )
        assert message == (
            "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be "
            "provided."
        )
    theirs = api.demo2.create("address-groups", name="theirs")
    for unknown in (MISSING, theirs["id"]):
        message = error(
            api.demo.post(
                "/security-group-rules",
                json={"security_group_rule": {**rule, "remote_address_group_id": unknown}},
            ),
            404,
            "AddressGroupNotFound",
        )
        assert message == f"Address group {unknown} could not be found."
    message = error(api.demo.delete(f"/address-groups/{group['id']}"), 409, "AddressGroupInUse")
    assert message == (
        f"Address group {group['id']} is in use on one or more security group rules."
    )
    api.demo.delete(f"/security-group-rules/{created['id']}")
    assert api.demo.delete(f"/address-groups/{group['id']}").status_code == 204
