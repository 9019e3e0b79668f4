"""First start: the default domain, roles, admin and demo accounts, the service project, and
clouds.yaml.

Generated passwords are recorded only in clouds.yaml (mode 0600, in the state
directory): it is both what clients read and what later starts read back to
rewrite it. NEUTRINO_ADMIN_PASSWORD, when set, wins: a start with a different
value than the stored hash sets the admin password to it. If clouds.yaml is
lost and no password is given, the account gets a fresh generated password:
that file was the only record, and this keeps the owner of the state
directory able to get back in.
"""

from __future__ import annotations

import logging
import secrets
import shlex
import uuid
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Connection, insert, select, update

from neutrino.config import Settings
from neutrino.db.schema import domains, projects, role_assignments, roles, users
from neutrino.identity.files import write_private
from neutrino.identity.passwords import hash_password, verify_password

log = logging.getLogger("neutrino.identity")

DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"
ROLE_NAMES = ("admin", "member", "reader")
CLOUDS_FILE = "clouds.yaml"
# cloud name -> (user and project name, role on that project)
ACCOUNTS = {"neutrino-admin": ("admin", "admin"), "neutrino-demo": ("demo", "member")}
# The project that owns what the services make for themselves, as OpenStack's `service` project
# does: Octavia's VRRP ports and their security groups.
SERVICE_PROJECT = "service"


def ensure_domain_and_roles(conn: Connection) -> dict[str, str]:
    """Create what is missing; return role ids by name."""
    if conn.execute(select(domains.c.id).where(domains.c.id == DEFAULT_DOMAIN_ID)).first() is None:
        conn.execute(
            insert(domains).values(
                id=DEFAULT_DOMAIN_ID,
                name=DEFAULT_DOMAIN_NAME,
                description="The default domain",
                enabled=True,
            )
        )
    ids = dict(
        conn.execute(select(roles.c.name, roles.c.id).where(roles.c.name.in_(ROLE_NAMES))).all()
    )
    for name in ROLE_NAMES:
        if name not in ids:
            ids[name] = uuid.uuid4().hex
            conn.execute(insert(roles).values(id=ids[name], name=name, description=""))
    return ids


def new_password() -> str:
    """A random password (24 characters of URL-safe base64) that a command line does not take
    for an option: one beginning with "-" is drawn again."""
    while (password := secrets.token_urlsafe(18)).startswith("-"):
        continue
    return password


def ensure_account(
    conn: Connection, name: str, role_id: str, wanted: str | None, known: str | None
) -> str:
    """Project and user `name` with `role_id` on it; return the user's password.

    `wanted` is a password the operator set (it replaces the stored one);
    `known` is the one clouds.yaml recorded last time.
    """
    project_id = ensure_project(conn, name)
    user = conn.execute(
        select(users.c.id, users.c.password_hash).where(
            users.c.domain_id == DEFAULT_DOMAIN_ID, users.c.name == name
        )
    ).first()
    password = wanted or known or new_password()
    if user is None:
        user_id = uuid.uuid4().hex
        conn.execute(
            insert(users).values(
                id=user_id,
                name=name,
                domain_id=DEFAULT_DOMAIN_ID,
                password_hash=hash_password(password),
                enabled=True,
                description="",
            )
        )
    else:
        user_id = user.id
        stale = wanted is not None and not verify_password(user.password_hash, wanted)
        lost = wanted is None and known is None
        if lost:
            log.warning("%s was missing: generated a new password for user %s", CLOUDS_FILE, name)
        if stale or lost:
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(password_hash=hash_password(password))
            )
    granted = conn.execute(
        select(role_assignments.c.role_id).where(
            role_assignments.c.user_id == user_id,
            role_assignments.c.project_id == project_id,
            role_assignments.c.role_id == role_id,
        )
    ).first()
    if granted is None:
        conn.execute(
            insert(role_assignments).values(user_id=user_id, project_id=project_id, role_id=role_id)
        )
    return password


def ensure_project(conn: Connection, name: str) -> str:
    """The id of project `name` in the default domain, made if missing."""
    found = conn.execute(
        select(projects.c.id).where(
            projects.c.domain_id == DEFAULT_DOMAIN_ID, projects.c.name == name
        )
    ).scalar()
    if found is not None:
        return str(found)
    project_id = uuid.uuid4().hex
    conn.execute(
        insert(projects).values(
            id=project_id, name=name, domain_id=DEFAULT_DOMAIN_ID, description="", enabled=True
        )
    )
    return project_id


def read_known_passwords(path: Path) -> dict[str, str]:
    """Passwords by cloud name from an earlier clouds.yaml; empty if absent or unreadable."""
    try:
        clouds = yaml.safe_load(path.read_text()).get("clouds", {})
        return {name: str(clouds[name]["auth"]["password"]) for name in ACCOUNTS if name in clouds}
    except (OSError, AttributeError, KeyError, TypeError, yaml.YAMLError):
        return {}


def write_clouds_yaml(path: Path, settings: Settings, passwords: dict[str, str]) -> None:
    clouds: dict[str, Any] = {
        cloud: {
            "auth": {
                "auth_url": f"{settings.public_url}/identity/v3",
                "username": name,
                "password": passwords[cloud],
                "project_name": name,
                "user_domain_name": DEFAULT_DOMAIN_NAME,
                "project_domain_name": DEFAULT_DOMAIN_NAME,
            },
            "region_name": settings.region,
            "identity_api_version": 3,
            "interface": "public",
        }
        for cloud, (name, _role) in ACCOUNTS.items()
    }
    write_private(path, yaml.safe_dump({"clouds": clouds}, sort_keys=False).encode())


def client_env(settings: Settings, cloud: str = "neutrino-admin") -> list[str]:
    """Shell lines that point the openstack CLI at the clouds.yaml bootstrap wrote."""
    path = settings.state_dir / CLOUDS_FILE
    return [
        f"export OS_CLIENT_CONFIG_FILE={shlex.quote(str(path))}",
        f"export OS_CLOUD={shlex.quote(cloud)}",
    ]
