"""Address scopes: pools that share one have unique addresses; networks show their scopes."""

from __future__ import annotations

from tests.conftest import Api
from tests.conftest import expect_error as error


def test_address_scopes_show_neutrons_attributes(api: Api) -> None:
    scope = api.demo.create("address-scopes", name="scope", ip_version=4)
    assert scope == {
        "id": scope["id"],
        "name": "scope",
        "project_id": api.demo.project_id,
        "tenant_id": api.demo.project_id,
        "shared": False,
        "ip_version": 4,
    }
    url = f"/address-scopes/{scope['id']}"
    renamed = api.demo.put(url, json={"address_scope": {"name": "renamed"}}).json()
    assert renamed["address_scope"] == {**scope, "name": "renamed"}
    message = error(
        api.demo.put(url, json={"address_scope": {"shared": False}}), 403, "PolicyNotAuthorized"
    )
    assert message == "rule:update_address_scope:shared is disallowed by policy"
    assert api.demo.get("/address-scopes", params={"ip_version": 6}).json() == {
        "address_scopes": []
    }
    message = error(api.demo2.get(url), 404, "AddressScopeNotFound")
    assert message == f"Address scope {scope['id']} could not be found."
    message = error(
        api.demo.post("/address-scopes", json={"address_scope": {"name": "s"}}), 400, "BadRequest"
    )
    assert message == (
        "Bad address_scope request: Failed to parse request. "
        "Required attribute 'ip_version' not specified."
    )
    message = error(
        api.demo.post("/address-scopes", json={"address_scope": {"ip_version": 4, "shared": True}}),
        403,
        "PolicyNotAuthorized",
    )
    assert message == "rule:create_address_scope:shared is disallowed by policy"
    assert api.demo.delete(url).status_code == 204
    error(api.demo.get(url), 404, "AddressScopeNotFound")


def test_a_shared_scope_is_seen_by_all_and_stays_shared(api: Api) -> None:
    scope = api.admin.create("address-scopes", name="public", ip_version=6, shared=True)
    assert api.demo2.get(f"/address-scopes/{scope['id']}").json()["address_scope"] == scope
    message = error(
        api.admin.put(f"/address-scopes/{scope['id']}", json={"address_scope": {"shared": False}}),
        400,
        "AddressScopeUpdateError",
    )
    assert message == (
        f"Unable to update address scope {scope['id']} : Shared address scope can't be unshared."
    )


def test_pools_join_a_scope_of_their_version_without_sharing_addresses(api: Api) -> None:
    scope = api.demo.create("address-scopes", name="scope", ip_version=4)
    v6 = api.demo.create("address-scopes", name="v6", ip_version=6)
    first = api.demo.create(
        "subnetpools", name="a", prefixes=["10.0.0.0/16"], address_scope_id=scope["id"]
    )
    assert first["address_scope_id"] == scope["id"]
    overlapping = {"name": "b", "prefixes": ["10.0.128.0/17"], "address_scope_id": scope["id"]}
    message = error(
        api.demo.post("/subnetpools", json={"subnetpool": overlapping}),
        409,
        "AddressScopePrefixConflict",
    )
    assert message == (
        "Failed to associate address scope: subnetpools within an address scope must have "
        "unique prefixes."
    )
    second = api.demo.create("subnetpools", name="b", prefixes=["10.1.0.0/16"])
    url = f"/subnetpools/{second['id']}"
    message = error(
        api.demo.put(url, json={"subnetpool": {"address_scope_id": v6["id"]}}),
        400,
        "IllegalSubnetPoolIpVersionAssociationToAddressScope",
    )
    assert message == (
        f"Illegal subnetpool association: subnetpool {second['id']} cannot associate with "
        f"address scope {v6['id']} because subnetpool ip_version is not 6."
    )
    other = api.demo2.create("address-scopes", name="theirs", ip_version=4)
    error(
        api.demo.put(url, json={"subnetpool": {"address_scope_id": other["id"]}}),
        404,
        "AddressScopeNotFound",
    )
    # A scope shared with the project takes its pools, which then change no more.
    shared = api.admin.create("address-scopes", name="shared", ip_version=4, shared=True)
    third = api.demo.create(
        "subnetpools", name="c", prefixes=["10.2.0.0/16"], address_scope_id=shared["id"]
    )
    assert third["address_scope_id"] == shared["id"]
    rename = {"subnetpool": {"name": "d"}}
    message = error(
        api.demo.put(f"/subnetpools/{third['id']}", json=rename), 400, "IllegalSubnetPoolUpdate"
    )
    assert message == (
        f"Illegal subnetpool update : subnetpool {third['id']} cannot be updated when associated "
        f"with shared address scope {shared['id']}."
    )
    joined = api.demo.put(url, json={"subnetpool": {"address_scope_id": scope["id"]}}).json()
    assert joined["subnetpool"]["address_scope_id"] == scope["id"]
    grown = {"prefixes": ["10.1.0.0/16", "10.0.200.0/24"]}
    error(api.demo.put(url, json={"subnetpool": grown}), 409, "AddressScopePrefixConflict")

    message = error(api.demo.delete(f"/address-scopes/{scope['id']}"), 409, "AddressScopeInUse")
    assert message == (
        f"Unable to complete operation on address scope {scope['id']}. There are one or more "
        "subnet pools in use on the address scope."
    )


def test_networks_show_the_scopes_of_their_subnets_pools(api: Api) -> None:
    scope = api.demo.create("address-scopes", name="scope", ip_version=4)
    scoped = api.demo.create(
        "subnetpools",
        name="scoped",
        prefixes=["10.5.0.0/16"],
        default_prefixlen=24,
        address_scope_id=scope["id"],
    )
    network = api.demo.create("networks", name="net")
    assert (network["ipv4_address_scope"], network["ipv6_address_scope"]) == (None, None)
    api.demo.create("subnets", network_id=network["id"], ip_version=4, subnetpool_id=scoped["id"])
    shown = api.demo.get(f"/networks/{network['id']}").json()["network"]
    assert (shown["ipv4_address_scope"], shown["ipv6_address_scope"]) == (scope["id"], None)

    # Another pool of the same scope may serve the network; a pool of none may not.
    sibling = api.demo.create(
        "subnetpools",
        name="sibling",
        prefixes=["10.6.0.0/16"],
        default_prefixlen=24,
        address_scope_id=scope["id"],
    )
    api.demo.create("subnets", network_id=network["id"], ip_version=4, subnetpool_id=sibling["id"])
    unscoped = api.demo.create(
        "subnetpools", name="free", prefixes=["10.7.0.0/16"], default_prefixlen=24
    )
    body = {"network_id": network["id"], "ip_version": 4, "subnetpool_id": unscoped["id"]}
    message = error(
        api.demo.post("/subnets", json={"subnet": body}), 400, "NetworkAddressScopeAffinityError"
    )
    assert message == (
        "Subnets of the same address family hosted on the same network must all participate in "
        "the same address scope."
    )
    aliases = {e["alias"] for e in api.demo.get("/extensions").json()["extensions"]}
    assert "address-scope" in aliases
