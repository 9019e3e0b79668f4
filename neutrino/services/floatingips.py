"""Floating IPs: an external address held by a `network:floatingip` port, mapped 1:1 to a fixed IP.

The address comes at random from the first IPv4 subnet of the external
network that has room, as Neutron picks it (not in allocation order).
Association needs a router that joins the fixed IP's subnet to the floating
IP's network; the floating IP records that router so the data plane knows
where to put the NAT. A client may name that router instead
(floating-ip-router-writable): it needs its gateway on the floating IP's
network, and may reach the fixed IP's subnet by any route, an extra route
through another router for one. Status is DOWN until the host of its router
has applied it (`record_report`, services.realization); any change of
association makes it DOWN again. A floating IP's change is its own: its
router's revision stays, as the router does.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, bindparam, exists, insert, select, update

from neutrino import errors, ipam
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import agents, common, networks, ports, quotas, realization, routers
from neutrino.services.common import Tags
from neutrino.services.listing import Listed, Listing, Source, standard_columns

FIP, P, A = schema.floatingips, schema.ports, schema.ip_allocations
PF = schema.port_forwardings
OWNER = "network:floatingip"
ASSOCIATION = {"port_id", "fixed_ip_address", "router_id"}  # what an update may re-associate
PORT_DETAILS = (
    "name",
    "network_id",
    "mac_address",
    "admin_state_up",
    "status",
    "device_id",
    "device_owner",
)

LISTING = Listing(
    FIP,
    {**standard_columns(FIP), "port_id": FIP.c.fixed_port_id},
    plain=(
        "id",
        "description",
        "project_id",
        "tenant_id",
        "revision_number",
        "floating_ip_address",
        "floating_network_id",
        "router_id",
        "port_id",
        "fixed_ip_address",
        "status",
    ),
)
FIPS_OF_ROUTERS = select(FIP.c.id).where(FIP.c.router_id.in_(common.IDS))
# The associated floating IPs among IDS whose router the L3 agent of `host` serves.
ON_HOST = (
    select(FIP.c.id, FIP.c.status)
    .join(agents.RLA, agents.RLA.c.router_id == FIP.c.router_id)
    .join(agents.AG, agents.AG.c.id == agents.RLA.c.agent_id)
    .where(FIP.c.id.in_(common.IDS), agents.AG.c.host == bindparam("host"))
)


def visible(ctx: Context) -> ColumnElement[bool] | None:
    return None if ctx.is_admin else FIP.c.project_id == ctx.project_id


def fetch(conn: Connection, ctx: Context, fip_id: str, *, for_write: bool = False) -> Row:
    where = [FIP.c.id == fip_id]
    seen = visible(ctx)
    if seen is not None:
        where.append(seen)
    row = conn.execute(select(FIP).where(*where)).first()
    if row is None:
        raise errors.FloatingIPNotFound(floatingip_id=fip_id)
    if for_write and not ctx.is_admin and row.project_id != ctx.project_id:
        raise errors.PolicyNotAuthorized(action="update_floatingip")
    return row


def record_report(
    conn: Connection, host: str, earlier: realization.Applied, applied: realization.Applied
) -> None:
    """A floating IP whose router is on `host` turns ACTIVE once the host has applied its
    latest change, DOWN while the host fails it. Only those this report may move are read: the
    ones changed since the host's `earlier` report, on routers changed since then, or failed by
    either report."""
    after, through = earlier.revision, applied.revision
    routers_changed = realization.changed_between(conn, "router", after, through)
    candidates = (
        realization.changed_between(conn, "floatingip", after, through)
        | {row.id for row in common.rows_for(conn, FIPS_OF_ROUTERS, routers_changed)}
        | earlier.failures("floatingips")
        | applied.failures("floatingips")
    )
    rows = common.rows_for(conn, ON_HOST, candidates, host=host)
    moving = {row.id: row.status for row in rows}
    changed = realization.changed_at(conn, "floatingip", moving)
    for fip_id, status in moving.items():
        state = applied.state("floatingips", fip_id, changed.get(fip_id, 0))
        if state is realization.State.PENDING:
            continue
        now = "ACTIVE" if state is realization.State.REALIZED else "DOWN"
        if now != status:
            conn.execute(update(FIP).where(FIP.c.id == fip_id).values(status=now))


def single(start: int, end: int) -> int | None:
    """The one port of a range of one; None for a wider range."""
    return start if start == end else None


FORWARDINGS_OF = select(PF).where(PF.c.floatingip_id.in_(common.IDS)).order_by(PF.c.id)
PORTS_OF = select(P).where(P.c.id.in_(common.IDS))
INSERT = insert(FIP).returning(*FIP.c)


def forwardings_of(
    conn: Connection, fip_ids: list[str], ranges: bool
) -> dict[str, list[dict[str, Any]]]:
    """What floating IPs show of their port forwardings (expose-port-forwarding-in-fip); with
    `ranges`, also their port ranges, which the data plane needs."""
    shown = ("id", "internal_ip_address", "protocol", "internal_port_id")
    found: dict[str, list[dict[str, Any]]] = {}
    for row in common.rows_for(conn, FORWARDINGS_OF, fip_ids):
        item = {key: getattr(row, key) for key in shown}
        for side in ("external_port", "internal_port"):  # a range shows no single port
            port = single(getattr(row, f"{side}_start"), getattr(row, f"{side}_end"))
            if port is not None:
                item[side] = port
            if ranges:
                item[f"{side}_range"] = (
                    f"{getattr(row, f'{side}_start')}:{getattr(row, f'{side}_end')}"
                )
        found.setdefault(row.floatingip_id, []).append(item)
    return found


def render(conn: Connection, rows: list[Row], ranges: bool = False) -> list[dict[str, Any]]:
    """`ranges`: port forwardings with their port ranges (for the change feed)."""
    tags = common.load_tags(conn, [r.id for r in rows])
    forwardings = forwardings_of(conn, [r.id for r in rows], ranges)
    details = port_details(conn, rows)
    return [shown(r, tags, forwardings, details) for r in rows]


def port_details(conn: Connection, rows: list[Row]) -> dict[str, dict[str, Any]]:
    """What the floating IPs of `rows` show of their fixed ports, by port id."""
    port_ids = [r.fixed_port_id for r in rows if r.fixed_port_id]
    return {
        port.id: {key: getattr(port, key) for key in PORT_DETAILS}
        for port in common.rows_for(conn, PORTS_OF, port_ids)
    }


def shown(
    r: Row,
    tags: dict[str, list[str]],
    forwardings: dict[str, list[dict[str, Any]]],
    details: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    item = common.render_standard(r, tags)
    del item["name"]  # floating IPs have a description but no name
    item.update(
        {
            "floating_ip_address": r.floating_ip_address,
            "floating_network_id": r.floating_network_id,
            "router_id": r.router_id,
            "port_id": r.fixed_port_id,
            "fixed_ip_address": r.fixed_ip_address,
            "status": r.status,
            "port_details": details.get(r.fixed_port_id) if r.fixed_port_id else None,
            "port_forwardings": forwardings.get(r.id, []),
        }
    )
    return item


def random_free_address(conn: Connection, subnet: Row) -> str | None:
    """A free address of `subnet` chosen at random; None when its pools are exhausted.

    Random probes cost one indexed lookup each, so a sparse pool never loads
    its allocations; only a nearly full one is scanned, to pick among the rest.
    """
    pools = ipam.pools_from(subnet.allocation_pools)

    def is_taken(candidate: ipam.Address) -> bool:
        return conn.execute(
            select(exists().where(A.c.subnet_id == subnet.id, A.c.ip_address == str(candidate)))
        ).scalar_one()

    for candidate in ipam.random_candidates(pools):
        if not is_taken(candidate):
            return str(candidate)
    taken = {
        ipaddress.ip_address(ip)
        for ip in conn.execute(select(A.c.ip_address).where(A.c.subnet_id == subnet.id)).scalars()
    }
    free = [
        ipaddress.ip_address(value)
        for start, end in pools
        for value in range(int(start), int(end) + 1)
        if ipaddress.ip_address(value) not in taken
    ]
    return str(random.choice(free)) if free else None


def fip_fixed_ips(
    conn: Connection, network_id: str, values: dict[str, Any]
) -> list[dict[str, str]]:
    """The floating IP port's one address: the one asked for (admin), or random from an
    IPv4 subnet."""
    subnet_id, address = values.get("subnet_id"), values.get("floating_ip_address")
    if address is not None:
        return [{"ip_address": address, **({"subnet_id": subnet_id} if subnet_id else {})}]
    candidates = [
        s
        for s in ports.serving(conn, network_id, OWNER)
        if s.ip_version == 4 and subnet_id in (None, s.id)
    ]
    if subnet_id is not None and not candidates:
        raise errors.BadRequest(
            resource="floatingip",
            msg=f"Subnet {subnet_id} is not an IPv4 subnet of network {network_id}",
        )
    if not candidates:
        raise errors.ExternalIpAddressExhausted(net_id=network_id)
    for subnet in candidates:
        address = random_free_address(conn, subnet)
        if address is not None:
            return [{"subnet_id": subnet.id, "ip_address": address}]
    raise errors.IpAddressGenerationFailure(net_id=network_id)


def association(
    conn: Connection,
    ctx: Context,
    fip: dict[str, Any],
    port_id: str | None,
    fixed_ip: str | None,
    router_id: str | None = None,
) -> dict[str, Any]:
    """The columns that associate `fip` (its id, project_id, floating_network_id) with a
    port's fixed IP, through `router_id` when given.

    With no port: the columns of an unassociated floating IP.
    """
    if port_id is None:
        for key, value in (("fixed_ip_address", fixed_ip), ("router_id", router_id)):
            if value is not None:
                raise errors.BadRequest(
                    resource="floatingip", msg=f"{key} cannot be specified without a port_id"
                )
        return {"fixed_port_id": None, "fixed_ip_address": None, "router_id": None}
    port = ports.fetch(conn, ctx, port_id)
    if port.project_id != fip["project_id"] and not ctx.is_admin:
        raise errors.BadRequest(
            resource="floatingip",
            msg=(
                f"Cannot process floating IP association with Port {port_id}, "
                "since that port is owned by a different project"
            ),
        )
    if port.device_owner in ports.ROUTER_OWNERS:
        raise errors.BadRequest(
            resource="floatingip", msg=f"Port {port_id} is a router or floating IP port"
        )
    subnet_id, fixed_ip = choose_fixed_ip(conn, port_id, fixed_ip)
    router_id = hosting_router(conn, ctx, fip["floating_network_id"], subnet_id, port_id, router_id)
    other = conn.execute(
        select(FIP).where(
            FIP.c.floating_network_id == fip["floating_network_id"],
            FIP.c.fixed_port_id == port_id,
            FIP.c.fixed_ip_address == fixed_ip,
            FIP.c.id != fip["id"],
        )
    ).first()
    if other is not None:
        raise errors.FloatingIPPortAlreadyAssociated(
            floating_ip_address=other.floating_ip_address,
            fip_id=other.id,
            port_id=port_id,
            fixed_ip=fixed_ip,
            net_id=other.floating_network_id,
        )
    return {"fixed_port_id": port_id, "fixed_ip_address": fixed_ip, "router_id": router_id}


def hosting_router(
    conn: Connection,
    ctx: Context,
    network_id: str,
    subnet_id: str,
    port_id: str,
    router_id: str | None,
) -> str:
    """The router that holds the NAT of a floating IP of `network_id` for a fixed IP on
    `subnet_id`: the one the client named, if it has its gateway on that network (how it
    reaches the subnet is the client's routing), else the first that joins the two."""
    if router_id is not None:
        router = routers.fetch(conn, ctx, router_id)
        if router.gw_network_id != network_id:
            raise errors.FloatingIPRouterWithoutGateway(
                router_id=router_id, external_network_id=network_id
            )
        return str(router.id)
    found = routers.routers_between(conn, subnet_id, network_id)
    if not found:
        raise errors.ExternalGatewayForFloatingIPNotFound(
            external_network_id=network_id, subnet_id=subnet_id, port_id=port_id
        )
    return found[0]


def choose_fixed_ip(conn: Connection, port_id: str, fixed_ip: str | None) -> tuple[str, str]:
    """(subnet id, address) of the port's IPv4 address the floating IP maps to."""
    held = [
        (sid, ip)
        for sid, ip in conn.execute(
            select(A.c.subnet_id, A.c.ip_address)
            .where(A.c.port_id == port_id)
            .order_by(A.c.position)
        )
        if ipaddress.ip_address(ip).version == 4
    ]
    if fixed_ip is not None:
        if ipaddress.ip_address(fixed_ip).version != 4:
            raise errors.BadRequest(
                resource="floatingip",
                msg=(
                    f"Cannot process floating IP association with {fixed_ip}, "
                    "since that is not an IPv4 address"
                ),
            )
        match = [(sid, ip) for sid, ip in held if ip == fixed_ip]
        if not match:
            raise errors.BadRequest(
                resource="floatingip", msg=f"Port {port_id} does not have fixed ip {fixed_ip}"
            )
        return match[0]
    if not held:
        raise errors.BadRequest(
            resource="floatingip",
            msg=f"Cannot add floating IP to port {port_id} that has no fixed IPv4 addresses",
        )
    if len(held) > 1:
        raise errors.BadRequest(
            resource="floatingip",
            msg=(
                f"Port {port_id} has multiple fixed IPv4 addresses.  "
                "Must provide a specific IPv4 address when assigning a floating IP"
            ),
        )
    return held[0]


def has_forwardings(conn: Connection, fip_id: str) -> bool:
    return conn.execute(select(exists().where(PF.c.floatingip_id == fip_id))).scalar_one()


def remove(conn: Connection, row: Row) -> None:
    """Delete a floating IP with its port; its router forgets the mapping."""
    common.delete_resource(conn, FIP, "floatingip", row.id)
    ports.remove_port(conn, row.floating_port_id)


def remove_on_network(conn: Connection, network_id: str) -> None:
    """An external network's floating IPs go with it, as in Neutron."""
    for row in conn.execute(select(FIP).where(FIP.c.floating_network_id == network_id)).all():
        remove(conn, row)


class FloatingIPs(Listed):
    resource = "floatingip"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        return Source(LISTING, visible(ctx), render)

    def get(self, db: Database, ctx: Context, fip_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(conn, [fetch(conn, ctx, fip_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            network = networks.fetch(conn, ctx, values["floating_network_id"])
            if not network.external:
                raise errors.BadRequest(
                    resource="floatingip",
                    msg=f"Network {network.id} is not a valid external network",
                )
            row = common.standard_values(ctx, values)
            quotas.check(conn, row["project_id"], "floatingip", 1)
            fixed_ips = fip_fixed_ips(conn, network.id, values)
            port_id = ports.insert_port(
                conn,
                "",
                network,
                {
                    "fixed_ips": fixed_ips,
                    "device_owner": OWNER,
                    "device_id": row["id"],
                    "port_security_enabled": False,
                },
            )["id"]
            row.update(
                floating_network_id=network.id,
                floating_ip_address=fixed_ips[0]["ip_address"],
                floating_port_id=port_id,
                status="DOWN",
            )
            row.update(
                association(
                    conn,
                    ctx,
                    row,
                    values.get("port_id"),
                    values.get("fixed_ip_address"),
                    values.get("router_id"),
                )
            )
            stored = conn.execute(INSERT, row).one()
            common.record_change(conn, "floatingip", stored.id, "create")
            # Its body from what was written: a new floating IP has no tags or forwardings yet.
            return shown(stored, {}, {}, port_details(conn, [stored]))

    def update(
        self, db: Database, ctx: Context, fip_id: str, values: dict[str, Any], if_match: int | None
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, fip_id, for_write=True)
            common.check_revision(row, if_match)
            changes = {k: v for k, v in values.items() if k == "description"}
            forwarded = has_forwardings(conn, fip_id)
            if forwarded and (values.get("port_id") or values.get("router_id")):
                raise errors.FipInUseByPortForwarding(id=fip_id)
            # Without port_id the association stays (an update of the description only); an
            # empty update disassociates, as Neutron's legacy behaviour that clients rely on.
            # router_id alone moves the association of the same fixed IP to that router.
            # A floating IP with port forwardings has no association to change.
            if not forwarded and (not values or values.keys() & ASSOCIATION):
                port_id, fixed_ip = values.get("port_id"), values.get("fixed_ip_address")
                if "port_id" not in values and "router_id" in values:
                    port_id, fixed_ip = row.fixed_port_id, fixed_ip or row.fixed_ip_address
                changes.update(
                    association(
                        conn, ctx, dict(row._mapping), port_id, fixed_ip, values.get("router_id")
                    )
                )
                if (
                    changes["fixed_port_id"],
                    changes["fixed_ip_address"],
                    changes["router_id"],
                ) != (row.fixed_port_id, row.fixed_ip_address, row.router_id):
                    changes["status"] = "DOWN"
            common.bump(conn, FIP, "floatingip", row, changes)
            return render(conn, [fetch(conn, ctx, fip_id)])[0]

    def delete(self, db: Database, ctx: Context, fip_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, fip_id, for_write=True)
            if has_forwardings(conn, fip_id):
                raise errors.FipInUseByPortForwarding(id=fip_id)
            remove(conn, row)

    def set_tags(
        self, db: Database, ctx: Context, fip_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        common.require_writer(ctx)
        with db.write() as conn:
            return common.set_tags(
                conn, FIP, "floatingip", fetch(conn, ctx, fip_id, for_write=True), add, remove
            )
