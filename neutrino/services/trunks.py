"""Trunks: one port (the parent) carrying other ports (subports) as VLANs, as Neutron has them.

The checks are Neutron's (neutron/services/trunk/rules.py), in its order and
with its errors. A parent must be no trunk's parent or subport yet and, as
with Neutron's Open vSwitch driver, not bound to a host: a trunk is made
before its parent is plugged, and deleted after it is unplugged. A subport
must be no trunk's port and have no device; it rides the parent on a VLAN
(1-4094), or on its own network's VLAN (`inherit`); its network's MTU must
not exceed the parent's. A disabled trunk (admin_state_up false) cannot be
changed but by an update, nor deleted.

A trunk is DOWN when made or changed, until its parent's host reports: BUILD
while subports are being wired, ACTIVE once all are (feed.record_report). The
parent port shows the trunk as `trunk_details` (services/ports.py), which is
how the agent learns to wire it: each subport becomes a VLAN subinterface of
the parent's tap, bridged into the subport's network.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, insert, select

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common, ports
from neutrino.services.common import Tags
from neutrino.services.listing import Listed, Listing, Source, standard_columns

T, S, P, N = schema.trunks, schema.trunk_subports, schema.ports, schema.networks
VLAN, INHERIT = "vlan", "inherit"
SUBPORT_OWNER = "trunk:subport"
SEGMENT_KEYS = ("segmentation_type", "segmentation_id")
DOWN, BUILD, ACTIVE = "DOWN", "BUILD", "ACTIVE"
LISTING = Listing(T, standard_columns(T))


def invalid(message: str) -> errors.InvalidInput:
    return errors.InvalidInput(error_message=message)


def subports_format(value: Any) -> list[dict[str, Any]]:
    """neutron-lib's validate_subports, in its order and with its messages: a list of objects,
    each with a unique port UUID and both segmentation details, no two on the same segment
    (`inherit` ones are checked once their network is known)."""
    if not isinstance(value, list):
        raise invalid(f"Invalid data format for subports: '{value}' is not a list")
    port_ids: set[str] = set()
    segments: list[tuple[Any, Any]] = []  # compared, never hashed: any JSON value may be here
    out = []
    for subport in value:
        if not isinstance(subport, dict):
            raise invalid(f"Invalid data format for subport: '{subport}' is not a dict")
        if "port_id" not in subport:
            raise invalid("A valid port UUID must be specified")
        try:
            port_id = str(uuid.UUID(subport["port_id"]))
        except (TypeError, ValueError, AttributeError):
            raise invalid(f"Invalid UUID for subport: '{subport['port_id']}'") from None
        if port_id in port_ids:
            raise invalid(f"Non unique UUID for subport: '{subport['port_id']}'")
        port_ids.add(port_id)
        kind, segment = subport.get("segmentation_type"), subport.get("segmentation_id")
        # As sent, in its order (messages show it), with the port's UUID in its usual form.
        out.append({**subport, "port_id": port_id})
        if kind == INHERIT:
            continue
        if (not kind or segment is None) and len(subport) > 1:
            raise invalid(
                f"Invalid subport details '{subport}': missing segmentation information. "
                "Must specify both segmentation_id and segmentation_type"
            )
        if (kind, segment) in segments:
            raise invalid(f"Segmentation ID '{segment}' for '{port_id}' is not unique")
        if segment is not None:
            segments.append((kind, segment))
    return out


def subports_body(body: Any) -> list[dict[str, Any]]:
    """The subports of an add_subports or remove_subports body: `{"sub_ports": [...]}`."""
    if not isinstance(body, dict) or "sub_ports" not in body:
        raise errors.BadRequest(resource="trunk", msg='The body must be {"sub_ports": [...]}')
    return subports_format(body["sub_ports"])


# -- visibility and rendering ----------------------------------------------------------------
def visible(ctx: Context) -> ColumnElement[bool] | None:
    return None if ctx.is_admin else T.c.project_id == ctx.project_id


def fetch(conn: Connection, ctx: Context, trunk_id: str) -> Row:
    seen = visible(ctx)
    row = conn.execute(
        select(T).where(T.c.id == trunk_id, *([] if seen is None else [seen]))
    ).first()
    if row is None:
        raise errors.TrunkNotFound(trunk_id=trunk_id)
    return row


def subports_of(conn: Connection, trunk_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {i: [] for i in trunk_ids}
    for chunk in common.chunked(trunk_ids):
        for row in conn.execute(
            select(S)
            .where(S.c.trunk_id.in_(chunk))
            .order_by(S.c.segmentation_type, S.c.segmentation_id)
        ):
            found[row.trunk_id].append(
                {
                    "port_id": row.port_id,
                    "segmentation_type": row.segmentation_type,
                    "segmentation_id": row.segmentation_id,
                }
            )
    return found


def render(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    subports, tags = subports_of(conn, ids), common.load_tags(conn, ids)
    return [
        {
            **common.render_standard(r, tags),
            "admin_state_up": r.admin_state_up,
            "status": r.status,
            "port_id": r.port_id,
            "sub_ports": subports[r.id],
        }
        for r in rows
    ]


# -- rules -----------------------------------------------------------------------------------
def require_unused(conn: Connection, port_id: str) -> None:
    """No trunk has the port yet, as a subport or as its parent."""
    if conn.execute(select(S.c.trunk_id).where(S.c.port_id == port_id)).first():
        raise errors.TrunkPortInUse(port_id=port_id)
    if conn.execute(select(T.c.id).where(T.c.port_id == port_id)).first():
        raise errors.ParentPortInUse(port_id=port_id)


def check_parent(conn: Connection, ctx: Context, port_id: str) -> Row:
    port = ports.fetch(conn, ctx, port_id)  # first: what others' trunks hold is not told
    require_unused(conn, port_id)
    if port.binding_host_id:
        raise errors.ParentPortInUse(port_id=port_id)
    return port


def network_of(conn: Connection, port_id: str) -> Row | None:
    return conn.execute(
        select(N.c.mtu, N.c.network_type, N.c.segmentation_id)
        .join(P, P.c.network_id == N.c.id)
        .where(P.c.id == port_id)
    ).first()


def segment(subport: dict[str, Any]) -> tuple[str, int]:
    """The subport's (segmentation_type, segmentation_id), checked."""
    if any(key not in subport for key in SEGMENT_KEYS):
        raise invalid(
            f"Invalid subport details '{subport}': missing segmentation information. "
            "Must specify both segmentation_id and segmentation_type"
        )
    kind = subport["segmentation_type"]
    try:
        number = int(subport["segmentation_id"])
    except (TypeError, ValueError):
        raise invalid(
            f"Invalid subport details: segmentation_id '{subport['segmentation_id']}' is not an "
            "integer"
        ) from None
    if kind != VLAN:
        raise invalid(f"Unknown segmentation_type '{kind}'")
    if not 1 <= number <= 4094:
        raise invalid(f"Segmentation ID '{number}' is not in range")
    return kind, number


