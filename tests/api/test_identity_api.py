"""The Keystone v3 surface in-process: shapes, status codes, policy, exact error bodies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from neutrino.api.identity import keystone_exception_handler, routes
from neutrino.config import Settings
from neutrino.db import Database
from neutrino.errors import KeystoneError
from neutrino.identity import Identity

AUTH_REQUIRED = {
    "error": {
        "code": 401,
        "title": "Unauthorized",
        "message": "The request you have made requires authentication.",
    }
}


class Cloud:
    """A client session against the in-process app, with bootstrap's credentials."""

    def __init__(self, client: TestClient, identity: Identity, passwords: dict[str, str]) -> None:
        self.client, self.identity, self.passwords = client, identity, passwords

    def login(self, name: str, project: str | None = None, password: str | None = None) -> str:
        response = self.client.post(
            "/identity/v3/auth/tokens",
            json=password_auth(name, password or self.passwords[name], project),
        )
        assert response.status_code == 201, response.text
        return str(response.headers["X-Subject-Token"])

    def headers(self, name: str = "admin", project: str | None = "") -> dict[str, str]:
        return {"X-Auth-Token": self.login(name, name if project == "" else project)}

    def id_of(self, collection: str, name: str) -> str:
        found = self.client.get(
            f"/identity/v3/{collection}", params={"name": name}, headers=self.headers()
        )
        return str(found.json()[collection][0]["id"])


def password_auth(name: str, password: str, project: str | None, **scope: Any) -> dict[str, Any]:
    auth: dict[str, Any] = {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {"name": name, "domain": {"name": "Default"}, "password": password}
            },
        }
    }
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    if scope:
        auth["scope"] = scope
    return {"auth": auth}


def failing_route(_request: Request) -> None:
    raise KeystoneError(401, "Unauthorized", "outside the identity routes")


@pytest.fixture
def cloud(tmp_path: Path, database_url: str) -> Iterator[Cloud]:
    """The identity routes alone, on each database backend (conftest's `database_url`)."""
    db = Database(database_url)
    settings = Settings(state_dir=tmp_path, database_url=database_url, admin_password="admin-pw")
    identity = Identity(db, settings)
    clouds = yaml.safe_load(Path(identity.bootstrap()).read_text())["clouds"]
    app = Starlette(
        routes=[
            Mount("/identity", routes=routes(identity, settings)),
            Route("/elsewhere", failing_route),
        ],
        exception_handlers={KeystoneError: keystone_exception_handler(settings)},
    )
    passwords = {c["auth"]["username"]: c["auth"]["password"] for c in clouds.values()}
    with TestClient(app) as client:
        yield Cloud(client, identity, passwords)
    db.dispose()


# -- discovery -------------------------------------------------------------------
def test_version_discovery(cloud: Cloud) -> None:
    root = cloud.client.get("/identity/")
    assert root.status_code == 300
    [version] = root.json()["versions"]["values"]
    assert version["id"] == "v3.14" and version["status"] == "stable"
    assert version["links"] == [{"rel": "self", "href": "http://testserver/identity/v3/"}]
    v3 = cloud.client.get("/identity/v3")
    assert v3.status_code == 200 and v3.json() == {"version": version}


# -- tokens ----------------------------------------------------------------------
def test_password_auth_scoped_by_name(cloud: Cloud) -> None:
    response = cloud.client.post(
        "/identity/v3/auth/tokens", json=password_auth("admin", "admin-pw", "admin")
    )
    assert response.status_code == 201
    assert response.headers["X-Subject-Token"].startswith("gAAAAA")
    token = response.json()["token"]
    assert token["methods"] == ["password"]
    assert token["user"]["name"] == "admin"
    assert token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["project"]["name"] == "admin" and token["is_domain"] is False
    assert sorted(r["name"] for r in token["roles"]) == ["admin", "member", "reader"]
    assert token["expires_at"].endswith("Z") and token["issued_at"] < token["expires_at"]
    assert len(token["audit_ids"]) == 1


