"""Auto-allocated topologies and the default external network, as Neutron makes and refuses
them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from starlette.testclient import TestClient

from neutrino.app import Neutrino, create_app
from neutrino.config import Settings
from tests.conftest import Api, ApiClient
from tests.conftest import expect_error as error


def external_network(admin: ApiClient, cidr: str = "172.24.4.0/24", **attrs: Any) -> Any:
    network = admin.create("networks", name="public", **{"router:external": True, **attrs})
    admin.create("subnets", network_id=network["id"], ip_version=4, cidr=cidr, enable_dhcp=False)
    return network


def default_pools(admin: ApiClient, v4: str = "10.0.0.0/16") -> list[Any]:
    return [
        admin.create(
            "subnetpools",
            name=f"default-v{version}",
            prefixes=[prefix],
            default_prefixlen=length,
            shared=True,
            is_default=True,
        )
        for version, prefix, length in ((4, v4, 26), (6, "2001:db8:8000::/48", 64))
    ]


def ready(api: Api) -> Any:
    """A default external network and default subnet pools of both IP versions."""
    network = external_network(api.admin, is_default=True)
    default_pools(api.admin)
    return network


def topology_url(project_id: str) -> str:
    return f"/auto-allocated-topology/{project_id}"


def auto_allocated(client: ApiClient) -> tuple[list[Any], list[Any], list[Any]]:
    """The caller's networks, subnets and routers named as auto-allocated ones are."""

    def named(collection: str) -> list[Any]:
        items = client.get(f"/{collection}").json()[collection]
        return [i for i in items if i["name"].startswith("auto_allocated_")]

    return named("networks"), named("subnets"), named("routers")


def test_the_first_ask_makes_the_topology_and_later_ones_answer_with_it(api: Api) -> None:
    external = ready(api)
    demo = api.demo
    checked = demo.get(topology_url(demo.project_id), params={"fields": "dry-run"})
    assert checked.status_code == 200, checked.text
    assert checked.json() == {
        "auto_allocated_topology": {
            "id": "dry-run=pass",
            "tenant_id": demo.project_id,
            "project_id": demo.project_id,
        }
    }
    assert auto_allocated(demo) == ([], [], [])  # a dry run makes nothing

    first = demo.get(topology_url(demo.project_id))
    assert first.status_code == 200, first.text
    topology = first.json()["auto_allocated_topology"]
    assert topology == {
        "id": topology["id"],
        "tenant_id": demo.project_id,
        "project_id": demo.project_id,
    }
    [network], subnets, [router] = auto_allocated(demo)
    assert (network["id"], network["name"]) == (topology["id"], "auto_allocated_network")
    assert network["admin_state_up"] and not network["shared"]
    assert network["project_id"] == demo.project_id
    assert "is_default" not in network  # only external networks carry it
    assert sorted((s["name"], s["cidr"]) for s in subnets) == [
        ("auto_allocated_subnet_v4", "10.0.0.0/26"),
        ("auto_allocated_subnet_v6", "2001:db8:8000::/64"),
    ]
    assert router["name"] == "auto_allocated_router"
    assert router["external_gateway_info"]["network_id"] == external["id"]
    interfaces = demo.get(
        "/ports", params={"device_id": router["id"], "device_owner": "network:router_interface"}
    ).json()["ports"]
    assert sorted(p["fixed_ips"][0]["subnet_id"] for p in interfaces) == sorted(
        s["id"] for s in subnets
    )

    again = demo.get(topology_url(demo.project_id))
    assert again.json() == first.json()
    assert [len(found) for found in auto_allocated(demo)] == [1, 2, 1]
    # "None" names the caller's project, as some clients send it.
    assert demo.get(topology_url("None")).json() == first.json()


def test_an_administrator_asks_for_a_project_and_the_project_owns_it(api: Api) -> None:
    ready(api)
    made = api.admin.get(topology_url(api.demo.project_id))
    assert made.status_code == 200, made.text
    [network], _, [router] = auto_allocated(api.demo)
    assert network["id"] == made.json()["auto_allocated_topology"]["id"]
    assert network["project_id"] == router["project_id"] == api.demo.project_id
    assert auto_allocated(api.demo2) == ([], [], [])


def test_deleting_removes_every_part_and_a_later_ask_makes_a_new_one(api: Api) -> None:
    ready(api)
    demo = api.demo
    assert demo.delete(topology_url(demo.project_id)).status_code == 204  # none yet: no error
    first = demo.get(topology_url(demo.project_id)).json()["auto_allocated_topology"]
    deleted = demo.delete(topology_url(demo.project_id))
    assert deleted.status_code == 204, deleted.text
    assert auto_allocated(demo) == ([], [], [])
    assert demo.get("/ports", params={"network_id": first["id"]}).json() == {"ports": []}
    second = demo.get(topology_url(demo.project_id)).json()["auto_allocated_topology"]
    assert second["id"] != first["id"]
    # A network removed by hand takes its topology with it.
    [router] = auto_allocated(demo)[2]
    for subnet in auto_allocated(demo)[1]:
        demo.put(
            f"/routers/{router['id']}/remove_router_interface", json={"subnet_id": subnet["id"]}
        )
    assert demo.delete(f"/networks/{second['id']}").status_code == 204
    third = demo.get(topology_url(demo.project_id)).json()["auto_allocated_topology"]
    assert third["id"] not in (first["id"], second["id"])