def check_subports(
    conn: Connection, ctx: Context, subports: list[dict[str, Any]], parent: Row
) -> list[dict[str, Any]]:
    """The subports as they will be stored (`inherit` resolved), or Neutron's error."""
    seen = ports.visible(ctx)
    parent_network = network_of(conn, parent.id)
    checked = []
    for subport in subports:
        port_id = subport["port_id"]
        known = conn.execute(
            select(P.c.id).where(P.c.id == port_id, *([] if seen is None else [seen]))
        ).first()
        network = network_of(conn, port_id) if known else None
        if network is not None and subport.get("segmentation_type") == INHERIT:
            subport = {
                "port_id": port_id,
                "segmentation_type": network.network_type,
                "segmentation_id": network.segmentation_id,
            }
        if port_id == parent.id:
            raise errors.ParentPortInUse(port_id=port_id)
        if parent_network and network and network.mtu > parent_network.mtu:
            raise errors.SubPortMtuGreaterThanTrunkPortMtu(
                port_id=port_id,
                port_mtu=network.mtu,
                trunk_id=parent.id,  # Neutron names the parent port here
                trunk_mtu=parent_network.mtu,
            )
        kind, number = segment(subport)
        port = ports.fetch(conn, ctx, port_id)
        require_unused(conn, port_id)
        if port.device_id:
            raise errors.PortInUse(
                port_id=port_id, net_id=port.network_id, device_id=port.device_id
            )
        checked.append({"port_id": port_id, "segmentation_type": kind, "segmentation_id": number})
    return checked


def require_enabled(trunk: Row) -> None:
    if not trunk.admin_state_up:
        raise errors.TrunkDisabled(trunk_id=trunk.id)


def parent_host(conn: Connection, trunk: Row) -> str:
    return conn.execute(select(P.c.binding_host_id).where(P.c.id == trunk.port_id)).scalar_one()


def attach(conn: Connection, trunk: Row, subports: list[dict[str, Any]], host: str) -> None:
    """Store the subports: each becomes the trunk's (device_owner trunk:subport) and goes where
    its parent is bound."""
    for subport in subports:
        taken = conn.execute(
            select(S.c.port_id).where(
                S.c.trunk_id == trunk.id,
                S.c.segmentation_type == subport["segmentation_type"],
                S.c.segmentation_id == subport["segmentation_id"],
            )
        ).first()
        if taken:
            raise errors.DuplicateSubPort(trunk_id=trunk.id, **subport)
        conn.execute(insert(S).values(trunk_id=trunk.id, **subport))
        port = conn.execute(select(P).where(P.c.id == subport["port_id"])).one()
        common.bump(conn, P, "port", port, {"device_owner": SUBPORT_OWNER, "binding_host_id": host})


