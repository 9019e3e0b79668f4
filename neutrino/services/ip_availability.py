"""Network IP availability: how many addresses each network and subnet has, and uses.

A subnet's total is the size of its allocation pools (its whole CIDR if it
has none) and its used count is every address allocated in it, whoever took
it (DHCP, router and floating IP ports count), as Neutron computes them. The
details say the same per CIDR and per pool. Totals of IPv6 subnets are
exact integers far beyond 64 bits. Admin only, as Neutron's default policy:
for anyone else the list is empty and a network's entry does not exist.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select

from neutrino import errors, ipam
from neutrino.context import Context
from neutrino.db import Database, schema

N, S, A = schema.networks, schema.subnets, schema.ip_allocations
NETWORK_FILTERS = {
    "network_id": N.c.id,
    "network_name": N.c.name,
    "project_id": N.c.project_id,
    "tenant_id": N.c.project_id,
}
FILTERS = {*NETWORK_FILTERS, "ip_version"}


def availabilities(conn: Connection, filters: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """One entry per network that matches `filters`, with its subnets' counts."""
    nets = select(N.c.id, N.c.name, N.c.project_id).order_by(N.c.id)
    subnets = select(
        S.c.id, S.c.name, S.c.network_id, S.c.cidr, S.c.ip_version, S.c.allocation_pools
    ).join(N, N.c.id == S.c.network_id)
    for key, column in NETWORK_FILTERS.items():
        if key in filters:
            nets, subnets = (
                nets.where(column.in_(filters[key])),
                subnets.where(column.in_(filters[key])),
            )
    if "ip_version" in filters:
        # As Neutron: a network without a subnet of that version is not listed.
        subnets = subnets.where(S.c.ip_version.in_(filters["ip_version"]))
        nets = nets.where(N.c.id.in_(subnets.with_only_columns(S.c.network_id)))
    subnet_rows = list(conn.execute(subnets.order_by(S.c.created_at, S.c.id)))
    allocated: dict[str, list[str]] = defaultdict(list)
    if subnet_rows:
        wanted = subnets.with_only_columns(S.c.id)
        for subnet_id, address in conn.execute(
            select(A.c.subnet_id, A.c.ip_address).where(A.c.subnet_id.in_(wanted))
        ):
            allocated[subnet_id].append(address)
    by_network: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in subnet_rows:
        by_network[row.network_id].append(subnet_availability(row, allocated[row.id]))
    return [network_availability(net, by_network[net.id]) for net in conn.execute(nets)]


def subnet_availability(row: Any, addresses: list[str]) -> dict[str, Any]:
    net = ipaddress.ip_network(row.cidr)
    pools = ipam.pools_from(row.allocation_pools)
    in_pools = sum(1 for a in addresses if ipam.in_pools(ipaddress.ip_address(a), pools))
    in_pools_total = ipam.pool_size(pools)
    return {
        "subnet_id": row.id,
        "ip_version": row.ip_version,
        "cidr": row.cidr,
        "subnet_name": row.name,
        "used_ips": len(addresses),
        "total_ips": in_pools_total if pools else net.num_addresses,
        "ip_availability_details": {
            # Neutron leaves out network and broadcast of IPv4 subnets of every size.
            "total_ips_in_subnet": net.num_addresses - (2 if net.version == 4 else 0),
            "total_ips_in_allocation_pool": in_pools_total,
            "used_ips_in_subnet": len(addresses),
            "used_ips_in_allocation_pool": in_pools,
        },
    }


def network_availability(net: Any, subnets: list[dict[str, Any]]) -> dict[str, Any]:
    details = (
        "total_ips_in_subnet",
        "total_ips_in_allocation_pool",
        "used_ips_in_subnet",
        "used_ips_in_allocation_pool",
    )
    return {
        "network_id": net.id,
        "network_name": net.name,
        "project_id": net.project_id,
        "tenant_id": net.project_id,
        "subnet_ip_availability": subnets,
        "used_ips": sum(s["used_ips"] for s in subnets),
        "total_ips": sum(s["total_ips"] for s in subnets),
        "ip_availability_details": {
            key: sum(s["ip_availability_details"][key] for s in subnets) for key in details
        },
    }


class NetworkIpAvailabilities:
    def list(
        self, db: Database, ctx: Context, filters: dict[str, list[Any]]
    ) -> list[dict[str, Any]]:
        if not ctx.is_admin:
            return []
        with db.read() as conn:
            return availabilities(conn, filters)

    def get(self, db: Database, ctx: Context, network_id: str) -> dict[str, Any]:
        if not ctx.is_admin:
            # Neutron answers a policy refusal on a GET as if nothing were there.
            raise errors.HTTPNotFound()
        with db.read() as conn:
            found = availabilities(conn, {"network_id": [network_id]})
        if not found:
            raise errors.NetworkNotFound(net_id=network_id)
        return found[0]