def test_catalog_lists_identity_network_load_balancer_key_manager_and_lab(cloud: Cloud) -> None:
    body = cloud.client.post(
        "/identity/v3/auth/tokens", json=password_auth("demo", cloud.passwords["demo"], "demo")
    )
    catalog = {entry["type"]: entry for entry in body.json()["token"]["catalog"]}
    assert set(catalog) == {"identity", "network", "load-balancer", "key-manager", "lab"}
    urls = {
        kind: {(e["interface"], e["url"], e["region_id"]) for e in entry["endpoints"]}
        for kind, entry in catalog.items()
    }
    interfaces = ("public", "internal", "admin")
    assert urls["network"] == {
        (i, "http://127.0.0.1:9696/networking", "RegionOne") for i in interfaces
    }
    assert urls["identity"] == {
        (i, "http://127.0.0.1:9696/identity", "RegionOne") for i in interfaces
    }
    assert urls["load-balancer"] == {
        (i, "http://127.0.0.1:9696/load-balancer", "RegionOne") for i in interfaces
    }
    assert urls["key-manager"] == {
        (i, "http://127.0.0.1:9696/key-manager", "RegionOne") for i in interfaces
    }
    auth = {"X-Auth-Token": body.headers["X-Subject-Token"]}
    assert (
        cloud.client.get("/identity/v3/auth/catalog", headers=auth).json()["catalog"]
        == body.json()["token"]["catalog"]
    )


def test_password_auth_by_ids_and_nocatalog(cloud: Cloud) -> None:
    project_id, user_id = cloud.id_of("projects", "demo"), cloud.id_of("users", "demo")
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"id": user_id, "password": cloud.passwords["demo"]}},
            },
            "scope": {"project": {"id": project_id}},
        }
    }
    response = cloud.client.post("/identity/v3/auth/tokens?nocatalog", json=body)
    assert response.status_code == 201
    token = response.json()["token"]
    assert token["project"]["id"] == project_id and "catalog" not in token
    assert [r["name"] for r in token["roles"]] == ["member", "reader"]


def test_unscoped_token_then_rescope_with_the_token_method(cloud: Cloud) -> None:
    response = cloud.client.post(
        "/identity/v3/auth/tokens", json=password_auth("demo", cloud.passwords["demo"], None)
    )
    assert response.status_code == 201
    unscoped = response.json()["token"]
    assert not {"project", "roles", "catalog"} & set(unscoped)
    subject = response.headers["X-Subject-Token"]
    auth = {"X-Auth-Token": subject}
    assert [
        p["name"]
        for p in cloud.client.get("/identity/v3/auth/projects", headers=auth).json()["projects"]
    ] == ["demo"]
    catalog = cloud.client.get("/identity/v3/auth/catalog", headers=auth)
    assert catalog.status_code == 403
    assert (
        catalog.json()["error"]["message"]
        == "A project-scoped token is required to produce a service catalog."
    )
    rescoped = cloud.client.post(
        "/identity/v3/auth/tokens",
        json={
            "auth": {
                "identity": {"methods": ["token"], "token": {"id": subject}},
                "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}},
            }
        },
    )
    assert rescoped.status_code == 201
    token = rescoped.json()["token"]
    assert token["project"]["name"] == "demo" and token["methods"] == ["token", "password"]
    assert token["audit_ids"][1] == unscoped["audit_ids"][0]
    assert token["expires_at"] == unscoped["expires_at"]


@pytest.mark.parametrize(
    "body",
    [
        password_auth("admin", "wrong", "admin"),
        password_auth("ghost", "admin-pw", "admin"),
        password_auth("admin", "admin-pw", "demo"),
        {"auth": {"identity": {"methods": ["token"], "token": {"id": "gAAAAAbogus"}}}},
    ],
)
def test_failed_authentication_is_401_with_keystone_body(
    cloud: Cloud, body: dict[str, Any]
) -> None:
    response = cloud.client.post("/identity/v3/auth/tokens", json=body)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Keystone uri="http://127.0.0.1:9696/identity"'
    if (
        body["auth"]["identity"]["methods"] == ["password"]
        and body["auth"]["scope"]["project"]["name"] == "demo"
    ):
        assert response.json()["error"]["message"].startswith("User ")
    else:
        assert response.json() == AUTH_REQUIRED


