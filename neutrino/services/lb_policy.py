"""Who may do what on the load-balancer API: Octavia's default policy (octavia/policies).

Octavia registers Keystone's default roles as its rules and keeps its own "advanced RBAC"
roles as their deprecated alternatives, which are honoured beside them:

- admin (`admin`, `load-balancer_admin`): everything, in every project.
- global observer (`load-balancer_global_observer`, or an admin): reads every project.
- member (`member`, `load-balancer_member`) of the object's project: reads and writes it.
- observer (`reader`, `load-balancer_observer`) of the object's project: reads it.
- quota admin (`load-balancer_quota_admin`): reads and sets every project's quotas.

Anyone else is refused with 403, also on another project's object: Octavia finds the object
first (404 when there is none) and then checks the caller against the object's project.
"""

from __future__ import annotations

from neutrino.context import Context

ADMIN = frozenset({"admin", "load-balancer_admin"})
GLOBAL_OBSERVER = frozenset({"load-balancer_global_observer"})
MEMBER = frozenset({"member", "load-balancer_member"})
OBSERVER = frozenset({"reader", "load-balancer_observer"})
QUOTA_ADMIN = frozenset({"load-balancer_quota_admin"})


def is_admin(ctx: Context) -> bool:
    return bool(ctx.roles & ADMIN)


def reads_everything(ctx: Context) -> bool:
    return bool(ctx.roles & (ADMIN | GLOBAL_OBSERVER))


def may_read(ctx: Context, project_id: str | None) -> bool:
    owner = project_id is not None and project_id == ctx.project_id
    return reads_everything(ctx) or (owner and bool(ctx.roles & (MEMBER | OBSERVER)))


def reads_shared(ctx: Context) -> bool:
    """load-balancer:read on what belongs to no project (flavors, zones): any reading role."""
    return bool(ctx.roles & (ADMIN | GLOBAL_OBSERVER | MEMBER | OBSERVER))


def may_write(ctx: Context, project_id: str | None) -> bool:
    owner = project_id is not None and project_id == ctx.project_id
    return is_admin(ctx) or (owner and bool(ctx.roles & MEMBER))


def may_read_quota(ctx: Context, project_id: str | None) -> bool:
    return may_read(ctx, project_id) or bool(ctx.roles & QUOTA_ADMIN)


def reads_every_quota(ctx: Context) -> bool:
    return reads_everything(ctx) or bool(ctx.roles & QUOTA_ADMIN)


def may_write_quota(ctx: Context) -> bool:
    return is_admin(ctx) or bool(ctx.roles & QUOTA_ADMIN)
