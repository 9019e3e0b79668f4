"""Address groups: named sets of prefixes that security group rules use as their remote.

Addresses are stored as Neutron shows them, the network of what was sent
with its prefix length (`192.168.0.10/24` is `192.168.0.0/24`). Adding or
removing addresses is a change of the group (its revision moves); the data
plane updates the group's address set in place, never the rules naming it.
A group is visible to its own project, to the projects an RBAC policy
shares it with (for their rules' remote), and to admins; only its project
and admins change it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, insert, select

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common, rbac
from neutrino.services.common import Tags
from neutrino.services.listing import Listed, Listing, Source, standard_columns

AG, ADDRESSES, RULE = (
    schema.address_groups,
    schema.address_group_addresses,
    schema.security_group_rules,
)
LISTING = Listing(AG, standard_columns(AG))


def normalized(address: str) -> str:
    """An address or prefix as Neutron stores it: the network and its prefix length."""
    return str(ipaddress.ip_network(address, strict=False))


def visible(ctx: Context) -> ColumnElement[bool] | None:
    return rbac.visible_objects("address_group", ctx)


def fetch(conn: Connection, ctx: Context, group_id: str, *, for_write: bool = False) -> Row:
    """The address group among those the caller sees; 404 if it is not there. Writing one it
    sees only through a policy is refused as Neutron's policy check refuses it: as if nothing
    were there (the group's `shared`, which lets its project see it, is no attribute)."""
    seen = visible(ctx)
    row = conn.execute(
        select(AG).where(AG.c.id == group_id, *([] if seen is None else [seen]))
    ).first()
    if row is None:
        raise errors.AddressGroupNotFound(address_group_id=group_id)
    if for_write and not ctx.is_admin and row.project_id != ctx.project_id:
        raise errors.HTTPNotFound()
    return row


def render(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    addresses: dict[str, list[str]] = {i: [] for i in ids}
    for chunk in common.chunked(ids):
        for group_id, address in conn.execute(
            select(ADDRESSES.c.address_group_id, ADDRESSES.c.address)
            .where(ADDRESSES.c.address_group_id.in_(chunk))
            .order_by(ADDRESSES.c.address)
        ):
            addresses[group_id].append(address)
    tags = common.load_tags(conn, ids)
    return [{**common.render_standard(r, tags), "addresses": addresses[r.id]} for r in rows]


def requested(body: Any) -> set[str]:
    """The addresses of an add/remove body, normalized; as Neutron, anything netaddr takes."""
    if not isinstance(body, dict) or not isinstance(body.get("addresses"), list):
        raise errors.BadRequest(
            resource="address_group", msg='Request body must be {"addresses": [...]}'
        )
    found = set()
    for address in body["addresses"]:
        try:
            found.add(normalized(address if isinstance(address, str) else ""))
        except ValueError:
            raise errors.AddrFormatError(address=address) from None
    return found


def current(conn: Connection, group_id: str) -> set[str]:
    return set(
        conn.execute(
            select(ADDRESSES.c.address).where(ADDRESSES.c.address_group_id == group_id)
        ).scalars()
    )


def add(conn: Connection, group_id: str, addresses: set[str]) -> None:
    present = sorted(addresses & current(conn, group_id))
    if present:
        raise errors.AddressesAlreadyExist(addresses=present, address_group_id=group_id)
    for address in sorted(addresses):
        conn.execute(insert(ADDRESSES).values(address_group_id=group_id, address=address))


class AddressGroups(Listed):
    resource = "address_group"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        return Source(LISTING, visible(ctx), render)

    def get(self, db: Database, ctx: Context, group_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(conn, [fetch(conn, ctx, group_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        addresses = {normalized(a) for a in values.pop("addresses", [])}
        with db.write() as conn:
            row = common.standard_values(ctx, values)
            common.insert_resource(conn, AG, self.resource, row)
            add(conn, row["id"], addresses)
            return render(conn, [fetch(conn, ctx, row["id"])])[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        group_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, group_id, for_write=True)
            common.check_revision(row, if_match)
            common.bump(conn, AG, self.resource, row, values)
            return render(conn, [fetch(conn, ctx, group_id)])[0]

    def delete(self, db: Database, ctx: Context, group_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            fetch(conn, ctx, group_id, for_write=True)
            if conn.execute(
                select(RULE.c.id).where(RULE.c.remote_address_group_id == group_id).limit(1)
            ).first():
                raise errors.AddressGroupInUse(address_group_id=group_id)
            conn.execute(delete(ADDRESSES).where(ADDRESSES.c.address_group_id == group_id))
            common.delete_resource(conn, AG, self.resource, group_id)

    def set_tags(
        self, db: Database, ctx: Context, group_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, group_id, for_write=True)
            return common.set_tags(conn, AG, self.resource, row, add, remove)

    def add_addresses(self, db: Database, ctx: Context, group_id: str, body: Any) -> dict[str, Any]:
        return self._change(db, ctx, group_id, body, adding=True)

    def remove_addresses(
        self, db: Database, ctx: Context, group_id: str, body: Any
    ) -> dict[str, Any]:
        return self._change(db, ctx, group_id, body, adding=False)

    def _change(
        self, db: Database, ctx: Context, group_id: str, body: Any, *, adding: bool
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, group_id, for_write=True)
            addresses = requested(body)
            if adding:
                add(conn, group_id, addresses)
            else:
                missing = sorted(addresses - current(conn, group_id))
                if missing:
                    raise errors.AddressesNotFound(addresses=missing, address_group_id=group_id)
                conn.execute(
                    delete(ADDRESSES).where(
                        ADDRESSES.c.address_group_id == group_id,
                        ADDRESSES.c.address.in_(addresses),
                    )
                )
            common.bump(conn, AG, self.resource, row)
            return {"address_group": render(conn, [fetch(conn, ctx, group_id)])[0]}
