"""Every reference in every request body is resolved as its caller sees it.

A table names each field of a request body that points at another resource
(Neutron, Octavia and lab instances). For each, over real HTTP on both
databases, a project sends the request three times: naming a random UUID,
naming a resource of another project that it cannot see, and (where one
exists) naming a resource it can see. The invisible one must be answered
byte for byte like the random one once the ids are swapped (except where
Octavia finds the load-balancer object named and refuses the caller by its
project's policy: 403, where a missing one is 404), and neither may change
anything anywhere (every collection as the admin lists it); the visible one
works, also when it is shared or external rather than owned.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.l3 import add_interface, private_subnet
from tests.api.test_loadbalancers import created, octavia, realize
from tests.conftest import ADMIN_PASSWORD, Api, ApiClient, LiveServer, add_member_project, login

World = dict[str, str]  # a name in the table -> the id of what it names
Body = Callable[[World, str], dict[str, Any]]  # the request body naming the given id


@dataclass(frozen=True)
class Reference:
    """One field of one request body that names another resource."""

    method: str
    path: str  # under its API's prefix; {names} are filled from the world
    field: str
    body: Body
    hidden: str  # what of the other project's the field names in the invisible case
    visible: str | None  # what of the caller's world makes the request work (None: nothing does)
    prefix: str = "/networking/v2.0"
    refused: bool = False  # Octavia's 403 for another project's object, 404 for a missing one

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.field}"


LBAAS = "/load-balancer/v2/lbaas"
LAB = "/lab/v1"
HTTP_POOL = {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
MONITOR = {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3}

REFERENCES = [
    # -- Neutron ------------------------------------------------------------------------------
    Reference(
        "POST",
        "/subnets",
        "network_id",
        lambda w, ref: {"subnet": {"network_id": ref, "cidr": "10.9.0.0/24", "ip_version": 4}},
        "net",
        "net",
    ),
    Reference(
        "POST",
        "/ports",
        "network_id",
        lambda w, ref: {"port": {"network_id": ref}},
        "net",
        "shared_net",
    ),
    Reference(
        "POST",
        "/ports",
        "network_id",
        lambda w, ref: {"port": {"network_id": ref}},
        "net",
        "granted_net",
    ),
    Reference(
        "POST",
        "/ports",
        "fixed_ips subnet_id",
        lambda w, ref: {"port": {"network_id": w["net"], "fixed_ips": [{"subnet_id": ref}]}},
        "subnet",
        "subnet",
    ),
    Reference(
        "PUT",
        "/ports/{port}",
        "fixed_ips subnet_id",
        lambda w, ref: {"port": {"fixed_ips": [{"subnet_id": ref}]}},
        "subnet",
        "subnet",
    ),
    Reference(
        "POST",
        "/ports",
        "security_groups",
        lambda w, ref: {"port": {"network_id": w["net"], "security_groups": [ref]}},
        "group",
        "group",
    ),
    Reference(
        "POST",
        "/ports",
        "security_groups",
        lambda w, ref: {"port": {"network_id": w["net"], "security_groups": [ref]}},
        "group",
        "granted_group",
    ),
    *(
        Reference(
            "POST",
            "/rbac-policies",
            f"object_id ({object_type})",
            lambda w, ref, object_type=object_type: {
                "rbac_policy": {
                    "object_type": object_type,
                    "object_id": ref,
                    "action": "access_as_shared",
                    "target_tenant": uuid.uuid4().hex,
                }
            },
            mine,
            mine,
        )
        for object_type, mine in (("network", "net"), ("security_group", "group"))
    ),
    Reference(
        "PUT",
        "/ports/{port}",
        "security_groups",
        lambda w, ref: {"port": {"security_groups": [ref]}},
        "group",
        "group",
    ),
    Reference(
        "POST",
        "/security-group-rules",
        "security_group_id",
        lambda w, ref: {"security_group_rule": {"security_group_id": ref, "direction": "ingress"}},
        "group",
        "group",
    ),
    Reference(
        "POST",
        "/security-group-rules",
        "remote_group_id",
        lambda w, ref: {
            "security_group_rule": {
                "security_group_id": w["group"],
                "direction": "ingress",
                "remote_group_id": ref,
            }
        },
        "group",
        "group",
    ),
    Reference(
        "PUT",
        "/routers/{bare_router}/add_router_interface",
        "subnet_id",
        lambda w, ref: {"subnet_id": ref},
        "subnet",
        "subnet2",
    ),
    Reference(
        "PUT",
        "/routers/{bare_router}/add_router_interface",
        "port_id",
        lambda w, ref: {"port_id": ref},
        "port",
        "port2",
    ),
    Reference(
        "PUT",
        "/routers/{router}/remove_router_interface",
        "subnet_id",
        lambda w, ref: {"subnet_id": ref},
        "subnet",
        "subnet",
    ),
    Reference(
        "PUT",
        "/routers/{router}/remove_router_interface",
        "port_id",
        lambda w, ref: {"port_id": ref},
        "port",
        "interface_port",
    ),
    Reference(
        "POST",
        "/routers",
        "external_gateway_info network_id",
        lambda w, ref: {"router": {"external_gateway_info": {"network_id": ref}}},
        "net",
        "ext_net",
    ),
    Reference(
        "PUT",
        "/routers/{bare_router}",
        "external_gateway_info network_id",
        lambda w, ref: {"router": {"external_gateway_info": {"network_id": ref}}},
        "net",
        "ext_net",
    ),
    # Naming the gateway's addresses is for administrators only.
    Reference(
        "POST",
        "/routers",
        "external_gateway_info external_fixed_ips subnet_id",
        lambda w, ref: {
            "router": {
                "external_gateway_info": {
                    "network_id": w["ext_net"],
                    "external_fixed_ips": [{"subnet_id": ref}],
                }
            }
        },
        "subnet",
        None,
    ),
    Reference(
        "POST",
        "/floatingips",
        "floating_network_id",
        lambda w, ref: {"floatingip": {"floating_network_id": ref}},
        "net",
        "ext_net",
    ),
    Reference(
        "POST",
        "/floatingips",
        "subnet_id",
        lambda w, ref: {"floatingip": {"floating_network_id": w["ext_net"], "subnet_id": ref}},
        "subnet",
        "ext_subnet",
    ),
    Reference(
        "POST",
        "/floatingips",
        "port_id",
        lambda w, ref: {"floatingip": {"floating_network_id": w["ext_net"], "port_id": ref}},
        "port",
        "port",
    ),
    Reference(
        "PUT",
        "/floatingips/{fip}",
        "port_id",
        lambda w, ref: {"floatingip": {"port_id": ref}},
        "port",
        "port",
    ),
    # -- lab instances ------------------------------------------------------------------------
    Reference(
        "POST",
        "/instances",
        "networks network_id",
        lambda w, ref: {"instance": {"name": "vm", "networks": [{"network_id": ref}]}},
        "net",
        "net",
        LAB,
    ),
    Reference(
        "POST",
        "/instances",
        "ports",
        lambda w, ref: {"instance": {"name": "vm", "ports": [ref]}},
        "port",
        "port",
        LAB,
    ),
    # -- Octavia ------------------------------------------------------------------------------
    Reference(
        "POST",
        "/loadbalancers",
        "vip_subnet_id",
        lambda w, ref: {"loadbalancer": {"vip_subnet_id": ref}},
        "subnet",
        "subnet",
        LBAAS,
    ),
    Reference(
        "POST",
        "/loadbalancers",
        "vip_network_id",
        lambda w, ref: {"loadbalancer": {"vip_network_id": ref}},
        "net",
        "net",
        LBAAS,
    ),
    Reference(
        "POST",
        "/loadbalancers",
        "vip_port_id",
        lambda w, ref: {"loadbalancer": {"vip_port_id": ref}},
        "port",
        "port",
        LBAAS,
    ),
    Reference(
        "POST",
        "/loadbalancers",
        "pools members subnet_id",
        lambda w, ref: {
            "loadbalancer": {
                "vip_subnet_id": w["subnet"],
                "pools": [
                    {
                        **HTTP_POOL,
                        "members": [
                            {"address": "10.0.0.30", "protocol_port": 80, "subnet_id": ref}
                        ],
                    }
                ],
            }
        },
        "subnet",
        "subnet",
        LBAAS,
    ),
    Reference(
        "POST",
        "/listeners",
        "loadbalancer_id",
        lambda w, ref: {
            "listener": {"loadbalancer_id": ref, "protocol": "HTTP", "protocol_port": 81}
        },
        "lb",
        "lb",
        LBAAS,
        refused=True,
    ),
    Reference(
        "POST",
        "/listeners",
        "default_pool_id",
        lambda w, ref: {
            "listener": {
                "loadbalancer_id": w["lb"],
                "protocol": "HTTP",
                "protocol_port": 82,
                "default_pool_id": ref,
            }
        },
        "pool",
        "pool",
        LBAAS,
    ),
    Reference(
        "PUT",
        "/listeners/{listener}",
        "default_pool_id",
        lambda w, ref: {"listener": {"default_pool_id": ref}},
        "pool",
        "pool",
        LBAAS,
    ),
    Reference(
        "POST",
        "/pools",
        "loadbalancer_id",
        lambda w, ref: {"pool": {**HTTP_POOL, "loadbalancer_id": ref}},
        "lb",
        "lb",
        LBAAS,
        refused=True,
    ),
    Reference(
        "POST",
        "/pools",
        "listener_id",
        lambda w, ref: {"pool": {**HTTP_POOL, "listener_id": ref}},
        "listener",
        "listener",
        LBAAS,
        refused=True,
    ),
    Reference(
        "POST",
        "/pools/{pool}/members",
        "subnet_id",
        lambda w, ref: {"member": {"address": "10.0.0.31", "protocol_port": 80, "subnet_id": ref}},
        "subnet",
        "subnet",
        LBAAS,
    ),
    Reference(
        "POST",
        "/healthmonitors",
        "pool_id",
        lambda w, ref: {"healthmonitor": {**MONITOR, "pool_id": ref}},
        "pool",
        "pool",
        LBAAS,
        refused=True,
    ),
    Reference(
        "POST",
        "/l7policies",
        "listener_id",
        lambda w, ref: {"l7policy": {"listener_id": ref, "action": "REJECT"}},
        "listener",
        "listener",
        LBAAS,
        refused=True,
    ),
    Reference(
        "POST",
        "/l7policies",
        "redirect_pool_id",
        lambda w, ref: {
            "l7policy": {
                "listener_id": w["listener"],
                "action": "REDIRECT_TO_POOL",
                "redirect_pool_id": ref,
            }
        },
        "pool",
        "pool",
        LBAAS,
    ),
    Reference(
        "PUT",
        "/l7policies/{l7policy}",
        "redirect_pool_id",
        lambda w, ref: {"l7policy": {"action": "REDIRECT_TO_POOL", "redirect_pool_id": ref}},
        "pool",
        "pool",
        LBAAS,
    ),
]

# What the admin lists to see that a refused request changed nothing.
NEUTRON_COLLECTIONS = (
    "networks",
    "subnets",
    "ports",
    "routers",
    "floatingips",
    "security-groups",
    "security-group-rules",
    "rbac-policies",
)
OCTAVIA_FORBIDDEN = {
    "faultcode": "Client",
    "faultstring": "Policy does not allow this request to be performed.",
    "debuginfo": None,
}
OCTAVIA_COLLECTIONS = ("loadbalancers", "listeners", "pools", "healthmonitors", "l7policies")


def on(client: ApiClient, prefix: str) -> ApiClient:
    return ApiClient(client.http, client.token, client.project_id, client.user_id, prefix=prefix)


def build_world(api: Api, client: ApiClient, ext_net: str, cidr: str = "10.0.0.0/24") -> World:
    """A project's resources of every kind a request body can name, load balancer tree realized."""
    net, subnet = private_subnet(client, cidr)
    router = client.create("routers", name="r", external_gateway_info={"network_id": ext_net})
    interface = add_interface(client, router["id"], subnet_id=subnet["id"])
    assert interface.status_code == 200, interface.text
    # One request and one realization for the load balancer's tree; its pool is no listener's yet.
    lb = created(
        octavia(client).post(
            "/loadbalancers",
            json={
                "loadbalancer": {
                    "vip_subnet_id": subnet["id"],
                    "pools": [{**HTTP_POOL, "name": "pool"}],
                    "listeners": [
                        {
                            "protocol": "HTTP",
                            "protocol_port": 80,
                            "l7policies": [{"action": "REJECT"}],
                        }
                    ],
                }
            },
        ),
        "loadbalancer",
    )
    realize(api)
    return {
        "net": net["id"],
        "subnet": subnet["id"],
        "router": router["id"],
        "interface_port": interface.json()["port_id"],
        "port": client.create("ports", network_id=net["id"])["id"],
        "group": client.create("security-groups", name="g")["id"],
        "lb": lb["id"],
        "listener": lb["listeners"][0]["id"],
        "pool": lb["pools"][0]["id"],
        "l7policy": lb["listeners"][0]["l7policies"][0]["id"],
    }