def test_unsupported_scope_and_method(cloud: Cloud) -> None:
    domain = cloud.client.post(
        "/identity/v3/auth/tokens",
        json=password_auth("admin", "admin-pw", None, domain={"id": "default"}),
    )
    assert domain.status_code == 401
    totp = cloud.client.post(
        "/identity/v3/auth/tokens", json={"auth": {"identity": {"methods": ["totp"]}}}
    )
    assert totp.json() == {
        "error": {
            "code": 401,
            "title": "Unauthorized",
            "message": "Attempted to authenticate with an unsupported method.",
        }
    }


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, "Invalid input for field 'auth': expected an object."),
        (
            {"auth": {"identity": {"methods": "password"}}},
            "Invalid input for field 'identity/methods': expected a non-empty list.",
        ),
        (
            {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {"user": {"name": "admin", "password": "x"}},
                    }
                }
            },
            "Invalid input for field 'domain': expected an object.",
        ),
        (
            {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {"user": {"id": "x", "password": 7}},
                    }
                }
            },
            "Invalid input for field 'password': expected a string.",
        ),
    ],
)
def test_malformed_auth_bodies_are_400(cloud: Cloud, body: dict[str, Any], message: str) -> None:
    response = cloud.client.post("/identity/v3/auth/tokens", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": {"code": 400, "title": "Bad Request", "message": message}}


def test_invalid_json_is_400(cloud: Cloud) -> None:
    response = cloud.client.post(
        "/identity/v3/auth/tokens", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.json() == {
        "error": {
            "code": 400,
            "title": "Bad Request",
            "message": "The request body is not valid JSON.",
        }
    }


def test_validate_head_and_revoke(cloud: Cloud) -> None:
    admin = cloud.headers()
    subject = cloud.login("demo", "demo")
    checked = cloud.client.get(
        "/identity/v3/auth/tokens", headers={**admin, "X-Subject-Token": subject}
    )
    assert checked.status_code == 200 and checked.headers["X-Subject-Token"] == subject
    assert checked.json()["token"]["user"]["name"] == "demo"
    head = cloud.client.head(
        "/identity/v3/auth/tokens", headers={**admin, "X-Subject-Token": subject}
    )
    assert head.status_code == 200 and head.content == b""
    assert (
        cloud.client.get(
            "/identity/v3/auth/projects", headers={"X-Auth-Token": subject}
        ).status_code
        == 200
    )
    revoked = cloud.client.delete(
        "/identity/v3/auth/tokens", headers={**admin, "X-Subject-Token": subject}
    )
    assert revoked.status_code == 204
    after = cloud.client.get("/identity/v3/auth/projects", headers={"X-Auth-Token": subject})
    assert after.status_code == 401 and after.json() == AUTH_REQUIRED
    gone = cloud.client.get(
        "/identity/v3/auth/tokens", headers={**admin, "X-Subject-Token": subject}
    )
    assert gone.status_code == 404
    assert gone.json() == {
        "error": {"code": 404, "title": "Not Found", "message": f"Could not find token: {subject}."}
    }


def test_users_may_validate_and_revoke_their_own_tokens_only(cloud: Cloud) -> None:
    demo = cloud.login("demo", "demo")
    admin_token = cloud.login("admin", "admin")
    own = cloud.client.get(
        "/identity/v3/auth/tokens", headers={"X-Auth-Token": demo, "X-Subject-Token": demo}
    )
    assert own.status_code == 200
    other = cloud.client.get(
        "/identity/v3/auth/tokens", headers={"X-Auth-Token": demo, "X-Subject-Token": admin_token}
    )
    assert other.status_code == 403
    assert other.json() == {
        "error": {
            "code": 403,
            "title": "Forbidden",
            "message": "You are not authorized to perform the requested action: "
            "identity:validate_token.",
        }
    }
    mine = cloud.client.delete(
        "/identity/v3/auth/tokens", headers={"X-Auth-Token": demo, "X-Subject-Token": demo}
    )
    assert mine.status_code == 204


def test_requests_without_a_valid_token_are_401(cloud: Cloud) -> None:
    for headers in ({}, {"X-Auth-Token": "garbage"}):
        response = cloud.client.get("/identity/v3/projects", headers=headers)
        assert response.status_code == 401 and response.json() == AUTH_REQUIRED
        assert (
            response.headers["WWW-Authenticate"] == 'Keystone uri="http://127.0.0.1:9696/identity"'
        )


def test_the_app_can_render_keystone_errors_raised_elsewhere(cloud: Cloud) -> None:
    response = cloud.client.get("/elsewhere")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": 401, "title": "Unauthorized", "message": "outside the identity routes"}
    }
    assert response.headers["WWW-Authenticate"] == 'Keystone uri="http://127.0.0.1:9696/identity"'


# -- resources -------------------------------------------------------------------
def test_project_crud(cloud: Cloud) -> None:
    admin = cloud.headers()
    created = cloud.client.post(
        "/identity/v3/projects",
        headers=admin,
        json={"project": {"name": "lab", "description": "for tests", "domain_id": "default"}},
    )
    assert created.status_code == 201
    project = created.json()["project"]
    assert {
        k: project[k]
        for k in ("name", "description", "domain_id", "enabled", "parent_id", "is_domain")
    } == {
        "name": "lab",
        "description": "for tests",
        "domain_id": "default",
        "enabled": True,
        "parent_id": "default",
        "is_domain": False,
    }
    assert project["links"]["self"] == f"http://testserver/identity/v3/projects/{project['id']}"
    duplicate = cloud.client.post(
        "/identity/v3/projects", headers=admin, json={"project": {"name": "lab"}}
    )
    assert duplicate.status_code == 409
    assert duplicate.json() == {
        "error": {
            "code": 409,
            "title": "Conflict",
            "message": "Conflict occurred attempting to store project - it is not permitted to "
            "have two projects with the same name in the same domain : lab.",
        }
    }
    url = f"/identity/v3/projects/{project['id']}"
    patched = cloud.client.patch(
        url, headers=admin, json={"project": {"description": "", "enabled": False}}
    )
    assert patched.json()["project"]["enabled"] is False
    listed = cloud.client.get(
        "/identity/v3/projects", headers=admin, params={"enabled": "false"}
    ).json()
    assert [p["name"] for p in listed["projects"]] == ["lab"]
    assert listed["links"]["next"] is None
    assert cloud.client.get(url, headers=admin).json()["project"]["description"] == ""
    assert cloud.client.delete(url, headers=admin).status_code == 204
    missing = cloud.client.get(url, headers=admin)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "code": 404,
            "title": "Not Found",
            "message": f"Could not find project: {project['id']}.",
        }
    }


