"""Who may call which identity operation: admins manage, everyone reads their own."""

from __future__ import annotations

from neutrino.context import Context
from neutrino.identity.errors import forbidden


def require_admin(ctx: Context, action: str) -> None:
    if not ctx.is_admin:
        raise forbidden(f"identity:{action}")


def require_self_or_admin(ctx: Context, action: str, user_id: str) -> None:
    if not (ctx.is_admin or ctx.user_id == user_id):
        raise forbidden(f"identity:{action}")
