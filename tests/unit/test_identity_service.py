"""The identity service against SQLite: bootstrap, tokens, revocation, passwords."""

from __future__ import annotations

import os
import stat
import time
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from argon2 import PasswordHasher
from sqlalchemy import select, update

from neutrino.config import Settings
from neutrino.db import Database, migrations, schema
from neutrino.errors import KeystoneError
from neutrino.identity import CatalogService, Identity, client_env
from neutrino.identity import service as service_module
from neutrino.identity.bootstrap import new_password
from neutrino.identity.passwords import hash_password, needs_rehash, verify_password
from neutrino.identity.service import Ref
from neutrino.identity.tokens import (
    TokenCache,
    TokenCodec,
    TokenPayload,
    load_or_create_keys,
    moment,
    new_audit_id,
)

DEFAULT = Ref(name="Default")


def make_identity(tmp_path: Path, db_url: str = "sqlite://", **settings: object) -> Identity:
    db = Database(db_url)
    migrations.upgrade(db.engine)
    config = Settings(state_dir=tmp_path / "state", database_url=db_url, **settings)  # type: ignore[arg-type]
    return Identity(db, config)


@pytest.fixture
def identity(tmp_path: Path) -> Identity:
    ident = make_identity(tmp_path, admin_password="admin-secret")
    ident.bootstrap()
    return ident


def clouds(identity: Identity) -> dict[str, Any]:
    written: dict[str, Any] = yaml.safe_load(
        (identity.settings.state_dir / "clouds.yaml").read_text()
    )
    return dict(written["clouds"])


def login(identity: Identity, name: str, password: str, project: str | None = None) -> str:
    scope = Ref(name=project, domain=DEFAULT) if project else None
    token, _info = identity.issue_for_password(Ref(name=name, domain=DEFAULT), password, scope)
    return token


def demo_password(identity: Identity) -> str:
    return str(clouds(identity)["neutrino-demo"]["auth"]["password"])


# -- bootstrap -------------------------------------------------------------------
def test_bootstrap_creates_accounts_and_private_files(identity: Identity) -> None:
    state = identity.settings.state_dir
    for name in ("clouds.yaml", "fernet.keys"):
        assert stat.S_IMODE(os.stat(state / name).st_mode) == 0o600
    written = clouds(identity)
    admin = written["neutrino-admin"]
    assert admin["auth"] == {
        "auth_url": "http://127.0.0.1:9696/identity/v3",
        "username": "admin",
        "password": "admin-secret",
        "project_name": "admin",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
    }
    assert (admin["region_name"], admin["identity_api_version"], admin["interface"]) == (
        "RegionOne",
        3,
        "public",
    )
    assert written["neutrino-demo"]["auth"]["username"] == "demo"
    assert [d["id"] for d in identity.list_domains()] == ["default"]
    assert sorted(r["name"] for r in identity.list_roles()) == ["admin", "member", "reader"]
    assert identity.validate(login(identity, "admin", "admin-secret", "admin")).roles == {
        "admin",
        "member",
        "reader",
    }
    assert identity.validate(login(identity, "demo", demo_password(identity), "demo")).roles == {
        "member",
        "reader",
    }


def test_bootstrap_is_idempotent(identity: Identity) -> None:
    before = clouds(identity)
    identity.bootstrap()
    assert clouds(identity) == before
    assert len(identity.list_users()) == 2
    assert len(identity.list_projects()) == 3  # admin, demo and service
    assert len(identity.list_assignments()) == 2


def test_bootstrap_generates_passwords_and_keeps_them(tmp_path: Path) -> None:
    identity = make_identity(tmp_path)
    identity.bootstrap()
    password = clouds(identity)["neutrino-admin"]["auth"]["password"]
    assert len(password) >= 20
    identity.bootstrap()
    assert clouds(identity)["neutrino-admin"]["auth"]["password"] == password
    login(identity, "admin", password, "admin")


def test_no_generated_password_is_taken_for_a_command_line_option() -> None:
    # One in 64 of URL-safe base64 strings begins with "-": `--os-password <it>` would fail.
    passwords = [new_password() for _ in range(2000)]
    assert not [p for p in passwords if p.startswith("-")]
    assert {len(p) for p in passwords} == {24}
    assert len(set(passwords)) == len(passwords)


def test_a_changed_admin_password_setting_replaces_the_stored_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/identity.db"
    make_identity(tmp_path, url, admin_password="first").bootstrap()
    again = make_identity(tmp_path, url, admin_password="second")
    again.bootstrap()
    login(again, "admin", "second", "admin")
    with pytest.raises(KeystoneError):
        login(again, "admin", "first", "admin")
    assert clouds(again)["neutrino-admin"]["auth"]["password"] == "second"


