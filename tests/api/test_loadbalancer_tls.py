"""TLS of listeners and pools through the Octavia API, on both databases: what is kept and
shown, Octavia's faults, references checked with the caller's rights in the key manager, and
the PEM material that reaches the agents (and only them)."""

from __future__ import annotations

from typing import Any

import pytest

from neutrino.services import lbaas_tls
from tests.api import test_loadbalancers
from tests.api.test_keymanager import km, store_text
from tests.api.test_loadbalancers import created, expect_fault, make_lb, octavia, realize
from tests.certificates import Issued, issue, revoked
from tests.conftest import Api, ApiClient

subnet = test_loadbalancers.subnet  # the fixture

CA = issue("Test CA", ca=True)
OTHER_CA = issue("Other CA", ca=True)
SERVER = issue("www.example.com", CA)
SNI = issue("shop.example.com", CA)


def store_certificate(client: ApiClient, issued: Issued) -> str:
    """A certificate container in the key manager holding `issued`'s certificate and key."""
    parts = {"certificate": issued.certificate, "private_key": issued.private_key}
    body = {
        "type": "certificate",
        "secret_refs": [
            {"name": name, "secret_ref": store_text(client, pem)} for name, pem in parts.items()
        ],
    }
    response = km(client).post("/containers", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["container_ref"])


@pytest.fixture
def lb(api: Api, subnet: dict[str, Any]) -> dict[str, Any]:
    found = make_lb(api, subnet)
    realize(api)
    return found


def post_listener(client: ApiClient, lb: dict[str, Any], **fields: Any) -> Any:
    body = {"loadbalancer_id": lb["id"], "protocol": "TERMINATED_HTTPS", "protocol_port": 443}
    return octavia(client).post("/listeners", json={"listener": {**body, **fields}})


def agents_tree(api: Api, lb_id: str) -> dict[str, Any]:
    snapshot = api.admin.http.get(
        "/internal/v1/snapshot", headers={"X-Auth-Token": api.admin.token}
    ).json()
    tree: dict[str, Any] = next(lb for lb in snapshot["loadbalancers"] if lb["id"] == lb_id)
    return tree


