"""The key manager's service: what TLS termination reads, who may read it, the payload at rest."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from neutrino.context import Context
from neutrino.db import Database, migrations, schema
from neutrino.services.keymanager import (
    CONTAINERS,
    SECRETS,
    CertificateBundle,
    JsonBody,
    KeyManager,
    Sealer,
    UnreadableCertificate,
)
from neutrino.services.refusals import Forbidden, NotFound

ENDPOINT = "http://127.0.0.1:9696/key-manager"
OWNER = Context("u-owner", "p-one", frozenset({"member", "reader"}))
NEIGHBOUR = Context("u-neighbour", "p-one", frozenset({"member", "reader"}))
STRANGER = Context("u-lb", "p-two", frozenset({"member", "reader"}))
PEM = serialization.Encoding.PEM


def make_cert(name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_cert, signer_key = issuer if issuer else (None, key)
    moment = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - timedelta(days=1))
        .not_valid_after(moment + timedelta(days=30))
        .sign(signer_key, hashes.SHA256())
    )
    return cert, key


@pytest.fixture
def chain():
    ca = make_cert("ca.example", None)
    leaf = make_cert("www.example", ca)
    return leaf, ca


@pytest.fixture
def keys(tmp_path: Path) -> KeyManager:
    db = Database("sqlite://")
    migrations.upgrade(db.engine)
    return KeyManager(db, Sealer.from_state_dir(tmp_path), ENDPOINT)


def as_json(body: object) -> JsonBody:
    return JsonBody("application/json", orjson.dumps(body))


def traditional(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def store(keys: KeyManager, ctx: Context, payload: bytes, binary: bool = False) -> str:
    if binary:
        body = {
            "payload": base64.b64encode(payload).decode(),
            "payload_content_type": "application/octet-stream",
            "payload_content_encoding": "base64",
        }
    else:
        body = {"payload": payload.decode(), "payload_content_type": "text/plain"}
    return keys.create_secret(ctx, as_json(body))


def certificate_container(keys: KeyManager, ctx: Context, chain, passphrase: bytes | None) -> str:
    (leaf, leaf_key), (ca, _) = chain
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    key_pem = leaf_key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, encryption)
    parts = {
        "certificate": leaf.public_bytes(PEM),
        "private_key": key_pem,
        "intermediates": ca.public_bytes(PEM),
    }
    if passphrase:
        parts["private_key_passphrase"] = passphrase
    refs = [{"name": name, "secret_ref": store(keys, ctx, data)} for name, data in parts.items()]
    body = {"type": "certificate", "name": "tls", "secret_refs": refs}
    return keys.create_container(ctx, as_json(body))


def expected(chain) -> CertificateBundle:
    (leaf, leaf_key), (ca, _) = chain
    return CertificateBundle(leaf.public_bytes(PEM), traditional(leaf_key), (ca.public_bytes(PEM),))


def test_a_certificate_container_gives_its_parts_with_the_key_decrypted(keys, chain) -> None:
    ref = certificate_container(keys, OWNER, chain, b"open sesame")
    assert keys.certificate_bundle(OWNER, ref) == expected(chain)
    # A project's member reads what another member made, unless project access is taken away.
    assert keys.certificate_bundle(NEIGHBOUR, ref) == expected(chain)


def test_a_pkcs12_secret_gives_its_certificate_key_and_chain(keys, chain) -> None:
    (leaf, leaf_key), (ca, _) = chain
    bundle = pkcs12.serialize_key_and_certificates(
        b"tls", leaf_key, leaf, [ca], serialization.NoEncryption()
    )
    ref = store(keys, OWNER, bundle, binary=True)
    assert keys.certificate_bundle(OWNER, ref) == expected(chain)
    assert keys.certificate_bundle(OWNER, ref.rsplit("/", 1)[1]) == expected(chain)


def test_another_project_reads_only_once_the_acl_names_its_user(keys, chain) -> None:
    ref = certificate_container(keys, OWNER, chain, None)
    with pytest.raises(Forbidden):
        keys.certificate_bundle(STRANGER, ref)
    # neutrino itself reads what a listener it accepted names.
    assert keys.certificate_bundle(None, ref) == expected(chain)
    container_id = ref.rsplit("/", 1)[1]
    grant = {"read": {"users": [STRANGER.user_id]}}
    keys.set_acl(OWNER, CONTAINERS, container_id, as_json(grant), replace=True)
    # The container is readable now, but not yet the secrets it names.
    with pytest.raises(Forbidden):
        keys.certificate_bundle(STRANGER, ref)
    for secret in keys.container(OWNER, container_id)["secret_refs"]:
        secret_id = secret["secret_ref"].rsplit("/", 1)[1]
        keys.set_acl(OWNER, SECRETS, secret_id, as_json(grant), replace=False)
    assert keys.certificate_bundle(STRANGER, ref).certificate == expected(chain).certificate


def test_a_private_container_is_its_creators(keys, chain) -> None:
    ref = certificate_container(keys, OWNER, chain, None)
    container_id = ref.rsplit("/", 1)[1]
    private = {"read": {"project-access": False}}
    keys.set_acl(OWNER, CONTAINERS, container_id, as_json(private), replace=True)
    with pytest.raises(Forbidden):
        keys.certificate_bundle(NEIGHBOUR, ref)
    assert keys.certificate_bundle(OWNER, ref) == expected(chain)


def test_what_is_not_there_or_not_a_certificate(keys, chain) -> None:
    missing = f"{ENDPOINT}/v1/containers/8c6f1d52-9b5c-4a3e-8f4e-2f1b7a0c9d11"
    with pytest.raises(NotFound):
        keys.certificate_bundle(OWNER, missing)
    with pytest.raises(NotFound):
        keys.certificate_bundle(OWNER, "not-a-ref")
    text = store(keys, OWNER, b"just words")
    with pytest.raises(UnreadableCertificate):
        keys.certificate_bundle(OWNER, text)
    generic = keys.create_container(OWNER, as_json({"type": "generic", "secret_refs": []}))
    with pytest.raises(UnreadableCertificate):
        keys.certificate_bundle(OWNER, generic)


def test_payloads_are_sealed_at_rest_and_bound_to_their_secret(keys, tmp_path) -> None:
    words = b"the very secret words"
    ref = store(keys, OWNER, words)
    with keys.db.read() as conn:
        row = conn.execute(select(schema.km_secrets)).one()
    assert words not in row.payload
    assert keys.secret_payload(OWNER, row.id, "text/plain") == (words, "text/plain")
    # The same key file opens it again; another secret's id does not.
    again = Sealer.from_state_dir(tmp_path)
    assert again.open(row.id, row.payload) == words
    with pytest.raises(RuntimeError):
        again.open(ref.rsplit("/", 1)[1][::-1], row.payload)