@pytest.mark.parametrize(
    "body, message",
    [
        ({"project": {}}, "Invalid input for field 'project': 'name' is a required property."),
        ({"project": {"name": 5}}, "Invalid input for field 'name': 5 is not of type str."),
        (
            {"project": {"name": "   "}},
            "Invalid input for field 'name': must be 1 to 255 characters, not blank.",
        ),
        (
            {"project": {"name": "x", "enabled": "yes"}},
            "Invalid input for field 'enabled': 'yes' is not of type bool.",
        ),
        ({"project": {"name": "x", "domain_id": "nope"}}, "Domain nope does not exist."),
        ({"name": "x"}, "Invalid input for field 'project': expected an object."),
    ],
)
def test_bad_project_bodies_are_400(cloud: Cloud, body: dict[str, Any], message: str) -> None:
    response = cloud.client.post("/identity/v3/projects", headers=cloud.headers(), json=body)
    assert response.status_code == 400
    assert response.json() == {"error": {"code": 400, "title": "Bad Request", "message": message}}


def test_user_crud_and_role_assignment(cloud: Cloud) -> None:
    admin = cloud.headers()
    project_id = cloud.id_of("projects", "demo")
    created = cloud.client.post(
        "/identity/v3/users",
        headers=admin,
        json={
            "user": {
                "name": "alice",
                "password": "alice-pw",
                "email": "alice@example.org",
                "default_project_id": project_id,
            }
        },
    )
    assert created.status_code == 201
    alice = created.json()["user"]
    assert "password" not in alice and "password_hash" not in alice
    assert (alice["email"], alice["default_project_id"], alice["enabled"]) == (
        "alice@example.org",
        project_id,
        True,
    )
    duplicate = cloud.client.post(
        "/identity/v3/users", headers=admin, json={"user": {"name": "alice"}}
    )
    assert duplicate.json()["error"]["message"] == (
        "Conflict occurred attempting to store user - "
        "Duplicate entry found with name alice at domain ID default."
    )

    denied = cloud.client.post(
        "/identity/v3/auth/tokens", json=password_auth("alice", "alice-pw", "demo")
    )
    assert denied.status_code == 401
    member_id = cloud.id_of("roles", "member")
    grant = f"/identity/v3/projects/{project_id}/users/{alice['id']}/roles/{member_id}"
    assert cloud.client.head(grant, headers=admin).status_code == 404
    assert cloud.client.put(grant, headers=admin).status_code == 204
    assert cloud.client.put(grant, headers=admin).status_code == 204
    assert cloud.client.head(grant, headers=admin).status_code == 204
    assert cloud.login("alice", "demo", "alice-pw")

    listed = cloud.client.get(
        "/identity/v3/role_assignments",
        headers=admin,
        params={"user.id": alice["id"], "scope.project.id": project_id, "include_names": "True"},
    ).json()
    assert listed["role_assignments"] == [
        {
            "role": {"id": member_id, "name": "member"},
            "user": {
                "id": alice["id"],
                "name": "alice",
                "domain": {"id": "default", "name": "Default"},
            },
            "scope": {
                "project": {
                    "id": project_id,
                    "name": "demo",
                    "domain": {"id": "default", "name": "Default"},
                }
            },
            "links": {"assignment": f"http://testserver{grant}"},
        }
    ]
    bare = cloud.client.get(
        "/identity/v3/role_assignments", headers=admin, params={"user.id": alice["id"]}
    ).json()
    assert bare["role_assignments"][0]["role"] == {"id": member_id}
    projects = cloud.client.get(f"/identity/v3/users/{alice['id']}/projects", headers=admin).json()[
        "projects"
    ]
    assert [p["name"] for p in projects] == ["demo"]

    renamed = cloud.client.patch(
        f"/identity/v3/users/{alice['id']}",
        headers=admin,
        json={"user": {"name": "alicia", "password": "new-pw"}},
    )
    assert renamed.json()["user"]["name"] == "alicia"
    assert cloud.login("alicia", "demo", "new-pw")
    assert cloud.client.delete(grant, headers=admin).status_code == 204
    assert cloud.client.delete(grant, headers=admin).status_code == 404
    assert (
        cloud.client.delete(f"/identity/v3/users/{alice['id']}", headers=admin).status_code == 204
    )
    missing = cloud.client.get(f"/identity/v3/users/{alice['id']}", headers=admin)
    assert missing.json()["error"] == {
        "code": 404,
        "title": "Not Found",
        "message": f"Could not find user: {alice['id']}.",
    }


