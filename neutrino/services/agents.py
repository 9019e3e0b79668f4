"""Agents as Neutron lists them, and the DHCP and L3 schedulers.

One neutrino agent runs per host and plays every role there: it serves DHCP
(dnsmasq in `qdhcp-`), routes (`qrouter-` namespaces with nftables NAT) and
plugs ports into one Linux bridge per network. Neutron shows roles as agents
of their own, so a host's agent appears as a "DHCP agent", an "L3 agent"
and a "Linux bridge agent" (the L2 type whose data plane is the one neutrino
builds: bridges, VLAN subinterfaces, VXLAN devices). Each report the agent
sends (after each sync, and at least every report interval: agent.runner) is
the heartbeat of all its roles; a role is alive while its last heartbeat is
younger than Neutron's agent_down_time (DOWN_TIME).

The schedulers write which DHCP agent serves a network and which L3 agent a
router; the ports that carry them (the DHCP port, the router's ports) are
bound to that agent's host, which is what the host's plan follows. A role
that is administratively down, or dead, gets nothing new. What a dead agent
has moves to a live one of its type (`fail_over`, run by the server's liveness
chore, services/liveness.py), as Neutron's allow_automatic_dhcp_failover and
allow_automatic_l3agent_failover do; what an agent administratively down has
stays until an administrator moves it, and nothing moves back by itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)

from neutrino import errors
from neutrino.api.v2.computed import page
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common
from neutrino.services.common import Tags

AG, NDA, RLA = schema.network_agents, schema.network_dhcp_agents, schema.router_l3_agents
P, RP = schema.ports, schema.router_ports
DHCP, L3, L2 = "DHCP agent", "L3 agent", "Linux bridge agent"
# agent_type -> (binary, topic), as Neutron's agents register themselves.
TYPES = {
    DHCP: ("neutron-dhcp-agent", "dhcp_agent"),
    L3: ("neutron-l3-agent", "l3_agent"),
    L2: ("neutron-linuxbridge-agent", "N/A"),
}
ZONED = (DHCP, L3)  # the types that have an availability zone
DEFAULT_ZONE = "nova"
DOWN_TIME = timedelta(seconds=75)  # Neutron's agent_down_time; set from the configuration
DHCP_OWNER = "network:dhcp"


def is_alive(heartbeat: datetime, now: datetime | None = None) -> bool:
    return (now or common.now()) - heartbeat < DOWN_TIME


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")  # as Neutron renders an agent's times


def render(row: Row, now: datetime) -> dict[str, Any]:
    binary, topic = TYPES[row.agent_type]
    return {
        "id": row.id,
        "agent_type": row.agent_type,
        "binary": binary,
        "topic": topic,
        "host": row.host,
        "admin_state_up": row.admin_state_up,
        "created_at": timestamp(row.created_at),
        "started_at": timestamp(row.started_at),
        "heartbeat_timestamp": timestamp(row.heartbeat_at),
        "alive": is_alive(row.heartbeat_at, now),
        "configurations": row.configurations,
        "availability_zone": row.availability_zone if row.agent_type in ZONED else None,
        "resources_synced": None,
        "description": row.description,
    }


def render_endpoints(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    """The feed's VXLAN endpoints: each host's VTEP, the `tunneling_ip` its Linux bridge agent
    reports, which agents make their VXLAN devices' peers of (plan.overlay)."""
    return [
        {"id": row.id, "host": row.host, "ip_address": tunneling_ip(row.configurations)}
        for row in rows
        if row.agent_type == L2 and tunneling_ip(row.configurations)
    ]


def tunneling_ip(configurations: dict[str, Any] | None) -> str | None:
    return (configurations or {}).get("tunneling_ip")


def matches(item: dict[str, Any], filters: dict[str, list[Any]]) -> bool:
    """Equal ignoring case, as Neutron's filters compare on its MySQL database (whose collation
    ignores case), which clients rely on: tempest asks for agent_type "DHCP Agent"."""
    return all(
        str(item.get(key)).casefold() in {str(v).casefold() for v in values}
        for key, values in filters.items()
    )


