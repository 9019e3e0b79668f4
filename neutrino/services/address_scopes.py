"""Address scopes: sets of subnet pools whose addresses are unique together.

Subnets whose pools share a scope are routed to each other without NAT
(see plan/routers). A scope is seen by its project, by the projects an
RBAC policy shares it with (`shared` is the policy for every project), and
by admins; it carries no standard attributes, as in Neutron.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, exists, insert, select, update

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common, rbac
from neutrino.services.common import Tags
from neutrino.services.listing import Listed, Listing, Source

A = schema.address_scopes
LISTING = Listing(A, {"tenant_id": A.c.project_id})


def visible(ctx: Context) -> ColumnElement[bool] | None:
    return rbac.visible_objects("address_scope", ctx)


def fetch(conn: Connection, ctx: Context, scope_id: str) -> Row:
    seen = visible(ctx)
    row = conn.execute(
        select(A).where(A.c.id == scope_id, *([] if seen is None else [seen]))
    ).first()
    if row is None:
        raise errors.AddressScopeNotFound(address_scope_id=scope_id)
    return row


def owned(ctx: Context, scope: Row) -> bool:
    return ctx.is_admin or scope.project_id == ctx.project_id


def render(conn: Connection, ctx: Context, rows: list[Row]) -> list[dict[str, Any]]:
    """Scope bodies; `shared` as the caller sees it."""
    shared = rbac.shared_ids(conn, "address_scope", [r.id for r in rows], ctx.project_id)
    return [
        {
            "id": r.id,
            "name": r.name,
            "project_id": r.project_id,
            "tenant_id": r.project_id,
            "shared": r.id in shared,
            "ip_version": r.ip_version,
        }
        for r in rows
    ]


class AddressScopes(Listed):
    resource = "address_scope"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        listing = LISTING.with_filters(
            shared=rbac.shared_filter("address_scope", A.c.id, ctx.project_id)
        )
        return Source(listing, visible(ctx), lambda conn, rows: render(conn, ctx, rows))

    def get(self, db: Database, ctx: Context, scope_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(conn, ctx, [fetch(conn, ctx, scope_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        if values["shared"] and not ctx.is_admin:
            raise errors.PolicyNotAuthorized(action="create_address_scope:shared")
        standard = common.standard_values(ctx, values)
        row = {
            "id": standard["id"],
            "project_id": standard["project_id"],
            "name": standard["name"],
            "ip_version": values["ip_version"],
        }
        with db.write() as conn:
            conn.execute(insert(A).values(**row))
            if values["shared"]:
                rbac.set_shared(conn, "address_scope", fetch(conn, ctx, row["id"]), True)
            common.record_change(conn, self.resource, row["id"], "create")
            return render(conn, ctx, [fetch(conn, ctx, row["id"])])[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        scope_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = self._fetch_own(conn, ctx, scope_id, "update_address_scope")
            if "shared" in values and not ctx.is_admin:
                raise errors.PolicyNotAuthorized(action="update_address_scope:shared")
            shared = rbac.shared_ids(conn, "address_scope", [scope_id], ctx.project_id)
            if shared and not values.get("shared", True):
                raise errors.AddressScopeUpdateError(
                    address_scope_id=scope_id, reason="Shared address scope can't be unshared"
                )
            if "shared" in values:
                rbac.set_shared(conn, "address_scope", row, values.pop("shared"))
            if values:
                conn.execute(update(A).where(A.c.id == scope_id).values(**values))
            common.record_change(conn, self.resource, scope_id, "update")
            return render(conn, ctx, [fetch(conn, ctx, scope_id)])[0]

    def delete(self, db: Database, ctx: Context, scope_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            self._fetch_own(conn, ctx, scope_id, "delete_address_scope")
            P = schema.subnetpools
            if conn.execute(select(exists().where(P.c.address_scope_id == scope_id))).scalar():
                raise errors.AddressScopeInUse(address_scope_id=scope_id)
            common.delete_resource(conn, A, self.resource, scope_id)

    def set_tags(
        self, db: Database, ctx: Context, scope_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        raise errors.ResourceNotFound()  # address scopes carry no tags

    @staticmethod
    def _fetch_own(conn: Connection, ctx: Context, scope_id: str, action: str) -> Row:
        row = fetch(conn, ctx, scope_id)
        if not owned(ctx, row):
            raise errors.PolicyNotAuthorized(action=action)
        return row
