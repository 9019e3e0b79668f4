"""The Key Manager (Barbican v1) API in-process, on both databases: secrets and their payloads,
containers and their consumers, ACLs, Barbican's policy and its error bodies."""

from __future__ import annotations

import base64
import dataclasses
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select

from neutrino.app import Neutrino
from neutrino.db.schema import km_secrets
from tests.conftest import Api, ApiClient

BASE = "http://127.0.0.1:9696/key-manager/v1"
FORBIDDEN = "{} attempt not allowed - please review your user/project privileges"


def km(client: ApiClient) -> ApiClient:
    return dataclasses.replace(client, prefix="/key-manager/v1")


def expect_barbican(response: httpx.Response, status: int, title: str, description: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"code": status, "title": title, "description": description}


def store_text(client: ApiClient, payload: str = "s3cr3t words", **extra: Any) -> str:
    body = {"payload": payload, "payload_content_type": "text/plain", **extra}
    response = km(client).post("/secrets", json=body)
    assert response.status_code == 201, response.text
    ref = response.json()["secret_ref"]
    assert response.headers["location"] == ref
    return str(ref)


def path_of(ref: str) -> str:
    return ref.removeprefix(BASE)


def without_moments(body: dict[str, Any]) -> dict[str, Any]:
    """The body without `created` and `updated`, once they are checked to be ISO moments."""
    for key in ("created", "updated"):
        datetime.fromisoformat(body.pop(key))
    return body


def test_a_text_secret_is_stored_described_read_and_deleted(api: Api) -> None:
    ref = store_text(api.demo, name="db password")
    secret_id = ref.rsplit("/", 1)[1]
    assert ref == f"{BASE}/secrets/{secret_id}"
    described = km(api.demo).get(path_of(ref))
    assert described.status_code == 200
    assert without_moments(described.json()) == {
        "status": "ACTIVE",
        "name": "db password",
        "secret_type": "opaque",
        "expiration": None,
        "algorithm": None,
        "bit_length": None,
        "mode": None,
        "creator_id": api.demo.user_id,
        "secret_ref": ref,
        "content_types": {"default": "text/plain"},
    }
    payload = km(api.demo).get(path_of(ref) + "/payload", headers={"Accept": "text/plain"})
    assert payload.status_code == 200
    assert payload.text == "s3cr3t words"
    assert payload.headers["content-type"].startswith("text/plain")
    raw = km(api.demo).get(
        path_of(ref) + "/payload", headers={"Accept": "application/octet-stream"}
    )
    assert raw.content == b"s3cr3t words"
    assert raw.headers["content-type"] == "application/octet-stream"
    # Any type (httpx's default Accept) is the type it was stored as.
    assert (
        km(api.demo).get(path_of(ref) + "/payload").headers["content-type"].startswith("text/plain")
    )
    # The older way: the secret's own URL with a payload type.
    older = km(api.demo).get(path_of(ref), headers={"Accept": "text/plain"})
    assert older.text == "s3cr3t words"
    refused = km(api.demo).get(path_of(ref) + "/payload", headers={"Accept": "text/html"})
    expect_barbican(
        refused,
        406,
        "Not Acceptable",
        "Secret payload retrieval issue seen - Wrong payload content-type.",
    )
    assert km(api.demo).delete(path_of(ref)).status_code == 204
    expect_barbican(km(api.demo).get(path_of(ref)), 404, "Not Found", "Secret not found.")


def test_binary_payloads_come_base64_encoded_and_go_back_raw(api: Api) -> None:
    blob = bytes(range(256))
    body = {
        "payload": base64.b64encode(blob).decode(),
        "payload_content_type": "application/octet-stream",
        "payload_content_encoding": "base64",
        "secret_type": "certificate",
        "algorithm": "RSA",
        "bit_length": 2048,
    }
    ref = km(api.demo).post("/secrets", json=body).json()["secret_ref"]
    payload = km(api.demo).get(
        path_of(ref) + "/payload", headers={"Accept": "application/octet-stream"}
    )
    assert payload.content == blob
    expect_barbican(
        km(api.demo).get(path_of(ref) + "/payload", headers={"Accept": "text/plain"}),
        406,
        "Not Acceptable",
        "Secret payload retrieval issue seen - Wrong payload content-type.",
    )
    described = km(api.demo).get(path_of(ref)).json()
    assert (described["secret_type"], described["algorithm"], described["bit_length"]) == (
        "certificate",
        "RSA",
        2048,
    )
    assert described["content_types"] == {"default": "application/octet-stream"}


