"""Conntrack helpers: connections of a protocol to a port through a router get a kernel helper.

A helper reads its connections' payload and lets the connections they announce (an FTP
data connection, a TFTP transfer) through the router's NAT as related ones. A router's
helpers are rendered inside it (`conntrack_helpers`), so a change of one bumps the router
and reaches the data plane with it. The helpers allowed are those Linux has, each with the
protocols it tracks (plan.routers.CONNTRACK_HELPERS), where Neutron reads a configured list.
As in Neutron, a helper is one of its router's: it is seen, changed and listed through the
router as its caller sees it, and goes with it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, select, update

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.plan.routers import CONNTRACK_HELPERS
from neutrino.services import common, routers
from neutrino.services.common import Tags
from neutrino.services.listing import Listed, Listing, Source

CTH, R = schema.conntrack_helpers, schema.routers
RESOURCE = "conntrack_helper"
FIELDS = routers.CONNTRACK_HELPER_FIELDS

LISTING = Listing(
    CTH,
    {},
    unseen_marker_ignored=True,
    plain=("id", "router_id", "protocol", "port", "helper"),
)


def render(rows: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "router_id": r.router_id,
            "protocol": r.protocol,
            "port": r.port,
            "helper": r.helper,
        }
        for r in rows
    ]


def check_allowed(helper: dict[str, Any]) -> None:
    protocols = CONNTRACK_HELPERS.get(helper["helper"])
    if protocols is None:
        raise errors.ConntrackHelperNotAllowed(helper=helper["helper"])
    if helper["protocol"] not in protocols:
        raise errors.InvalidProtocolForHelper(
            helper=helper["helper"],
            protocol=helper["protocol"],
            supported_protocols=", ".join(protocols),
        )


def check_unique(conn: Connection, router_id: str, helper: dict[str, Any], own_id: str) -> None:
    """No two helpers of a router alike; Neutron answers with the values that clash."""
    clash = conn.execute(
        select(CTH.c.id).where(
            CTH.c.router_id == router_id,
            CTH.c.id != own_id,
            *[CTH.c[key] == helper[key] for key in FIELDS],
        )
    ).first()
    if clash is not None:
        values = {"router_id": router_id, **{key: helper[key] for key in FIELDS}}
        raise errors.BadRequest(
            resource=RESOURCE,
            msg=(
                "A duplicate conntrack helper entry with same attributes already exists, "
                f"conflicting values are {values}"
            ),
        )


class ConntrackHelpers(Listed):
    """The helpers of one router (`under`), as a collection of the API."""

    resource = RESOURCE

    def __init__(self, router_id: str = "") -> None:
        self.router_id = router_id

    def under(self, router_id: str) -> ConntrackHelpers:
        return ConntrackHelpers(router_id)

    def _seen(self, ctx: Context) -> ColumnElement[bool]:
        """The helpers of this router, when the caller sees it."""
        where = CTH.c.router_id == self.router_id
        seen = routers.visible(ctx)
        return where if seen is None else where & CTH.c.router_id.in_(select(R.c.id).where(seen))

    def _fetch(self, conn: Connection, ctx: Context, helper_id: str) -> Row:
        row = conn.execute(select(CTH).where(CTH.c.id == helper_id, self._seen(ctx))).first()
        if row is None:
            raise errors.ConntrackHelperNotFound(id=helper_id)
        return row

    def source(self, ctx: Context, query: ListQuery) -> Source:
        """A router the caller cannot see has none, as one that does not exist."""
        return Source(LISTING, self._seen(ctx), lambda _conn, rows: render(rows))

    def get(self, db: Database, ctx: Context, helper_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render([self._fetch(conn, ctx, helper_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        if "project_id" in values:  # the helper is its router's; a project given is checked
            common.owner(ctx, values)
        check_allowed(values)
        with db.write() as conn:
            router = routers.fetch(conn, ctx, self.router_id, for_write=True)
            check_unique(conn, router.id, values, "")
            helper_id = common.new_id()
            conn.execute(
                CTH.insert().values(
                    id=helper_id, router_id=router.id, **{key: values[key] for key in FIELDS}
                )
            )
            common.bump(conn, R, "router", router)
            return render([self._fetch(conn, ctx, helper_id)])[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        helper_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = self._fetch(conn, ctx, helper_id)
            helper = {key: values.get(key, getattr(row, key)) for key in FIELDS}
            check_allowed(helper)
            check_unique(conn, row.router_id, helper, row.id)
            conn.execute(update(CTH).where(CTH.c.id == row.id).values(**helper))
            router = routers.fetch(conn, ctx, row.router_id, for_write=True)
            common.bump(conn, R, "router", router)
            return render([self._fetch(conn, ctx, helper_id)])[0]

    def delete(self, db: Database, ctx: Context, helper_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            row = self._fetch(conn, ctx, helper_id)
            router = routers.fetch(conn, ctx, row.router_id, for_write=True)
            conn.execute(delete(CTH).where(CTH.c.id == row.id))
            common.bump(conn, R, "router", router)

    def set_tags(
        self, db: Database, ctx: Context, helper_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        raise errors.ResourceNotFound()