def test_requirements_missing_are_refused_as_neutron_words_them(api: Api) -> None:
    demo = api.demo
    url = topology_url(demo.project_id)
    for params in ({}, {"fields": "dry-run"}):
        message = error(demo.get(url, params=params), 409, "AutoAllocationFailure")
        assert message == "Deployment error: No default router:external network."
    external_network(api.admin, is_default=True)
    message = error(demo.get(url, params={"fields": "dry-run"}), 409, "AutoAllocationFailure")
    assert message == "Deployment error: No default subnetpools defined."
    message = error(demo.get(url), 409, "AutoAllocationFailure")
    assert message == "Deployment error: Unable to provide project private network."
    assert auto_allocated(demo) == ([], [], [])
    message = error(demo.get(url, params={"fields": "id"}), 400, "BadRequest")
    assert message == "Bad auto_allocate request: Unrecognized field."
    for call in (demo.get, demo.delete):
        message = error(call(topology_url(api.demo2.project_id)), 403, "NotAuthorized")
        assert message == "Not authorized."


def test_a_router_that_cannot_be_made_leaves_nothing_behind(api: Api) -> None:
    # The default pool hands out the external subnet's own addresses: the router cannot join
    # them.
    external_network(api.admin, cidr="10.0.0.0/24", is_default=True)
    default_pools(api.admin, v4="10.0.0.0/16")
    message = error(api.demo.get(topology_url(api.demo.project_id)), 409, "AutoAllocationFailure")
    assert message == "Deployment error: Unable to provide external connectivity."
    assert auto_allocated(api.demo) == ([], [], [])


def test_concurrent_first_asks_make_one_topology(
    api: Api, settings: Settings, core: Neutrino
) -> None:
    ready(api)

    def ask(_: int) -> httpx.Response:
        # One client per thread: the test client is not shared across threads.
        with TestClient(create_app(settings, core)) as client:
            return client.get(
                f"/networking/v2.0{topology_url(api.demo.project_id)}",
                headers={"X-Auth-Token": api.demo.token},
            )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.json()["auto_allocated_topology"]["id"] for a in answers}) == 1
    assert [len(found) for found in auto_allocated(api.demo)] == [1, 2, 1]


def test_one_default_external_network_set_by_administrators(api: Api) -> None:
    admin, demo = api.admin, api.demo
    public = external_network(admin)
    assert public["is_default"] is False
    network_url = f"/networks/{public['id']}"
    message = error(
        demo.post("/networks", json={"network": {"name": "n", "is_default": True}}),
        403,
        "PolicyNotAuthorized",
    )
    assert message == "rule:create_network:is_default is disallowed by policy"
    own = demo.create("networks", name="own")
    message = error(
        demo.put(f"/networks/{own['id']}", json={"network": {"is_default": False}}),
        403,
        "PolicyNotAuthorized",
    )
    assert message == "rule:update_network:is_default is disallowed by policy"

    updated = admin.put(network_url, json={"network": {"is_default": True}})
    assert updated.json()["network"]["is_default"] is True
    # An update that does not name it keeps it.
    kept = admin.put(network_url, json={"network": {"description": "gman"}})
    assert kept.json()["network"]["is_default"] is True
    assert demo.get(network_url).json()["network"]["is_default"] is True
    listed = demo.get("/networks", params={"is_default": True}).json()["networks"]
    assert [n["id"] for n in listed] == [public["id"]]

    other = external_network(admin, cidr="172.24.5.0/24")
    message = error(
        admin.put(f"/networks/{other['id']}", json={"network": {"is_default": True}}),
        409,
        "DefaultExternalNetworkExists",
    )
    assert message == f"A default external network already exists: {public['id']}."
    message = error(
        admin.post(
            "/networks",
            json={"network": {"name": "x", "router:external": True, "is_default": True}},
        ),
        409,
        "DefaultExternalNetworkExists",
    )
    assert message == f"A default external network already exists: {public['id']}."
    # On a network that is not external it means nothing, as in Neutron.
    internal = admin.put(f"/networks/{own['id']}", json={"network": {"is_default": True}})
    assert internal.status_code == 200 and "is_default" not in internal.json()["network"]

    # The default external network stays shared with every project.
    [wildcard] = admin.get(
        "/rbac-policies",
        params={"object_id": public["id"], "action": "access_as_external", "target_tenant": "*"},
    ).json()["rbac_policies"]
    policy_url = f"/rbac-policies/{wildcard['id']}"
    for refused in (
        admin.delete(policy_url),
        admin.put(policy_url, json={"rbac_policy": {"target_tenant": demo.project_id}}),
    ):
        message = error(refused, 409, "RbacPolicyInUse")
        assert message == (
            f"RBAC policy on object {public['id']} cannot be removed because other objects "
            "depend on it.\nDetails: Default external networks must be shared to everyone."
        )
    admin.put(network_url, json={"network": {"is_default": False}})
    assert admin.delete(policy_url).status_code == 204

    # A network that stops being external stops being the default one.
    admin.put(f"/networks/{other['id']}", json={"network": {"is_default": True}})
    admin.put(f"/networks/{other['id']}", json={"network": {"router:external": False}})
    external_again = admin.put(
        f"/networks/{other['id']}", json={"network": {"router:external": True}}
    )
    assert external_again.json()["network"]["is_default"] is False
