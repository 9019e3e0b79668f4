"""Amphorae: Octavia's view of what runs each load balancer (administrators only, as Octavia).

neutrino runs a load balancer of the topology SINGLE as haproxy in the `qlbaas-<lb id>`
namespace of the host its VIP port is bound to; that instance is its one amphora (role
STANDALONE). One of the topology ACTIVE_STANDBY (its flavor's `loadbalancer_topology`) has two,
MASTER and BACKUP, each a namespace `qlbaas-<lb id>-<amphora id[:11]>` on the host its own VRRP
port is bound to (`octavia-lb-vrrp-<amphora id>`, on the VIP subnet, the VIP among its allowed
address pairs), each with haproxy of the same configuration and keepalived: VRRP between the
two over their VRRP addresses (unicast), the VIP as the virtual address of the one that is
master, which announces it by gratuitous ARP; a check that its haproxy answers on its stats
socket (plan/loadbalancer.py). The VIP port itself is not plugged.

An amphora's id is a row's (lb_amphorae), made with the load balancer: it stays while the
instance lives (reloads for new configurations, agent restarts) and a failover replaces it with
a new one of its role, whose haproxy (and keepalived) the agent starts from scratch beside the
old one before stopping that (services/loadbalancers.fail_over); a load balancer's failover
replaces its amphorae one at a time, the BACKUP first.

Octavia's fields, and what they are here (null where neutrino has no such thing):

- id, created_at, updated_at: the instance's row.
- loadbalancer_id: its load balancer.
- status: BOOTING until its agent runs it, then ALLOCATED; ERROR if the agent failed to;
  PENDING_DELETE while its load balancer goes or a new instance replaces it.
- role: STANDALONE (SINGLE), MASTER or BACKUP (ACTIVE_STANDBY): the role it was built for,
  as Octavia shows it; which one holds the VIP at a moment is VRRP's (a MASTER whose haproxy
  fails leaves it to the BACKUP).
- compute_id: the host it runs on, as that host's "Linux bridge agent" in /v2.0/agents (the
  agent that binds its port); null while no host has taken it. cached_zone: the host's
  availability zone.
- ha_port_id, ha_ip: the VIP port and address. vrrp_port_id, vrrp_ip: the amphora's own port
  and its address (SINGLE: the VIP port, plugged into the namespace, and the VIP);
  vrrp_interface: that port's interface in the namespace, `vip-<port id>`.
- lb_network_ip: null (no management network: the agent follows the change feed over HTTP).
- vrrp_id, vrrp_priority: ACTIVE_STANDBY: keepalived's virtual_router_id (1, as Octavia: the
  peers are unicast) and priority (MASTER 100, BACKUP 90); null for SINGLE (no VRRP).
- cert_expiration, cert_busy: null and false (no certificate between controller and instance).
- image_id, compute_flavor: null (no image, no Nova flavor).

Statistics (`GET .../{id}/stats`) are its load balancer's listeners' (listeners' statistics count
from each listener's creation, through failovers).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.plan.loadbalancer import PRIORITIES, VRRP_ID, vip_interface
from neutrino.services import common, lb_policy
from neutrino.services.agents import L2
from neutrino.services.lb_base import Immutable
from neutrino.services.listing import Chunks, Listing, Source, stream_all
from neutrino.services.loadbalancers import (
    ACTIVE,
    AM,
    FORBIDDEN,
    LB,
    LI,
    ST,
    STANDALONE,
    STATISTICS,
    P,
    fail_over,
)
from neutrino.services.refusals import Forbidden, NotFound

NA = schema.network_agents
A = schema.ip_allocations


def require_admin(ctx: Context) -> None:
    if not lb_policy.is_admin(ctx):
        raise Forbidden(FORBIDDEN)


def find(conn: Connection, ctx: Context, amphora_id: str) -> Row:
    """The amphora: 404 if there is none, then 403 for anyone but an administrator (Octavia's
    order)."""
    row = conn.execute(select(AM).where(AM.c.id == amphora_id)).first()
    if row is None:
        raise NotFound(f"Amphora {amphora_id} not found.")
    require_admin(ctx)
    return row


def render(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    lb_ids = list({r.lb_loadbalancer_id for r in rows})
    where = {
        lb.id: lb
        for chunk in common.chunked(lb_ids)
        for lb in conn.execute(
            select(LB.c.id, LB.c.vip_address, LB.c.vip_port_id, P.c.binding_host_id)
            .outerjoin(P, P.c.id == LB.c.vip_port_id)
            .where(LB.c.id.in_(chunk))
        )
    }
    vrrp_ports = {r.vrrp_port_id for r in rows if r.vrrp_port_id}
    vrrp = {
        port.id: port
        for chunk in common.chunked(list(vrrp_ports))
        for port in conn.execute(
            select(P.c.id, P.c.binding_host_id, A.c.ip_address)
            .join(A, A.c.port_id == P.c.id)
            .where(P.c.id.in_(chunk))
        )
    }
    computes: dict[str, str] = {}  # host -> its L2 agent's id
    zones: dict[str, str] = {}  # host -> the availability zone of its DHCP (and L3) agents
    for agent in conn.execute(select(NA.c.id, NA.c.host, NA.c.agent_type, NA.c.availability_zone)):
        if agent.agent_type == L2:
            computes[agent.host] = agent.id
        elif agent.availability_zone:
            zones[agent.host] = agent.availability_zone
    out = []
    for r in rows:
        lb = where[r.lb_loadbalancer_id]
        own = vrrp.get(r.vrrp_port_id or "")
        host = (own or lb).binding_host_id or ""
        port_id = r.vrrp_port_id or lb.vip_port_id
        out.append(
            {
                "id": r.id,
                "loadbalancer_id": lb.id,
                "compute_id": computes.get(host),
                "lb_network_ip": None,
                "vrrp_ip": own.ip_address if own else lb.vip_address,
                "ha_ip": lb.vip_address,
                "vrrp_port_id": port_id,
                "ha_port_id": lb.vip_port_id,
                "cert_expiration": None,
                "cert_busy": False,
                "role": r.role,
                "status": r.status,
                "vrrp_interface": vip_interface(port_id),
                "vrrp_id": None if r.role == STANDALONE else VRRP_ID,
                "vrrp_priority": PRIORITIES.get(r.role),
                "cached_zone": zones.get(host),
                "created_at": common.iso(r.created_at),
                "updated_at": common.iso(r.updated_at),
                "image_id": None,
                "compute_flavor": None,
            }
        )
    return out


def stream(db: Database, ctx: Context) -> Chunks:
    """Every amphora, the oldest first, in chunks read as they are consumed."""
    require_admin(ctx)
    return stream_all(db, Source(Listing(AM, {}), None, render), [AM.c.created_at, AM.c.id])


def get(db: Database, ctx: Context, amphora_id: str) -> dict[str, Any]:
    with db.read() as conn:
        return render(conn, [find(conn, ctx, amphora_id)])[0]


def statistics(db: Database, ctx: Context, amphora_id: str) -> list[dict[str, Any]]:
    """Per listener of its load balancer, what haproxy (or nftables, UDP and SCTP) counted."""
    require_admin(ctx)
    with db.read() as conn:
        amphora = conn.execute(select(AM).where(AM.c.id == amphora_id)).first()
        rows = (
            conn.execute(
                select(ST)
                .join(LI, LI.c.id == ST.c.listener_id)
                .where(LI.c.lb_loadbalancer_id == amphora.lb_loadbalancer_id)
                .order_by(LI.c.created_at)
            ).all()
            if amphora is not None
            else []
        )
    if amphora is None or not rows:
        raise NotFound(f"Amphora stats for {amphora_id} not found.")
    return [
        {
            "id": amphora_id,
            "loadbalancer_id": amphora.lb_loadbalancer_id,
            "listener_id": row.listener_id,
            **{name: getattr(row, name) for name in STATISTICS},
        }
        for row in rows
    ]


def configure(db: Database, ctx: Context, amphora_id: str) -> None:
    """PUT .../{id}/config: the agent converges the instance on its configuration again."""
    with db.write() as conn:
        amphora = find(conn, ctx, amphora_id)
        common.record_change(conn, "loadbalancer", amphora.lb_loadbalancer_id, "update")


def failover(db: Database, ctx: Context, amphora_id: str) -> None:
    """PUT .../{id}/failover: a new instance of its role replaces it; its load balancer must be
    ACTIVE."""
    with db.write() as conn:
        amphora = find(conn, ctx, amphora_id)
        lb = conn.execute(select(LB).where(LB.c.id == amphora.lb_loadbalancer_id)).one()
        if lb.provisioning_status != ACTIVE:
            raise Immutable(lb.id)
        fail_over(conn, lb, amphora.role)