def test_a_lost_clouds_yaml_gets_new_working_passwords(identity: Identity) -> None:
    old = demo_password(identity)
    (identity.settings.state_dir / "clouds.yaml").unlink()
    identity.bootstrap()
    new = demo_password(identity)
    assert new != old
    login(identity, "demo", new, "demo")


def test_client_env_points_the_cli_at_the_admin_cloud(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "my state", database_url="sqlite://")
    assert client_env(settings) == [
        f"export OS_CLIENT_CONFIG_FILE='{tmp_path}/my state/clouds.yaml'",
        "export OS_CLOUD=neutrino-admin",
    ]


# -- tokens ----------------------------------------------------------------------
def test_token_round_trip_carries_scope_and_identity(identity: Identity) -> None:
    token, issued = identity.issue_for_password(
        Ref(name="admin", domain=Ref(id="default")),
        "admin-secret",
        Ref(name="admin", domain=DEFAULT),
    )
    info = identity.inspect(token)
    assert info.payload == issued.payload
    assert info.payload.methods == ("password",)
    assert info.payload.expires_at - info.payload.issued_at == 3600 * 1_000_000
    assert len(info.payload.audit_id) == 22
    ctx = info.context
    assert (ctx.user_name, ctx.project_name, ctx.token_id) == (
        "admin",
        "admin",
        info.payload.audit_id,
    )
    assert info.project is not None and ctx.project_id == info.project["id"]
    assert ctx.is_admin and ctx.can_write


def test_unscoped_token_has_no_roles(identity: Identity) -> None:
    ctx = identity.validate(login(identity, "demo", demo_password(identity)))
    assert ctx.project_id is None and ctx.roles == frozenset() and not ctx.can_write


def test_a_token_survives_a_restart_with_the_same_state_dir(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/identity.db"
    first = make_identity(tmp_path, url, admin_password="pw")
    first.bootstrap()
    token = login(first, "admin", "pw", "admin")
    assert make_identity(tmp_path, url).validate(token).user_name == "admin"


@pytest.mark.parametrize(
    "user, password, project",
    [
        ("admin", "wrong", "admin"),
        ("nobody", "admin-secret", "admin"),
        ("admin", "admin-secret", "no-such-project"),
        ("admin", "admin-secret", "demo"),  # admin holds no role on demo
    ],
)
def test_bad_credentials_or_scope_are_unauthorized(
    identity: Identity, user: str, password: str, project: str
) -> None:
    with pytest.raises(KeystoneError) as caught:
        login(identity, user, password, project)
    assert caught.value.status == 401


def test_disabled_user_cannot_log_in_and_its_tokens_die(identity: Identity) -> None:
    token = login(identity, "demo", demo_password(identity), "demo")
    demo = identity.list_users(name="demo")[0]
    identity.update_user(demo["id"], {"enabled": False})
    for attempt in (
        lambda: identity.validate(token),
        lambda: login(identity, "demo", demo_password(identity)),
    ):
        with pytest.raises(KeystoneError):
            attempt()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"),
        lambda t: "not-a-token",
        lambda t: "",
    ],
)
def test_tampered_tokens_are_rejected(identity: Identity, mangle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeystoneError) as caught:
        identity.validate(mangle(login(identity, "admin", "admin-secret", "admin")))
    assert caught.value.status == 401


def test_a_token_sealed_with_another_key_is_rejected(identity: Identity, tmp_path: Path) -> None:
    stranger = TokenCodec(load_or_create_keys(tmp_path / "other.keys"))
    genuine = identity.inspect(login(identity, "admin", "admin-secret", "admin")).payload
    with pytest.raises(KeystoneError):
        identity.validate(stranger.seal(genuine))