def test_terminated_https_listener_keeps_its_references_and_the_agent_gets_the_pem(
    api: Api, lb: dict[str, Any]
) -> None:
    default, sni = store_certificate(api.demo, SERVER), store_certificate(api.demo, SNI)
    ca = store_text(api.demo, CA.certificate)
    listener = created(
        post_listener(
            api.demo,
            lb,
            default_tls_container_ref=default,
            sni_container_refs=[sni],
            client_authentication="OPTIONAL",
            client_ca_tls_container_ref=ca,
            hsts_max_age=3600,
        ),
        "listener",
    )
    assert {k: listener[k] for k in lbaas_tls.CERTIFICATE_REFS if k in listener} == {
        "default_tls_container_ref": default,
        "sni_container_refs": [sni],
        "client_ca_tls_container_ref": ca,
        "client_crl_container_ref": None,
    }
    assert listener["client_authentication"] == "OPTIONAL"
    assert listener["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert listener["alpn_protocols"] == ["h2", "http/1.1", "http/1.0"]
    assert listener["tls_ciphers"] == lbaas_tls.DEFAULT_CIPHERS
    assert (listener["hsts_max_age"], listener["hsts_include_subdomains"]) == (3600, False)
    shown = octavia(api.demo).get(f"/listeners/{listener['id']}").json()["listener"]
    assert "pem" not in shown and shown["sni_container_refs"] == [sni]

    [seen] = agents_tree(api, lb["id"])["listeners"]
    assert seen["pem"]["default_tls_container_ref"].startswith(SERVER.certificate)
    assert "PRIVATE KEY" in seen["pem"]["default_tls_container_ref"]
    assert [p.startswith(SNI.certificate) for p in seen["pem"]["sni_container_refs"]] == [True]
    assert seen["pem"]["client_ca_tls_container_ref"].strip() == CA.certificate.strip()


def test_a_reference_the_caller_cannot_read_is_refused(api: Api, lb: dict[str, Any]) -> None:
    theirs = store_certificate(api.demo2, SERVER)
    missing = theirs.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
    mine = store_certificate(api.demo, SERVER)
    expect_fault(
        post_listener(api.demo, lb, default_tls_container_ref=mine, sni_container_refs=[theirs]),
        400,
        f"Could not retrieve certificate: ['{theirs}']",
    )
    expect_fault(
        post_listener(api.demo, lb, default_tls_container_ref=missing),
        400,
        f"Could not retrieve certificate: ['{missing}']",
    )
    assert octavia(api.demo).get("/listeners").json()["listeners"] == []


def test_a_certificate_shared_by_an_acl_serves(api: Api, lb: dict[str, Any]) -> None:
    """Another project's certificate whose ACL names the caller: accepted, and the agent gets
    it, as Octavia reads what its users may read."""
    theirs = store_certificate(api.demo2, SERVER)
    grant = {"read": {"users": [api.demo.user_id]}}
    container = km(api.demo2).get(theirs.split("/v1", 1)[1]).json()
    for ref in [theirs, *(s["secret_ref"] for s in container["secret_refs"])]:
        shared = km(api.demo2).put(ref.split("/v1", 1)[1] + "/acl", json=grant)
        assert shared.status_code == 200, shared.text
    created(post_listener(api.demo, lb, default_tls_container_ref=theirs), "listener")
    [seen] = agents_tree(api, lb["id"])["listeners"]
    assert seen["pem"]["default_tls_container_ref"].startswith(SERVER.certificate)


@pytest.mark.parametrize(
    ("fields", "fault"),
    [
        (
            {},
            (
                "Validation failure: An SNI or default certificate container reference must be "
                "provided for TERMINATED_HTTPS protocol listeners."
            ),
        ),
        (
            {"default": True, "client_authentication": "MANDATORY"},
            (
                "Validation failure: Client authentication setting MANDATORY requires a client CA "
                "container reference."
            ),
        ),
        (
            {"default": True, "client_crl_container_ref": "crl"},
            (
                "Validation failure: A client authentication CA reference is required to specify a "
                "client authentication revocation list."
            ),
        ),
        (
            {"default": True, "tls_versions": ["TLSv1.2", "TLSv9"]},
            "Validation failure: Invalid TLS versions: TLSv9",
        ),
        (
            {"default": True, "tls_versions": []},
            (
                "Validation failure: Empty TLS version list. Either specify at least one TLS "
                "version or remove this parameter to use the default."
            ),
        ),
        (
            {"default": True, "alpn_protocols": ["h3"]},
            "Validation failure: Invalid ALPN protocol: h3",
        ),
        (
            {"default": True, "tls_ciphers": "ECDHE-RSA-AES128-GCM-SHA256 crt /etc/shadow"},
            (
                "Validation failure: Invalid characters in cipher string. Only alphanumeric, -, +, "
                "!, :, @, =, _, and . are allowed."
            ),
        ),
        (
            {"default": True, "hsts_preload": True},
            (
                "Validation failure: HSTS configuration options hsts_include_subdomains and "
                "hsts_preload only make sense if hsts_max_age is set as well."
            ),
        ),
        (
            {"default": True, "protocol": "HTTP", "protocol_port": 80},
            (
                "Validation failure: Certificate container references are not allowed on HTTP "
                "protocol listeners."
            ),
        ),
        (
            {"protocol": "HTTP", "protocol_port": 80, "hsts_max_age": 10},
            (
                "Validation failure: The HSTS feature can only be used for listeners using the "
                "TERMINATED_HTTPS protocol."
            ),
        ),
    ],
)
def test_listener_tls_faults_are_octavias(
    api: Api, lb: dict[str, Any], fields: dict[str, Any], fault: str
) -> None:
    if fields.pop("default", False):
        fields["default_tls_container_ref"] = store_certificate(api.demo, SERVER)
    response = post_listener(api.demo, lb, **fields)
    assert expect_fault(response, 400) == fault
    assert octavia(api.demo).get("/listeners").json()["listeners"] == []


def test_listener_update_checks_tls_as_octavia(api: Api, lb: dict[str, Any]) -> None:
    listener = created(
        post_listener(api.demo, lb, default_tls_container_ref=store_certificate(api.demo, SERVER)),
        "listener",
    )
    realize(api)
    path = f"/listeners/{listener['id']}"
    expect_fault(
        octavia(api.demo).put(path, json={"listener": {"client_authentication": "MANDATORY"}}),
        400,
        "Validation failure: Client authentication setting MANDATORY requires a client CA "
        "container reference.",
    )
    theirs = store_text(api.demo2, CA.certificate)
    expect_fault(
        octavia(api.demo).put(
            path,
            json={
                "listener": {
                    "client_authentication": "MANDATORY",
                    "client_ca_tls_container_ref": theirs,
                }
            },
        ),
        400,
        f"Could not retrieve certificate: ['{theirs}']",
    )
    ca = store_text(api.demo, CA.certificate)
    changed = octavia(api.demo).put(
        path,
        json={
            "listener": {
                "client_authentication": "MANDATORY",
                "client_ca_tls_container_ref": ca,
                "client_crl_container_ref": store_text(api.demo, revoked(CA)),
                "tls_versions": None,
                "alpn_protocols": ["http/1.1"],
            }
        },
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()["listener"]
    assert (body["client_authentication"], body["client_ca_tls_container_ref"]) == (
        "MANDATORY",
        ca,
    )
    assert (body["tls_versions"], body["alpn_protocols"]) == (["TLSv1.2", "TLSv1.3"], ["http/1.1"])


def test_client_ca_and_crl_must_be_a_ca_and_its_crl(api: Api, lb: dict[str, Any]) -> None:
    default = store_certificate(api.demo, SERVER)
    not_a_certificate = store_text(api.demo, "hello")
    fault = expect_fault(
        post_listener(
            api.demo,
            lb,
            default_tls_container_ref=default,
            client_ca_tls_container_ref=not_a_certificate,
        ),
        400,
    )
    assert fault.startswith(
        "Validation failure: The client authentication CA certificate is invalid. It must be a "
        "valid x509 PEM format certificate. Error: "
    )
    expect_fault(
        post_listener(
            api.demo,
            lb,
            default_tls_container_ref=default,
            client_ca_tls_container_ref=store_text(api.demo, CA.certificate),
            client_crl_container_ref=store_text(api.demo, revoked(OTHER_CA)),
        ),
        400,
        "Validation failure: The CRL specified is not valid for client certificate authority "
        "reference supplied.",
    )


def test_pool_re_encrypts_with_its_client_certificate_ca_and_crl(
    api: Api, lb: dict[str, Any]
) -> None:
    client = issue("lb-client", CA)
    fields = {
        "loadbalancer_id": lb["id"],
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "tls_enabled": True,
        "tls_container_ref": store_certificate(api.demo, client),
        "ca_tls_container_ref": store_text(api.demo, CA.certificate),
    }
    refused = octavia(api.demo).post(
        "/pools", json={"pool": {**fields, "ca_tls_container_ref": None, "crl_container_ref": "x"}}
    )
    assert expect_fault(refused, 400) == (
        "Validation failure: A CA certificate reference is required to specify a revocation list."
    )
    pool = created(octavia(api.demo).post("/pools", json={"pool": fields}), "pool")
    assert pool["tls_enabled"] is True and pool["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert pool["tls_container_ref"] == fields["tls_container_ref"]
    [seen] = agents_tree(api, lb["id"])["pools"]
    assert seen["pem"]["tls_container_ref"].startswith(client.certificate)
    assert seen["pem"]["ca_tls_container_ref"].strip() == CA.certificate.strip()
    realize(api)
    cleared = octavia(api.demo).put(
        f"/pools/{pool['id']}", json={"pool": {"tls_enabled": False, "ca_tls_container_ref": None}}
    )
    assert cleared.status_code == 200, cleared.text
    assert (
        cleared.json()["pool"]["tls_enabled"],
        cleared.json()["pool"]["ca_tls_container_ref"],
    ) == (
        False,
        None,
    )


def test_tls_listener_takes_http_pools_and_l7_policies(api: Api, lb: dict[str, Any]) -> None:
    listener = created(
        post_listener(api.demo, lb, default_tls_container_ref=store_certificate(api.demo, SERVER)),
        "listener",
    )
    realize(api)
    refused = octavia(api.demo).post(
        "/pools",
        json={
            "pool": {
                "listener_id": listener["id"],
                "protocol": "TCP",
                "lb_algorithm": "ROUND_ROBIN",
            }
        },
    )
    assert expect_fault(refused, 400) == (
        "Validation failure: The pool protocol 'TCP' is invalid while the listener protocol is "
        "'TERMINATED_HTTPS'."
    )
    created(
        octavia(api.demo).post(
            "/pools",
            json={
                "pool": {
                    "listener_id": listener["id"],
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                }
            },
        ),
        "pool",
    )
    realize(api)
    created(
        octavia(api.demo).post(
            "/l7policies", json={"l7policy": {"listener_id": listener["id"], "action": "REJECT"}}
        ),
        "l7policy",
    )
