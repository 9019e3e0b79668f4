"""Quotas: per-project limits with defaults, checked inside the writing transaction.

Writers run one at a time (see db), so counting usage and inserting in the
same transaction can never overshoot, whatever the concurrency. A limit of
-1 means unlimited. A limit set for a project is stored, even one equal to the default.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, bindparam, case, delete, func, insert, select

from neutrino import errors
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common

# Neutron's defaults: its `[quotas] quota_<resource>` options in neutron.conf.
NEUTRON_DEFAULTS: dict[str, int] = {
    "network": 100,
    "subnet": 100,
    "subnetpool": -1,
    "port": 500,
    "router": 10,
    "floatingip": 50,
    "security_group": 10,
    "security_group_rule": 100,
    "rbac_policy": 10,
}
# The defaults as configured (`--default-quota`); set from the configuration when the service
# is built.
DEFAULTS = dict(NEUTRON_DEFAULTS)

TABLES: dict[str, Table] = {
    "network": schema.networks,
    "subnet": schema.subnets,
    "subnetpool": schema.subnetpools,
    "port": schema.ports,
    "router": schema.routers,
    "floatingip": schema.floatingips,
    "security_group": schema.security_groups,
    "security_group_rule": schema.security_group_rules,
    "rbac_policy": schema.rbac_policies,
}


def configure(defaults: dict[str, int]) -> None:
    """Use `defaults` instead of Neutron's for the resources it names."""
    global DEFAULTS
    DEFAULTS = {**NEUTRON_DEFAULTS, **defaults}


def limits(conn: Connection, project_id: str) -> dict[str, int]:
    Q = schema.quotas
    found = dict(
        conn.execute(select(Q.c.resource, Q.c.limit).where(Q.c.project_id == project_id)).all()
    )
    return {resource: found.get(resource, default) for resource, default in DEFAULTS.items()}


# Built once: every create checks its quota (see db).
USED = {
    resource: select(func.count())
    .select_from(table)
    .where(table.c.project_id == bindparam("project_id"))
    for resource, table in TABLES.items()
}
_LIMIT = func.coalesce(
    select(schema.quotas.c.limit)
    .where(
        schema.quotas.c.project_id == bindparam("project_id"),
        schema.quotas.c.resource == bindparam("resource"),
    )
    .scalar_subquery(),
    bindparam("default"),
)
# The limit and, unless it is unlimited, what is used: one statement, not two.
LIMIT_AND_USED = {
    resource: select(_LIMIT, case((_LIMIT < 0, None), else_=counted.scalar_subquery()))
    for resource, counted in USED.items()
}


def used(conn: Connection, project_id: str, resource: str) -> int:
    return conn.execute(USED[resource], {"project_id": project_id}).scalar_one()


def check(conn: Connection, project_id: str, resource: str, count: int) -> None:
    """Raise OverQuota if `count` more `resource`s would exceed the project's limit.

    A limit of -1 means unlimited.
    """
    limit, in_use = conn.execute(
        LIMIT_AND_USED[resource],
        {"project_id": project_id, "resource": resource, "default": DEFAULTS[resource]},
    ).one()
    if limit >= 0 and in_use + count > limit:
        raise errors.OverQuota(overs=f"['{resource}']")


# -- the quotas API ------------------------------------------------------------------------
def require_admin(ctx: Context, action: str) -> None:
    if not ctx.is_admin:
        raise errors.PolicyNotAuthorized(action=action)


def require_own_or_admin(ctx: Context, project_id: str) -> None:
    if project_id != ctx.project_id:
        require_admin(ctx, "get_quota")


class Quotas:
    def list(self, db: Database, ctx: Context) -> list[dict[str, Any]]:
        """Every project that has a limit of its own, with all its limits."""
        require_admin(ctx, "get_quota")
        with db.read() as conn:
            projects = (
                conn.execute(
                    select(schema.quotas.c.project_id)
                    .distinct()
                    .order_by(schema.quotas.c.project_id)
                )
                .scalars()
                .all()
            )
            return [{"project_id": p, "tenant_id": p, **limits(conn, p)} for p in projects]

    def get(self, db: Database, ctx: Context, project_id: str) -> dict[str, int]:
        require_own_or_admin(ctx, project_id)
        with db.read() as conn:
            return limits(conn, project_id)

    def details(self, db: Database, ctx: Context, project_id: str) -> dict[str, dict[str, int]]:
        require_own_or_admin(ctx, project_id)
        with db.read() as conn:
            return {
                resource: {"limit": limit, "used": used(conn, project_id, resource), "reserved": 0}
                for resource, limit in limits(conn, project_id).items()
            }

    def defaults(self, ctx: Context, project_id: str) -> dict[str, int]:
        require_own_or_admin(ctx, project_id)
        return dict(DEFAULTS)

    def update(
        self,
        db: Database,
        ctx: Context,
        project_id: str,
        values: dict[str, int],
        force: bool = False,
    ) -> dict[str, int]:
        require_admin(ctx, "update_quota")
        Q = schema.quotas
        with db.write() as conn:
            for resource, limit in () if force else values.items():
                usage = used(conn, project_id, resource)
                if 0 <= limit < usage:
                    raise errors.HTTPBadRequest(
                        f"Quota limit {limit} for {resource} must be "
                        f"greater than or equal to already used {usage}"
                    )
            for resource, limit in values.items():
                conn.execute(
                    delete(Q).where(Q.c.project_id == project_id, Q.c.resource == resource)
                )
                # Kept even when it is the default, as Neutron keeps it: the project is listed,
                # and keeps it when the default changes.
                conn.execute(
                    insert(Q).values(project_id=project_id, resource=resource, limit=limit)
                )
            common.record_change(conn, "quota", project_id, "update")
            return limits(conn, project_id)

    def reset(self, db: Database, ctx: Context, project_id: str) -> None:
        require_admin(ctx, "delete_quota")
        with db.write() as conn:
            conn.execute(delete(schema.quotas).where(schema.quotas.c.project_id == project_id))
            common.record_change(conn, "quota", project_id, "delete")