def fetch(conn: Connection, ctx: Context, agent_id: str) -> Row:
    row = conn.execute(select(AG).where(AG.c.id == agent_id)).first()
    if row is None:
        raise errors.AgentNotFound(id=agent_id)
    if not ctx.is_admin:
        raise errors.HTTPNotFound()  # admin only: as if it were not there
    return row


class Agents:
    resource = "agent"

    def list(
        self, db: Database, ctx: Context, query: ListQuery
    ) -> tuple[list[dict[str, Any]], bool]:
        if not ctx.is_admin:
            return [], False
        now = common.now()
        with db.read() as conn:
            items = [render(row, now) for row in conn.execute(select(AG))]
        return page([i for i in items if matches(i, query.filters)], query, "id"), False

    def get(self, db: Database, ctx: Context, agent_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(fetch(conn, ctx, agent_id), common.now())

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        raise errors.HTTPMethodNotAllowed()

    def update(
        self,
        db: Database,
        ctx: Context,
        agent_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        with db.write() as conn:
            fetch(conn, ctx, agent_id)
            if values:
                conn.execute(update(AG).where(AG.c.id == agent_id).values(**values))
            return render(fetch(conn, ctx, agent_id), common.now())

    def delete(self, db: Database, ctx: Context, agent_id: str) -> None:
        """As Neutron: the row goes with its networks and routers; a live agent's next report
        registers it anew."""
        with db.write() as conn:
            row = fetch(conn, ctx, agent_id)
            networks = hosted(conn, NDA, agent_id)
            routers = hosted(conn, RLA, agent_id)
            conn.execute(delete(AG).where(AG.c.id == agent_id))
            if tunneling_ip(row.configurations):  # its host is no VXLAN peer any more
                common.record_change(conn, "vxlan_endpoint", agent_id, "delete")
            for network_id in networks:
                rescheduled(conn, "network", network_id)
            for router_id in routers:
                rescheduled(conn, "router", router_id)

    def set_tags(
        self, db: Database, ctx: Context, agent_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        raise errors.ResourceNotFound()


def hosted(conn: Connection, bindings: Table, agent_id: str) -> list[str]:
    return list(
        conn.execute(select(bindings.c[0]).where(bindings.c.agent_id == agent_id)).scalars()
    )


# -- heartbeats ----------------------------------------------------------------------------


def record_heartbeat(conn: Connection, host: str, report: dict[str, Any]) -> None:
    """Each role the report names is alive now; a role seen for the first time, or an agent
    that has restarted, takes the networks and routers that no agent has yet (Neutron's
    network_auto_schedule and router_auto_schedule)."""
    now = common.now()
    started = datetime.fromisoformat(report.get("started_at") or now.isoformat())
    started = started.replace(tzinfo=None, microsecond=0)
    zone = report.get("availability_zone") or DEFAULT_ZONE
    for agent_type, configurations in report.get("agents", {}).items():
        if agent_type not in TYPES:
            continue
        values = {
            "configurations": configurations,
            "heartbeat_at": now,
            "started_at": started,
            # Shown for the zoned types only, as Neutron does; kept for all, as the zone of the
            # host where instances are placed (services.instances).
            "availability_zone": zone,
        }
        row = conn.execute(
            select(AG).where(AG.c.host == host, AG.c.agent_type == agent_type)
        ).first()
        agent_id = row.id if row else common.new_id()
        if row is None:
            conn.execute(
                insert(AG).values(
                    id=agent_id,
                    host=host,
                    agent_type=agent_type,
                    admin_state_up=True,
                    created_at=now,
                    **values,
                )
            )
        else:
            conn.execute(update(AG).where(AG.c.id == row.id).values(**values))
        if agent_type == L2 and tunneling_ip(configurations) != tunneling_ip(
            row.configurations if row else None
        ):
            common.record_change(conn, "vxlan_endpoint", agent_id, "update")
        if row is None or row.started_at != started:
            auto_schedule(conn, agent_id)


def auto_schedule(conn: Connection, agent_id: str) -> None:
    """The agent takes each network or router that no agent has, within the zones it hints."""
    agent = conn.execute(select(AG).where(AG.c.id == agent_id)).one()
    if not agent.admin_state_up:
        return
    if agent.agent_type == DHCP:
        N = schema.networks
        unhosted = select(N).where(
            N.c.id.in_(select(P.c.network_id).where(P.c.device_owner == DHCP_OWNER)),
            N.c.id.not_in(select(NDA.c.network_id)),
        )
        for network in conn.execute(unhosted).all():
            if not network.availability_zone_hints or agent.availability_zone in (
                network.availability_zone_hints
            ):
                conn.execute(insert(NDA).values(network_id=network.id, agent_id=agent_id))
                rescheduled(conn, "network", network.id)
    elif agent.agent_type == L3:
        R = schema.routers
        for router in conn.execute(select(R).where(R.c.id.not_in(select(RLA.c.router_id)))).all():
            if not router.availability_zone_hints or agent.availability_zone in (
                router.availability_zone_hints
            ):
                conn.execute(insert(RLA).values(router_id=router.id, agent_id=agent_id))
                rescheduled(conn, "router", router.id)


# -- the schedulers ------------------------------------------------------------------------


def candidates(
    conn: Connection,
    agent_type: str,
    bindings: Table,
    zones: list[str],
    now: datetime | None = None,
) -> list[Row]:
    """Agents of `agent_type` that may take something new (alive at `now`), least loaded first;
    within the `zones` hinted, when there are any."""
    load = (
        select(func.count())
        .select_from(bindings)
        .where(bindings.c.agent_id == AG.c.id)
        .scalar_subquery()
    )
    query = select(AG).where(AG.c.agent_type == agent_type, AG.c.admin_state_up.is_(True))
    if zones:
        query = query.where(AG.c.availability_zone.in_(zones))
    now = now or common.now()
    return [
        row
        for row in conn.execute(query.order_by(load, AG.c.host))
        if is_alive(row.heartbeat_at, now)
    ]


def schedule_network(conn: Connection, network_id: str) -> None:
    """Give a network that has a DHCP port, and no DHCP agent yet, one."""
    if conn.execute(select(NDA).where(NDA.c.network_id == network_id)).first() is None:
        network = conn.execute(
            select(schema.networks).where(schema.networks.c.id == network_id)
        ).one()
        found = candidates(conn, DHCP, NDA, network.availability_zone_hints)
        if found:
            conn.execute(insert(NDA).values(network_id=network_id, agent_id=found[0].id))
            common.record_change(conn, "network", network_id, "update")
    align_dhcp_port(conn, network_id)


def schedule_router(conn: Connection, router_id: str) -> None:
    """Give a router without an L3 agent one; its ports follow the agent's host."""
    if conn.execute(select(RLA).where(RLA.c.router_id == router_id)).first() is None:
        router = conn.execute(select(schema.routers).where(schema.routers.c.id == router_id)).one()
        found = candidates(conn, L3, RLA, router.availability_zone_hints)
        if found:
            conn.execute(insert(RLA).values(router_id=router_id, agent_id=found[0].id))
            common.record_change(conn, "router", router_id, "update")
    align_router_ports(conn, router_id)


def fail_over(conn: Connection, agent: Row, now: datetime) -> None:
    """Move each network (DHCP agent) or router (L3 agent) of the dead `agent` to the least
    loaded live agent of its type within its zone hints, as Neutron's automatic failover; one
    that no live agent may take stays."""
    if agent.agent_type == DHCP:
        kind, bindings, table = "network", NDA, schema.networks
    else:
        kind, bindings, table = "router", RLA, schema.routers
    key = bindings.c[0]
    for resource in conn.execute(
        select(table)
        .join(bindings, key == table.c.id)
        .where(bindings.c.agent_id == agent.id)
        .order_by(table.c.id)
    ).all():
        found = candidates(conn, agent.agent_type, bindings, resource.availability_zone_hints, now)
        if not found:
            continue
        conn.execute(delete(bindings).where(key == resource.id, bindings.c.agent_id == agent.id))
        conn.execute(insert(bindings).values({key.name: resource.id, "agent_id": found[0].id}))
        rescheduled(conn, kind, resource.id)


def rescheduled(conn: Connection, kind: str, resource_id: str) -> None:
    """After a binding changed by hand or went with its agent: the agents learn where it lives
    now (the feed carries the serving host), and its ports are bound there."""
    common.record_change(conn, kind, resource_id, "update")
    if kind == "network":
        align_dhcp_port(conn, resource_id)
    else:
        align_router_ports(conn, resource_id)


@cache
def _hosts_of(bindings: Table) -> Select[Any]:
    key = bindings.c[0]
    return (
        select(key, AG.c.host)
        .join(AG, AG.c.id == bindings.c.agent_id)
        .where(key.in_(common.IDS))
        .order_by(AG.c.host.desc())
    )


def agent_hosts(conn: Connection, bindings: Table, ids: list[str]) -> dict[str, str]:
    return dict(common.rows_for(conn, _hosts_of(bindings), ids))


def with_agent_hosts(
    conn: Connection, items: list[dict[str, Any]], bindings: Table, field: str
) -> list[dict[str, Any]]:
    """Feed bodies: each item with the host that serves it ("" for none)."""
    hosts = agent_hosts(conn, bindings, [i["id"] for i in items])
    for item in items:
        item[field] = hosts.get(item["id"], "")
    return items


def align_ports(conn: Connection, host: str, *which: ColumnElement[bool]) -> None:
    """Bind to `host` the ports `which` selects that are bound elsewhere (only those are read:
    a router's other interfaces are on its host already)."""
    for port in conn.execute(select(P).where(*which, P.c.binding_host_id != host)).all():
        common.bump(conn, P, "port", port, {"binding_host_id": host})


def align_dhcp_port(conn: Connection, network_id: str) -> None:
    """The DHCP port is bound to the host of the network's DHCP agent, as in Neutron."""
    host = agent_hosts(conn, NDA, [network_id]).get(network_id, "")
    align_ports(conn, host, P.c.network_id == network_id, P.c.device_owner == DHCP_OWNER)


def align_router_ports(conn: Connection, router_id: str) -> None:
    host = agent_hosts(conn, RLA, [router_id]).get(router_id, "")
    align_ports(conn, host, P.c.id.in_(select(RP.c.port_id).where(RP.c.router_id == router_id)))


def agents_of(conn: Connection, bindings: Table, key: str, resource_id: str) -> list[Row]:
    return list(
        conn.execute(
            select(AG)
            .join(bindings, bindings.c.agent_id == AG.c.id)
            .where(bindings.c[key] == resource_id)
            .order_by(AG.c.id)
        )
    )


@cache
def _zones_of(bindings: Table, key: str) -> Select[Any]:
    return (
        select(bindings.c[key], AG.c.availability_zone)
        .join(AG, AG.c.id == bindings.c.agent_id)
        .where(bindings.c[key].in_(common.IDS))
    )


def zones_of(conn: Connection, bindings: Table, key: str, ids: list[str]) -> dict[str, list[str]]:
    """`availability_zones` of networks or routers: the zones of the agents serving each."""
    found: dict[str, set[str]] = {i: set() for i in ids}
    for resource_id, zone in common.rows_for(conn, _zones_of(bindings, key), ids):
        if zone:
            found[resource_id].add(zone)
    return {i: sorted(z) for i, z in found.items()}


def check_zone_hints(conn: Connection, agent_type: str, hints: list[str]) -> None:
    """Each hint must be a zone where an agent of that type is, as Neutron validates them."""
    if not hints:
        return
    known = set(
        conn.execute(select(AG.c.availability_zone).where(AG.c.agent_type == agent_type)).scalars()
    )
    for zone in hints:
        if zone not in known:
            raise errors.AvailabilityZoneNotFound(availability_zone=zone)


def availability_zones(db: Database, ctx: Context, filters: dict[str, list[Any]]) -> list[dict]:
    """`GET /v2.0/availability_zones`: each zone of a DHCP agent is one of resource network,
    of an L3 agent one of resource router; available while one of its agents is up."""
    now = common.now()
    zones: dict[tuple[str, str], bool] = {}
    with db.read() as conn:
        for row in conn.execute(select(AG).where(AG.c.agent_type.in_(ZONED))):
            key = (row.availability_zone, "network" if row.agent_type == DHCP else "router")
            up = row.admin_state_up and is_alive(row.heartbeat_at, now)
            zones[key] = zones.get(key, False) or up
    items = [
        {"name": name, "resource": resource, "state": "available" if up else "unavailable"}
        for (name, resource), up in sorted(zones.items())
    ]
    return [i for i in items if matches(i, filters)]


# -- the schedulers' API -------------------------------------------------------------------


def require_admin(ctx: Context, action: str) -> None:
    if not ctx.is_admin:
        raise errors.PolicyNotAuthorized(action=action)


def dhcp_agents_of_network(db: Database, ctx: Context, network_id: str) -> list[dict[str, Any]]:
    require_admin(ctx, "get_dhcp-agents")
    with db.read() as conn:
        network_exists(conn, network_id)
        return [render(r, common.now()) for r in agents_of(conn, NDA, "network_id", network_id)]


def l3_agents_of_router(db: Database, ctx: Context, router_id: str) -> list[dict[str, Any]]:
    require_admin(ctx, "get_l3-agents")
    with db.read() as conn:
        router_exists(conn, router_id)
        return [render(r, common.now()) for r in agents_of(conn, RLA, "router_id", router_id)]


def network_exists(conn: Connection, network_id: str) -> None:
    N = schema.networks
    if conn.execute(select(N.c.id).where(N.c.id == network_id)).first() is None:
        raise errors.NetworkNotFound(net_id=network_id)


def router_exists(conn: Connection, router_id: str) -> None:
    R = schema.routers
    if conn.execute(select(R.c.id).where(R.c.id == router_id)).first() is None:
        raise errors.RouterNotFound(router_id=router_id)


def hosted_ids(
    db: Database, ctx: Context, agent_id: str, bindings: Table, action: str
) -> list[str]:
    require_admin(ctx, action)
    with db.read() as conn:
        fetch(conn, ctx, agent_id)
        return hosted(conn, bindings, agent_id)


def add_network(db: Database, ctx: Context, agent_id: str, network_id: str) -> None:
    require_admin(ctx, "create_dhcp-network")
    with db.write() as conn:
        network_exists(conn, network_id)
        agent = fetch(conn, ctx, agent_id)
        if agent.agent_type != DHCP or not agent.admin_state_up:
            raise errors.InvalidDHCPAgent(id=agent_id)
        for other in agents_of(conn, NDA, "network_id", network_id):
            # One DHCP port per network: a second agent would have nothing to serve.
            raise errors.NetworkHostedByDHCPAgent(network_id=network_id, agent_id=other.id)
        conn.execute(insert(NDA).values(network_id=network_id, agent_id=agent_id))
        rescheduled(conn, "network", network_id)


def remove_network(db: Database, ctx: Context, agent_id: str, network_id: str) -> None:
    require_admin(ctx, "delete_dhcp-network")
    with db.write() as conn:
        fetch(conn, ctx, agent_id)
        gone = conn.execute(
            delete(NDA).where(NDA.c.agent_id == agent_id, NDA.c.network_id == network_id)
        ).rowcount
        if not gone:
            raise errors.NetworkNotHostedByDhcpAgent(network_id=network_id, agent_id=agent_id)
        rescheduled(conn, "network", network_id)


def add_router(db: Database, ctx: Context, agent_id: str, router_id: str) -> None:
    require_admin(ctx, "create_l3-router")
    with db.write() as conn:
        router_exists(conn, router_id)
        agent = fetch(conn, ctx, agent_id)
        if agent.agent_type != L3 or not agent.admin_state_up:
            raise errors.InvalidL3Agent(id=agent_id)
        for other in agents_of(conn, RLA, "router_id", router_id):
            if other.id == agent_id:
                return  # already there: nothing to do, as in Neutron
            raise errors.RouterHostedByL3Agent(router_id=router_id, agent_id=other.id)
        conn.execute(insert(RLA).values(router_id=router_id, agent_id=agent_id))
        rescheduled(conn, "router", router_id)


def remove_router(db: Database, ctx: Context, agent_id: str, router_id: str) -> None:
    """A router the agent does not host is no error, as in Neutron; an unknown one is."""
    require_admin(ctx, "delete_l3-router")
    with db.write() as conn:
        fetch(conn, ctx, agent_id)
        gone = conn.execute(
            delete(RLA).where(RLA.c.agent_id == agent_id, RLA.c.router_id == router_id)
        ).rowcount
        router_exists(conn, router_id)
        if gone:
            rescheduled(conn, "router", router_id)
