"""Port forwardings: a floating IP's external ports forwarded to internal ports' addresses.

A floating IP either maps 1:1 to a fixed IP or carries port forwardings,
never both. Each forwarding maps a protocol (tcp or udp) and an external
port, or a range of them, to an IPv4 address of an internal port and a port,
or a range of the same size (each external port to its counterpart), as
Neutron does. The floating IP's router is the one joining the internal
subnet to the floating IP's network, set by its first forwarding and cleared
with its last. Forwardings are rendered inside their floating IP
(`port_forwardings`), so a change of one bumps the floating IP and reaches
the data plane with it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, func, or_, select, update

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common, floatingips, ports, routers
from neutrino.services.common import Tags
from neutrino.services.listing import Listed, Listing, Source

PF, FIP, A = schema.port_forwardings, schema.floatingips, schema.ip_allocations
RESOURCE = "port_forwarding"
Range = tuple[int, int]


def parse_range(text: str) -> Range:
    """A port range as given, "N" or "N:M" (already validated)."""
    low, _, high = text.partition(":")
    return int(low), int(high or low)


def external_ports_in(ranges: list[Range]) -> ColumnElement[bool]:
    return or_(
        *[(PF.c.external_port_start == a) & (PF.c.external_port_end == b) for a, b in ranges]
    )


LISTING = Listing(
    PF,
    {"external_port": PF.c.external_port_start, "external_port_range": PF.c.external_port_start},
    {  # a single external port is a range of one
        "external_port": lambda ports: external_ports_in([(p, p) for p in ports]),
        "external_port_range": lambda texts: external_ports_in([parse_range(t) for t in texts]),
    },
    plain=("id", "internal_ip_address", "protocol", "internal_port_id", "description"),
)


def bad(msg: str) -> errors.BadRequest:
    return errors.BadRequest(resource=RESOURCE, msg=msg)


def span(start: int, end: int) -> str:
    return f"{start}:{end}"


def render(rows: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "external_port": floatingips.single(r.external_port_start, r.external_port_end),
            "internal_port": floatingips.single(r.internal_port_start, r.internal_port_end),
            "internal_ip_address": r.internal_ip_address,
            "protocol": r.protocol,
            "internal_port_id": r.internal_port_id,
            "description": r.description,
            "external_port_range": span(r.external_port_start, r.external_port_end),
            "internal_port_range": span(r.internal_port_start, r.internal_port_end),
        }
        for r in rows
    ]


def requested(values: dict[str, Any], side: str) -> Range | None:
    """The external or internal port(s) a request names, a range taking precedence."""
    if values.get(f"{side}_port_range") is not None:
        return parse_range(values[f"{side}_port_range"])
    if values.get(f"{side}_port") is not None:
        return values[f"{side}_port"], values[f"{side}_port"]
    return None


def check_sizes(internal: Range, external: Range) -> None:
    if internal[1] > internal[0] and internal[1] - internal[0] != external[1] - external[0]:
        raise bad(
            "Invalid ranges of internal and/or external ports. The relation between internal "
            "and external ports must be N-N or 1-N"
        )


def check_collisions(
    conn: Connection, fip_id: str, pf: dict[str, Any], internal: Range, external: Range
) -> None:
    """Ranges may not overlap: external ones of the floating IP, internal ones of the
    destination, for the same protocol."""
    others = select(PF).where(PF.c.protocol == pf["protocol"], PF.c.id != pf["id"])
    sides = (
        (
            "internal_port_range",
            internal,
            others.where(
                PF.c.internal_port_id == pf["internal_port_id"],
                PF.c.internal_ip_address == pf["internal_ip_address"],
            ),
        ),
        ("external_port_range", external, others.where(PF.c.floatingip_id == fip_id)),
    )
    for key, wanted, query in sides:
        side = key.split("_")[0]
        for row in conn.execute(query.order_by(PF.c.id)):
            existing = (getattr(row, f"{side}_port_start"), getattr(row, f"{side}_port_end"))
            if max(existing[0], wanted[0]) <= min(existing[1], wanted[1]):
                raise bad(
                    f"There is a port collision with the {key}. The following ranges collide: "
                    f"{span(*existing)} and {span(*wanted)}"
                )


def fixed_ips(conn: Connection, port_id: str, version: int | None = None) -> list[dict[str, str]]:
    """The port's fixed IPs (of one IP version) as Neutron shows them."""
    return [
        {"subnet_id": sid, "ip_address": ip}
        for sid, ip in conn.execute(
            select(A.c.subnet_id, A.c.ip_address)
            .where(A.c.port_id == port_id)
            .order_by(A.c.position)
        )
        if version in (None, ipaddress.ip_address(ip).version)
    ]


