"""Flavors and service profiles: operators' named choices of a service provider.

A flavor is of one service type (`L3_ROUTER_NAT` for routers) and is bound to
service profiles; a profile names a provider by its driver. A router made with a
flavor gets the provider of the flavor's first profile. Everyone reads flavors,
only administrators see profiles, and only administrators write either (Neutron's
default policy). A profile bound to a flavor cannot change; a flavor that routers
were made with cannot go.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, false, insert, select, update

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common, providers
from neutrino.services.common import Tags
from neutrino.services.listing import Listed, Listing, Source

F, SP, B = schema.flavors, schema.service_profiles, schema.flavor_service_profile_bindings
FLAVOR_LISTING = Listing(F, {}, plain=("id", "name", "description", "service_type", "enabled"))
PROFILE_LISTING = Listing(SP, {}, plain=("id", "description", "driver", "enabled", "metainfo"))


def require_admin(ctx: Context, action: str) -> None:
    if not ctx.is_admin:
        raise errors.PolicyNotAuthorized(action=action)


def fetch_flavor(conn: Connection, flavor_id: str) -> Row:
    row = conn.execute(select(F).where(F.c.id == flavor_id)).first()
    if row is None:
        raise errors.FlavorNotFound(flavor_id=flavor_id)
    return row


def fetch_profile(conn: Connection, ctx: Context, profile_id: str) -> Row:
    """A profile exists for everyone who asks (ServiceProfileNotFound), but only an
    administrator may see it: others are answered as if the URL named nothing."""
    row = conn.execute(select(SP).where(SP.c.id == profile_id)).first()
    if row is None:
        raise errors.ServiceProfileNotFound(sp_id=profile_id)
    if not ctx.is_admin:
        raise errors.HTTPNotFound()
    return row


def bound_profiles(conn: Connection, flavor_ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {flavor_id: [] for flavor_id in flavor_ids}
    for chunk in common.chunked(flavor_ids):
        for flavor_id, profile_id in conn.execute(
            select(B.c.flavor_id, B.c.service_profile_id)
            .where(B.c.flavor_id.in_(chunk))
            .order_by(B.c.service_profile_id)
        ):
            found[flavor_id].append(profile_id)
    return found


def render_flavors(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    profiles = bound_profiles(conn, [r.id for r in rows])
    return [
        {
            "id": r.id,
            "name": r.name,
            "description": r.description,
            "service_type": r.service_type,
            "enabled": r.enabled,
            "service_profiles": profiles[r.id],
        }
        for r in rows
    ]


def render_profile(row: Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "description": row.description,
        "driver": row.driver,
        "enabled": row.enabled,
        "metainfo": row.metainfo,
    }


def router_provider(conn: Connection, flavor_id: str) -> providers.Provider:
    """The provider a router made with this flavor gets: the first profile's (in ID order)."""
    flavor = fetch_flavor(conn, flavor_id)
    if not flavor.enabled:
        raise errors.FlavorDisabled()
    if flavor.service_type != providers.L3:
        raise errors.InvalidFlavorServiceType(service_type=flavor.service_type)
    profile = conn.execute(
        select(SP)
        .join(B, B.c.service_profile_id == SP.c.id)
        .where(B.c.flavor_id == flavor_id)
        .order_by(SP.c.id)
        .limit(1)
    ).first()
    if profile is None:
        raise errors.FlavorServiceProfileBindingNotFound(sp_id="", fl_id=flavor_id)
    if not profile.enabled:
        raise errors.ServiceProfileDisabled()
    return providers.by_driver(profile.driver)