def detach(conn: Connection, port_ids: list[str]) -> None:
    """The ports are subports no more: unbound, owned by nobody, DOWN."""
    conn.execute(delete(S).where(S.c.port_id.in_(port_ids)))
    for port in conn.execute(select(P).where(P.c.id.in_(port_ids))).all():
        common.bump(
            conn, P, "port", port, {"device_owner": "", "binding_host_id": "", "status": DOWN}
        )


def changed(conn: Connection, trunk: Row, values: dict[str, Any]) -> None:
    """Bump the trunk, and tell agents its parent port's trunk_details changed."""
    common.bump(conn, T, "trunk", trunk, values)
    common.record_change(conn, "port", trunk.port_id, "update")


# -- service ---------------------------------------------------------------------------------
class Trunks(Listed):
    resource = "trunk"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        return Source(LISTING, visible(ctx), render)

    def get(self, db: Database, ctx: Context, trunk_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(conn, [fetch(conn, ctx, trunk_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            parent = check_parent(conn, ctx, values["port_id"])
            subports = check_subports(conn, ctx, values["sub_ports"], parent)
            row = common.standard_values(ctx, values)
            row.update(admin_state_up=values["admin_state_up"], status=DOWN, port_id=parent.id)
            common.insert_resource(conn, T, "trunk", row)
            trunk = fetch(conn, ctx, row["id"])
            attach(conn, trunk, subports, parent.binding_host_id)
            common.record_change(conn, "port", parent.id, "update")
            return render(conn, [trunk])[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        trunk_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, trunk_id)
            common.check_revision(row, if_match)
            common.bump(conn, T, "trunk", row, values)
            return render(conn, [fetch(conn, ctx, trunk_id)])[0]

    def delete(self, db: Database, ctx: Context, trunk_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            trunk = fetch(conn, ctx, trunk_id)
            require_enabled(trunk)
            if parent_host(conn, trunk):
                raise errors.TrunkInUse(trunk_id=trunk_id)
            subports = conn.execute(select(S.c.port_id).where(S.c.trunk_id == trunk_id))
            detach(conn, list(subports.scalars()))
            common.delete_resource(conn, T, "trunk", trunk_id)
            common.record_change(conn, "port", trunk.port_id, "update")

    def add_subports(self, db: Database, ctx: Context, trunk_id: str, body: Any) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            trunk = fetch(conn, ctx, trunk_id)
            parent = conn.execute(select(P).where(P.c.id == trunk.port_id)).one()
            subports = check_subports(conn, ctx, subports_body(body), parent)
            require_enabled(trunk)
            attach(conn, trunk, subports, parent.binding_host_id)
            changed(conn, trunk, {"status": DOWN})
            return render(conn, [fetch(conn, ctx, trunk_id)])[0]

    def remove_subports(
        self, db: Database, ctx: Context, trunk_id: str, body: Any
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            trunk = fetch(conn, ctx, trunk_id)
            require_enabled(trunk)
            current = set(
                conn.execute(select(S.c.port_id).where(S.c.trunk_id == trunk_id)).scalars()
            )
            removed = [subport["port_id"] for subport in subports_body(body)]
            for port_id in removed:
                if port_id not in current:
                    raise errors.SubPortNotFound(trunk_id=trunk_id, port_id=port_id)
            detach(conn, removed)
            changed(conn, trunk, {"status": DOWN})
            return render(conn, [fetch(conn, ctx, trunk_id)])[0]

    def set_tags(
        self, db: Database, ctx: Context, trunk_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, trunk_id)
            return common.set_tags(conn, T, "trunk", row, add, remove)


def record_report(conn: Connection, host: str, statuses: dict[str, str]) -> None:
    """The status of the trunks whose parent `host` reports (`statuses`: port id -> status):
    DOWN while the parent is, BUILD while subports are being wired, then ACTIVE. Subports
    follow their parent to its host, as Neutron binds them. A parent no longer bound is
    reported by no host: its trunk is DOWN, as Neutron has it once the parent is unbound."""
    unbound = (
        select(T)
        .join(P, P.c.id == T.c.port_id)
        .where(P.c.binding_host_id == "", T.c.status != DOWN)
    )
    for trunk in conn.execute(unbound).all():
        common.bump(conn, T, "trunk", trunk, {"status": DOWN})
    # Every trunk, rather than every port the host reports: trunks are few, a host's ports
    # may be 10,000.
    for trunk in conn.execute(select(T)).all():
        if trunk.port_id not in statuses:
            continue
        subport_ids = list(
            conn.execute(select(S.c.port_id).where(S.c.trunk_id == trunk.id)).scalars()
        )
        status = DOWN
        if statuses[trunk.port_id] == ACTIVE:
            wired = all(statuses.get(port_id) == ACTIVE for port_id in subport_ids)
            status = ACTIVE if wired else BUILD
        if status != trunk.status:
            common.bump(conn, T, "trunk", trunk, {"status": status})
        for port in conn.execute(
            select(P).where(P.c.id.in_(subport_ids), P.c.binding_host_id != host)
        ).all():
            common.bump(conn, P, "port", port, {"binding_host_id": host})