def test_expired_tokens_are_rejected_even_when_cached(
    identity: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = login(identity, "admin", "admin-secret", "admin")
    identity.validate(token)
    later = time.time_ns() + 3601 * 10**9
    monkeypatch.setattr(
        service_module,
        "time",
        types.SimpleNamespace(time_ns=lambda: later, monotonic=time.monotonic),
    )
    with pytest.raises(KeystoneError) as caught:
        identity.validate(token)
    assert caught.value.status == 401


def test_revocation_takes_effect_at_once_and_covers_rescoped_tokens(identity: Identity) -> None:
    unscoped = login(identity, "admin", "admin-secret")
    rescoped, info = identity.issue_for_token(unscoped, Ref(name="admin", domain=DEFAULT))
    parent = identity.inspect(unscoped).payload
    assert info.payload.audit_ids == (info.payload.audit_id, parent.audit_id)
    assert info.payload.expires_at == parent.expires_at
    assert info.payload.methods == ("token", "password")
    identity.revoke(unscoped)
    for token in (unscoped, rescoped):
        with pytest.raises(KeystoneError):
            identity.validate(token)
    with pytest.raises(KeystoneError):
        identity.issue_for_token(unscoped, None)


def test_another_process_sees_a_revocation_once_its_cache_entry_is_stale(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/identity.db"
    worker_a = make_identity(tmp_path, url, admin_password="pw")
    worker_a.bootstrap()
    worker_b = make_identity(tmp_path, url)
    token = login(worker_a, "admin", "pw", "admin")
    worker_b.validate(token)
    worker_a.revoke(token)
    worker_b.validate(token)  # still within the cache's freshness window
    worker_b._cache.fresh_seconds = 0.0
    with pytest.raises(KeystoneError):
        worker_b.validate(token)


def test_roles_follow_assignments(identity: Identity) -> None:
    token = login(identity, "demo", demo_password(identity), "demo")
    assert identity.validate(token).can_write
    demo_project = identity.list_projects(name="demo")[0]["id"]
    demo_user = identity.list_users(name="demo")[0]["id"]
    member = identity.list_roles(name="member")[0]["id"]
    reader = identity.list_roles(name="reader")[0]["id"]
    identity.grant(demo_project, demo_user, reader)
    identity.ungrant(demo_project, demo_user, member)
    ctx = identity.validate(token)
    assert ctx.roles == {"reader"} and not ctx.can_write
    identity.ungrant(demo_project, demo_user, reader)
    with pytest.raises(KeystoneError):
        identity.validate(token)


def test_revoked_rows_are_pruned_after_their_tokens_expire(identity: Identity) -> None:
    identity.revoke(login(identity, "admin", "admin-secret"))
    with identity.db.write() as conn:
        conn.execute(update(schema.revoked_tokens).values(expires_at=moment(0)))
    identity.revoke(login(identity, "admin", "admin-secret"))
    with identity.db.read() as conn:
        assert len(conn.execute(select(schema.revoked_tokens)).all()) == 1


# -- passwords -------------------------------------------------------------------
def test_passwords_are_argon2id_hashes() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong horse")
    assert not verify_password(None, "anything")
    assert not verify_password("not a hash", "anything")


def test_login_upgrades_a_hash_made_with_old_parameters(identity: Identity) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw2")
    demo = identity.list_users(name="demo")[0]["id"]
    with identity.db.write() as conn:
        conn.execute(
            update(schema.users).where(schema.users.c.id == demo).values(password_hash=weak)
        )
    login(identity, "demo", "pw2", "demo")
    assert not needs_rehash(identity.get_user(demo)["password_hash"])


def test_change_password_requires_the_original(identity: Identity) -> None:
    demo = identity.list_users(name="demo")[0]["id"]
    with pytest.raises(KeystoneError):
        identity.change_password(demo, "wrong", "new-password")
    identity.change_password(demo, demo_password(identity), "new-password")
    login(identity, "demo", "new-password", "demo")


# -- cache and catalog -------------------------------------------------------------
def test_token_cache_evicts_least_recently_used_and_stale_entries() -> None:
    cache: TokenCache[int] = TokenCache(max_entries=2, fresh_seconds=1.0)
    cache.put("a", 1, now=0.0, generation=0)
    cache.put("b", 2, now=0.0, generation=0)
    assert cache.get("a", now=0.5) == 1
    cache.put("c", 3, now=0.5, generation=0)
    assert cache.get("b", now=0.5) is None and len(cache) == 2
    assert cache.get("a", now=1.2) is None
    assert cache.get("c", now=1.2) == 3


def test_token_cache_keeps_nothing_read_before_it_was_cleared() -> None:
    cache: TokenCache[int] = TokenCache()
    before = cache.generation
    cache.clear()  # a revocation committed while the token was being checked
    cache.put("a", 1, now=0.0, generation=before)
    assert cache.get("a", now=0.0) is None
    cache.put("a", 1, now=0.0, generation=cache.generation)
    assert cache.get("a", now=0.0) == 1


def test_catalog_is_built_from_the_service_table(tmp_path: Path) -> None:
    db = Database("sqlite://")
    settings = Settings(state_dir=tmp_path, database_url="sqlite://", bind_port=8000, region="Lab")
    identity = Identity(db, settings, [CatalogService("dns", "designate", "/dns")])
    [entry] = identity.catalog
    assert (entry["type"], entry["name"]) == ("dns", "designate")
    assert {(e["interface"], e["url"], e["region_id"]) for e in entry["endpoints"]} == {
        (i, "http://127.0.0.1:8000/dns", "Lab") for i in ("public", "internal", "admin")
    }


def test_token_payload_survives_sealing(tmp_path: Path) -> None:
    codec = TokenCodec(load_or_create_keys(tmp_path / "keys"))
    payload = TokenPayload("u", None, ("password",), 1, 2, (new_audit_id(),))
    assert codec.open(codec.seal(payload)) == payload