def test_role_crud(cloud: Cloud) -> None:
    admin = cloud.headers()
    created = cloud.client.post(
        "/identity/v3/roles", headers=admin, json={"role": {"name": "auditor"}}
    )
    assert created.status_code == 201
    role = created.json()["role"]
    assert (role["name"], role["domain_id"], role["description"]) == ("auditor", None, "")
    assert cloud.client.post(
        "/identity/v3/roles", headers=admin, json={"role": {"name": "auditor"}}
    ).json() == {
        "error": {
            "code": 409,
            "title": "Conflict",
            "message": "Conflict occurred attempting to store role - "
            "Duplicate entry found with name auditor.",
        }
    }
    url = f"/identity/v3/roles/{role['id']}"
    assert (
        cloud.client.patch(url, headers=admin, json={"role": {"description": "reads logs"}}).json()[
            "role"
        ]["description"]
        == "reads logs"
    )
    names = [
        r["name"] for r in cloud.client.get("/identity/v3/roles", headers=admin).json()["roles"]
    ]
    assert names == ["admin", "auditor", "member", "reader"]
    assert cloud.client.delete(url, headers=admin).status_code == 204
    assert cloud.client.get(url, headers=admin).status_code == 404


def test_domains(cloud: Cloud) -> None:
    demo = cloud.headers("demo")
    domains = cloud.client.get(
        "/identity/v3/domains", headers=demo, params={"name": "Default"}
    ).json()["domains"]
    assert [(d["id"], d["name"], d["enabled"]) for d in domains] == [("default", "Default", True)]
    assert (
        cloud.client.get("/identity/v3/domains/default", headers=demo).json()["domain"]["name"]
        == "Default"
    )
    assert cloud.client.get("/identity/v3/domains/other", headers=demo).status_code == 404