@dataclass
class Cloud:
    api: Api  # admin, and the project whose resources stay invisible (demo2)
    hidden: World  # that project's resources
    public: World  # the admin's external and shared networks
    granted: World  # the admin's network and group that each caller is granted by a policy
    projects: Iterator[int]


@pytest.fixture(scope="module")
def cloud(live_server: LiveServer) -> Iterator[Cloud]:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        admin = login(http, "admin", ADMIN_PASSWORD, "admin")
        name, password = add_member_project(admin, "hidden")
        other = login(http, name, password, name)
        api = Api(admin, other, other)
        ext = admin.create("networks", name="ext", **{"router:external": True})
        ext_subnet = admin.create(
            "subnets", network_id=ext["id"], cidr="198.51.100.0/24", ip_version=4
        )
        shared = admin.create("networks", name="shared", shared=True)
        admin.create("subnets", network_id=shared["id"], cidr="10.50.0.0/24", ip_version=4)
        public = {"ext_net": ext["id"], "ext_subnet": ext_subnet["id"], "shared_net": shared["id"]}
        # The admin grants each caller two policies: more than its quota of them.
        unlimited = {"quota": {"rbac_policy": -1}}
        assert admin.put(f"/quotas/{admin.project_id}", json=unlimited).status_code == 200
        granted_net = admin.create("networks", name="granted")
        admin.create("subnets", network_id=granted_net["id"], cidr="10.51.0.0/24", ip_version=4)
        granted = {
            "granted_net": granted_net["id"],
            "granted_group": admin.create("security-groups", name="granted")["id"],
        }
        hidden = build_world(api, other, ext["id"])
        yield Cloud(api, hidden, public, granted, itertools.count())