def find_router(conn: Connection, ctx: Context, fip: Row, pf: dict[str, Any]) -> str:
    """The router that joins the internal address's subnet to the floating IP's network;
    fills in the internal address when none was given (the port's first IPv4 one)."""
    port_id = pf["internal_port_id"]
    ports.fetch(conn, ctx, port_id)
    v4 = fixed_ips(conn, port_id, 4)
    if not v4:
        raise bad(f"Requested internal port {port_id} must allocate an IPv4 address at least")
    if not pf.get("internal_ip_address"):
        pf["internal_ip_address"] = v4[0]["ip_address"]
    subnet_ids = [f["subnet_id"] for f in v4 if f["ip_address"] == pf["internal_ip_address"]]
    if not subnet_ids:
        raise bad(
            f"Requested internal IP address {pf['internal_ip_address']} is not suitable for "
            f"internal neutron port {port_id}, as its fixed_ips are {v4}"
        )
    found = routers.routers_between(conn, subnet_ids[0], fip.floating_network_id)
    if not found:
        raise bad(
            f"External network {fip.floating_network_id} is not reachable from subnet "
            f"{subnet_ids[0]}. Cannot set Port forwarding for port {port_id} with Floating IP "
            f"{fip.id}"
        )
    if fip.router_id and fip.router_id != found[0]:
        raise bad(
            f"The Floating IP {fip.id} had been set on router {fip.router_id}, the internal "
            f"Neutron port {port_id} can not reach it"
        )
    return found[0]


def check_no_floatingip(conn: Connection, pf: dict[str, Any]) -> None:
    """An internal port with a floating IP of its own takes no forwarding."""
    fip = conn.execute(
        select(FIP).where(FIP.c.fixed_port_id == pf["internal_port_id"]).order_by(FIP.c.id)
    ).first()
    if fip is not None:
        raise errors.PortHasBindingFloatingIP(
            floating_ip_address=fip.floating_ip_address,
            fip_id=fip.id,
            port_id=pf["internal_port_id"],
            fixed_ip=pf.get("internal_ip_address"),
        )


def changed_fip(conn: Connection, fip: Row, router_id: str | None = None) -> None:
    """A floating IP whose forwardings changed: its revision tells the data plane, and it
    keeps a router only while it has forwardings."""
    left = conn.execute(
        select(func.count()).select_from(PF).where(PF.c.floatingip_id == fip.id)
    ).scalar_one()
    router = (router_id or fip.router_id) if left else None
    common.bump(conn, FIP, "floatingip", fip, {"router_id": router})


