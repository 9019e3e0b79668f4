"""Tokens against a live `neutrino serve` over real HTTP, on both databases.

What a holder of one meets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from cryptography.fernet import Fernet

from neutrino.identity.tokens import KEY_FILE, load_or_create_keys
from tests.conftest import ADMIN_PASSWORD, ApiClient, LiveServer, add_member_project, login

AUTH_REQUIRED = {
    "error": {
        "code": 401,
        "title": "Unauthorized",
        "message": "The request you have made requires authentication.",
    }
}


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


def fernet(server: LiveServer) -> Fernet:
    """The key the server signs with, from its state directory."""
    return Fernet(load_or_create_keys(server.state_dir / KEY_FILE)[0])


def malformed(fields: list[Any]) -> Iterator[Any]:
    """Payloads that are not what the server seals.

    Each field in turn wrong in type, format or size.
    """
    wrong: dict[int, list[Any]] = {
        0: ["2", True, 1.0, None, 99],
        1: [7, None, "", "\x00", "u" * 65, "a b", ["u"], {"id": "u"}],
        2: [7, "", "\x00", "p" * 65, ["p"], True],
        3: ["password", [], [1], ["kerberos"], [["password"]], None, ["password"] * 3],
        4: ["now", "1764942000000000", 1.5e15, None, True, -1, [1], fields[5] + 1],
        5: ["later", None, 1e300, 2**62, False, {}, fields[4] - 1],
        6: ["audit", [], [7], ["a"], ["x" * 23], [fields[6][0]] * 3, [None], None],
    }
    for index, values in wrong.items():
        for value in values:
            yield [*fields[:index], value, *fields[index + 1 :]]
    yield from (fields[:6], [*fields, "extra"], {"user_id": fields[1]}, "token", None, 42)


def test_a_correctly_signed_malformed_token_is_401(
    live_server: LiveServer, http: httpx.Client
) -> None:
    key = fernet(live_server)
    genuine = login(http, "admin", ADMIN_PASSWORD, "admin").token
    fields = orjson.loads(key.decrypt(genuine.encode()))
    resealed = key.encrypt(orjson.dumps(fields)).decode()
    assert (
        http.get("/networking/v2.0/networks", headers={"X-Auth-Token": resealed}).status_code == 200
    )

    for payload in malformed(fields):
        headers = {"X-Auth-Token": key.encrypt(orjson.dumps(payload)).decode()}
        for path in ("/identity/v3/auth/projects", "/networking/v2.0/networks"):
            response = http.get(path, headers=headers)
            assert (response.status_code, response.json()) == (401, AUTH_REQUIRED), (payload, path)
        for path in ("/load-balancer/v2/lbaas/loadbalancers", "/lab/v1/instances"):
            assert http.get(path, headers=headers).status_code == 401, (payload, path)


def test_a_password_change_revokes_tokens_issued_before_it_in_the_same_second(
    live_server: LiveServer, http: httpx.Client
) -> None:
    admin = login(http, "admin", ADMIN_PASSWORD, "admin")
    name, password = add_member_project(admin, "pw-change")
    for attempt in range(5):  # A, the change and B must fall within one second
        before = login(http, name, password, name)
        before_at = issued_at(http, admin, before)
        fresh = f"{password}-{attempt}"
        changed = http.post(
            f"/identity/v3/users/{before.user_id}/password",
            headers={"X-Auth-Token": before.token},
            json={"user": {"original_password": password, "password": fresh}},
        )
        assert changed.status_code == 204, changed.text
        password = fresh
        after = login(http, name, password, name)
        if before_at[:19] == issued_at(http, admin, after)[:19]:
            break
    else:
        pytest.fail("no token, password change and token within one second in five attempts")
    assert before.get("/networks").status_code == 401
    assert after.get("/networks").status_code == 200
    for token, answer in ((before.token, 401), (after.token, 200)):
        own = http.get("/identity/v3/auth/projects", headers={"X-Auth-Token": token})
        assert own.status_code == answer, own.text


def issued_at(http: httpx.Client, admin: ApiClient, subject: ApiClient) -> str:
    """When the token was issued (Keystone's ISO 8601 with microseconds), as an admin sees it."""
    checked = http.get(
        "/identity/v3/auth/tokens",
        headers={"X-Auth-Token": admin.token, "X-Subject-Token": subject.token},
    )
    assert checked.status_code == 200, checked.text
    return str(checked.json()["token"]["issued_at"])
