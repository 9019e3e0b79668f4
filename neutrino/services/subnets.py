"""Subnets: CIDRs, gateways, allocation pools, DHCP options."""

from __future__ import annotations

import builtins
import ipaddress
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, select

from neutrino import errors, ipam
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import (
    common,
    dhcp,
    free_ranges,
    networks,
    ports,
    quotas,
    rbac,
    subnetpools,
)
from neutrino.services.common import Tags
from neutrino.services.listing import STANDARD_PLAIN, Listed, Listing, Source, standard_columns

S = schema.subnets


def of_networks_where(column: ColumnElement[bool]) -> Callable[[list[Any]], ColumnElement[bool]]:
    """A filter on an attribute subnets take from their network (`router:external`)."""
    return lambda values: S.c.network_id.in_(select(schema.networks.c.id).where(column.in_(values)))


LISTING = Listing(
    S,
    standard_columns(S),
    {"router:external": of_networks_where(schema.networks.c.external)},
    plain=(
        *STANDARD_PLAIN,
        "network_id",
        "ip_version",
        "cidr",
        "gateway_ip",
        "allocation_pools",
        "dns_nameservers",
        "host_routes",
        "enable_dhcp",
        "ipv6_ra_mode",
        "ipv6_address_mode",
        "subnetpool_id",
        "service_types",
    ),
)


def visible(ctx: Context) -> ColumnElement[bool] | None:
    """A subnet is visible with its network."""
    seen = networks.visible(ctx)
    if seen is None:
        return None
    return S.c.network_id.in_(select(schema.networks.c.id).where(seen))


def fetch(conn: Connection, ctx: Context, subnet_id: str) -> Row:
    where = [S.c.id == subnet_id]
    seen = visible(ctx)
    if seen is not None:
        where.append(seen)
    row = conn.execute(select(S).where(*where)).first()
    if row is None:
        raise errors.SubnetNotFound(subnet_id=subnet_id)
    return row


def render_pools(pools: list[ipam.Pool]) -> list[dict[str, str]]:
    return [{"start": str(start), "end": str(end)} for start, end in pools]