class PortForwardings(Listed):
    """The forwardings of one floating IP (`under`), as a collection of the API."""

    resource = RESOURCE

    def __init__(self, fip_id: str = "") -> None:
        self.fip_id = fip_id

    def under(self, fip_id: str) -> PortForwardings:
        return PortForwardings(fip_id)

    def _fetch(self, conn: Connection, pf_id: str) -> Row:
        row = conn.execute(
            select(PF).where(PF.c.id == pf_id, PF.c.floatingip_id == self.fip_id)
        ).first()
        if row is None:
            raise errors.PortForwardingNotFound(id=pf_id)
        return row

    def source(self, ctx: Context, query: ListQuery) -> Source:
        return Source(
            LISTING,
            PF.c.floatingip_id == self.fip_id,
            lambda _conn, rows: render(rows),
            parent=lambda conn: floatingips.fetch(conn, ctx, self.fip_id),
        )

    def get(self, db: Database, ctx: Context, pf_id: str) -> dict[str, Any]:
        with db.read() as conn:
            floatingips.fetch(conn, ctx, self.fip_id)
            return render([self._fetch(conn, pf_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            fip = floatingips.fetch(conn, ctx, self.fip_id, for_write=True)
            external, internal = requested(values, "external"), requested(values, "internal")
            if external is None or internal is None:
                missing = "external_port" if external is None else "internal_port"
                raise bad(f"Either {missing} or {missing}_range must be specified")
            check_sizes(internal, external)
            pf = {**values, "id": common.new_id()}
            check_collisions(conn, fip.id, pf, internal, external)
            check_no_floatingip(conn, pf)
            if fip.fixed_port_id:
                raise errors.FloatingIPPortAlreadyAssociated(
                    port_id=pf["internal_port_id"],
                    fip_id=fip.id,
                    floating_ip_address=fip.floating_ip_address,
                    fixed_ip=pf.get("internal_ip_address"),
                    net_id=fip.floating_network_id,
                )
            router_id = find_router(conn, ctx, fip, pf)
            conn.execute(
                PF.insert().values(
                    id=pf["id"],
                    floatingip_id=fip.id,
                    internal_port_id=pf["internal_port_id"],
                    protocol=pf["protocol"],
                    internal_ip_address=pf["internal_ip_address"],
                    internal_port_start=internal[0],
                    internal_port_end=internal[1],
                    external_port_start=external[0],
                    external_port_end=external[1],
                    description=values.get("description", ""),
                )
            )
            changed_fip(conn, fip, router_id)
            return render([self._fetch(conn, pf["id"])])[0]

    def update(
        self, db: Database, ctx: Context, pf_id: str, values: dict[str, Any], if_match: int | None
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            fip = floatingips.fetch(conn, ctx, self.fip_id, for_write=True)
            row = self._fetch(conn, pf_id)
            if values.get("internal_port_id"):
                check_no_floatingip(conn, values)
            pf = {
                "id": row.id,
                "protocol": values.get("protocol") or row.protocol,
                "internal_port_id": values.get("internal_port_id") or row.internal_port_id,
                "internal_ip_address": values.get("internal_ip_address"),
            }
            if pf["internal_port_id"] != row.internal_port_id:
                find_router(conn, ctx, fip, pf)
            pf["internal_ip_address"] = pf["internal_ip_address"] or row.internal_ip_address
            held = fixed_ips(conn, pf["internal_port_id"])
            if pf["internal_ip_address"] not in [f["ip_address"] for f in held]:
                raise bad(
                    "The internal IP does not correspond to an address on the internal port, "
                    f"which has fixed_ips {held}"
                )
            external = requested(values, "external") or (
                row.external_port_start,
                row.external_port_end,
            )
            internal = requested(values, "internal") or (
                row.internal_port_start,
                row.internal_port_end,
            )
            check_sizes(internal, external)
            check_collisions(conn, fip.id, pf, internal, external)
            changes = {
                "protocol": pf["protocol"],
                "internal_port_id": pf["internal_port_id"],
                "internal_ip_address": pf["internal_ip_address"],
                "internal_port_start": internal[0],
                "internal_port_end": internal[1],
                "external_port_start": external[0],
                "external_port_end": external[1],
            }
            if "description" in values:
                changes["description"] = values["description"]
            conn.execute(update(PF).where(PF.c.id == row.id).values(**changes))
            changed_fip(conn, fip)
            return render([self._fetch(conn, pf_id)])[0]

    def delete(self, db: Database, ctx: Context, pf_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            fip = floatingips.fetch(conn, ctx, self.fip_id, for_write=True)
            conn.execute(delete(PF).where(PF.c.id == self._fetch(conn, pf_id).id))
            changed_fip(conn, fip)

    def set_tags(
        self, db: Database, ctx: Context, pf_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        raise errors.ResourceNotFound()