def test_a_secret_made_without_payload_takes_one_put(api: Api) -> None:
    ref = km(api.demo).post("/secrets", json={"name": "later"}).json()["secret_ref"]
    described = km(api.demo).get(path_of(ref)).json()
    assert "content_types" not in described
    expect_barbican(
        km(api.demo).get(path_of(ref) + "/payload"),
        404,
        "Not Found",
        "Not Found. Sorry but your secret has no payload.",
    )
    put = km(api.demo).put(
        path_of(ref),
        content=base64.b64encode(b"\x00\x01binary"),
        headers={"Content-Type": "application/octet-stream", "Content-Encoding": "base64"},
    )
    assert put.status_code == 204, put.text
    assert km(api.demo).get(path_of(ref) + "/payload").content == b"\x00\x01binary"
    again = km(api.demo).put(path_of(ref), content=b"x", headers={"Content-Type": "text/plain"})
    expect_barbican(again, 409, "Conflict", "Secret already has data, cannot modify it.")
    json_put = km(api.demo).put(path_of(ref), json={"payload": "x"})
    expect_barbican(
        json_put,
        415,
        "Unsupported Media Type",
        "Unexpected content type. Expected content types are: "
        "['application/octet-stream', 'text/plain']",
    )
    fresh = km(api.demo).post("/secrets", json={}).json()["secret_ref"]
    empty = km(api.demo).put(path_of(fresh), content=b"", headers={"Content-Type": "text/plain"})
    expect_barbican(
        empty, 400, "Bad Request", "Secret update issue seen - No data supplied to process.."
    )


