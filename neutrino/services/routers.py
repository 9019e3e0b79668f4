"""Routers: interfaces on internal subnets, a gateway on an external network, static routes.

A router owns its ports through `router_ports`: one `network:router_interface`
port per attached subnet (holding the subnet's gateway IP) and at most one
`network:router_gateway` port on an external network. Both kinds carry no
security groups and no port security: the data plane trusts router ports.
Interface ports belong to the router's project, also on a shared network
that another project owns. The gateway port belongs to no project (Neutron
leaves its tenant empty), so it counts against nobody's quota and members
never see it in port lists.
"""

from __future__ import annotations

import builtins
import ipaddress
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, bindparam, insert, select, update

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import agents, common, flavors, networks, ports, quotas, subnets
from neutrino.services.common import Tags
from neutrino.services.listing import STANDARD_PLAIN, Listed, Listing, Source, standard_columns
from neutrino.services.providers import by_name

R, RP, P, A, S = (
    schema.routers,
    schema.router_ports,
    schema.ports,
    schema.ip_allocations,
    schema.subnets,
)
FIP, CTH = schema.floatingips, schema.conntrack_helpers
CONNTRACK_HELPER_FIELDS = ("protocol", "port", "helper")  # what a router shows of each
INTERFACE, GATEWAY = "network:router_interface", "network:router_gateway"
MAX_ROUTES = 30  # Neutron's max_routes default

LISTING = Listing(
    R,
    standard_columns(R),
    plain=(
        *STANDARD_PLAIN,
        "admin_state_up",
        "availability_zone_hints",
        "status",
        "routes",
        "flavor_id",
    ),
)


def visible(ctx: Context) -> ColumnElement[bool] | None:
    return None if ctx.is_admin else R.c.project_id == ctx.project_id


def fetch(conn: Connection, ctx: Context, router_id: str, *, for_write: bool = False) -> Row:
    where = [R.c.id == router_id]
    seen = visible(ctx)
    if seen is not None:
        where.append(seen)
    row = conn.execute(select(R).where(*where)).first()
    if row is None:
        raise errors.RouterNotFound(router_id=router_id)
    if for_write and not ctx.is_admin and row.project_id != ctx.project_id:
        raise errors.PolicyNotAuthorized(action="update_router")
    return row


def port_subnets(
    conn: Connection, router_id: str, port_type: str | None = None
) -> list[tuple[str, Row]]:
    """(port id, subnet) for every address on the router's ports, interfaces and gateway; of
    each subnet, its id, network_id and cidr (its other columns are costly to decode)."""
    where = [RP.c.router_id == router_id] + ([RP.c.port_type == port_type] if port_type else [])
    rows = conn.execute(
        select(RP.c.port_id, S.c.id, S.c.network_id, S.c.cidr)
        .join(A, A.c.port_id == RP.c.port_id)
        .join(S, S.c.id == A.c.subnet_id)
        .where(*where)
        .order_by(A.c.position)
    )
    return [(row.port_id, row) for row in rows]


def interface_info(
    router: Row, port_id: str, subnet_ids: list[str], network_id: str
) -> dict[str, Any]:
    """The body Neutron answers add/remove_router_interface with."""
    return {
        "id": router.id,
        "tenant_id": router.project_id,
        "project_id": router.project_id,
        "port_id": port_id,
        "subnet_id": subnet_ids[0] if subnet_ids else None,
        "subnet_ids": subnet_ids,
        "network_id": network_id,
    }


