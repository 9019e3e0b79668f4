"""The identity service: authentication, tokens, and the identity resources."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, select, update

from neutrino.config import Settings
from neutrino.context import Context
from neutrino.db import Database
from neutrino.db.schema import domains, projects, revoked_tokens, role_assignments, roles, users
from neutrino.identity import bootstrap as first_start
from neutrino.identity.catalog import DEFAULT_SERVICES, CatalogService, build_catalog
from neutrino.identity.errors import bad_request, conflict, not_found, unauthorized
from neutrino.identity.passwords import hash_password, needs_rehash, verify_password
from neutrino.identity.tokens import (
    KEY_FILE,
    TokenCache,
    TokenCodec,
    TokenPayload,
    load_or_create_keys,
    moment,
    new_audit_id,
)

__all__ = ["Identity", "Ref", "Row", "TokenInfo"]

Row = dict[str, Any]
# Keystone's default implied roles: a token shows the roles its roles imply.
IMPLIED_ROLES = {"admin": "member", "member": "reader"}


@dataclass(frozen=True)
class Ref:
    """A user, project or domain as a request names it: by id, or by name within a domain."""

    id: str | None = None
    name: str | None = None
    domain: Ref | None = None


@dataclass(frozen=True)
class TokenInfo:
    """A token with what it currently grants, as checked against the database."""

    payload: TokenPayload
    user: Row  # id, name, enabled, domain_id, domain_name
    project: Row | None  # the same keys; None when unscoped
    roles: tuple[Row, ...]  # id, name
    context: Context


class Identity:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        services: Sequence[CatalogService] = DEFAULT_SERVICES,
    ) -> None:
        self.db = db
        self.settings = settings
        self.catalog = build_catalog(services, settings.public_url, settings.region)
        self._codec = TokenCodec(load_or_create_keys(settings.state_dir / KEY_FILE))
        self._cache: TokenCache[TokenInfo] = TokenCache()
        # Other processes' identity writes (and this one's) make it forget what it checked.
        db.listen("neutrino_identity", self._cache.clear)

    # -- first start ---------------------------------------------------------
    def bootstrap(self) -> str:
        """Create the default domain, roles, admin, demo and the service project; write clouds.yaml;
        return its path."""
        path = self.settings.state_dir / first_start.CLOUDS_FILE
        known = first_start.read_known_passwords(path)
        passwords: dict[str, str] = {}
        with self._writing() as conn:
            role_ids = first_start.ensure_domain_and_roles(conn)
            for cloud, (name, role) in first_start.ACCOUNTS.items():
                wanted = self.settings.admin_password if name == "admin" else None
                passwords[cloud] = first_start.ensure_account(
                    conn, name, role_ids[role], wanted, known.get(cloud)
                )
            first_start.ensure_project(conn, first_start.SERVICE_PROJECT)
        first_start.write_clouds_yaml(path, self.settings, passwords)
        return str(path)

    # -- tokens --------------------------------------------------------------
    def issue_for_password(
        self, user: Ref, password: str, project: Ref | None
    ) -> tuple[str, TokenInfo]:
        with self.db.read() as conn:
            found = _find_user(conn, user)
        stored = found["password_hash"] if found else None
        if not verify_password(stored, password) or found is None or not found["enabled"]:
            raise unauthorized()
        if stored is not None and needs_rehash(stored):
            with self._writing() as conn:
                conn.execute(
                    update(users)
                    .where(users.c.id == found["id"])
                    .values(password_hash=hash_password(password))
                )
        now = now_micros()
        return self._issue(
            found["id"],
            project,
            ("password",),
            now,
            now + self.settings.token_ttl_seconds * 1_000_000,
            (new_audit_id(),),
        )

    def issue_for_token(self, token: str, project: Ref | None) -> tuple[str, TokenInfo]:
        """Rescope: a new token for the same user that never outlives the one it came from."""
        parent = self.inspect(token).payload
        methods = parent.methods if "token" in parent.methods else ("token", *parent.methods)
        return self._issue(
            parent.user_id,
            project,
            methods,
            now_micros(),
            parent.expires_at,
            (new_audit_id(), parent.audit_ids[-1]),
        )

    def issue_for_server(self) -> str:
        """A token of the administrator in the admin project, which the server shows an agent
        it asks something of; the agent checks it here, as any other token."""
        admin = Ref(name="admin", domain=Ref(id=first_start.DEFAULT_DOMAIN_ID))
        with self.db.read() as conn:
            user = _find_user(conn, admin)
        if user is None:
            raise unauthorized()
        now = now_micros()
        token, _ = self._issue(
            user["id"],
            admin,
            ("token",),
            now,
            now + self.settings.token_ttl_seconds * 1_000_000,
            (new_audit_id(),),
        )
        return token

    def validate(self, token: str) -> Context:
        """The caller behind `token`; KeystoneError 401 if it is not valid now."""
        return self.inspect(token).context

    def recently_checked(self, token: str) -> Context | None:
        """The caller behind `token` if it was checked moments ago and has not expired; else
        None."""
        info = self._cache.get(token, time.monotonic())
        return info.context if info and info.payload.expires_at > now_micros() else None

    def inspect(self, token: str) -> TokenInfo:
        mono = time.monotonic()
        info = self._cache.get(token, mono)
        payload = info.payload if info else self._codec.open(token)
        if payload is None or payload.expires_at <= now_micros():
            raise unauthorized()
        if info is None:
            generation = self._cache.generation
            info = self._resolve(payload)
            self._cache.put(token, info, mono, generation)
        return info

    def revoke(self, token: str) -> None:
        payload = self.inspect(token).payload
        with self._writing() as conn:
            # Rows past their token's expiry can never match again.
            now = moment(now_micros())
            conn.execute(delete(revoked_tokens).where(revoked_tokens.c.expires_at < now))
            if not _any_revoked(conn, (payload.audit_id,)):
                expires_at = moment(payload.expires_at)
                conn.execute(
                    insert(revoked_tokens).values(token_id=payload.audit_id, expires_at=expires_at)
                )

    def _issue(
        self,
        user_id: str,
        project: Ref | None,
        methods: tuple[str, ...],
        issued_at: int,
        expires_at: int,
        audit_ids: tuple[str, ...],
    ) -> tuple[str, TokenInfo]:
        project_id = None
        if project is not None:
            with self.db.read() as conn:
                found = _find_principal(conn, projects, project)
            if found is None:
                raise unauthorized()
            project_id = found["id"]
        payload = TokenPayload(user_id, project_id, methods, issued_at, expires_at, audit_ids)
        generation = self._cache.generation
        info = self._resolve(payload)
        token = self._codec.seal(payload)
        self._cache.put(token, info, time.monotonic(), generation)
        return token, info

    def _resolve(self, payload: TokenPayload) -> TokenInfo:
        with self.db.read() as conn:
            revoked = _any_revoked(conn, payload.audit_ids)
            user = _principal(conn, users, payload.user_id, users.c.tokens_valid_after)
            project = _principal(conn, projects, payload.project_id) if payload.project_id else None
            granted = _effective_roles(conn, payload.user_id, project["id"]) if project else ()
        if (
            revoked
            or user is None
            or not user["enabled"]
            or payload.issued_at < user["tokens_valid_after"]
        ):
            raise unauthorized()
        scope_lost = project is None or not project["enabled"] or not granted
        if payload.project_id is not None and scope_lost:
            raise unauthorized(
                f"User {payload.user_id} has no access to project {payload.project_id}."
            )
        context = Context(
            user_id=user["id"],
            project_id=payload.project_id,
            roles=frozenset(role["name"] for role in granted),
            token_id=payload.audit_id,
            user_name=user["name"],
            project_name=project["name"] if project else "",
        )
        return TokenInfo(payload, user, project, granted, context)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self.db.write() as conn:
            yield conn
        # After the commit, so no reader can cache the state this write replaced.
        self._cache.clear()

    # -- what a user may reach -------------------------------------------------
    def user_projects(self, user_id: str) -> list[Row]:
        """Enabled projects where the user holds a role."""
        with self.db.read() as conn:
            scoped = select(role_assignments.c.project_id).where(
                role_assignments.c.user_id == user_id
            )
            return _rows(
                conn,
                select(projects)
                .where(projects.c.id.in_(scoped), projects.c.enabled)
                .order_by(projects.c.name),
            )

    # -- domains -------------------------------------------------------------
    def list_domains(self, **filters: Any) -> list[Row]:
        return self._list(domains, filters)

    def get_domain(self, domain_id: str) -> Row:
        return self._get(domains, "domain", domain_id)

    # -- projects ------------------------------------------------------------
    def list_projects(self, **filters: Any) -> list[Row]:
        return self._list(projects, filters)

    def get_project(self, project_id: str) -> Row:
        return self._get(projects, "project", project_id)

    def create_project(
        self,
        name: str,
        domain_id: str = first_start.DEFAULT_DOMAIN_ID,
        description: str = "",
        enabled: bool = True,
    ) -> Row:
        row = {
            "id": uuid.uuid4().hex,
            "name": name,
            "domain_id": domain_id,
            "description": description,
            "enabled": enabled,
        }
        with self._writing() as conn:
            _require_domain(conn, domain_id)
            self._check_project_name(conn, domain_id, name)
            conn.execute(insert(projects).values(row))
        return row

    def update_project(self, project_id: str, changes: Row) -> Row:
        with self._writing() as conn:
            current = _get_or_404(conn, projects, "project", project_id)
            if changes.get("name", current["name"]) != current["name"]:
                self._check_project_name(conn, current["domain_id"], changes["name"])
            conn.execute(update(projects).where(projects.c.id == project_id).values(changes))
        return {**current, **changes}

    def delete_project(self, project_id: str) -> None:
        self._delete(projects, "project", project_id)

    @staticmethod
    def _check_project_name(conn: Connection, domain_id: str, name: str) -> None:
        if conn.execute(
            select(projects.c.id).where(projects.c.domain_id == domain_id, projects.c.name == name)
        ).first():
            raise conflict(
                "project",
                "it is not permitted to have two projects with the same name "
                f"in the same domain : {name}",
            )

    # -- users ---------------------------------------------------------------
    def list_users(self, **filters: Any) -> list[Row]:
        return self._list(users, filters)

    def get_user(self, user_id: str) -> Row:
        return self._get(users, "user", user_id)

    def create_user(
        self,
        name: str,
        domain_id: str = first_start.DEFAULT_DOMAIN_ID,
        password: str | None = None,
        **fields: Any,
    ) -> Row:
        row = {
            "id": uuid.uuid4().hex,
            "name": name,
            "domain_id": domain_id,
            "enabled": True,
            "description": "",
            "default_project_id": None,
            "email": None,
            **fields,
        }
        password_hash = hash_password(password) if password is not None else None
        with self._writing() as conn:
            _require_domain(conn, domain_id)
            _require_project(conn, row["default_project_id"])
            self._check_user_name(conn, domain_id, name)
            conn.execute(insert(users).values({**row, "password_hash": password_hash}))
        return {**row, "password_hash": password_hash}

    def update_user(self, user_id: str, changes: Row) -> Row:
        values = dict(changes)
        if "password" in values:
            password = values.pop("password")
            values["password_hash"] = hash_password(password) if password is not None else None
            # The user's tokens issued before this moment go with the old password.
            values["tokens_valid_after"] = now_micros()
        with self._writing() as conn:
            current = _get_or_404(conn, users, "user", user_id)
            if values.get("name", current["name"]) != current["name"]:
                self._check_user_name(conn, current["domain_id"], values["name"])
            _require_project(conn, values.get("default_project_id"))
            conn.execute(update(users).where(users.c.id == user_id).values(values))
        return {**current, **values}

    def change_password(self, user_id: str, original: str, password: str) -> None:
        """A user's own password change: the old one must be right."""
        if not verify_password(self.get_user(user_id)["password_hash"], original):
            raise unauthorized()
        self.update_user(user_id, {"password": password})

    def delete_user(self, user_id: str) -> None:
        self._delete(users, "user", user_id)

    @staticmethod
    def _check_user_name(conn: Connection, domain_id: str, name: str) -> None:
        if conn.execute(
            select(users.c.id).where(users.c.domain_id == domain_id, users.c.name == name)
        ).first():
            raise conflict(
                "user", f"Duplicate entry found with name {name} at domain ID {domain_id}"
            )

    # -- roles ---------------------------------------------------------------
    def list_roles(self, **filters: Any) -> list[Row]:
        return self._list(roles, filters)

    def get_role(self, role_id: str) -> Row:
        return self._get(roles, "role", role_id)

    def create_role(self, name: str, description: str = "") -> Row:
        row = {"id": uuid.uuid4().hex, "name": name, "description": description}
        with self._writing() as conn:
            self._check_role_name(conn, name)
            conn.execute(insert(roles).values(row))
        return row

    def update_role(self, role_id: str, changes: Row) -> Row:
        with self._writing() as conn:
            current = _get_or_404(conn, roles, "role", role_id)
            if changes.get("name", current["name"]) != current["name"]:
                self._check_role_name(conn, changes["name"])
            conn.execute(update(roles).where(roles.c.id == role_id).values(changes))
        return {**current, **changes}

    def delete_role(self, role_id: str) -> None:
        self._delete(roles, "role", role_id)

    @staticmethod
    def _check_role_name(conn: Connection, name: str) -> None:
        if conn.execute(select(roles.c.id).where(roles.c.name == name)).first():
            raise conflict("role", f"Duplicate entry found with name {name}")

    # -- role assignments ----------------------------------------------------
    def grant(self, project_id: str, user_id: str, role_id: str) -> None:
        with self._writing() as conn:
            if not self._granted(conn, project_id, user_id, role_id):
                conn.execute(
                    insert(role_assignments).values(
                        project_id=project_id, user_id=user_id, role_id=role_id
                    )
                )

    def is_granted(self, project_id: str, user_id: str, role_id: str) -> bool:
        with self.db.read() as conn:
            return self._granted(conn, project_id, user_id, role_id)

    def ungrant(self, project_id: str, user_id: str, role_id: str) -> None:
        with self._writing() as conn:
            if not self._granted(conn, project_id, user_id, role_id):
                raise not_found(
                    "role assignment", f"role {role_id} of user {user_id} on project {project_id}"
                )
            conn.execute(
                delete(role_assignments).where(
                    role_assignments.c.project_id == project_id,
                    role_assignments.c.user_id == user_id,
                    role_assignments.c.role_id == role_id,
                )
            )

    @staticmethod
    def _granted(conn: Connection, project_id: str, user_id: str, role_id: str) -> bool:
        """Whether the assignment exists; 404 naming whichever of the three is unknown."""
        _get_or_404(conn, projects, "project", project_id)
        _get_or_404(conn, users, "user", user_id)
        _get_or_404(conn, roles, "role", role_id)
        return (
            conn.execute(
                select(role_assignments.c.role_id).where(
                    role_assignments.c.project_id == project_id,
                    role_assignments.c.user_id == user_id,
                    role_assignments.c.role_id == role_id,
                )
            ).first()
            is not None
        )

    def list_assignments(
        self, user_id: str | None = None, project_id: str | None = None, role_id: str | None = None
    ) -> list[Row]:
        """Direct assignments with the names of everything they join."""
        user_domain, project_domain = domains.alias("user_domain"), domains.alias("project_domain")
        query = (
            select(
                users.c.id.label("user_id"),
                users.c.name.label("user_name"),
                user_domain.c.id.label("user_domain_id"),
                user_domain.c.name.label("user_domain_name"),
                projects.c.id.label("project_id"),
                projects.c.name.label("project_name"),
                project_domain.c.id.label("project_domain_id"),
                project_domain.c.name.label("project_domain_name"),
                roles.c.id.label("role_id"),
                roles.c.name.label("role_name"),
            )
            .select_from(role_assignments)
            .join(users, users.c.id == role_assignments.c.user_id)
            .join(user_domain, user_domain.c.id == users.c.domain_id)
            .join(projects, projects.c.id == role_assignments.c.project_id)
            .join(project_domain, project_domain.c.id == projects.c.domain_id)
            .join(roles, roles.c.id == role_assignments.c.role_id)
            .order_by(users.c.name, projects.c.name, roles.c.name)
        )
        for column, value in (
            (role_assignments.c.user_id, user_id),
            (role_assignments.c.project_id, project_id),
            (role_assignments.c.role_id, role_id),
        ):
            if value is not None:
                query = query.where(column == value)
        with self.db.read() as conn:
            return _rows(conn, query)

    # -- shared CRUD -----------------------------------------------------------
    def _list(self, table: Table, filters: dict[str, Any]) -> list[Row]:
        query = select(table).order_by(table.c.name)
        for key, value in filters.items():
            if value is not None:
                query = query.where(table.c[key] == value)
        with self.db.read() as conn:
            return _rows(conn, query)

    def _get(self, table: Table, kind: str, ident: str) -> Row:
        with self.db.read() as conn:
            return _get_or_404(conn, table, kind, ident)

    def _delete(self, table: Table, kind: str, ident: str) -> None:
        with self._writing() as conn:
            if conn.execute(delete(table).where(table.c.id == ident)).rowcount == 0:
                raise not_found(kind, ident)