@pytest.fixture
def caller(cloud: Cloud) -> tuple[ApiClient, World]:
    """A project of its own for each test (quotas), with its resources."""
    name, password = add_member_project(cloud.api.admin, f"caller{next(cloud.projects)}")
    client = login(cloud.api.admin.http, name, password, name)
    world = {**cloud.public, **build_world(cloud.api, client, cloud.public["ext_net"])}
    for name, object_id in cloud.granted.items():
        policy = {
            "object_type": "network" if name == "granted_net" else "security_group",
            "object_id": object_id,
            "action": "access_as_shared",
            "target_tenant": client.project_id,
        }
        response = cloud.api.admin.post("/rbac-policies", json={"rbac_policy": policy})
        assert response.status_code == 201, response.text
        world[name] = object_id
    net2, subnet2 = private_subnet(client, "10.1.0.0/24")
    world.update(
        subnet2=subnet2["id"],
        port2=client.create("ports", network_id=net2["id"])["id"],
        fip=client.create("floatingips", floating_network_id=world["ext_net"])["id"],
        bare_router=client.create("routers", name="bare")["id"],
    )
    return client, world


def everything(admin: ApiClient, world: World, hidden: World) -> dict[str, Any]:
    """All that the admin can list: a refused request must change none of it."""
    lbaas, lab = on(admin, LBAAS), on(admin, LAB)
    seen = {c: admin.get(f"/{c}").json() for c in NEUTRON_COLLECTIONS}
    seen.update({c: lbaas.get(f"/{c}").json() for c in OCTAVIA_COLLECTIONS})
    seen.update(
        {
            f"members of {pool}": lbaas.get(f"/pools/{pool}/members").json()
            for pool in (world["pool"], hidden["pool"])
        }
    )
    seen["instances"] = lab.get("/instances").json()
    return seen


