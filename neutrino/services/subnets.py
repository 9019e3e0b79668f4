"""Subnets: CIDRs, gateways, allocation pools, DHCP options."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, select

from neutrino import errors, ipam
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common, dhcp, networks, quotas
from neutrino.services.listing import Listing, list_rows, standard_columns

S = schema.subnets
LISTING = Listing(S, standard_columns(S))


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
    out = []
    for r in rows:
        item = common.render_standard(r, tags)
        item.update({
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
            "subnetpool_id": None,
        })
        out.append(item)
    return out


class Subnets:
    resource = "subnet"

    def list(self, db: Database, ctx: Context, query: ListQuery) -> tuple[list[dict[str, Any]], bool]:
        with db.read() as conn:
            rows, more = list_rows(conn, LISTING, query, visible(ctx))
            return render(conn, rows), more

    def get(self, db: Database, ctx: Context, subnet_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(conn, [fetch(conn, ctx, subnet_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            network = networks.fetch(conn, ctx, values["network_id"], for_write=True)
            row = common.standard_values(ctx, values)
            quotas.check(conn, row["project_id"], "subnet", 1)
            net = ipaddress.ip_network(values["cidr"])
            if net.version != values["ip_version"]:
                raise errors.InvalidInput(error_message=f"Cidr {net} does not match ip_version {values['ip_version']}")
            self._check_overlap(conn, network.id, net)
            gateway = self._gateway(net, values)
            pools = (ipam.parse_pools(net, values["allocation_pools"], gateway)
                     if values.get("allocation_pools") else ipam.default_pools(net, gateway))
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
            )
            common.insert_resource(conn, S, "subnet", row)
            common.bump(conn, schema.networks, "network", network)
            dhcp.sync_port(conn, network.id)
            return render(conn, [fetch(conn, ctx, row["id"])])[0]

    def update(self, db: Database, ctx: Context, subnet_id: str, values: dict[str, Any],
               if_match: int | None) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, subnet_id)
            networks.fetch(conn, ctx, row.network_id, for_write=True)
            common.check_revision(row, if_match)
            net = ipaddress.ip_network(row.cidr)
            changes: dict[str, Any] = {}
            if "gateway_ip" in values:
                gateway = self._gateway(net, values)
                if gateway is not None and ipam.in_pools(gateway, ipam.pools_from(row.allocation_pools)) and "allocation_pools" not in values:
                    raise errors.GatewayConflictWithAllocationPools(ip_address=str(gateway), pool=row.allocation_pools)
                changes["gateway_ip"] = str(gateway) if gateway else None
            if "allocation_pools" in values:
                gw = changes.get("gateway_ip", row.gateway_ip)
                pools = ipam.parse_pools(net, values["allocation_pools"], ipaddress.ip_address(gw) if gw else None)
                changes["allocation_pools"] = render_pools(pools)
            if "host_routes" in values:
                changes["host_routes"] = self._host_routes(net, values["host_routes"])
            for key in ("name", "description", "dns_nameservers", "enable_dhcp"):
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
            users = conn.execute(select(P.c.device_owner).join(A, A.c.port_id == P.c.id)
                                 .where(A.c.subnet_id == subnet_id, P.c.device_owner != "network:dhcp")).scalars().all()
            if users:
                reason = ("still has a router interface" if "network:router_interface" in users
                          else "One or more ports have an IP allocation from this subnet")
                raise errors.SubnetInUse(subnet_id=subnet_id, reason=reason)
            conn.execute(delete(A).where(A.c.subnet_id == subnet_id))
            common.delete_resource(conn, S, "subnet", subnet_id)
            common.bump(conn, schema.networks, "network", network)
            dhcp.sync_port(conn, row.network_id)

    def set_tags(self, db: Database, ctx: Context, subnet_id: str, add: list[str], remove: list[str] | None) -> list[str]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, subnet_id)
            networks.fetch(conn, ctx, row.network_id, for_write=True)
            return common.set_tags(conn, S, "subnet", row, add, remove)

    @staticmethod
    def _check_overlap(conn: Connection, network_id: str, net: ipam.Network) -> None:
        for (other,) in conn.execute(select(S.c.cidr).where(S.c.network_id == network_id)):
            if net.overlaps(ipaddress.ip_network(other)):  # type: ignore[arg-type]
                raise errors.InvalidInput(
                    error_message=f"Requested subnet with cidr: {net} for network: {network_id} overlaps with another subnet")

    @staticmethod
    def _gateway(net: ipam.Network, values: dict[str, Any]) -> ipam.Address | None:
        if "gateway_ip" not in values:
            return ipam.default_gateway(net)
        if values["gateway_ip"] is None:
            return None
        gateway = ipaddress.ip_address(values["gateway_ip"])
        if gateway not in net:
            raise errors.InvalidInput(error_message=f"Gateway IP {gateway} is not in subnet {net}")
        if net.version == 4 and net.prefixlen < 31 and gateway in (net.network_address, net.broadcast_address):
            raise errors.InvalidInput(error_message=f"Gateway is not valid on subnet: {gateway} is the network or broadcast address of {net}")
        return gateway

    @staticmethod
    def _host_routes(net: ipam.Network, routes: list[dict[str, str]]) -> list[dict[str, str]]:
        for route in routes:
            if ipaddress.ip_network(route["destination"]).version != net.version or \
                    ipaddress.ip_address(route["nexthop"]).version != net.version:
                raise errors.InvalidInput(error_message=f"Host route {route} does not match the subnet's IP version")
        return routes