class Flavors(Listed):
    resource = "flavor"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        return Source(FLAVOR_LISTING, None, render_flavors)

    def get(self, db: Database, ctx: Context, flavor_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render_flavors(conn, [fetch_flavor(conn, flavor_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        require_admin(ctx, "create_flavor")
        # Neutron takes `service_profiles` here and on update but binds profiles only
        # through /flavors/{id}/service_profiles.
        values.pop("service_profiles", None)
        with db.write() as conn:
            flavor_id = common.new_id()
            conn.execute(insert(F).values(id=flavor_id, **values))
            return render_flavors(conn, [fetch_flavor(conn, flavor_id)])[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        flavor_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        values.pop("service_profiles", None)
        with db.write() as conn:
            fetch_flavor(conn, flavor_id)
            require_admin(ctx, "update_flavor")
            if values:
                conn.execute(update(F).where(F.c.id == flavor_id).values(**values))
            return render_flavors(conn, [fetch_flavor(conn, flavor_id)])[0]

    def delete(self, db: Database, ctx: Context, flavor_id: str) -> None:
        with db.write() as conn:
            fetch_flavor(conn, flavor_id)
            require_admin(ctx, "delete_flavor")
            R = schema.routers
            if conn.execute(select(R.c.id).where(R.c.flavor_id == flavor_id).limit(1)).first():
                raise errors.FlavorInUse(flavor_id=flavor_id)
            conn.execute(delete(F).where(F.c.id == flavor_id))  # its bindings go with it

    def set_tags(
        self, db: Database, ctx: Context, flavor_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        raise errors.ResourceNotFound()

    def bind_profile(
        self, db: Database, ctx: Context, flavor_id: str, profile_id: str
    ) -> dict[str, Any]:
        """`POST /flavors/{id}/service_profiles`; answers the profile's ID."""
        require_admin(ctx, "create_flavor_service_profile")
        with db.write() as conn:
            fetch_flavor(conn, flavor_id)
            fetch_profile(conn, ctx, profile_id)
            if self._binding(conn, flavor_id, profile_id) is not None:
                raise errors.FlavorServiceProfileBindingExists(sp_id=profile_id, fl_id=flavor_id)
            conn.execute(insert(B).values(flavor_id=flavor_id, service_profile_id=profile_id))
            return {"id": profile_id}

    def unbind_profile(self, db: Database, ctx: Context, flavor_id: str, profile_id: str) -> None:
        with db.write() as conn:
            if self._binding(conn, flavor_id, profile_id) is None:
                raise errors.FlavorServiceProfileBindingNotFound(sp_id=profile_id, fl_id=flavor_id)
            if not ctx.is_admin:  # nor may others see a binding (Neutron's policy)
                raise errors.HTTPNotFound()
            conn.execute(
                delete(B).where(B.c.flavor_id == flavor_id, B.c.service_profile_id == profile_id)
            )

    @staticmethod
    def _binding(conn: Connection, flavor_id: str, profile_id: str) -> Row | None:
        return conn.execute(
            select(B).where(B.c.flavor_id == flavor_id, B.c.service_profile_id == profile_id)
        ).first()


class ServiceProfiles(Listed):
    resource = "service_profile"

    @staticmethod
    def _visible(ctx: Context) -> ColumnElement[bool] | None:
        return None if ctx.is_admin else false()

    def source(self, ctx: Context, query: ListQuery) -> Source:
        return Source(
            PROFILE_LISTING, self._visible(ctx), lambda _conn, rows: list(map(render_profile, rows))
        )

    def get(self, db: Database, ctx: Context, profile_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render_profile(fetch_profile(conn, ctx, profile_id))

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        require_admin(ctx, "create_service_profile")
        if values["driver"]:
            providers.by_driver(values["driver"])
        elif not values["metainfo"]:
            raise errors.ServiceProfileEmpty()
        with db.write() as conn:
            profile_id = common.new_id()
            conn.execute(insert(SP).values(id=profile_id, **values))
            return render_profile(fetch_profile(conn, ctx, profile_id))

    def update(
        self,
        db: Database,
        ctx: Context,
        profile_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        with db.write() as conn:
            fetch_profile(conn, ctx, profile_id)
            if values.get("driver"):
                providers.by_driver(values["driver"])
            self._check_unbound(conn, profile_id)
            if values:
                conn.execute(update(SP).where(SP.c.id == profile_id).values(**values))
            return render_profile(fetch_profile(conn, ctx, profile_id))

    def delete(self, db: Database, ctx: Context, profile_id: str) -> None:
        with db.write() as conn:
            fetch_profile(conn, ctx, profile_id)
            self._check_unbound(conn, profile_id)
            conn.execute(delete(SP).where(SP.c.id == profile_id))

    def set_tags(
        self, db: Database, ctx: Context, profile_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        raise errors.ResourceNotFound()

    @staticmethod
    def _check_unbound(conn: Connection, profile_id: str) -> None:
        if conn.execute(select(B).where(B.c.service_profile_id == profile_id).limit(1)).first():
            raise errors.ServiceProfileInUse(sp_id=profile_id)