def _any_revoked(conn: Connection, audit_ids: Sequence[str]) -> bool:
    query = select(revoked_tokens.c.token_id).where(revoked_tokens.c.token_id.in_(audit_ids))
    return conn.execute(query.limit(1)).first() is not None


def _rows(conn: Connection, query: Any) -> list[Row]:
    return [dict(row) for row in conn.execute(query).mappings()]


def _get_or_404(conn: Connection, table: Table, kind: str, ident: str) -> Row:
    row = conn.execute(select(table).where(table.c.id == ident)).mappings().first()
    if row is None:
        raise not_found(kind, ident)
    return dict(row)


def _require_domain(conn: Connection, domain_id: str) -> None:
    if conn.execute(select(domains.c.id).where(domains.c.id == domain_id)).first() is None:
        raise bad_request(f"Domain {domain_id} does not exist.")


def _require_project(conn: Connection, project_id: str | None) -> None:
    if (
        project_id is not None
        and conn.execute(select(projects.c.id).where(projects.c.id == project_id)).first() is None
    ):
        raise bad_request(f"Project {project_id} does not exist.")


def _principal(conn: Connection, table: Table, ident: str, *extra: Any) -> Row | None:
    """A user or project with its domain's name, as tokens show them (and `extra` columns)."""
    row = (
        conn.execute(
            select(
                table.c.id,
                table.c.name,
                table.c.enabled,
                table.c.domain_id,
                domains.c.name.label("domain_name"),
                *extra,
            )
            .join(domains, domains.c.id == table.c.domain_id)
            .where(table.c.id == ident)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def _find_principal(conn: Connection, table: Table, ref: Ref) -> Row | None:
    """A user or project named by id, or by name within a domain named by id or name."""
    if ref.id is not None:
        return _principal(conn, table, ref.id)
    domain = ref.domain or Ref()
    query = (
        select(table.c.id)
        .join(domains, domains.c.id == table.c.domain_id)
        .where(table.c.name == ref.name)
    )
    if domain.id is not None:
        query = query.where(domains.c.id == domain.id)
    else:
        # Keystone on MySQL matches domain names without regard to case; clients rely on it.
        query = query.where(func.lower(domains.c.name) == (domain.name or "").lower())
    found = conn.execute(query).scalar()
    return _principal(conn, table, found) if found is not None else None


def _find_user(conn: Connection, ref: Ref) -> Row | None:
    principal = _find_principal(conn, users, ref)
    if principal is None:
        return None
    principal["password_hash"] = conn.execute(
        select(users.c.password_hash).where(users.c.id == principal["id"])
    ).scalar()
    return principal


def _effective_roles(conn: Connection, user_id: str, project_id: str) -> tuple[Row, ...]:
    """Roles held on the project plus those they imply, ordered by name."""
    held = (
        conn.execute(
            select(roles.c.id, roles.c.name)
            .join(role_assignments, role_assignments.c.role_id == roles.c.id)
            .where(
                role_assignments.c.user_id == user_id, role_assignments.c.project_id == project_id
            )
        )
        .mappings()
        .all()
    )
    names = {row["name"] for row in held}
    implied: set[str] = set()
    for name in names:
        below = IMPLIED_ROLES.get(name)
        while below is not None and below not in names:
            implied.add(below)
            below = IMPLIED_ROLES.get(below)
    extra = (
        conn.execute(select(roles.c.id, roles.c.name).where(roles.c.name.in_(implied)))
        .mappings()
        .all()
    )
    return tuple(sorted((dict(row) for row in (*held, *extra)), key=lambda row: row["name"]))


def now_micros() -> int:
    """Unix time in microseconds, as tokens and users.tokens_valid_after count it."""
    return time.time_ns() // 1000
