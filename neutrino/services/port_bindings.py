"""A port's bindings (binding-extended): the hosts it is bound to, one of them active.

The active binding is the port's `binding:host_id`, the host whose agent plugs
it: the one thing that puts a port on a host. Live migration adds an inactive
binding on the destination (nothing is plugged there), activates it once the
instance runs there (the port's host becomes that one, so the destination's
agent plugs it and the source's unplugs it; the source keeps an inactive
binding), and then deletes the source's. As in Neutron, only compute and shared
file system ports have more than one binding, and only an administrator (the
compute service) manages them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select

from neutrino import errors
from neutrino.api.v2.computed import page
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common, ports
from neutrino.services.common import Tags

B, P = schema.port_inactive_bindings, schema.ports
ACTIVE, INACTIVE = "ACTIVE", "INACTIVE"
MIGRATING_OWNERS = ("compute:", "manila:")


def body(port: Row, host: str, status: str) -> dict[str, Any]:
    """A binding of `port`: the active one has the port's profile."""
    return {
        "host": host,
        "vif_type": ports.vif_type(host),
        "vnic_type": "normal",
        "status": status,
        "profile": (port.binding_profile or {}) if status == ACTIVE else {},
        "vif_details": ports.vif_details(host, port.network_id),
    }


def require_admin(ctx: Context, action: str) -> None:
    if not ctx.is_admin:
        raise errors.PolicyNotAuthorized(action=action)


class PortBindings:
    """The bindings of one port (`under`), as a collection of the API keyed by host."""

    resource = "binding"

    def __init__(self, port_id: str = "") -> None:
        self.port_id = port_id

    def under(self, port_id: str) -> PortBindings:
        return PortBindings(port_id)

    def _port(self, conn: Connection, ctx: Context) -> Row:
        port = ports.fetch(conn, ctx, self.port_id)
        if not port.device_owner.startswith(MIGRATING_OWNERS):
            raise errors.BadRequest(
                resource="port",
                msg=(
                    f"Invalid port {port.id}. Operation only valid on compute and shared "
                    "filesystem ports"
                ),
            )
        return port

    @staticmethod
    def _bindings(conn: Connection, ctx: Context, port: Row) -> list[dict[str, Any]]:
        """The active binding (host "" while unbound), then the inactive ones; none for
        anyone but an administrator, as Neutron's policy shows them."""
        if not ctx.is_admin:
            return []
        inactive = conn.execute(select(B.c.host).where(B.c.port_id == port.id)).scalars()
        return [
            body(port, port.binding_host_id, ACTIVE),
            *(body(port, h, INACTIVE) for h in inactive),
        ]

    def _find(self, conn: Connection, ctx: Context, host: str) -> tuple[Row, dict[str, Any]]:
        port = self._port(conn, ctx)
        found = next((b for b in self._bindings(conn, ctx, port) if b["host"] == host), None)
        if found is None:
            raise errors.PortBindingNotFound(port_id=port.id, host=host)
        return port, found

    def list(
        self, db: Database, ctx: Context, query: ListQuery
    ) -> tuple[list[dict[str, Any]], bool]:
        with db.read() as conn:
            items = self._bindings(conn, ctx, self._port(conn, ctx))
        wanted = [i for i in items if all(i[k] in v for k, v in query.filters.items())]
        return page(wanted, query, "host"), False

    def get(self, db: Database, ctx: Context, host: str) -> dict[str, Any]:
        with db.read() as conn:
            return self._find(conn, ctx, host)[1]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        """An inactive binding: the port stays plugged where it is."""
        require_admin(ctx, "create_port_binding")
        host = values["host"]
        with db.write() as conn:
            port = self._port(conn, ctx)
            if any(b["host"] == host for b in self._bindings(conn, ctx, port)):
                raise errors.PortBindingAlreadyExists(port_id=port.id, host=host)
            conn.execute(insert(B).values(port_id=port.id, host=host))
            common.bump(conn, P, "port", port)
            return body(port, host, INACTIVE)

    def update(
        self, db: Database, ctx: Context, host: str, values: dict[str, Any], if_match: int | None
    ) -> dict[str, Any]:
        """vnic_type and profile, whose only values here are the ones every binding has."""
        require_admin(ctx, "update_port_binding")
        with db.read() as conn:
            return self._find(conn, ctx, host)[1]

    def delete(self, db: Database, ctx: Context, host: str) -> None:
        """Deleting the active binding unbinds the port: its host's agent unplugs it."""
        require_admin(ctx, "delete_port_binding")
        with db.write() as conn:
            port, found = self._find(conn, ctx, host)
            if found["status"] == ACTIVE:
                common.bump(conn, P, "port", port, {"binding_host_id": "", "status": "DOWN"})
                return
            conn.execute(delete(B).where(B.c.port_id == port.id, B.c.host == host))
            common.bump(conn, P, "port", port)

    def activate(self, db: Database, ctx: Context, host: str) -> dict[str, Any]:
        """The port moves to `host`: DOWN until that host's agent has plugged it."""
        require_admin(ctx, "activate")
        with db.write() as conn:
            port = self._port(conn, ctx)
            if host == port.binding_host_id:
                raise errors.PortBindingAlreadyActive(port_id=port.id, host=host)
            self._find(conn, ctx, host)
            conn.execute(delete(B).where(B.c.port_id == port.id, B.c.host == host))
            if port.binding_host_id:
                conn.execute(insert(B).values(port_id=port.id, host=port.binding_host_id))
            common.bump(conn, P, "port", port, {"binding_host_id": host, "status": "DOWN"})
            return body(port, host, ACTIVE)

    def set_tags(
        self, db: Database, ctx: Context, host: str, add: Tags, remove: Tags | None
    ) -> Tags:
        raise errors.ResourceNotFound()
