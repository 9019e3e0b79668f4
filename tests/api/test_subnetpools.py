"""Subnet pools: subnets allocated by size from a pool's prefixes, as Neutron allocates them."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, ApiClient
from tests.conftest import expect_error as error


def pool(client: ApiClient, prefixes: list[str], **attrs: Any) -> dict[str, Any]:
    return client.create("subnetpools", name=attrs.pop("name", "pool"), prefixes=prefixes, **attrs)


def subnet_from(client: ApiClient, pool_id: str, version: int = 4, **attrs: Any) -> Any:
    network = client.create("networks", name="net")
    body = {"network_id": network["id"], "ip_version": version, "subnetpool_id": pool_id, **attrs}
    return client.post("/subnets", json={"subnet": body})


def test_a_pool_shows_neutrons_attributes_and_defaults(api: Api) -> None:
    # Prefixes are merged, host bits dropped.
    created = pool(api.demo, ["10.10.0.0/17", "10.10.128.0/17", "10.10.5.7/24"])
    assert created == {
        "id": created["id"],
        "name": "pool",
        "description": "",
        "project_id": api.demo.project_id,
        "tenant_id": api.demo.project_id,
        "created_at": created["created_at"],
        "updated_at": created["updated_at"],
        "revision_number": 1,
        "tags": [],
        "ip_version": 4,
        "prefixes": ["10.10.0.0/16"],
        "default_prefixlen": "8",
        "min_prefixlen": "8",
        "max_prefixlen": "32",
        "default_quota": None,
        "shared": False,
        "is_default": False,
        "address_scope_id": None,
    }
    v6 = pool(api.demo, ["2001:db8::/48"])
    assert (v6["ip_version"], v6["min_prefixlen"], v6["max_prefixlen"]) == (6, "64", "128")
    assert api.demo.get(f"/subnetpools/{created['id']}").json()["subnetpool"] == created
    assert api.demo.get("/subnetpools", params={"name": "missing"}).json() == {"subnetpools": []}


def test_bad_pools_are_refused_as_neutron_refuses_them(api: Api) -> None:
    post = api.demo.post
    message = error(
        post("/subnetpools", json={"subnetpool": {"name": "p", "prefixes": []}}),
        400,
        "EmptySubnetPoolPrefixList",
    )
    assert message == "Empty subnet pool prefix list."
    mixed = {"name": "p", "prefixes": ["10.0.0.0/8", "2001:db8::/32"]}
    message = error(post("/subnetpools", json={"subnetpool": mixed}), 400, "PrefixVersionMismatch")
    assert message == "Cannot mix IPv4 and IPv6 prefixes in a subnet pool."
    bounds = {"name": "p", "prefixes": ["10.0.0.0/8"], "min_prefixlen": 24, "max_prefixlen": 16}
    message = error(
        post("/subnetpools", json={"subnetpool": bounds}), 400, "IllegalSubnetPoolPrefixBounds"
    )
    assert message == "Illegal prefix bounds: min_prefixlen=24, max_prefixlen=16."
    too_long = {"name": "p", "prefixes": ["10.0.0.0/8"], "max_prefixlen": 33}
    message = error(
        post("/subnetpools", json={"subnetpool": too_long}), 400, "IllegalSubnetPoolPrefixBounds"
    )
    assert message == "Illegal prefix bounds: max_prefixlen=33, ip_version_max=32."
    negative = {"name": "p", "prefixes": ["10.0.0.0/8"], "default_quota": -1}
    message = error(post("/subnetpools", json={"subnetpool": negative}), 400, "InvalidInput")
    assert message == "Invalid input for operation: '-1' should be non-negative."
    message = error(
        post("/subnetpools", json={"subnetpool": {"prefixes": ["10.0.0.0/8"]}}), 400, "BadRequest"
    )
    assert message == (
        "Bad subnetpool request: Failed to parse request. Required attribute 'name' not specified."
    )
    assert api.demo.get("/subnetpools").json() == {"subnetpools": []}


def test_subnets_are_allocated_by_size_from_the_pool(api: Api) -> None:
    created = pool(api.demo, ["10.20.0.0/16"], default_prefixlen=24, min_prefixlen=20)
    first = subnet_from(api.demo, created["id"]).json()["subnet"]
    assert (first["cidr"], first["subnetpool_id"]) == ("10.20.0.0/24", created["id"])
    assert first["gateway_ip"] == "10.20.0.1"
    assert first["allocation_pools"] == [{"start": "10.20.0.2", "end": "10.20.0.254"}]
    second = subnet_from(api.demo, created["id"], prefixlen=26).json()["subnet"]
    assert second["cidr"] == "10.20.1.0/26"
    third = subnet_from(api.demo, created["id"], prefixlen=26).json()["subnet"]
    assert third["cidr"] == "10.20.1.64/26"
    listed = api.demo.get("/subnets", params={"subnetpool_id": created["id"]}).json()["subnets"]
    assert sorted(s["cidr"] for s in listed) == ["10.20.0.0/24", "10.20.1.0/26", "10.20.1.64/26"]

    # A CIDR asked of the pool must be free there.
    message = error(
        subnet_from(api.demo, created["id"], cidr="10.20.0.128/25"), 409, "SubnetAllocationError"
    )
    assert message == (
        "Failed to allocate subnet: Cannot allocate requested subnet from the available set of "
        "prefixes."
    )
    error(subnet_from(api.demo, created["id"], cidr="10.99.0.0/24"), 409, "SubnetAllocationError")
    assert subnet_from(api.demo, created["id"], cidr="10.20.2.0/24").json()["subnet"]["cidr"] == (
        "10.20.2.0/24"
    )
    message = error(
        subnet_from(api.demo, created["id"], prefixlen=16), 400, "MinPrefixSubnetAllocationError"
    )
    assert message == (
        "Unable to allocate subnet with prefix length 16, minimum allowed prefix is 20."
    )
    message = error(
        subnet_from(api.demo, created["id"], cidr="10.20.3.0/24", prefixlen=24), 400, "BadRequest"
    )
    assert message == "Bad subnets request: cidr and prefixlen must not be supplied together."
    message = error(subnet_from(api.demo, created["id"], version=6), 400, "BadRequest")
    assert message == "Bad subnets request: Cannot allocate IPv6 subnet from IPv4 subnet pool."
    small = pool(api.demo, ["10.30.0.0/24"], default_prefixlen=25)
    subnet_from(api.demo, small["id"])
    subnet_from(api.demo, small["id"])
    message = error(subnet_from(api.demo, small["id"]), 409, "SubnetAllocationError")
    assert (
        message
        == "Failed to allocate subnet: Insufficient prefix space to allocate subnet size /25."
    )

    v6 = pool(api.demo, ["2001:db8:1::/48"])
    one = subnet_from(api.demo, v6["id"], version=6).json()["subnet"]
    two = subnet_from(api.demo, v6["id"], version=6).json()["subnet"]
    assert (one["cidr"], two["cidr"]) == ("2001:db8:1::/64", "2001:db8:1:1::/64")


def test_a_subnet_needs_a_cidr_or_a_pool(api: Api) -> None:
    network = api.demo.create("networks", name="net")
    body = {"network_id": network["id"], "ip_version": 4}
    message = error(api.demo.post("/subnets", json={"subnet": body}), 400, "BadRequest")
    assert (
        message == "Bad subnets request: a subnetpool must be specified in the absence of a cidr."
    )
    default = {**body, "use_default_subnetpool": True}
    message = error(api.demo.post("/subnets", json={"subnet": default}), 400, "BadRequest")
    assert message == "Bad subnets request: No default subnetpool found for IPv4."
    missing = {**body, "subnetpool_id": network["id"]}
    message = error(api.demo.post("/subnets", json={"subnet": missing}), 404, "SubnetPoolNotFound")
    assert message == f"Subnet pool {network['id']} could not be found."


def test_the_default_pool_serves_use_default_subnetpool(api: Api) -> None:
    message = error(
        api.demo.post(
            "/subnetpools",
            json={"subnetpool": {"name": "d", "prefixes": ["10.40.0.0/16"], "is_default": True}},
        ),
        403,
        "PolicyNotAuthorized",
    )
    assert message == "rule:create_subnetpool:is_default is disallowed by policy"
    default = pool(api.admin, ["10.40.0.0/16"], is_default=True, shared=True, default_prefixlen=24)
    message = error(
        api.admin.post(
            "/subnetpools",
            json={"subnetpool": {"name": "d2", "prefixes": ["10.50.0.0/16"], "is_default": True}},
        ),
        400,
        "InvalidInput",
    )
    assert message == (
        "Invalid input for operation: A default subnetpool for this IP family has already been "
        "set. Only one default may exist per IP family."
    )
    network = api.demo.create("networks", name="net")
    body = {"network_id": network["id"], "ip_version": 4, "use_default_subnetpool": True}
    made = api.demo.post("/subnets", json={"subnet": body}).json()["subnet"]
    assert (made["cidr"], made["subnetpool_id"]) == ("10.40.0.0/24", default["id"])


def test_prefixes_only_grow_by_update_and_change_by_action(api: Api) -> None:
    created = pool(api.demo, ["10.60.0.0/24"], default_prefixlen=26)
    url = f"/subnetpools/{created['id']}"
    message = error(
        api.demo.put(url, json={"subnetpool": {"prefixes": ["10.60.0.0/25"]}}),
        400,
        "IllegalSubnetPoolPrefixUpdate",
    )
    assert message == (
        "Illegal update to prefixes: Existing prefixes must be a subset of the new prefixes."
    )
    grown = api.demo.put(url, json={"subnetpool": {"prefixes": ["10.60.0.0/24", "10.60.1.0/24"]}})
    assert grown.json()["subnetpool"]["prefixes"] == ["10.60.0.0/23"]
    assert grown.json()["subnetpool"]["revision_number"] == 2

    added = api.demo.put(f"{url}/add_prefixes", json={"prefixes": ["10.61.0.0/24"]})
    assert added.json() == {"prefixes": ["10.60.0.0/23", "10.61.0.0/24"]}
    # The smallest free block that holds the subnet gives it.
    assert subnet_from(api.demo, created["id"]).json()["subnet"]["cidr"] == "10.61.0.0/26"
    message = error(
        api.demo.put(f"{url}/remove_prefixes", json={"prefixes": ["10.61.0.0/24"]}),
        400,
        "IllegalSubnetPoolPrefixUpdate",
    )
    assert message == (
        "Illegal update to prefixes: One or more the prefixes to be removed is in use by a subnet."
    )
    removed = api.demo.put(f"{url}/remove_prefixes", json={"prefixes": ["10.60.1.0/24"]})
    assert removed.json() == {"prefixes": ["10.60.0.0/24", "10.61.0.0/24"]}
    message = error(
        api.demo.put(f"{url}/add_prefixes", json={"prefixes": []}), 400, "HTTPBadRequest"
    )
    assert message == "Request body contains invalid data"
    assert api.demo.get(url).json()["subnetpool"]["prefixes"] == ["10.60.0.0/24", "10.61.0.0/24"]


def test_default_quota_counts_addresses_per_project(api: Api) -> None:
    created = pool(api.admin, ["10.70.0.0/16"], shared=True, default_quota=512)
    assert subnet_from(api.demo, created["id"], prefixlen=24).status_code == 201
    assert subnet_from(api.demo, created["id"], prefixlen=24).status_code == 201
    message = error(
        subnet_from(api.demo, created["id"], prefixlen=30), 409, "SubnetPoolQuotaExceeded"
    )
    assert message == "Per-project subnet pool prefix quota exceeded."
    # Another project has a quota of its own.
    assert subnet_from(api.demo2, created["id"], prefixlen=24).status_code == 201


def test_pools_are_seen_by_their_project_when_not_shared(api: Api) -> None:
    private = pool(api.demo, ["10.80.0.0/16"])
    message = error(api.demo2.get(f"/subnetpools/{private['id']}"), 404, "SubnetPoolNotFound")
    assert message == f"Subnet pool {private['id']} could not be found."
    error(subnet_from(api.demo2, private["id"]), 404, "SubnetPoolNotFound")
    error(api.demo2.delete(f"/subnetpools/{private['id']}"), 404, "SubnetPoolNotFound")
    message = error(
        api.demo.post(
            "/subnetpools",
            json={"subnetpool": {"name": "s", "prefixes": ["10.81.0.0/16"], "shared": True}},
        ),
        403,
        "PolicyNotAuthorized",
    )
    assert message == "rule:create_subnetpool:shared is disallowed by policy"
    shared = pool(api.admin, ["10.82.0.0/16"], shared=True)
    assert [p["id"] for p in api.demo2.get("/subnetpools").json()["subnetpools"]] == [shared["id"]]
    message = error(
        api.demo2.put(f"/subnetpools/{shared['id']}", json={"subnetpool": {"name": "x"}}),
        403,
        "PolicyNotAuthorized",
    )
    assert message == "rule:update_subnetpool is disallowed by policy"
    message = error(
        api.demo.put(f"/subnetpools/{private['id']}", json={"subnetpool": {"shared": True}}),
        400,
        "BadRequest",
    )
    assert message == (
        "Bad subnetpool request: Attribute 'shared' not allowed in PUT; it cannot be updated."
    )


def test_a_pool_with_subnets_is_not_deleted(api: Api) -> None:
    created = pool(api.demo, ["10.90.0.0/16"], default_prefixlen=24)
    subnet = subnet_from(api.demo, created["id"]).json()["subnet"]
    message = error(api.demo.delete(f"/subnetpools/{created['id']}"), 400, "SubnetPoolDeleteError")
    assert message == "Unable to delete subnet pool: Subnet pool has existing allocations."
    assert api.demo.delete(f"/subnets/{subnet['id']}").status_code == 204
    assert api.demo.delete(f"/subnetpools/{created['id']}").status_code == 204
    error(api.demo.get(f"/subnetpools/{created['id']}"), 404, "SubnetPoolNotFound")


def test_a_networks_subnets_of_one_version_share_a_pool(api: Api) -> None:
    first = pool(api.demo, ["10.100.0.0/16"], default_prefixlen=24)
    second = pool(api.demo, ["10.101.0.0/16"], default_prefixlen=24)
    network = api.demo.create("networks", name="net")
    body = {"network_id": network["id"], "ip_version": 4, "subnetpool_id": first["id"]}
    assert api.demo.post("/subnets", json={"subnet": body}).status_code == 201
    other = {**body, "subnetpool_id": second["id"]}
    message = error(
        api.demo.post("/subnets", json={"subnet": other}), 400, "NetworkSubnetPoolAffinityError"
    )
    assert message == (
        "Subnets hosted on the same network must be allocated from the same subnet pool."
    )
    plain = {"network_id": network["id"], "ip_version": 4, "cidr": "192.168.9.0/24"}
    error(api.demo.post("/subnets", json={"subnet": plain}), 400, "NetworkSubnetPoolAffinityError")
    assert api.demo.post("/subnets", json={"subnet": body}).status_code == 201


def test_onboarding_puts_a_networks_subnets_into_the_pool(api: Api) -> None:
    created = pool(api.demo, ["10.110.0.0/16"])
    network = api.demo.create("networks", name="net")
    subnet = api.demo.create(
        "subnets", network_id=network["id"], ip_version=4, cidr="192.168.50.0/24"
    )
    url = f"/subnetpools/{created['id']}/onboard_network_subnets"
    answer = api.demo.put(url, json={"network_id": network["id"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"id": subnet["id"], "cidr": "192.168.50.0/24"}]
    assert (
        api.demo.get(f"/subnets/{subnet['id']}").json()["subnet"]["subnetpool_id"]
        == (created["id"])
    )
    prefixes = api.demo.get(f"/subnetpools/{created['id']}").json()["subnetpool"]["prefixes"]
    assert prefixes == ["10.110.0.0/16", "192.168.50.0/24"]
    message = error(
        api.demo.put(url, json={"network_id": network["id"]}), 400, "IllegalSubnetPoolUpdate"
    )
    assert message == (
        f"Illegal subnetpool update : Onboarding subnet {subnet['id']}: 192.168.50.0/24 conflicts "
        f"with allocated prefixes in subnet pool {created['id']}."
    )
    message = error(api.demo.put(url, json={}), 400, "InvalidInput")
    assert message == "Invalid input for operation: network_id must be specified.."  # sic


def test_subnet_pools_have_a_quota(api: Api) -> None:
    quota = api.admin.get(f"/quotas/{api.demo.project_id}").json()["quota"]
    assert quota["subnetpool"] == -1
    api.admin.put(f"/quotas/{api.demo.project_id}", json={"quota": {"subnetpool": 1}})
    pool(api.demo, ["10.120.0.0/16"])
    message = error(
        api.demo.post(
            "/subnetpools", json={"subnetpool": {"name": "p", "prefixes": ["10.121.0.0/16"]}}
        ),
        409,
        "OverQuota",
    )
    assert "subnetpool" in message
    aliases = {e["alias"] for e in api.demo.get("/extensions").json()["extensions"]}
    assert {
        "subnet_allocation",
        "default-subnetpools",
        "subnetpool-prefix-ops",
        "subnet_onboard",
    } <= aliases
