"""What happens to a host whose agent falls silent.

A host is dead once every role of its agent has been silent for the agent
down time (services/agents.DOWN_TIME, `--agent-down-time`). The server's
liveness chore (`Liveness.check`, every quarter of the down time) then does,
in one write transaction per pass, what Neutron, OVN and Octavia do:

- the ports bound to the host turn DOWN, as Neutron with OVN does for a dead
  chassis (its instances' ports, and those it served routers, DHCP and load
  balancers with);
- its routers move to a live L3 agent and its networks' DHCP to a live DHCP
  agent, least loaded first within their availability zone hints (Neutron's
  allow_automatic_l3agent_failover and allow_automatic_dhcp_failover); their
  ports follow, DOWN until the new host plugs them;
- its load balancers are failed over to a live host, as Octavia's health
  manager fails over amphorae whose heartbeats stopped (PENDING_UPDATE until
  the new host runs them, then ACTIVE);
- its lab instances stay where they are, as Nova keeps a server on a host
  whose compute service is down: their status does not change, and
  `host_status` shows administrators DOWN (services/instances.py).

What no live agent can take stays, and is moved by a later pass once one can.
Every change goes through the change feed, so the other hosts follow at once.
A host that comes back reports its ports ACTIVE again; its plan no longer
holds what moved, so its agent removes those namespaces; nothing moves back by
itself, as in Neutron.

The chore is idempotent (what it did leaves nothing for the next pass) and
two servers sharing PostgreSQL may run it at once: it decides inside its write
transaction, and writes are serialized (Database.write), so the second one
finds the work done. After the server starts it waits one down time first, so
that hosts silent only because the server was away can report.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from neutrino.db import Database
from neutrino.services import agents, common, loadbalancers

AG, P = agents.AG, agents.P
DOWN = "DOWN"


def dead_hosts(conn: Connection, now: datetime) -> list[str]:
    """Hosts none of whose roles has reported within the down time."""
    return list(
        conn.execute(
            select(AG.c.host)
            .group_by(AG.c.host)
            .having(func.max(AG.c.heartbeat_at) <= now - agents.DOWN_TIME)
            .order_by(AG.c.host)
        ).scalars()
    )


def stranded(conn: Connection, host: str) -> bool:
    """Whether the dead `host` holds something a pass may change: a port not DOWN, a network or
    router, or a load balancer's port."""
    hosted = [
        select(bindings.c.agent_id)
        .join(AG, AG.c.id == bindings.c.agent_id)
        .where(AG.c.host == host)
        for bindings in (agents.NDA, agents.RLA)
    ]
    mine = P.c.binding_host_id == host
    queries = [
        *hosted,
        select(P.c.id).where(mine, P.c.status != DOWN),
        select(P.c.id).where(mine, P.c.device_owner == loadbalancers.VIP_OWNER),
    ]
    return any(conn.execute(query.limit(1)).first() for query in queries)


def fail_over_host(conn: Connection, host: str, now: datetime) -> None:
    for port in conn.execute(
        select(P).where(P.c.binding_host_id == host, P.c.status != DOWN).order_by(P.c.id)
    ).all():
        common.bump(conn, P, "port", port, {"status": DOWN})
    for agent in conn.execute(
        select(AG).where(AG.c.host == host, AG.c.agent_type.in_(agents.ZONED))
    ).all():
        agents.fail_over(conn, agent, now)
    loadbalancers.fail_over_host(conn, host, now)


class Liveness:
    """The chore: one pass per call."""

    def __init__(self, started: datetime | None = None) -> None:
        self.started = started or common.now()

    def check(self, db: Database, now: datetime | None = None) -> list[str]:
        """Fail over every dead host that holds something; returns those hosts."""
        now = now or common.now()
        if now - self.started < agents.DOWN_TIME:
            return []
        with db.read() as conn:
            if not any(stranded(conn, host) for host in dead_hosts(conn, now)):
                return []
        with db.write() as conn:  # decided again under the write lock: another may have done it
            found = [host for host in dead_hosts(conn, now) if stranded(conn, host)]
            for host in found:
                fail_over_host(conn, host, now)
            return found
