"""Every collection x every role: no implicit allow.

A project's resources are created by its member; then each caller tries to
read, list, update and delete them. The owner may do all; a reader of the
same project may only read; a member of another project sees nothing (404,
as Neutron answers, never 403, which would confirm the resource exists); an
admin may do all.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import Api, ApiClient, add_member_project


@dataclass
class Owned:
    collection: str
    member: str
    id: str
    update: dict


def build(api: Api) -> list[Owned]:
    ext = api.admin.create("networks", name="ext", **{"router:external": True})
    api.admin.create("subnets", network_id=ext["id"], cidr="198.51.100.0/24", ip_version=4)
    demo = api.demo
    net = demo.create("networks", name="n")
    sub = demo.create("subnets", network_id=net["id"], cidr="10.60.0.0/24", ip_version=4)
    port = demo.create("ports", network_id=net["id"])
    router = demo.create("routers", name="r", external_gateway_info={"network_id": ext["id"]})
    assert (
        demo.put(
            f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}
        ).status_code
        == 200
    )
    fip = demo.create("floatingips", floating_network_id=ext["id"])
    group = demo.post("/security-groups", json={"security_group": {"name": "g"}}).json()[
        "security_group"
    ]
    rule = demo.post(
        "/security-group-rules",
        json={
            "security_group_rule": {
                "security_group_id": group["id"],
                "direction": "ingress",
                "protocol": "tcp",
                "port_range_min": 22,
                "port_range_max": 22,
            }
        },
    ).json()["security_group_rule"]
    return [
        Owned("networks", "network", net["id"], {"name": "x"}),
        Owned("subnets", "subnet", sub["id"], {"name": "x"}),
        Owned("ports", "port", port["id"], {"name": "x"}),
        Owned("routers", "router", router["id"], {"name": "x"}),
        Owned("floatingips", "floatingip", fip["id"], {"description": "x"}),
        Owned("security-groups", "security_group", group["id"], {"name": "x"}),
        Owned("security-group-rules", "security_group_rule", rule["id"], {}),
    ]


def reader(api: Api) -> ApiClient:
    """A user with only the reader role on the demo project."""
    name, password = add_member_project(api.admin, "readers")
    headers = {"X-Auth-Token": api.admin.token}
    http = api.admin.http
    user = http.get("/identity/v3/users", headers=headers, params={"name": name}).json()["users"][0]
    roles = {
        r["name"]: r["id"] for r in http.get("/identity/v3/roles", headers=headers).json()["roles"]
    }
    granted = http.put(
        f"/identity/v3/projects/{api.demo.project_id}/users/{user['id']}/roles/{roles['reader']}",
        headers=headers,
    )
    assert granted.status_code == 204
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": name, "domain": {"id": "default"}, "password": password}
                },
            },
            "scope": {"project": {"id": api.demo.project_id}},
        }
    }
    response = http.post("/identity/v3/auth/tokens", json=body)
    assert response.status_code == 201, response.text
    return ApiClient(http, response.headers["X-Subject-Token"], api.demo.project_id, user["id"])


def test_role_matrix(api: Api) -> None:
    owned = build(api)
    read_only = reader(api)
    other = api.demo2
    for item in owned:
        path = f"/{item.collection}/{item.id}"
        listed = {
            x["id"]
            for x in read_only.get(f"/{item.collection}").json()[item.collection.replace("-", "_")]
        }
        assert item.id in listed, item
        assert read_only.get(path).status_code == 200, item
        if item.update:
            denied = read_only.put(path, json={item.member: item.update})
            assert denied.status_code == 403, (item, denied.text)
        assert read_only.delete(path).status_code == 403, item

        assert other.get(path).status_code == 404, item
        assert item.id not in {
            x["id"]
            for x in other.get(f"/{item.collection}").json()[item.collection.replace("-", "_")]
        }
        if item.update:
            assert other.put(path, json={item.member: item.update}).status_code == 404, item
        assert other.delete(path).status_code == 404, item

        assert api.admin.get(path).status_code == 200, item
        if item.update:
            assert api.demo.put(path, json={item.member: item.update}).status_code == 200, item


@pytest.mark.parametrize(
    "collection, body",
    [
        ("networks", {"network": {"name": "r"}}),
        ("security-groups", {"security_group": {"name": "r"}}),
        ("routers", {"router": {"name": "r"}}),
    ],
)
def test_reader_cannot_create(api: Api, collection: str, body: dict) -> None:
    response = reader(api).post(f"/{collection}", json=body)
    assert response.status_code == 403, response.text
    assert response.json()["NeutronError"]["type"] == "PolicyNotAuthorized"
