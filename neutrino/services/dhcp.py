"""The DHCP port of a network: one per network with DHCP-enabled subnets.

The server owns it (Neutron's DHCP agent makes it itself); the data plane
runs dnsmasq on it. It holds one address on every DHCP-enabled subnet. A
network gets its DHCP agent when it gets this port (services/agents).
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from neutrino.db import schema
from neutrino.services import agents, common, free_ranges, ports


def sync_port(conn: Connection, network_id: str) -> None:
    P, A = schema.ports, schema.ip_allocations
    network = conn.execute(select(schema.networks).where(schema.networks.c.id == network_id)).one()
    wanted = [s for s in ports.subnets_of(conn, network_id) if s.enable_dhcp]
    port = conn.execute(
        select(P).where(P.c.network_id == network_id, P.c.device_owner == ports.DHCP_OWNER)
    ).first()
    if not wanted:
        if port is not None:
            ports.remove_port(conn, port.id)
        return
    if port is None:
        ports.insert_port(
            conn,
            network.project_id,
            network,
            {
                "device_owner": ports.DHCP_OWNER,
                "device_id": f"dhcp-{network_id}",
                "name": "",
                "fixed_ips": [{"subnet_id": s.id} for s in wanted],
                "port_security_enabled": False,
            },
        )
        agents.schedule_network(conn, network_id)
        return
    have = set(conn.execute(select(A.c.subnet_id).where(A.c.port_id == port.id)).scalars())
    wanted_ids = {s.id for s in wanted}
    if have == wanted_ids:
        return
    free_ranges.release(conn, (A.c.port_id == port.id) & A.c.subnet_id.not_in(wanted_ids))
    for position, subnet in enumerate(wanted):
        if subnet.id not in have:
            ports.allocate_ip(conn, subnet, port.id, position)
    common.bump(conn, P, "port", port)
