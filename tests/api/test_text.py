"""Text a database cannot store (NUL) is refused alike on both, over real HTTP, in each API's
shape: Neutron's, Octavia's, Keystone's and the dashboard's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ApiClient, LiveServer, expect_error, login

BODY_REFUSAL = "Invalid input for operation: text must not contain the NUL character (U+0000)."
URL_REFUSAL = "Invalid URL: text must not contain the NUL character (U+0000)."
LBAAS = "/load-balancer/v2/lbaas"


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url) as http:
        yield http


@pytest.fixture(scope="module")
def admin(client: httpx.Client) -> ApiClient:
    return login(client, "admin", ADMIN_PASSWORD, "admin")


def raw_json(text: str) -> dict[str, Any]:
    """A request body as sent byte for byte (JSON's escapes kept as written)."""
    return {"content": text.encode(), "headers": {"Content-Type": "application/json"}}


def expect_fault(response: httpx.Response, message: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == {"faultcode": "Client", "faultstring": message, "debuginfo": None}


def expect_keystone(response: httpx.Response, message: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == {"error": {"code": 400, "title": "Bad Request", "message": message}}


@pytest.mark.parametrize(
    "body",
    [
        '{"security_group": {"name": "a\\u0000b"}}',
        '{"security_group": {"name\\u0000": "a"}}',
        '{"security_group": {"description": "x", "name": ["\\u0000"]}}',
        '{"security_groups": [{"name": "ok"}, {"name": "\\u0000"}]}',
    ],
)
def test_neutron_refuses_nul_in_a_body(admin: ApiClient, body: str) -> None:
    before = admin.get("/security-groups").json()
    message = expect_error(admin.post("/security-groups", **raw_json(body)), 400, "InvalidInput")
    assert message == BODY_REFUSAL
    assert admin.get("/security-groups").json() == before


def test_neutron_refuses_nul_in_an_update_a_tag_and_an_action(admin: ApiClient) -> None:
    group = admin.create("security-groups", name="nul-update")
    router = admin.create("routers", name="nul-router")
    for method, path, body in [
        (
            "PUT",
            f"/security-groups/{group['id']}",
            '{"security_group": {"description": "\\u0000"}}',
        ),
        ("PUT", f"/security-groups/{group['id']}/tags", '{"tags": ["a\\u0000"]}'),
        ("PUT", f"/routers/{router['id']}/add_router_interface", '{"subnet_id": "\\u0000"}'),
        ("PUT", f"/quotas/{admin.project_id}", '{"quota": {"network\\u0000": 1}}'),
    ]:
        message = expect_error(admin.request(method, path, **raw_json(body)), 400, "InvalidInput")
        assert message == BODY_REFUSAL
    assert admin.get(f"/security-groups/{group['id']}").json()["security_group"] == group


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/networks/%00"),
        ("PUT", "/networks/%00"),
        ("DELETE", "/networks/%00"),
        ("GET", "/networks?name=%00"),
        ("GET", "/networks?name=ok&fields=%00"),
        ("GET", "/ports?%00=x"),
        ("PUT", "/networks/x/tags/a%00b"),
        ("PUT", "/quotas/%00"),
    ],
)
def test_neutron_refuses_nul_in_a_url(admin: ApiClient, method: str, path: str) -> None:
    response = admin.request(method, path, json={"network": {"name": "n"}})
    assert expect_error(response, 400, "HTTPBadRequest") == URL_REFUSAL


def test_escaped_backslash_is_ordinary_text(admin: ApiClient) -> None:
    """`\\\\u0000` in JSON is a backslash and 'u0000', which both databases store."""
    response = admin.post(
        "/security-groups", **raw_json('{"security_group": {"name": "a\\\\u0000"}}')
    )
    assert response.status_code == 201, response.text
    assert response.json()["security_group"]["name"] == "a\\u0000"


def test_lone_surrogates_are_malformed_json(admin: ApiClient) -> None:
    response = admin.post("/security-groups", **raw_json('{"security_group": {"name": "\\ud800"}}'))
    assert "Malformed JSON in request body" in expect_error(response, 400, "BadRequest")


def test_octavia_refuses_nul(admin: ApiClient) -> None:
    lbaas = ApiClient(admin.http, admin.token, admin.project_id, admin.user_id, prefix=LBAAS)
    expect_fault(
        lbaas.post("/loadbalancers", **raw_json('{"loadbalancer": {"name": "\\u0000"}}')),
        BODY_REFUSAL,
    )
    expect_fault(
        lbaas.put("/quotas/x", **raw_json('{"quota": {"pool": 1, "\\u0000": 2}}')), BODY_REFUSAL
    )
    expect_fault(lbaas.get("/loadbalancers/%00"), URL_REFUSAL)
    expect_fault(lbaas.get("/pools/%00/members"), URL_REFUSAL)
    expect_fault(lbaas.get("/listeners?name=%00"), URL_REFUSAL)
    assert lbaas.get("/loadbalancers").json()["loadbalancers"] == []


def test_identity_refuses_nul(client: httpx.Client, admin: ApiClient) -> None:
    auth = (
        '{"auth": {"identity": {"methods": ["password"], "password": {"user": '
        '{"name": "admin\\u0000", "domain": {"id": "default"}, "password": "x"}}}}}'
    )
    expect_keystone(client.post("/identity/v3/auth/tokens", **raw_json(auth)), BODY_REFUSAL)
    headers = {"X-Auth-Token": admin.token, "Content-Type": "application/json"}
    expect_keystone(
        client.post(
            "/identity/v3/projects", headers=headers, content=b'{"project": {"name": "p\\u0000"}}'
        ),
        BODY_REFUSAL,
    )
    expect_keystone(client.get("/identity/v3/users/%00", headers=headers), URL_REFUSAL)
    expect_keystone(client.get("/identity/v3/projects?name=%00", headers=headers), URL_REFUSAL)
    names = [
        p["name"] for p in client.get("/identity/v3/projects", headers=headers).json()["projects"]
    ]
    assert not any("\x00" in name for name in names)


def test_lab_and_internal_refuse_nul(client: httpx.Client, admin: ApiClient) -> None:
    headers = {"X-Auth-Token": admin.token, "Content-Type": "application/json"}
    for path, body in [
        ("/lab/v1/trace", '{"from": "\\u0000", "to": "10.0.0.1"}'),
        ("/lab/v1/instances", '{"instance": {"name": "\\u0000"}}'),
        ("/internal/v1/agents/h/report", '{"revision": 1, "\\u0000": {}}'),
    ]:
        response = client.post(path, headers=headers, content=body.encode())
        assert expect_error(response, 400, "InvalidInput") == BODY_REFUSAL
    for path in ["/lab/v1/instances/%00", "/internal/v1/changes?since=%00"]:
        assert expect_error(client.get(path, headers=headers), 400, "HTTPBadRequest") == URL_REFUSAL
    response = client.post("/internal/v1/agents/%00/report", headers=headers, content=b"{}")
    assert expect_error(response, 400, "HTTPBadRequest") == URL_REFUSAL


def test_dashboard_shows_the_refusal(client: httpx.Client) -> None:
    login_page = client.get("/dashboard/login")
    form = {
        "csrf_token": client.cookies["neutrino_login_csrf"],
        "username": "admin",
        "password": ADMIN_PASSWORD,
        "project": "admin",
    }
    assert login_page.status_code == 200
    signed_in = client.post("/dashboard/login", data=form)
    assert signed_in.status_code == 303, signed_in.text
    page = client.get("/dashboard/project/networks")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    created = client.post(
        "/dashboard/project/networks", data={"csrf_token": csrf.group(1), "name": "a\x00b"}
    )
    assert created.status_code == 400 and "NUL character" in created.text
    shown = client.get("/dashboard/project/networks/%00")
    assert shown.status_code == 400 and "NUL character" in shown.text
