"""RBAC policies: sharing networks, security groups, subnet pools, address scopes, address
groups and QoS policies with one project or with all."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Api, ApiClient
from tests.conftest import expect_error as error

SHARED, EXTERNAL = "access_as_shared", "access_as_external"


def share(client: ApiClient, object_id: str, target: str, **body: Any) -> httpx.Response:
    policy = {
        "object_type": "network",
        "object_id": object_id,
        "action": SHARED,
        "target_tenant": target,
        **body,
    }
    return client.post("/rbac-policies", json={"rbac_policy": policy})


def shared(client: ApiClient, object_id: str, target: str, **body: Any) -> dict[str, Any]:
    response = share(client, object_id, target, **body)
    assert response.status_code == 201, response.text
    return response.json()["rbac_policy"]


def in_use(object_id: str, details: str) -> str:
    return (
        f"RBAC policy on object {object_id} cannot be removed because other objects depend on "
        f"it.\nDetails: {details}"
    )


def test_sharing_a_network_with_one_project(api: Api) -> None:
    net = api.demo.create("networks", name="net")
    missing = str(uuid.uuid4())
    # Before the policy, the network answers demo2 exactly as a missing one.
    for network_id in (net["id"], missing):
        message = error(api.demo2.get(f"/networks/{network_id}"), 404, "NetworkNotFound")
        assert message == f"Network {network_id} could not be found."

    policy = shared(api.demo, net["id"], api.demo2.project_id)
    assert set(policy) == {
        "id",
        "project_id",
        "tenant_id",
        "object_type",
        "object_id",
        "action",
        "target_tenant",
    }
    assert policy["project_id"] == policy["tenant_id"] == api.demo.project_id
    assert policy["target_tenant"] == api.demo2.project_id
    assert (policy["object_type"], policy["object_id"], policy["action"]) == (
        "network",
        net["id"],
        SHARED,
    )
    assert api.demo.get(f"/rbac-policies/{policy['id']}").json()["rbac_policy"] == policy

    # `shared` says whether the network is shared with the caller.
    assert api.demo2.get(f"/networks/{net['id']}").json()["network"]["shared"] is True
    assert api.demo.get(f"/networks/{net['id']}").json()["network"]["shared"] is False
    assert api.admin.get(f"/networks/{net['id']}").json()["network"]["shared"] is False
    listed = api.demo2.get("/networks", params={"shared": "true"}).json()["networks"]
    assert [n["id"] for n in listed] == [net["id"]]
    unsortable = api.demo2.get("/networks", params={"sort_key": "shared", "sort_dir": "asc"})
    assert error(unsortable, 400, "HTTPBadRequest") == "shared is invalid attribute for sort_keys"
    assert api.demo.get("/networks", params={"shared": "true"}).json()["networks"] == []

    # The policy is its owner's: the project it shares with sees it as missing.
    assert api.demo2.get("/rbac-policies").json()["rbac_policies"] == []
    for policy_id in (policy["id"], missing):
        for response in (
            api.demo2.get(f"/rbac-policies/{policy_id}"),
            api.demo2.delete(f"/rbac-policies/{policy_id}"),
            api.demo2.put(f"/rbac-policies/{policy_id}", json={"rbac_policy": {}}),
        ):
            message = error(response, 404, "RbacPolicyNotFound")
            assert message == f"RBAC policy of type unknown with ID {policy_id} not found"


def test_port_of_the_target_project_holds_its_policy(api: Api) -> None:
    net = api.demo.create("networks", name="net")
    subnet = api.demo.create("subnets", network_id=net["id"], cidr="10.60.0.0/24", ip_version=4)
    policy = shared(api.demo, net["id"], api.demo2.project_id)
    port = api.demo2.create("ports", network_id=net["id"])
    assert port["fixed_ips"][0]["subnet_id"] == subnet["id"]
    assert api.demo2.get(f"/subnets/{subnet['id']}").status_code == 200

    details = f"Unable to reconfigure sharing settings for network {net['id']}. "
    details += "Multiple tenants are using it."
    message = error(api.demo.delete(f"/rbac-policies/{policy['id']}"), 409, "RbacPolicyInUse")
    assert message == in_use(net["id"], details)
    retarget = {"rbac_policy": {"target_tenant": api.admin.project_id}}
    response = api.demo.put(f"/rbac-policies/{policy['id']}", json=retarget)
    assert error(response, 409, "RbacPolicyInUse") == message
    # A wildcard covers the port: then the policy may go, and the wildcard may not.
    wildcard = shared(api.admin, net["id"], "*")
    assert api.demo.delete(f"/rbac-policies/{policy['id']}").status_code == 204
    message = error(api.admin.delete(f"/rbac-policies/{wildcard['id']}"), 409, "RbacPolicyInUse")
    assert message == in_use(net["id"], details)
    unshare = api.admin.put(f"/networks/{net['id']}", json={"network": {"shared": False}})
    message = error(unshare, 409, "InvalidSharedSetting")
    assert message == (
        "Unable to reconfigure sharing settings for network net. Multiple tenants are using it."
    )

    # The network's owner may delete any port on it.
    assert api.demo.delete(f"/ports/{port['id']}").status_code == 204
    assert api.admin.delete(f"/rbac-policies/{wildcard['id']}").status_code == 204
    error(api.demo2.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")
    error(api.demo2.get(f"/subnets/{subnet['id']}"), 404, "SubnetNotFound")


def test_shared_attribute_is_the_wildcard_policy(api: Api) -> None:
    net = api.admin.create("networks", name="pub", shared=True)
    policies = api.admin.get("/rbac-policies", params={"object_id": net["id"]}).json()
    [policy] = policies["rbac_policies"]
    assert (policy["target_tenant"], policy["action"]) == ("*", SHARED)
    assert policy["project_id"] == api.admin.project_id
    assert api.demo.get(f"/networks/{net['id']}").json()["network"]["shared"] is True
    revision = net["revision_number"]

    response = api.admin.put(f"/networks/{net['id']}", json={"network": {"shared": False}})
    assert response.json()["network"]["shared"] is False
    assert response.json()["network"]["revision_number"] > revision
    assert api.admin.get(f"/rbac-policies/{policy['id']}").status_code == 404
    error(api.demo.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")

    again = shared(api.admin, net["id"], "*")
    assert api.admin.get(f"/networks/{net['id']}").json()["network"]["shared"] is True
    duplicate = error(share(api.admin, net["id"], "*"), 409, "DuplicateRbacPolicy")
    assert duplicate == "An RBAC policy already exists with those values."
    # A network's policies go with it.
    assert api.admin.delete(f"/networks/{net['id']}").status_code == 204
    error(api.admin.get(f"/rbac-policies/{again['id']}"), 404, "RbacPolicyNotFound")


def test_who_may_share_what(api: Api) -> None:
    own = api.demo.create("networks", name="own")
    message = error(share(api.demo, own["id"], "*"), 403, "PolicyNotAuthorized")
    assert message == "rule:create_rbac_policy:target_tenant is disallowed by policy"
    policy = shared(api.demo, own["id"], api.demo2.project_id)
    retarget = {"rbac_policy": {"target_tenant": "*"}}
    response = api.demo.put(f"/rbac-policies/{policy['id']}", json=retarget)
    message = error(response, 403, "PolicyNotAuthorized")
    assert message == "rule:update_rbac_policy:target_tenant is disallowed by policy"

    # demo2 sees the network, but may not share it further.
    response = share(api.demo2, own["id"], api.demo2.project_id)
    message = error(response, 400, "InvalidInput")
    assert message == (
        "Invalid input for operation: Only admins can manipulate policies on networks they do "
        "not own."
    )
    # A network demo2 does not see answers as a missing one.
    hidden = api.admin.create("networks", name="hidden")
    for network_id in (hidden["id"], str(uuid.uuid4())):
        message = error(share(api.demo2, network_id, api.demo2.project_id), 400, "InvalidInput")
        assert message == f"Invalid input for operation: Network {network_id} could not be found."


def test_policy_bodies_are_checked(api: Api) -> None:
    net = api.demo.create("networks", name="net")
    message = error(share(api.demo, net["id"], "*", object_type="router"), 400, "InvalidInput")
    assert message == "Invalid input for operation: 'router' is not a valid RBAC object type."
    message = error(
        share(api.demo, net["id"], api.demo2.project_id, action="own"), 400, "InvalidActionForType"
    )
    assert message == (
        "Invalid action 'own' for object type 'network'. "
        "Valid actions: ('access_as_shared', 'access_as_external')"
    )
    for target in (None, "1234" * 100, "demo2"):
        message = error(share(api.demo, net["id"], target), 400, "InvalidInput")
        assert message == (
            f"Invalid input for operation: '{target}' is not a valid target project ID; "
            "expected a UUID or '*'."
        )
    assert api.demo.get("/rbac-policies").json()["rbac_policies"] == []


def test_quota_of_policies(api: Api) -> None:
    net = api.demo.create("networks", name="net")
    for _ in range(10):
        shared(api.demo, net["id"], uuid.uuid4().hex)
    message = error(share(api.demo, net["id"], uuid.uuid4().hex), 409, "OverQuota")
    assert message == "Quota exceeded for resources: ['rbac_policy']."
    quota = api.admin.get(f"/quotas/{api.demo.project_id}").json()["quota"]
    assert quota["rbac_policy"] == 10


def test_filters_and_fields(api: Api) -> None:
    net = api.demo.create("networks", name="net")
    first = shared(api.demo, net["id"], api.demo2.project_id)
    second = shared(api.demo, net["id"], api.demo.project_id)
    for policy in (first, second):
        listed = api.demo.get("/rbac-policies", params={"id": policy["id"]}).json()
        assert [p["id"] for p in listed["rbac_policies"]] == [policy["id"]]
    listed = api.demo.get("/rbac-policies", params={"target_tenant": api.demo2.project_id}).json()[
        "rbac_policies"
    ]
    assert [p["id"] for p in listed] == [first["id"]]
    listed = api.demo.get(
        "/rbac-policies", params={"fields": ["project_id", "target_tenant"]}
    ).json()["rbac_policies"]
    assert all(set(p) == {"project_id", "target_tenant"} for p in listed) and len(listed) == 2
    assert api.demo.get("/rbac-policies", params={"object_type": "security_group"}).json() == {
        "rbac_policies": []
    }


def test_external_to_one_project(api: Api) -> None:
    net = api.admin.create("networks", name="ext")
    api.admin.create("subnets", network_id=net["id"], cidr="10.70.0.0/24", ip_version=4)
    policy = shared(api.admin, net["id"], api.demo.project_id, action=EXTERNAL)
    shown = api.demo.get(f"/networks/{net['id']}").json()["network"]
    assert shown["router:external"] is True and shown["shared"] is False
    error(api.demo2.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")
    gateway = {"external_gateway_info": {"network_id": net["id"]}}
    response = api.demo2.post("/routers", json={"router": {"name": "r2", **gateway}})
    error(response, 404, "NetworkNotFound")
    router = api.demo.create("routers", name="r", **gateway)
    assert router["external_gateway_info"]["network_id"] == net["id"]

    details = "There are routers attached to this network that depend on this policy for access."
    message = error(api.admin.delete(f"/rbac-policies/{policy['id']}"), 409, "RbacPolicyInUse")
    assert message == in_use(net["id"], details)
    # Handing the policy to everyone keeps demo's access; to demo2 alone it would not.
    for target, status in ((api.demo2.project_id, 409), ("*", 200), (api.demo.project_id, 200)):
        retarget = {"rbac_policy": {"target_tenant": target}}
        response = api.admin.put(f"/rbac-policies/{policy['id']}", json=retarget)
        assert response.status_code == status, response.text
    unset = api.admin.put(f"/networks/{net['id']}", json={"network": {"router:external": False}})
    message = error(unset, 409, "ExternalNetworkInUse")
    assert message == (
        f"External network {net['id']} cannot be updated to be made non-external, since it has "
        "existing gateway ports."
    )
    clear = {"router": {"external_gateway_info": {}}}
    assert api.demo.put(f"/routers/{router['id']}", json=clear).status_code == 200
    assert api.admin.delete(f"/rbac-policies/{policy['id']}").status_code == 204
    assert api.admin.get(f"/networks/{net['id']}").json()["network"]["router:external"] is False
    error(api.demo.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")


def test_sharing_a_security_group(api: Api) -> None:
    group = api.admin.create("security-groups", name="web")
    missing = str(uuid.uuid4())
    for group_id in (group["id"], missing):
        message = error(api.demo.get(f"/security-groups/{group_id}"), 404, "SecurityGroupNotFound")
        assert message == f"Security group {group_id} does not exist"
    policy = shared(api.admin, group["id"], api.demo.project_id, object_type="security_group")
    assert policy["object_type"] == "security_group"

    shown = api.demo.get(f"/security-groups/{group['id']}").json()["security_group"]
    assert shown["shared"] is True and shown["name"] == "web"
    assert (
        api.admin.get(f"/security-groups/{group['id']}").json()["security_group"]["shared"] is False
    )
    listed = api.demo.get("/security-groups", params={"shared": "true"}).json()["security_groups"]
    assert [g["id"] for g in listed] == [group["id"]]
    listed = api.demo.get("/security-groups", params={"shared": "false"}).json()["security_groups"]
    assert group["id"] not in [g["id"] for g in listed] and listed
    error(api.demo2.get(f"/security-groups/{group['id']}"), 404, "SecurityGroupNotFound")

    net = api.demo.create("networks", name="net")
    port = api.demo.create("ports", network_id=net["id"], security_groups=[group["id"]])
    assert port["security_groups"] == [group["id"]]
    net2 = api.demo2.create("networks", name="net2")
    response = api.demo2.post(
        "/ports", json={"port": {"network_id": net2["id"], "security_groups": [group["id"]]}}
    )
    error(response, 404, "SecurityGroupNotFound")

    message = error(api.admin.delete(f"/rbac-policies/{policy['id']}"), 409, "RbacPolicyInUse")
    assert message == in_use(group["id"], f"project_id={api.demo.project_id}")
    assert api.demo.delete(f"/ports/{port['id']}").status_code == 204
    assert api.admin.delete(f"/rbac-policies/{policy['id']}").status_code == 204
    error(api.demo.get(f"/security-groups/{group['id']}"), 404, "SecurityGroupNotFound")


# -- subnet pools, address scopes, address groups and QoS policies --------------------------
@dataclass(frozen=True)
class Shareable:
    """An RBAC object type as a user meets it: where it lives, and how a project uses it."""

    object_type: str
    collection: str  # its path
    member: str  # its key in a body
    plural: str  # its key in a list
    not_found: str  # the type of the error that answers for a missing one
    missing: str  # its message, for `{id}`
    shows_shared: bool  # whether its body says `shared`
    body: dict[str, Any]  # what makes one
    use: Callable[[ApiClient, str], Callable[[], None]]  # -> what ends the use


def use_pool(client: ApiClient, pool_id: str) -> Callable[[], None]:
    net = client.create("networks", name="net")
    subnet = client.create("subnets", network_id=net["id"], subnetpool_id=pool_id, ip_version=4)
    return lambda: expect_deleted(client, f"/subnets/{subnet['id']}")


def use_scope(client: ApiClient, scope_id: str) -> Callable[[], None]:
    pool = client.create(
        "subnetpools", name="p", prefixes=["10.91.0.0/16"], address_scope_id=scope_id
    )
    return lambda: expect_deleted(client, f"/subnetpools/{pool['id']}")


def use_address_group(client: ApiClient, group_id: str) -> Callable[[], None]:
    group = client.create("security-groups", name="sg")
    rule = client.create(
        "security-group-rules",
        security_group_id=group["id"],
        direction="ingress",
        remote_address_group_id=group_id,
    )
    return lambda: expect_deleted(client, f"/security-group-rules/{rule['id']}")


def use_qos_policy(client: ApiClient, policy_id: str) -> Callable[[], None]:
    net = client.create("networks", name="net", qos_policy_id=policy_id)
    return lambda: expect_deleted(client, f"/networks/{net['id']}")


def expect_deleted(client: ApiClient, path: str) -> None:
    response = client.delete(path)
    assert response.status_code == 204, response.text


def made(client: ApiClient, kind: Shareable, **body: Any) -> dict[str, Any]:
    response = client.post(kind.collection, json={kind.member: {**kind.body, **body}})
    assert response.status_code == 201, response.text
    return response.json()[kind.member]


SHAREABLE = [
    Shareable(
        "subnetpool",
        "/subnetpools",
        "subnetpool",
        "subnetpools",
        "SubnetPoolNotFound",
        "Subnet pool {id} could not be found.",
        True,
        {"name": "pool", "prefixes": ["10.90.0.0/16"], "default_prefixlen": 24},
        use_pool,
    ),
    Shareable(
        "address_scope",
        "/address-scopes",
        "address_scope",
        "address_scopes",
        "AddressScopeNotFound",
        "Address scope {id} could not be found.",
        True,
        {"name": "scope", "ip_version": 4},
        use_scope,
    ),
    Shareable(
        "address_group",
        "/address-groups",
        "address_group",
        "address_groups",
        "AddressGroupNotFound",
        "Address group {id} could not be found.",
        False,
        {"name": "group", "addresses": ["10.92.0.0/24"]},
        use_address_group,
    ),
    Shareable(
        "qos_policy",
        "/qos/policies",
        "policy",
        "policies",
        "QosPolicyNotFound",
        "QoS policy {id} could not be found.",
        True,
        {"name": "qos"},
        use_qos_policy,
    ),
]


@pytest.mark.parametrize("kind", SHAREABLE, ids=lambda kind: kind.object_type)
def test_sharing_with_one_project_then_with_all(api: Api, kind: Shareable) -> None:
    obj = made(api.admin, kind)
    url = f"{kind.collection}/{obj['id']}"
    typed = {"object_type": kind.object_type}

    def hidden_from(client: ApiClient) -> None:
        """The object answers exactly as a missing one; sharing it is sharing a missing one."""
        for object_id in (obj["id"], str(uuid.uuid4())):
            shown = client.get(f"{kind.collection}/{object_id}")
            assert error(shown, 404, kind.not_found) == kind.missing.format(id=object_id)
            message = error(
                share(client, object_id, client.project_id, **typed), 400, "InvalidInput"
            )
            assert message == f"Invalid input for operation: {kind.missing.format(id=object_id)}"

    def shared_as_seen_by(client: ApiClient) -> bool:
        body = client.get(url).json()[kind.member]
        assert body["id"] == obj["id"]
        return bool(body["shared"]) if kind.shows_shared else True

    hidden_from(api.demo)
    policy = shared(api.admin, obj["id"], api.demo.project_id, **typed)
    assert (policy["object_type"], policy["target_tenant"]) == (
        kind.object_type,
        api.demo.project_id,
    )
    assert shared_as_seen_by(api.demo)
    hidden_from(api.demo2)
    if kind.shows_shared:
        assert api.admin.get(url).json()[kind.member]["shared"] is False
        listed = api.demo.get(kind.collection, params={"shared": "true"}).json()
        assert [o["id"] for o in listed[kind.plural]] == [obj["id"]]

    # demo's use holds its policy, for removal as for handing it to another project.
    end_use = kind.use(api.demo, obj["id"])
    policy_in_use = in_use(obj["id"], f"project_id={api.demo.project_id}")
    response = api.admin.delete(f"/rbac-policies/{policy['id']}")
    assert error(response, 409, "RbacPolicyInUse") == policy_in_use
    retarget = {"rbac_policy": {"target_tenant": api.demo2.project_id}}
    response = api.admin.put(f"/rbac-policies/{policy['id']}", json=retarget)
    assert error(response, 409, "RbacPolicyInUse") == policy_in_use

    # Shared with all, the object is seen by every project, and the wildcard covers demo's use.
    wildcard = shared(api.admin, obj["id"], "*", **typed)
    assert shared_as_seen_by(api.demo2)
    assert api.admin.delete(f"/rbac-policies/{policy['id']}").status_code == 204
    wildcard_in_use = in_use(obj["id"], "project_id=*")
    response = api.admin.delete(f"/rbac-policies/{wildcard['id']}")
    assert error(response, 409, "RbacPolicyInUse") == wildcard_in_use
    # Handed to one project, even the one using it, the wildcard is checked as taken away.
    retarget = {"rbac_policy": {"target_tenant": api.demo.project_id}}
    response = api.admin.put(f"/rbac-policies/{wildcard['id']}", json=retarget)
    assert error(response, 409, "RbacPolicyInUse") == wildcard_in_use

    end_use()
    assert api.admin.delete(f"/rbac-policies/{wildcard['id']}").status_code == 204
    hidden_from(api.demo)
    hidden_from(api.demo2)


@pytest.mark.parametrize(
    "kind", [k for k in SHAREABLE if k.shows_shared], ids=lambda kind: kind.object_type
)
def test_shared_on_creation_is_the_wildcard_policy(api: Api, kind: Shareable) -> None:
    obj = made(api.admin, kind, shared=True)
    assert obj["shared"] is True
    policies = api.admin.get("/rbac-policies", params={"object_id": obj["id"]}).json()
    [policy] = policies["rbac_policies"]
    assert (policy["object_type"], policy["action"], policy["target_tenant"]) == (
        kind.object_type,
        SHARED,
        "*",
    )
    assert policy["project_id"] == api.admin.project_id
    assert api.demo.get(f"{kind.collection}/{obj['id']}").json()[kind.member]["shared"] is True
    assert api.admin.delete(f"/rbac-policies/{policy['id']}").status_code == 204
    assert api.admin.get(f"{kind.collection}/{obj['id']}").json()[kind.member]["shared"] is False
    error(api.demo.get(f"{kind.collection}/{obj['id']}"), 404, kind.not_found)


def test_unsharing_is_refused_while_a_project_uses_the_object(api: Api) -> None:
    kind = next(k for k in SHAREABLE if k.object_type == "qos_policy")
    policy = made(api.admin, kind, shared=True)
    url = f"/qos/policies/{policy['id']}"
    # The owner's own network counts too: it uses the policy as shared with every project.
    end_use = use_qos_policy(api.admin, policy["id"])
    response = api.admin.put(url, json={"policy": {"shared": False}})
    assert error(response, 409, "RbacPolicyInUse") == in_use(policy["id"], "project_id=*")
    assert api.demo.get(url).json()["policy"]["shared"] is True
    end_use()
    assert (
        api.admin.put(url, json={"policy": {"shared": False}}).json()["policy"]["shared"] is False
    )
    assert api.admin.get("/rbac-policies", params={"object_id": policy["id"]}).json() == {
        "rbac_policies": []
    }
    error(api.demo.get(url), 404, "QosPolicyNotFound")


def test_a_pool_is_shared_only_where_its_scope_is(api: Api) -> None:
    scope = api.admin.create("address-scopes", name="scope", ip_version=4)
    pool = api.admin.create(
        "subnetpools", name="pool", prefixes=["10.93.0.0/16"], address_scope_id=scope["id"]
    )
    pool_to_demo = {"object_type": "subnetpool"}
    for target in (api.demo.project_id, "*"):
        message = error(share(api.admin, pool["id"], target, **pool_to_demo), 400, "InvalidInput")
        assert message == (
            f"Invalid input for operation: Failed to create RBAC policy on object {pool['id']} "
            "because target project doesn't have access to associated address scope."
        )
    shared(api.admin, scope["id"], api.demo.project_id, object_type="address_scope")
    shared(api.admin, pool["id"], api.demo.project_id, **pool_to_demo)
    assert api.demo.get(f"/subnetpools/{pool['id']}").json()["subnetpool"]["shared"] is True
    error(share(api.admin, pool["id"], api.demo2.project_id, **pool_to_demo), 400, "InvalidInput")


def test_a_shared_address_group_is_written_only_by_its_project(api: Api) -> None:
    group = api.admin.create("address-groups", name="group", addresses=["10.94.0.0/24"])
    shared(api.admin, group["id"], api.demo.project_id, object_type="address_group")
    url = f"/address-groups/{group['id']}"
    assert api.demo.get(url).json()["address_group"]["addresses"] == ["10.94.0.0/24"]
    addresses = {"addresses": ["10.95.0.0/24"]}
    for response in (
        api.demo.put(url, json={"address_group": {"name": "mine"}}),
        api.demo.put(f"{url}/add_addresses", json=addresses),
        api.demo.put(f"{url}/remove_addresses", json={"addresses": ["10.94.0.0/24"]}),
        api.demo.put(f"{url}/tags/x"),
        api.demo.delete(url),
    ):
        assert error(response, 404, "HTTPNotFound") == "The resource could not be found."
    assert api.admin.get(url).json()["address_group"] == group