def render(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    tags = common.load_tags(conn, [r.id for r in rows])
    N = schema.networks
    external = set(
        conn.execute(
            select(N.c.id).where(N.c.id.in_({r.network_id for r in rows}), N.c.external)
        ).scalars()
    )
    out = []
    for r in rows:
        item = common.render_standard(r, tags)
        item.update(
            {
                "network_id": r.network_id,
                "ip_version": r.ip_version,
                "cidr": r.cidr,
                "gateway_ip": r.gateway_ip,
                "allocation_pools": r.allocation_pools,
                "dns_nameservers": r.dns_nameservers,
                "host_routes": r.host_routes,
                "enable_dhcp": r.enable_dhcp,
                "ipv6_ra_mode": r.ipv6_ra_mode,
                "ipv6_address_mode": r.ipv6_address_mode,
                "subnetpool_id": r.subnetpool_id,
                "router:external": r.network_id in external,
                "service_types": r.service_types,
            }
        )
        out.append(item)
    return out


def check_ipv6_modes(net: ipam.Network, values: dict[str, Any]) -> None:
    """Neutron's rules for ipv6_ra_mode and ipv6_address_mode."""
    ra_mode, address_mode = values.get("ipv6_ra_mode"), values.get("ipv6_address_mode")
    if ra_mode is None and address_mode is None:
        return
    if net.version == 4:
        name = "ipv6_ra_mode" if ra_mode is not None else "ipv6_address_mode"
        raise errors.InvalidInput(error_message=f"{name} is not valid when ip_version is 4")
    if not values.get("enable_dhcp", True):
        raise errors.InvalidInput(
            error_message=(
                "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False"
            )
        )
    if ra_mode is not None and address_mode is not None and ra_mode != address_mode:
        raise errors.InvalidInput(
            error_message=(
                f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to "
                f"'{address_mode}' is not valid. "
                "If both attributes are set, they must be the same value"
            )
        )
    if ipam.is_auto_address(ra_mode, address_mode) and net.prefixlen != 64:
        raise errors.InvalidInput(
            error_message=(
                f"Invalid CIDR {net} for IPv6 address mode. "
                "OpenStack uses the EUI-64 address format, which requires the prefix to be /64"
            )
        )


def check_gateway_unused(conn: Connection, subnet: Row) -> None:
    """A router port holding the gateway address keeps it: 409 GatewayIpInUse."""
    A, P = schema.ip_allocations, schema.ports
    holder = conn.execute(
        select(A.c.port_id)
        .join(P, P.c.id == A.c.port_id)
        .where(
            A.c.subnet_id == subnet.id,
            A.c.ip_address == subnet.gateway_ip,
            P.c.device_owner.in_(ports.ROUTER_OWNERS),
        )
    ).scalar()
    if holder is not None:
        raise errors.GatewayIpInUse(ip_address=subnet.gateway_ip, port_id=holder)


def check_pool_affinity(conn: Connection, network_id: str, version: int, pool: Row | None) -> None:
    """A network's subnets of one IP version come from one pool or, when their pools have an
    address scope, from pools of that scope (Neutron's _validate_network_subnetpools)."""
    P = schema.subnetpools
    others = conn.execute(
        select(S.c.subnetpool_id, P.c.address_scope_id)
        .outerjoin(P, P.c.id == S.c.subnetpool_id)
        .where(S.c.network_id == network_id, S.c.ip_version == version)
    ).all()
    scope = next((o.address_scope_id for o in others if o.address_scope_id), None)
    if scope is not None and pool is not None and pool.address_scope_id != scope:
        raise errors.NetworkAddressScopeAffinityError()
    for other in others:
        if pool is None and other.subnetpool_id is not None:
            raise errors.NetworkSubnetPoolAffinityError()
        if pool is not None and other.subnetpool_id != pool.id and scope is None:
            raise errors.NetworkSubnetPoolAffinityError()


class Subnets(Listed):
    resource = "subnet"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        # `shared` is the network's, as the caller sees it.
        shared = rbac.shared_filter("network", S.c.network_id, ctx.project_id)
        return Source(LISTING.with_filters(shared=shared), visible(ctx), render)

    def get(self, db: Database, ctx: Context, subnet_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(conn, [fetch(conn, ctx, subnet_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            network = networks.fetch(conn, ctx, values["network_id"], for_write=True)
            row = common.standard_values(ctx, values)
            quotas.check(conn, row["project_id"], "subnet", 1)
            pool = self._pool(conn, ctx, values)
            net = self._cidr(conn, pool, row["project_id"], values)
            check_ipv6_modes(net, values)
            needed = networks.min_mtu(conn, network.id, net.version)
            if network.mtu < needed:
                raise errors.NetworkMTUSubnetConflict(net_id=network.id, mtu=needed)
            self._check_overlap(conn, network.id, net)
            check_pool_affinity(conn, network.id, net.version, pool)
            gateway = self._gateway(net, values)
            pools = (
                ipam.parse_pools(net, values["allocation_pools"], gateway)
                if values.get("allocation_pools")
                else ipam.default_pools(net, gateway)
            )
            row.update(
                network_id=network.id,
                ip_version=net.version,
                cidr=str(net),
                gateway_ip=str(gateway) if gateway else None,
                enable_dhcp=values.get("enable_dhcp", True),
                ipv6_ra_mode=values.get("ipv6_ra_mode"),
                ipv6_address_mode=values.get("ipv6_address_mode"),
                dns_nameservers=values.get("dns_nameservers", []),
                host_routes=self._host_routes(net, values.get("host_routes", [])),
                allocation_pools=render_pools(pools),
                subnetpool_id=pool.id if pool is not None else None,
                service_types=values.get("service_types", []),
            )
            common.insert_resource(conn, S, "subnet", row)
            free_ranges.fill(conn, row["id"], pools)
            if ipam.is_auto_address(row["ipv6_ra_mode"], row["ipv6_address_mode"]):
                ports.add_automatic_addresses(conn, fetch(conn, ctx, row["id"]))
            common.bump(conn, schema.networks, "network", network)
            dhcp.sync_port(conn, network.id)
            return render(conn, [fetch(conn, ctx, row["id"])])[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        subnet_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, subnet_id)
            networks.fetch(conn, ctx, row.network_id, for_write=True)
            common.check_revision(row, if_match)
            net = ipaddress.ip_network(row.cidr)
            changes: dict[str, Any] = {}
            if "gateway_ip" in values:
                gateway = self._gateway(net, values)
                if (
                    gateway is not None
                    and ipam.in_pools(gateway, ipam.pools_from(row.allocation_pools))
                    and "allocation_pools" not in values
                ):
                    raise errors.GatewayConflictWithAllocationPools(
                        ip_address=str(gateway), pool=row.allocation_pools
                    )
                changes["gateway_ip"] = str(gateway) if gateway else None
                if changes["gateway_ip"] != row.gateway_ip:
                    check_gateway_unused(conn, row)
            if "allocation_pools" in values:
                gw = changes.get("gateway_ip", row.gateway_ip)
                pools = ipam.parse_pools(
                    net, values["allocation_pools"], ipaddress.ip_address(gw) if gw else None
                )
                changes["allocation_pools"] = render_pools(pools)
                free_ranges.fill(conn, subnet_id, pools)
            if "host_routes" in values:
                changes["host_routes"] = self._host_routes(net, values["host_routes"])
            for key in ("name", "description", "dns_nameservers", "enable_dhcp", "service_types"):
                if key in values:
                    changes[key] = values[key]
            common.bump(conn, S, "subnet", row, changes)
            dhcp.sync_port(conn, row.network_id)
            return render(conn, [fetch(conn, ctx, subnet_id)])[0]

    def delete(self, db: Database, ctx: Context, subnet_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, subnet_id)
            network = networks.fetch(conn, ctx, row.network_id, for_write=True)
            A, P = schema.ip_allocations, schema.ports
            users = conn.execute(
                select(P)
                .join(A, A.c.port_id == P.c.id)
                .where(A.c.subnet_id == subnet_id, P.c.device_owner != "network:dhcp")
            ).all()
            owners = {port.device_owner for port in users}
            # Automatic (SLAAC) addresses are the subnet's own doing: they go with it (a
            # router gateway's too).
            automatic = ipam.is_auto_address(row.ipv6_ra_mode, row.ipv6_address_mode)
            if users and (not automatic or owners & set(ports.NOT_AUTOMATIC)):
                reason = (
                    "still has a router interface"
                    if "network:router_interface" in owners
                    else "One or more ports have an IP allocation from this subnet"
                )
                raise errors.SubnetInUse(subnet_id=subnet_id, reason=reason)
            conn.execute(delete(A).where(A.c.subnet_id == subnet_id))
            for port in users:
                common.bump(conn, P, "port", port)
            common.delete_resource(conn, S, "subnet", subnet_id)
            common.bump(conn, schema.networks, "network", network)
            dhcp.sync_port(conn, row.network_id)

    def set_tags(
        self, db: Database, ctx: Context, subnet_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, subnet_id)
            networks.fetch(conn, ctx, row.network_id, for_write=True)
            return common.set_tags(conn, S, "subnet", row, add, remove)

    @staticmethod
    def _pool(conn: Connection, ctx: Context, values: dict[str, Any]) -> Row | None:
        """The pool a subnet is asked of: by ID, or the default one of its IP version."""
        if values.get("cidr") is not None and values.get("prefixlen") is not None:
            raise errors.BadRequest(
                resource="subnets", msg="cidr and prefixlen must not be supplied together"
            )
        pool_id = values.get("subnetpool_id")
        if values.get("use_default_subnetpool"):
            if pool_id is not None:
                raise errors.BadRequest(
                    resource="subnets",
                    msg="subnetpool_id and use_default_subnetpool cannot both be specified",
                )
            version = values["ip_version"]
            if values.get("cidr") is not None:
                version = ipaddress.ip_network(values["cidr"]).version
            pool = subnetpools.default_pool(conn, ctx, version)
            if pool is None:
                raise errors.BadRequest(
                    resource="subnets", msg=f"No default subnetpool found for IPv{version}"
                )
            return pool
        if pool_id is None:
            return None
        if values.get("cidr") is None and values.get("allocation_pools"):
            raise errors.BadRequest(
                resource="subnets",
                msg="allocation_pools allowed only for specific subnet requests.",
            )
        return subnetpools.fetch(conn, ctx, pool_id)

    @staticmethod
    def _cidr(
        conn: Connection, pool: Row | None, project_id: str, values: dict[str, Any]
    ) -> ipam.Network:
        """The subnet's CIDR: the one asked for, checked against the pool if there is one, or
        one the pool allocates."""
        version = values["ip_version"]
        asked = ipaddress.ip_network(values["cidr"]) if values.get("cidr") is not None else None
        if asked is not None and asked.version != version:
            raise errors.InvalidInput(
                error_message=f"Cidr {asked} does not match ip_version {version}"
            )
        if pool is None:
            if asked is None:
                raise errors.BadRequest(
                    resource="subnets",
                    msg="a subnetpool must be specified in the absence of a cidr",
                )
            return asked
        if pool.ip_version != version:
            raise errors.BadRequest(
                resource="subnets",
                msg=f"Cannot allocate IPv{version} subnet from IPv{pool.ip_version} subnet pool",
            )
        prefixlen = values.get("prefixlen")
        if asked is None and values.get("gateway_ip") is not None:
            # A gateway without a cidr asks for the subnet around it (Neutron's request factory).
            length = pool.default_prefixlen if prefixlen is None else prefixlen
            asked = ipaddress.ip_network(f"{values['gateway_ip']}/{length}", strict=False)
        return subnetpools.allocate_subnet(conn, pool, project_id, asked, prefixlen)

    @staticmethod
    def _check_overlap(conn: Connection, network_id: str, net: ipam.Network) -> None:
        for (other,) in conn.execute(select(S.c.cidr).where(S.c.network_id == network_id)):
            if net.overlaps(ipaddress.ip_network(other)):
                raise errors.InvalidInput(
                    error_message=(
                        f"Requested subnet with cidr: {net} for network: {network_id} "
                        "overlaps with another subnet"
                    )
                )

    @staticmethod
    def _gateway(net: ipam.Network, values: dict[str, Any]) -> ipam.Address | None:
        if "gateway_ip" not in values:
            return ipam.default_gateway(net)
        if values["gateway_ip"] is None:
            return None
        gateway = ipaddress.ip_address(values["gateway_ip"])
        if gateway not in net:
            raise errors.InvalidInput(error_message=f"Gateway IP {gateway} is not in subnet {net}")
        if (
            net.version == 4
            and net.prefixlen < 31
            and gateway in (net.network_address, net.broadcast_address)
        ):
            raise errors.InvalidInput(
                error_message=(
                    f"Gateway is not valid on subnet: {gateway} is the network or broadcast "
                    f"address of {net}"
                )
            )
        return gateway

    @staticmethod
    def _host_routes(
        net: ipam.Network, routes: builtins.list[dict[str, str]]
    ) -> builtins.list[dict[str, str]]:
        for route in routes:
            if (
                ipaddress.ip_network(route["destination"]).version != net.version
                or ipaddress.ip_address(route["nexthop"]).version != net.version
            ):
                raise errors.InvalidInput(
                    error_message=f"Host route {route} does not match the subnet's IP version"
                )
        return routes
