"""Octavia's policy and error bodies on the load-balancer API, in-process on both databases.

Each role of Octavia's default policy (Keystone's admin, member and reader, and Octavia's own
load-balancer_* roles) on a list, a show and a create; another project's objects answer 403;
every refusal, also of a path or method that does not exist, is Octavia's
`{"faultcode", "faultstring", "debuginfo"}`.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.api import test_loadbalancers
from tests.api.test_loadbalancers import (
    FORBIDDEN,
    add_listener,
    add_member,
    add_pool,
    created,
    make_lb,
    octavia,
    realize,
)
from tests.conftest import Api, ApiClient, login

subnet = test_loadbalancers.subnet  # the fixture
MISSING = "00000000-0000-0000-0000-000000000000"


def fault(status: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"faultcode": "Client", "faultstring": message, "debuginfo": None}


def answer(response: httpx.Response) -> tuple[int, Any]:
    return response.status_code, response.json()


def user_with_roles(admin: ApiClient, project: dict[str, str], roles: list[str]) -> ApiClient:
    """A new user holding `roles` (made when Keystone has none of that name) on `project`."""
    headers = {"X-Auth-Token": admin.token}
    name = f"user-{uuid.uuid4().hex[:8]}"
    user = admin.http.post(
        "/identity/v3/users",
        headers=headers,
        json={"user": {"name": name, "domain_id": "default", "password": name}},
    ).json()["user"]
    for role in roles:
        found = admin.http.get("/identity/v3/roles", headers=headers, params={"name": role})
        role_id = (found.json()["roles"] or [None])[0] or admin.http.post(
            "/identity/v3/roles", headers=headers, json={"role": {"name": role}}
        ).json()["role"]
        response = admin.http.put(
            f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{role_id['id']}",
            headers=headers,
        )
        assert response.status_code == 204, response.text
    return octavia(login(admin.http, name, name, project["name"]))


@pytest.fixture
def demo_project(api: Api) -> dict[str, str]:
    return {"id": api.demo.project_id, "name": "demo"}


@pytest.fixture
def other_project(api: Api) -> dict[str, str]:
    response = api.admin.http.post(
        "/identity/v3/projects",
        headers={"X-Auth-Token": api.admin.token},
        json={"project": {"name": "elsewhere", "domain_id": "default"}},
    )
    assert response.status_code == 201, response.text
    return {"id": response.json()["project"]["id"], "name": "elsewhere"}


def test_unknown_paths_methods_and_bad_input_are_octavia_faults(
    api: Api, subnet: dict[str, Any]
) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    token = {"X-Auth-Token": api.demo.token}
    for path in ("/load-balancer/nothing", "/load-balancer/v2/lbaas/nothing", "/load-balancer/v3"):
        assert answer(api.demo.http.get(path, headers=token)) == fault(404, "Not Found"), path
    assert answer(client.request("PATCH", f"/loadbalancers/{lb['id']}")) == fault(
        405, "Method Not Allowed"
    )
    assert answer(client.request("POST", f"/loadbalancers/{lb['id']}/status")) == fault(
        405, "Method Not Allowed"
    )
    assert answer(client.post("/loadbalancers", content=b"{")) == fault(
        400, "Invalid input: the request body must be JSON."
    )
    assert answer(client.get(f"/loadbalancers/{MISSING}")) == fault(
        404, f"Load Balancer {MISSING} not found."
    )
    # What a request body names on the load-balancer side and is missing: Octavia's 404.
    listener = {"protocol": "HTTP", "protocol_port": 80}
    assert answer(
        client.post("/listeners", json={"listener": {**listener, "loadbalancer_id": MISSING}})
    ) == fault(404, f"Load Balancer {MISSING} not found.")
    pool = {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    assert answer(client.post("/pools", json={"pool": {**pool, "listener_id": MISSING}})) == fault(
        404, f"Listener {MISSING} not found."
    )
    monitor = {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3, "pool_id": MISSING}
    assert answer(client.post("/healthmonitors", json={"healthmonitor": monitor})) == fault(
        404, f"Pool {MISSING} not found."
    )
    assert answer(client.get(f"/pools/{MISSING}/members")) == fault(
        404, f"Pool {MISSING} not found."
    )
    assert answer(
        client.post(
            "/listeners",
            json={
                "listener": {**listener, "loadbalancer_id": lb["id"], "default_pool_id": MISSING}
            },
        )
    ) == fault(404, f"Pool {MISSING} not found.")
    assert answer(
        client.post("/loadbalancers", json={"loadbalancer": {"vip_subnet_id": MISSING}})
    ) == fault(400, f"Subnet {MISSING} not found.")


def test_octavia_is_an_alias_of_the_default_provider(api: Api, subnet: dict[str, Any]) -> None:
    client = octavia(api.demo)
    providers = client.get("/providers").json()["providers"]
    assert [p["name"] for p in providers] == ["amphora", "octavia"]
    assert make_lb(api, subnet, provider="octavia")["provider"] == "octavia"
    realize(api)
    assert make_lb(api, subnet, name="lb2")["provider"] == "amphora"
    assert answer(
        client.post(
            "/loadbalancers",
            json={"loadbalancer": {"vip_subnet_id": subnet["id"], "provider": "f5"}},
        )
    ) == fault(400, "Provider 'f5' is not enabled.")


def test_another_projects_objects_answer_403(api: Api, subnet: dict[str, Any]) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    listener = add_listener(client, lb["id"])
    realize(api)
    pool = add_pool(client, listener["id"])
    realize(api)
    member = add_member(client, pool["id"], "10.20.0.9")
    realize(api)
    policy = created(
        client.post(
            "/l7policies", json={"l7policy": {"listener_id": listener["id"], "action": "REJECT"}}
        ),
        "l7policy",
    )
    realize(api)

    other = octavia(api.demo2)
    forbidden = fault(403, FORBIDDEN)
    for path in (
        f"/loadbalancers/{lb['id']}",
        f"/loadbalancers/{lb['id']}/status",
        f"/loadbalancers/{lb['id']}/stats",
        f"/listeners/{listener['id']}",
        f"/listeners/{listener['id']}/stats",
        f"/pools/{pool['id']}",
        f"/pools/{pool['id']}/members",
        f"/pools/{pool['id']}/members/{member['id']}",
        f"/l7policies/{policy['id']}",
        f"/l7policies/{policy['id']}/rules",
    ):
        assert answer(other.get(path)) == forbidden, path
    assert answer(other.put(f"/pools/{pool['id']}", json={"pool": {"name": "x"}})) == forbidden
    assert answer(other.delete(f"/listeners/{listener['id']}")) == forbidden
    assert (
        answer(
            other.post(
                "/listeners",
                json={
                    "listener": {
                        "loadbalancer_id": lb["id"],
                        "protocol": "TCP",
                        "protocol_port": 81,
                    }
                },
            )
        )
        == forbidden
    )
    assert (
        answer(
            other.post(
                f"/pools/{pool['id']}/members",
                json={"member": {"address": "10.20.0.10", "protocol_port": 80}},
            )
        )
        == forbidden
    )
    # Nor may it create in the other project (Neutron's answer there is a 400).
    assert (
        answer(
            other.post(
                "/loadbalancers",
                json={
                    "loadbalancer": {
                        "vip_subnet_id": subnet["id"],
                        "project_id": api.demo.project_id,
                    }
                },
            )
        )
        == forbidden
    )
    # Its own lists do not show them; nothing was changed.
    assert other.get("/loadbalancers").json()["loadbalancers"] == []
    assert other.get("/listeners").json()["listeners"] == []
    shown = client.get(f"/pools/{pool['id']}").json()["pool"]
    assert (shown["name"], shown["provisioning_status"]) == ("", "ACTIVE")
    assert [m["id"] for m in client.get(f"/pools/{pool['id']}/members").json()["members"]] == [
        member["id"]
    ]


# role(s) -> in which project -> may it list (and which projects' load balancers it sees), show
# and create (in its own project, or a listener on the demo project's load balancer)
ROLES = [
    (["load-balancer_member"], "demo", "own", True, True),
    (["member"], "demo", "own", True, True),
    (["load-balancer_observer"], "demo", "own", True, False),
    (["reader"], "demo", "own", True, False),
    (["load-balancer_global_observer"], "other", "all", True, False),
    (["load-balancer_admin"], "other", "all", True, True),
    (["admin"], "other", "all", True, True),
    (["load-balancer_quota_admin"], "demo", None, False, False),
    (["some-other-role"], "demo", None, False, False),
    (["load-balancer_observer"], "other", "own", False, False),
    (["load-balancer_member"], "other", "own", False, False),
]


@pytest.mark.parametrize(("roles", "where", "lists", "shows", "creates"), ROLES, ids=str)
def test_each_roles_rights(
    api: Api,
    subnet: dict[str, Any],
    demo_project: dict[str, str],
    other_project: dict[str, str],
    roles: list[str],
    where: str,
    lists: str | None,
    shows: bool,
    creates: bool,
) -> None:
    lb = make_lb(api, subnet)
    realize(api)
    caller = user_with_roles(api.admin, demo_project if where == "demo" else other_project, roles)
    forbidden = fault(403, FORBIDDEN)

    listed = caller.get("/loadbalancers")
    if lists is None:
        assert answer(listed) == forbidden
    else:
        seen = [item["id"] for item in listed.json()["loadbalancers"]]
        assert seen == ([lb["id"]] if lists == "all" or where == "demo" else []), listed.text

    shown = caller.get(f"/loadbalancers/{lb['id']}")
    if shows:
        assert shown.status_code == 200 and shown.json()["loadbalancer"]["id"] == lb["id"]
    else:
        assert answer(shown) == forbidden

    listener = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}
    made = caller.post("/listeners", json={"listener": listener})
    if creates:
        assert made.status_code == 201, made.text
    else:
        assert answer(made) == forbidden
        assert octavia(api.admin).get("/listeners").json()["listeners"] == []


def test_quota_rights(api: Api, other_project: dict[str, str]) -> None:
    quotas = f"/quotas/{api.demo.project_id}"
    limit = {"quota": {"load_balancer": 5}}
    quota_admin = user_with_roles(api.admin, other_project, ["load-balancer_quota_admin"])
    assert quota_admin.put(quotas, json=limit).status_code == 202
    assert quota_admin.get(quotas).json()["quota"]["load_balancer"] == 5
    assert api.demo.project_id in [
        q["project_id"] for q in quota_admin.get("/quotas").json()["quotas"]
    ]
    # A member reads its own project's quota and sets none.
    member = octavia(api.demo)
    assert member.get(quotas).json()["quota"]["load_balancer"] == 5
    assert answer(member.put(quotas, json=limit)) == fault(403, FORBIDDEN)
    assert answer(octavia(api.demo2).get(quotas)) == fault(403, FORBIDDEN)
    nobody = user_with_roles(api.admin, other_project, ["some-other-role"])
    assert answer(nobody.get("/quotas")) == fault(403, FORBIDDEN)
    assert answer(nobody.get("/providers")) == fault(403, FORBIDDEN)