def conntrack_helpers(conn: Connection, router_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each router's conntrack helpers as the router shows them (expose-l3-conntrack-helper)."""
    found: dict[str, list[dict[str, Any]]] = {router_id: [] for router_id in router_ids}
    for chunk in common.chunked(router_ids):
        for row in conn.execute(
            select(CTH)
            .where(CTH.c.router_id.in_(chunk))
            .order_by(CTH.c.protocol, CTH.c.port, CTH.c.helper)
        ):
            found[row.router_id].append({key: row._mapping[key] for key in CONNTRACK_HELPER_FIELDS})
    return found


def render(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    tags = common.load_tags(conn, [r.id for r in rows])
    helpers = conntrack_helpers(conn, [r.id for r in rows])
    gateway_ips: dict[str, list[dict[str, str]]] = {r.gw_port_id: [] for r in rows if r.gw_port_id}
    for chunk in common.chunked(list(gateway_ips)):
        for port_id, subnet_id, ip in conn.execute(
            select(A.c.port_id, A.c.subnet_id, A.c.ip_address)
            .where(A.c.port_id.in_(chunk))
            .order_by(A.c.position)
        ):
            gateway_ips[port_id].append({"subnet_id": subnet_id, "ip_address": ip})
    zones = agents.zones_of(conn, agents.RLA, "router_id", [r.id for r in rows])
    out = []
    for r in rows:
        item = common.render_standard(r, tags)
        item.update(
            {
                "admin_state_up": r.admin_state_up,
                "availability_zone_hints": r.availability_zone_hints,
                "availability_zones": zones[r.id],
                "status": r.status,
                "external_gateway_info": None
                if r.gw_network_id is None
                else {
                    "network_id": r.gw_network_id,
                    "enable_snat": r.enable_snat,
                    "external_fixed_ips": gateway_ips.get(r.gw_port_id, []),
                },
                "routes": r.routes,
                "ha": r.ha,
                "distributed": r.distributed,
                "flavor_id": r.flavor_id,
                "conntrack_helpers": helpers[r.id],
            }
        )
        out.append(item)
    return out


# Neutron's policy shows these to administrators only. On one host a router is one namespace
# whatever they say: they are kept and reported, and change nothing of the data plane.
ADMIN_ONLY = ("ha", "distributed")


def render_for(conn: Connection, ctx: Context, rows: list[Row]) -> list[dict[str, Any]]:
    """Router bodies as `ctx` may see them."""
    items = render(conn, rows)
    if not ctx.is_admin:
        for item in items:
            for key in ADMIN_ONLY:
                del item[key]
    return items


def check_advertised_here(subnet: Row) -> None:
    """A subnet whose router advertisements come from a router outside (an address mode
    without an RA mode) is on no router of ours, as in Neutron."""
    if subnet.ip_version == 6 and subnet.ipv6_ra_mode is None and subnet.ipv6_address_mode:
        raise errors.BadRequest(
            resource="router",
            msg=(
                f"IPv6 subnet {subnet.id} configured to receive RAs from an external router "
                "cannot be added to Neutron Router."
            ),
        )


class Routers(Listed):
    resource = "router"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        return Source(LISTING, visible(ctx), lambda conn, rows: render_for(conn, ctx, rows))

    def get(self, db: Database, ctx: Context, router_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render_for(conn, ctx, [fetch(conn, ctx, router_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        gateway = values.pop("external_gateway_info", None)
        with db.write() as conn:
            row = common.standard_values(ctx, values)
            quotas.check(conn, row["project_id"], "router", 1)
            row.update(
                admin_state_up=values.get("admin_state_up", True),
                status="ACTIVE",
                enable_snat=True,
                routes=[],
                availability_zone_hints=values.get("availability_zone_hints", []),
                ha=bool(values.get("ha")),
                distributed=bool(values.get("distributed")),
                **flavor_values(conn, values),
            )
            agents.check_zone_hints(conn, agents.L3, row["availability_zone_hints"])
            common.insert_resource(conn, R, "router", row)
            if gateway:
                changes = self._gateway_changes(conn, ctx, fetch(conn, ctx, row["id"]), gateway)
                conn.execute(update(R).where(R.c.id == row["id"]).values(**changes))
            agents.schedule_router(conn, row["id"])
            return render_for(conn, ctx, [fetch(conn, ctx, row["id"])])[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        router_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            router = fetch(conn, ctx, router_id, for_write=True)
            common.check_revision(router, if_match)
            if "external_gateway_info" in values:
                values.update(
                    self._gateway_changes(conn, ctx, router, values.pop("external_gateway_info"))
                )
            if "routes" in values:
                check_routes(conn, router_id, values["routes"])
            values = {k: v for k, v in values.items() if k not in ADMIN_ONLY or v is not None}
            check_migration(router, values)
            if router.service_provider and by_name(router.service_provider).refused_flag(values):
                raise errors.InvalidInput(
                    error_message=(
                        "Changing the 'ha' and 'distributed' attributes on a router associated "
                        "with a flavor is not supported"
                    )
                )
            common.bump(conn, R, "router", router, values)
            agents.schedule_router(conn, router_id)
            return render_for(conn, ctx, [fetch(conn, ctx, router_id)])[0]

    def delete(self, db: Database, ctx: Context, router_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            router = fetch(conn, ctx, router_id, for_write=True)
            if port_subnets(conn, router_id, INTERFACE):
                raise errors.RouterInUse(router_id=router_id, reason="still has ports")
            self._gateway_changes(conn, ctx, router, None)
            common.delete_resource(conn, R, "router", router_id)

    def set_tags(
        self, db: Database, ctx: Context, router_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        common.require_writer(ctx)
        with db.write() as conn:
            return common.set_tags(
                conn, R, "router", fetch(conn, ctx, router_id, for_write=True), add, remove
            )

    def change_routes(
        self,
        db: Database,
        ctx: Context,
        router_id: str,
        routes: builtins.list[dict[str, str]],
        *,
        add: bool,
    ) -> dict[str, Any]:
        """extraroute-atomic: add routes not yet present, or remove those given (absent ones are
        no error)."""
        common.require_writer(ctx)
        with db.write() as conn:
            router = fetch(conn, ctx, router_id, for_write=True)
            if add:
                new = router.routes + [r for r in routes if r not in router.routes]
            else:
                new = [r for r in router.routes if r not in routes]
            check_routes(conn, router_id, new)
            common.bump(conn, R, "router", router, {"routes": new})
            return render_for(conn, ctx, [fetch(conn, ctx, router_id)])[0]

    # -- interfaces ------------------------------------------------------------------------
    def add_interface(
        self, db: Database, ctx: Context, router_id: str, subnet_id: str | None, port_id: str | None
    ) -> dict[str, Any]:
        """Attach by subnet (a new port on its gateway IP) or by an unused port of the caller's."""
        common.require_writer(ctx)
        with db.write() as conn:
            router = fetch(conn, ctx, router_id, for_write=True)
            if port_id is not None:
                port_id, network_id = self._adopt_port(conn, ctx, router, port_id)
            else:
                assert subnet_id is not None
                port_id, network_id = self._port_on_subnet(conn, ctx, router, subnet_id)
            conn.execute(
                insert(RP).values(router_id=router_id, port_id=port_id, port_type=INTERFACE)
            )
            common.bump(conn, R, "router", router)
            agents.schedule_router(conn, router_id)
            subnet_ids = conn.execute(
                select(A.c.subnet_id).where(A.c.port_id == port_id).order_by(A.c.position)
            ).scalars()
            return interface_info(router, port_id, list(subnet_ids), network_id)

    def remove_interface(
        self, db: Database, ctx: Context, router_id: str, subnet_id: str | None, port_id: str | None
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            router = fetch(conn, ctx, router_id, for_write=True)
            attached = port_subnets(conn, router_id, INTERFACE)
            if port_id is not None:
                found = [s for pid, s in attached if pid == port_id]
                if not found:
                    raise errors.RouterInterfaceNotFound(router_id=router_id, port_id=port_id)
                if subnet_id is not None and subnet_id not in {s.id for s in found}:
                    raise errors.SubnetMismatchForPort(port_id=port_id, subnet_id=subnet_id)
            else:
                assert subnet_id is not None
                subnets.fetch(conn, ctx, subnet_id)  # first, as Neutron: an unseen one is 404
                port_id = next((pid for pid, s in attached if s.id == subnet_id), None)
                if port_id is None:
                    raise errors.RouterInterfaceNotFoundForSubnet(
                        router_id=router_id, subnet_id=subnet_id
                    )
                found = [s for pid, s in attached if pid == port_id]
            for subnet in found:
                self._check_interface_unused(conn, router, subnet)
            network_id = found[0].network_id
            ports.remove_port(conn, port_id)
            common.bump(conn, R, "router", router)
            return interface_info(router, port_id, [s.id for s in found], network_id)

    def _port_on_subnet(
        self, conn: Connection, ctx: Context, router: Row, subnet_id: str
    ) -> tuple[str, str]:
        """A new interface port on the subnet's gateway address: (its id, its network's)."""
        subnet = subnets.fetch(conn, ctx, subnet_id)
        if subnet.gateway_ip is None:
            raise errors.BadRequest(
                resource="router", msg="Subnet for router interface must have a gateway IP"
            )
        # One the caller sees but does not own (on a shared or external network) is refused, as by
        # Neutron: sharing a network with all projects does not give them its gateway address.
        if subnet.project_id != ctx.project_id and not ctx.is_admin:
            raise errors.BadRequest(
                resource="router",
                msg=(
                    f"Cannot add interface to router because subnet {subnet_id} "
                    "is not owned by project making the request"
                ),
            )
        check_advertised_here(subnet)
        check_new_subnets(conn, router.id, [subnet])
        network = networks.fetch(conn, ctx, subnet.network_id)
        port_id = ports.insert_port(
            conn,
            router.project_id,
            network,
            {
                "fixed_ips": [{"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}],
                "device_owner": INTERFACE,
                "device_id": router.id,
                "port_security_enabled": False,
            },
        )["id"]
        return port_id, network.id

    def _adopt_port(
        self, conn: Connection, ctx: Context, router: Row, port_id: str
    ) -> tuple[str, str]:
        """The caller's unused port made the router's: (its id, its network's)."""
        port = ports.fetch(conn, ctx, port_id, for_write=True)
        if port.device_id or port.device_owner:
            raise errors.PortInUse(
                port_id=port_id, net_id=port.network_id, device_id=port.device_id
            )
        port_subnet_rows = list(
            conn.execute(select(S).join(A, A.c.subnet_id == S.c.id).where(A.c.port_id == port_id))
        )
        if not port_subnet_rows:
            raise errors.BadRequest(
                resource="router", msg="Router port must have at least one fixed IP"
            )
        for subnet in port_subnet_rows:
            check_advertised_here(subnet)
        if sum(1 for s in port_subnet_rows if s.ip_version == 4) > 1:
            raise errors.BadRequest(
                resource="router", msg="Cannot have multiple IPv4 subnets on router port"
            )
        check_new_subnets(conn, router.id, port_subnet_rows)
        # A router port is trusted by the data plane: no groups, no pairs, no port security.
        ports.bind_groups(conn, port.project_id, port_id, [])
        ports.set_pairs(conn, port_id, [], port.mac_address)
        common.bump(
            conn,
            P,
            "port",
            port,
            {"device_owner": INTERFACE, "device_id": router.id, "port_security_enabled": False},
        )
        return port_id, port.network_id

    @staticmethod
    def _check_interface_unused(conn: Connection, router: Row, subnet: Row) -> None:
        """An interface stays while floating IPs or routes of the router go through it."""
        net = ipaddress.ip_network(subnet.cidr)
        if any(ipaddress.ip_address(route["nexthop"]) in net for route in router.routes):
            raise errors.RouterInterfaceInUseByRoute(subnet_id=subnet.id, router_id=router.id)
        through = conn.execute(
            select(FIP.c.id)
            .join(
                A, (A.c.port_id == FIP.c.fixed_port_id) & (A.c.ip_address == FIP.c.fixed_ip_address)
            )
            .where(FIP.c.router_id == router.id, A.c.subnet_id == subnet.id)
            .limit(1)
        ).first()
        if through is not None:
            raise errors.RouterInterfaceInUseByFloatingIP(subnet_id=subnet.id, router_id=router.id)

    # -- gateway ---------------------------------------------------------------------------
    def _gateway_changes(
        self, conn: Connection, ctx: Context, router: Row, info: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Set, change or (with None or {}) clear the gateway port; returns the router's new
        columns."""
        info = info or {}
        target = info.get("network_id")
        if info and target is None:
            raise errors.BadRequest(
                resource="router", msg="external_gateway_info requires a network_id"
            )
        if not ctx.is_admin:
            for key in ("enable_snat", "external_fixed_ips"):
                if key in info:
                    raise errors.PolicyNotAuthorized(
                        action=f"update_router:external_gateway_info:{key}"
                    )
        if router.gw_network_id and target != router.gw_network_id:
            in_use = conn.execute(
                select(FIP.c.id).where(FIP.c.router_id == router.id).limit(1)
            ).first()
            if in_use is not None:
                raise errors.RouterExternalGatewayInUseByFloatingIp(
                    router_id=router.id, net_id=router.gw_network_id
                )
        gw_port_id = router.gw_port_id
        if target != router.gw_network_id or "external_fixed_ips" in info:
            if gw_port_id:
                conn.execute(update(R).where(R.c.id == router.id).values(gw_port_id=None))
                ports.remove_port(conn, gw_port_id)
            gw_port_id = target and self._gateway_port(
                conn, ctx, router, target, info.get("external_fixed_ips")
            )
        return {
            "gw_port_id": gw_port_id,
            "gw_network_id": target,
            "enable_snat": info.get("enable_snat", True),
        }

    @staticmethod
    def _gateway_port(
        conn: Connection,
        ctx: Context,
        router: Row,
        network_id: str,
        fixed_ips: builtins.list[dict[str, Any]] | None,
    ) -> str:
        network = networks.fetch(conn, ctx, network_id)
        if not network.external:
            raise errors.BadRequest(
                resource="router", msg=f"Network {network_id} is not an external network"
            )
        # Without subnets the gateway port has no address, as in Neutron: the router is not
        # routed until one is added.
        port_id = ports.insert_port(
            conn,
            "",
            network,
            {
                "fixed_ips": fixed_ips or None,
                "device_owner": GATEWAY,
                "device_id": router.id,
                "port_security_enabled": False,
            },
        )["id"]
        conn.execute(insert(RP).values(router_id=router.id, port_id=port_id, port_type=GATEWAY))
        check_new_subnets(
            conn,
            router.id,
            [s for pid, s in port_subnets(conn, router.id, GATEWAY) if pid == port_id],
            exclude_port=port_id,
        )
        return port_id


def check_new_subnets(
    conn: Connection, router_id: str, new: list[Row], exclude_port: str | None = None
) -> None:
    """One port per subnet on a router, and no two of its subnets may overlap."""
    wanted = [(subnet, ipaddress.ip_network(subnet.cidr)) for subnet in new]
    for port_id, existing in port_subnets(conn, router_id):
        if port_id == exclude_port:
            continue
        for subnet, cidr in wanted:
            if subnet.id == existing.id:
                raise errors.BadRequest(
                    resource="router", msg=f"Router already has a port on subnet {subnet.id}"
                )
            if cidr.overlaps(ipaddress.ip_network(existing.cidr)):
                raise errors.BadRequest(
                    resource="router",
                    msg=(
                        f"Cidr {subnet.cidr} of subnet {subnet.id} overlaps with "
                        f"cidr {existing.cidr} of subnet {existing.id}"
                    ),
                )


def flavor_values(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    """A new router's flavor and the provider it leads to, whose kind of router the
    request's `ha` and `distributed` must not contradict."""
    flavor_id = values.get("flavor_id")
    if flavor_id is None:
        return {}
    provider = flavors.router_provider(conn, flavor_id)
    refused = provider.refused_flag(values)
    if refused:
        raise errors.InvalidInput(
            error_message=f"Provider {provider.name} does not support {refused}={values[refused]}"
        )
    return {"flavor_id": flavor_id, "service_provider": provider.name}


def check_migration(router: Row, values: dict[str, Any]) -> None:
    """A router changes `distributed` or `ha` only while down, as in Neutron."""
    up = values.get("admin_state_up", router.admin_state_up)
    if values.get("distributed", router.distributed) != router.distributed and (
        up or router.admin_state_up
    ):
        raise errors.BadRequest(
            resource="router",
            msg=(
                "Cannot change the 'distributed' attribute of active routers. Please set router "
                "admin_state_up to False prior to upgrade"
            ),
        )
    if values.get("ha", router.ha) != router.ha and up:
        raise errors.BadRequest(
            resource="router",
            msg=(
                "Cannot change HA attribute of active routers. Please set router admin_state_up "
                "to False prior to upgrade"
            ),
        )


def check_routes(conn: Connection, router_id: str, routes: list[dict[str, str]]) -> None:
    """Each nexthop must be on a subnet the router is connected to, and not the router itself."""
    if len(routes) > MAX_ROUTES:
        raise errors.RoutesExhausted(router_id=router_id, quota=MAX_ROUTES)
    attached = port_subnets(conn, router_id)
    own_ips = set(
        conn.execute(
            select(A.c.ip_address)
            .join(RP, RP.c.port_id == A.c.port_id)
            .where(RP.c.router_id == router_id)
        ).scalars()
    )
    for route in routes:
        nexthop = ipaddress.ip_address(route["nexthop"])
        if ipaddress.ip_network(route["destination"]).version != nexthop.version:
            raise errors.InvalidRoutes(
                routes=route, reason="the nexthop and the destination differ in IP version"
            )
        if not any(nexthop in ipaddress.ip_network(s.cidr) for _, s in attached):
            raise errors.InvalidRoutes(
                routes=route, reason="the nexthop is not connected with router"
            )
        if str(nexthop) in own_ips:
            raise errors.InvalidRoutes(routes=route, reason="the nexthop is used by router")


# Read from the routers' interfaces, each looking up its own addresses: a join from the subnet's
# allocations would read all of them, every port of the subnet, for each floating IP made.
ROUTERS_BETWEEN = (
    select(R.c.id)
    .join(RP, (RP.c.router_id == R.c.id) & (RP.c.port_type == INTERFACE))
    .where(
        R.c.gw_network_id == bindparam("network_id"),
        bindparam("subnet_id", type_=A.c.subnet_id.type).in_(
            select(A.c.subnet_id).where(A.c.port_id == RP.c.port_id)
        ),
    )
    .order_by(R.c.created_at, R.c.id)
)


def routers_between(conn: Connection, subnet_id: str, external_network_id: str) -> list[str]:
    """Routers with an interface on `subnet_id` and their gateway on `external_network_id`."""
    return list(
        conn.execute(
            ROUTERS_BETWEEN, {"subnet_id": subnet_id, "network_id": external_network_id}
        ).scalars()
    )