@pytest.mark.parametrize("reference", REFERENCES, ids=str)
def test_an_invisible_reference_is_answered_as_a_missing_one(
    cloud: Cloud, caller: tuple[ApiClient, World], reference: Reference
) -> None:
    client, world = caller
    caller_api = on(client, reference.prefix)
    path = reference.path.format(**world)

    def send(ref: str) -> httpx.Response:
        return caller_api.request(reference.method, path, json=reference.body(world, ref))

    before = everything(cloud.api.admin, world, cloud.hidden)
    missing_id, hidden_id = str(uuid.uuid4()), cloud.hidden[reference.hidden]
    missing = send(missing_id)
    assert 400 <= missing.status_code < 500, missing.text
    hidden = send(hidden_id)
    if reference.refused:
        assert missing.status_code == 404, missing.text
        assert (hidden.status_code, hidden.json()) == (403, OCTAVIA_FORBIDDEN)
    else:
        assert (hidden.status_code, hidden.headers["content-type"]) == (
            missing.status_code,
            missing.headers["content-type"],
        ), hidden.text
        assert hidden.content.replace(hidden_id.encode(), missing_id.encode()) == missing.content
    assert everything(cloud.api.admin, world, cloud.hidden) == before
    if reference.visible is not None:
        works = send(world[reference.visible])
        assert works.status_code in (200, 201), works.text
