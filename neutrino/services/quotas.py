"""Quotas: per-project limits with defaults, checked inside the writing transaction.

Writers run one at a time (see db), so counting usage and inserting in the
same transaction can never overshoot, whatever the concurrency.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, func, select

from neutrino import errors
from neutrino.db import schema

DEFAULTS: dict[str, int] = {
    "network": 100,
    "subnet": 100,
    "port": 500,
    "router": 10,
    "floatingip": 50,
    "security_group": 10,
    "security_group_rule": 100,
}

TABLES: dict[str, Table] = {
    "network": schema.networks,
    "subnet": schema.subnets,
    "port": schema.ports,
    "router": schema.routers,
    "floatingip": schema.floatingips,
    "security_group": schema.security_groups,
    "security_group_rule": schema.security_group_rules,
}


def limits(conn: Connection, project_id: str) -> dict[str, int]:
    Q = schema.quotas
    found = dict(conn.execute(select(Q.c.resource, Q.c.limit).where(Q.c.project_id == project_id)).all())
    return {resource: found.get(resource, default) for resource, default in DEFAULTS.items()}


def used(conn: Connection, project_id: str, resource: str) -> int:
    table = TABLES[resource]
    return conn.execute(select(func.count()).select_from(table).where(table.c.project_id == project_id)).scalar_one()


def check(conn: Connection, project_id: str, resource: str, count: int) -> None:
    """Raise OverQuota if `count` more `resource`s would exceed the project's limit (-1 = unlimited)."""
    limit = limits(conn, project_id)[resource]
    if limit < 0:
        return
    if used(conn, project_id, resource) + count > limit:
        raise errors.OverQuota(overs=f"['{resource}']")