def test_demo_reads_its_own_records_and_nothing_else(cloud: Cloud) -> None:
    demo = cloud.headers("demo")
    demo_id, admin_id = cloud.id_of("users", "demo"), cloud.id_of("users", "admin")
    demo_project, admin_project = cloud.id_of("projects", "demo"), cloud.id_of("projects", "admin")
    allowed = [
        f"/identity/v3/users/{demo_id}",
        f"/identity/v3/users/{demo_id}/projects",
        f"/identity/v3/projects/{demo_project}",
        f"/identity/v3/role_assignments?user.id={demo_id}",
    ]
    for url in allowed:
        assert cloud.client.get(url, headers=demo).status_code == 200, url
    denied = {
        ("GET", "/identity/v3/projects"): "identity:list_projects",
        ("GET", "/identity/v3/users"): "identity:list_users",
        ("GET", "/identity/v3/roles"): "identity:list_roles",
        ("GET", "/identity/v3/role_assignments"): "identity:list_role_assignments",
        ("GET", f"/identity/v3/users/{admin_id}"): "identity:get_user",
        ("GET", f"/identity/v3/users/{admin_id}/projects"): "identity:list_user_projects",
        ("GET", f"/identity/v3/projects/{admin_project}"): "identity:get_project",
        ("POST", "/identity/v3/projects"): "identity:create_project",
        ("PATCH", f"/identity/v3/users/{demo_id}"): "identity:update_user",
        ("DELETE", f"/identity/v3/projects/{demo_project}"): "identity:delete_project",
        (
            "PUT",
            f"/identity/v3/projects/{demo_project}/users/{demo_id}/roles/x",
        ): "identity:create_grant",
    }
    for (method, url), action in denied.items():
        response = cloud.client.request(method, url, headers=demo, json={"project": {"name": "x"}})
        assert response.status_code == 403, url
        assert response.json() == {
            "error": {
                "code": 403,
                "title": "Forbidden",
                "message": f"You are not authorized to perform the requested action: {action}.",
            }
        }


def test_users_change_their_own_password(cloud: Cloud) -> None:
    demo = cloud.headers("demo")
    demo_id, admin_id = cloud.id_of("users", "demo"), cloud.id_of("users", "admin")
    change = {"user": {"original_password": cloud.passwords["demo"], "password": "fresh-pw"}}
    assert (
        cloud.client.post(
            f"/identity/v3/users/{admin_id}/password", headers=demo, json=change
        ).status_code
        == 403
    )
    wrong = {"user": {"original_password": "nope", "password": "x"}}
    assert (
        cloud.client.post(
            f"/identity/v3/users/{demo_id}/password", headers=demo, json=wrong
        ).status_code
        == 401
    )
    assert (
        cloud.client.post(
            f"/identity/v3/users/{demo_id}/password", headers=demo, json=change
        ).status_code
        == 204
    )
    assert cloud.login("demo", "demo", "fresh-pw")
    # The tokens issued with the old password went with it (as in Keystone); others' did not.
    admin = cloud.headers()
    for token, status in ((demo["X-Auth-Token"], 404), (admin["X-Auth-Token"], 200)):
        checked = cloud.client.get(
            "/identity/v3/auth/tokens", headers={**admin, "X-Subject-Token": token}
        )
        assert checked.status_code == status, checked.text
    assert cloud.client.get("/identity/v3/projects", headers=demo).status_code == 401


def test_unknown_grant_targets_are_404(cloud: Cloud) -> None:
    admin = cloud.headers()
    project_id, user_id = cloud.id_of("projects", "demo"), cloud.id_of("users", "demo")
    response = cloud.client.put(
        f"/identity/v3/projects/{project_id}/users/{user_id}/roles/nope", headers=admin
    )
    assert response.json() == {
        "error": {"code": 404, "title": "Not Found", "message": "Could not find role: nope."}
    }