def test_bad_secrets_are_refused_in_barbicans_words(api: Api) -> None:
    def refused(body: Any, status: int, title: str, description: str, **kwargs: Any) -> None:
        expect_barbican(
            km(api.demo).post("/secrets", json=body, **kwargs), status, title, description
        )

    schema = "Provided object does not match schema 'Secret': "
    refused(
        {"payload": "x"},
        400,
        "Bad Request",
        schema + "If 'payload' is supplied, 'payload_content_type' must also be supplied.. "
        "Invalid property: 'payload_content_type'",
    )
    refused(
        {"payload_content_type": "text/plain"},
        400,
        "Bad Request",
        schema + "payload must be provided when payload_content_type is specified. "
        "Invalid property: 'payload'",
    )
    refused(
        {"secret_type": "song"},
        400,
        "Bad Request",
        schema + "'song' is not one of ['symmetric', 'passphrase', 'private', 'public', "
        "'certificate', 'opaque']. Invalid property: 'secret_type'",
    )
    refused(
        {"bit_length": "2048"},
        400,
        "Bad Request",
        schema + "'2048' is not of type 'integer'. Invalid property: 'bit_length'",
    )
    refused(
        {"payload": "x", "payload_content_type": "application/octet-stream"},
        400,
        "Bad Request",
        schema + "payload_content_encoding is not one of ['base64', 'binary']. "
        "Invalid property: 'payload_content_encoding'",
    )
    refused(
        {"payload": "   ", "payload_content_type": "text/plain"},
        400,
        "Bad Request",
        schema + "If 'payload' specified, must be non empty. Invalid property: 'payload'",
    )
    refused(
        {"expiration": "2001-01-01T00:00:00Z"},
        400,
        "Bad Request",
        schema + "'expiration' is before current time. Invalid property: 'expiration'",
    )
    refused(
        {"payload": "x" * 10_001, "payload_content_type": "text/plain"},
        413,
        "Request Entity Too Large",
        "Provided information too large to process",
    )
    refused(
        None,
        415,
        "Unsupported Media Type",
        "Unexpected content type. Expected content types are: ['application/json']",
        content=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    refused(
        None,
        400,
        "Bad Request",
        "Malformed JSON",
        content=b"{",
        headers={"Content-Type": "application/json"},
    )
    assert km(api.demo).get("/secrets").json() == {"secrets": [], "total": 0}


def test_secrets_list_in_pages_of_the_callers_project(api: Api) -> None:
    refs = [store_text(api.demo, name=f"s{i}") for i in range(3)]
    store_text(api.demo2, name="s0")
    first = km(api.demo).get("/secrets", params={"limit": 2}).json()
    assert [s["secret_ref"] for s in first["secrets"]] == refs[:2]
    assert first["total"] == 3
    assert first["next"] == f"{BASE}/secrets?limit=2&offset=2"
    assert "previous" not in first
    second = km(api.demo).get("/secrets", params={"limit": 2, "offset": 2}).json()
    assert [s["secret_ref"] for s in second["secrets"]] == refs[2:]
    assert second["previous"] == f"{BASE}/secrets?limit=2&offset=0"
    assert "next" not in second
    named = km(api.demo).get("/secrets", params={"name": "s1", "limit": 1}).json()
    assert [s["secret_ref"] for s in named["secrets"]] == [refs[1]]
    assert named["total"] == 1
    # Compared without case, as Barbican on MySQL, on either database.
    assert km(api.demo).get("/secrets", params={"name": "S1"}).json()["total"] == 1


def test_another_project_finds_a_secret_and_is_refused_it(api: Api) -> None:
    ref = store_text(api.demo)
    expect_barbican(
        km(api.demo2).get(path_of(ref)), 403, "Forbidden", FORBIDDEN.format("Secret retrieval")
    )
    expect_barbican(
        km(api.demo2).get(path_of(ref) + "/payload"),
        403,
        "Forbidden",
        FORBIDDEN.format("Secret payload retrieval"),
    )
    expect_barbican(
        km(api.demo2).delete(path_of(ref)), 403, "Forbidden", FORBIDDEN.format("Secret deletion")
    )
    expect_barbican(
        km(api.demo2).get("/secrets/not-an-id"),
        404,
        "Not Found",
        "Not Found. Provided secret id is invalid.",
    )
    # An administrator of another project sees the metadata, but may not decrypt.
    assert km(api.admin).get(path_of(ref)).status_code == 200
    expect_barbican(
        km(api.admin).get(path_of(ref) + "/payload"),
        403,
        "Forbidden",
        FORBIDDEN.format("Secret payload retrieval"),
    )


def test_a_read_acl_lets_another_projects_user_read(api: Api) -> None:
    ref = store_text(api.demo)
    acl = path_of(ref) + "/acl"
    assert km(api.demo).get(acl).json() == {"read": {"project-access": True}}
    expect_barbican(
        km(api.demo2).get(acl), 403, "Forbidden", FORBIDDEN.format("SecretACL(s) retrieval")
    )
    grant = {"read": {"users": [api.demo2.user_id, api.demo2.user_id]}}
    put = km(api.demo).put(acl, json=grant)
    assert put.status_code == 200
    assert put.json() == {"acl_ref": ref + "/acl"}
    shown = km(api.demo).get(acl).json()
    assert without_moments(shown["read"]) == {
        "project-access": True,
        "users": [api.demo2.user_id],
    }
    assert km(api.demo2).get(path_of(ref) + "/payload").content == b"s3cr3t words"
    patched = km(api.demo).request("PATCH", acl, json={"read": {"project-access": False}})
    assert patched.status_code == 200
    assert without_moments(km(api.demo).get(acl).json()["read"]) == {
        "project-access": False,
        "users": [api.demo2.user_id],
    }
    bad = km(api.demo).put(acl, json={"write": {"users": []}})
    expect_barbican(
        bad,
        400,
        "Bad Request",
        "Provided object does not match schema 'ACL': Additional properties are not allowed "
        "('write' was unexpected). Invalid property: 'None'",
    )
    deleted = km(api.demo).delete(acl)
    assert (deleted.status_code, deleted.json()) == (200, None)
    assert km(api.demo).get(acl).json() == {"read": {"project-access": True}}
    assert km(api.demo2).get(path_of(ref) + "/payload").status_code == 403


def certificate_parts(api: Api) -> list[dict[str, str]]:
    return [
        {"name": "certificate", "secret_ref": store_text(api.demo, "-----BEGIN CERTIFICATE-----")},
        {"name": "private_key", "secret_ref": store_text(api.demo, "-----BEGIN PRIVATE KEY-----")},
    ]


def test_a_certificate_container_names_its_secrets(api: Api) -> None:
    parts = certificate_parts(api)
    body = {"type": "certificate", "name": "tls", "secret_refs": parts}
    response = km(api.demo).post("/containers", json=body)
    assert response.status_code == 201, response.text
    ref = response.json()["container_ref"]
    assert response.headers["location"] == ref
    assert ref.startswith(f"{BASE}/containers/")
    shown = km(api.demo).get(path_of(ref))
    assert shown.status_code == 200
    expected = {
        "status": "ACTIVE",
        "name": "tls",
        "type": "certificate",
        "creator_id": api.demo.user_id,
        "secret_refs": parts,
        "consumers": [],
        "container_ref": ref,
    }
    assert without_moments(shown.json()) == expected
    listed = km(api.demo).get("/containers").json()
    assert listed["total"] == 1
    assert without_moments(listed["containers"][0]) == expected
    expect_barbican(
        km(api.demo2).get(path_of(ref)), 403, "Forbidden", FORBIDDEN.format("Container retrieval")
    )
    # Octavia registers its listeners as consumers.
    consumer = {"name": "lbaas", "URL": "http://127.0.0.1:9696/load-balancer/v2/listeners/1"}
    registered = km(api.demo).post(path_of(ref) + "/consumers/", json=consumer)
    assert registered.status_code == 200, registered.text
    assert registered.json()["consumers"] == [consumer]
    assert km(api.demo).post(path_of(ref) + "/consumers", json=consumer).json()["consumers"] == [
        consumer
    ]
    removed = km(api.demo).request("DELETE", path_of(ref) + "/consumers", json=consumer)
    assert removed.json()["consumers"] == []
    expect_barbican(
        km(api.demo).request("DELETE", path_of(ref) + "/consumers", json=consumer),
        404,
        "Not Found",
        "Consumer not found.",
    )
    # Deleting a secret takes it out of its containers.
    assert km(api.demo).delete(path_of(parts[1]["secret_ref"])).status_code == 204
    assert km(api.demo).get(path_of(ref)).json()["secret_refs"] == parts[:1]
    assert km(api.demo).delete(path_of(ref)).status_code == 204
    expect_barbican(
        km(api.demo).get(path_of(ref)), 404, "Not Found", "Secrets container not found."
    )


def test_bad_containers_are_refused_in_barbicans_words(api: Api) -> None:
    parts = certificate_parts(api)

    def refused(body: Any, status: int, description: str) -> None:
        title = {400: "Bad Request", 404: "Not Found"}[status]
        expect_barbican(km(api.demo).post("/containers", json=body), status, title, description)

    schema = "Provided object does not match schema 'Container': "
    refused(
        {"type": "certificate", "secret_refs": parts[1:]},
        400,
        schema + "The minimum required reference name is 'certificate' for Certificate type. "
        "Invalid property: 'secret_refs'",
    )
    refused(
        {"type": "certificate", "secret_refs": [*parts, {**parts[0], "name": "public_key"}]},
        400,
        schema + "Duplicate secret ids are not allowed. Invalid property: 'secret_refs'",
    )
    refused(
        {"type": "box"},
        400,
        schema + "'box' is not one of ['generic', 'rsa', 'certificate']. Invalid property: 'type'",
    )
    refused({}, 400, schema + "'type' is a required property. Invalid property: 'None'")
    refused(
        {"type": "generic", "secret_refs": [{"secret_ref": "http://elsewhere/v1/secrets/x"}]},
        400,
        "Provided field value is not supported",
    )
    theirs = store_text(api.demo2)
    refused(
        {"type": "certificate", "secret_refs": [{"name": "certificate", "secret_ref": theirs}]},
        404,
        "Secret provided for 'certificate' doesn't exist.",
    )
    assert km(api.demo).get("/containers").json() == {"containers": [], "total": 0}


def test_creating_needs_a_member_and_a_token(api: Api) -> None:
    unauthenticated = api.demo.http.get("/key-manager/v1/secrets")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == 401
    versions = api.demo.http.get("/key-manager/")
    assert versions.status_code == 300
    [v1] = versions.json()["versions"]["values"]
    assert (v1["id"], v1["status"], v1["links"][0]["href"]) == ("v1", "stable", f"{BASE}/")


def test_payloads_are_not_stored_in_clear_text(api: Api, core: Neutrino) -> None:
    words = "correct horse battery staple"
    ref = store_text(api.demo, words)
    with core.db.read() as conn:
        [stored] = conn.execute(select(km_secrets.c.payload)).scalars().all()
    assert words.encode() not in stored
    assert base64.b64encode(words.encode()) not in stored
    assert km(api.demo).get(path_of(ref) + "/payload").content == words.encode()


ODD_VALUES: list[Any] = [
    None,
    True,
    -1,
    70000,
    1.5,
    "",
    "x" * 300,
    "9999-12-31T23:59:59-05:00",
    "not-a-ref",
    [],
    [1],
    [{"x": 1}],
    {},
    {"a": None},
]


def test_odd_values_are_refused_or_taken_never_a_server_error(api: Api) -> None:
    client = km(api.demo)
    secret = path_of(store_text(api.demo))
    container = path_of(
        client.post("/containers", json={"type": "generic"}).json()["container_ref"]
    )
    secret_fields = [
        "name",
        "algorithm",
        "mode",
        "bit_length",
        "expiration",
        "payload",
        "secret_type",
        "payload_content_type",
        "payload_content_encoding",
    ]
    for value in ODD_VALUES:
        answers = [
            client.post("/secrets", json=value),
            client.post("/containers", json=value),
            client.put(secret + "/acl", json=value),
            client.post(container + "/consumers", json=value),
            client.post("/containers", json={"type": "generic", "name": value}),
            client.post("/containers", json={"type": "generic", "secret_refs": value}),
            client.post(
                "/containers",
                json={"type": "generic", "secret_refs": [{"name": value, "secret_ref": value}]},
            ),
            client.put(container + "/acl", json={"read": value}),
            client.request("PATCH", secret + "/acl", json={"read": {"users": value}}),
            client.put(secret + "/acl", json={"read": {"project-access": value}}),
            client.post(container + "/consumers", json={"name": value, "URL": value}),
        ]
        answers += [
            client.post("/secrets", json={field: value, "payload_content_type": "text/plain"})
            for field in secret_fields
        ]
        for answer in answers:
            assert answer.status_code < 500, answer.text
            if answer.status_code >= 400:
                assert set(answer.json()) == {"code", "title", "description"}
    for params in ({"limit": "x", "offset": str(10**30)}, {"bits": "-5"}, {"acl_only": "true"}):
        assert client.get("/secrets", params=params).status_code == 200
        assert client.get("/containers", params=params).status_code == 200


def test_containers_list_in_pages_filtered_by_name_and_type(api: Api) -> None:
    refs = [
        km(api.demo).post("/containers", json={"type": kind, "name": name}).json()["container_ref"]
        for kind, name in (("generic", "g1"), ("generic", "g2"), ("certificate", "other"))
    ]
    page = km(api.demo).get("/containers", params={"name": "g%", "limit": 1}).json()
    assert [c["container_ref"] for c in page["containers"]] == refs[:1]
    assert page["total"] == 2
    # Barbican's container links keep only the paging.
    assert page["next"] == f"{BASE}/containers?limit=1&offset=1"
    typed = km(api.demo).get("/containers", params={"type": "certificate"}).json()
    assert [c["container_ref"] for c in typed["containers"]] == refs[2:]
    assert km(api.demo2).get("/containers").json() == {"containers": [], "total": 0}


def test_secrets_sort_and_filter_on_moments_as_barbican(api: Api) -> None:
    first = store_text(api.demo, name="b", expiration="2999-01-01T00:00:00Z")
    second = store_text(api.demo, name="a")
    by_name = km(api.demo).get("/secrets", params={"sort": "name:desc"}).json()
    assert [s["secret_ref"] for s in by_name["secrets"]] == [first, second]
    by_name_up = km(api.demo).get("/secrets", params={"sort": "name"}).json()
    assert [s["secret_ref"] for s in by_name_up["secrets"]] == [second, first]
    expiring = km(api.demo).get("/secrets", params={"expiration": "gt:2998-01-01T00:00:00"})
    assert [s["secret_ref"] for s in expiring.json()["secrets"]] == [first]
    assert expiring.json()["secrets"][0]["expiration"] == "2999-01-01T00:00:00"
    made = km(api.demo).get("/secrets", params={"created": "lt:2001-01-01T00:00:00"}).json()
    assert made == {"secrets": [], "total": 0}
    for bad in (
        {"sort": "payload"},
        {"sort": "name:sideways"},
        {"sort": "name,name:desc"},
        {"created": "gt:2001-01-01T00:00:00,gte:2002-01-01T00:00:00"},
        {"updated": "yesterday"},
    ):
        expect_barbican(
            km(api.demo).get("/secrets", params=bad),
            400,
            "Bad Request",
            "URI provided invalid query string parameters.",
        )
