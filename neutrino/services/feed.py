"""The change feed: how agents learn what to realize, and tell what they did.

Every write bumps one global revision and logs (revision, type, id, op) in
the same transaction (services/common.record_change). An agent reads a
snapshot of the whole model with its revision, then asks for the changes
after that revision; the answer carries the current body of each changed
resource (or null once it is gone), so the agent's copy of the model is
exact after applying it. Long-polls wait on a signal set after each commit
of this process and, on PostgreSQL, on each commit of another process that
moved the head (its notification, see db.Database.listen): no polling.

The log is compacted while the server runs (`Compactor`): an entry is
dropped once a later one names the same resource (an answer carries only
the current body anyway, so nothing an agent learns changes), and the entry
of a deletion once it is older than DELETIONS_KEPT; an agent still behind
that deletion gets 410 and reads a snapshot again.

Agents report the revision they applied and what they observed (port
status, instances' namespaces and addresses). A port turns ACTIVE when its
host has plugged it; a floating IP when its router's host has programmed it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Table, bindparam, delete, func, insert, select, update

from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.plan.dhcp import DHCP_AGENT_HOST, DHCP_DOMAIN
from neutrino.plan.routers import L3_AGENT_HOST
from neutrino.services import (
    address_groups,
    agents,
    common,
    dns,
    floatingips,
    instances,
    lbaas,
    loadbalancers,
    metering,
    networks,
    ports,
    qos,
    routers,
    security_groups,
    subnetpools,
    subnets,
    trunks,
)

Render = Callable[[Connection, list[Row]], list[dict[str, Any]]]
ADMIN = Context.admin()


def with_scopes(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    """Subnets as agents see them: with their address scope, which routers NAT by."""
    bodies = subnets.render(conn, rows)
    scopes = subnetpools.scope_of_subnets(conn, [body["id"] for body in bodies])
    for body in bodies:
        body["address_scope_id"] = scopes[body["id"]]
    return bodies


def render_networks(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    items = networks.render(conn, ADMIN, rows)
    for item in items:
        item[DHCP_DOMAIN] = dns.DOMAIN.rstrip(".")
    return agents.with_agent_hosts(conn, items, agents.NDA, DHCP_AGENT_HOST)


def render_routers(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    return agents.with_agent_hosts(conn, routers.render(conn, rows), agents.RLA, L3_AGENT_HOST)


# type -> (snapshot key, table, render). Rule changes reach agents through their group,
# policy or label: a rule write also bumps its security group, QoS policy or metering label.
# Networks and routers also say which host serves them (the schedulers' choice), networks the
# domain of their DHCP server's names; the hosts' VTEPs are their agents' reports: only agents
# see these.
RESOURCES: dict[str, tuple[str, Table, Render]] = {
    "network": ("networks", schema.networks, render_networks),
    "subnet": ("subnets", schema.subnets, with_scopes),
    "port": ("ports", schema.ports, ports.render),
    "security_group": ("security_groups", schema.security_groups, security_groups.render_groups),
    "address_group": ("address_groups", schema.address_groups, address_groups.render),
    "router": ("routers", schema.routers, render_routers),
    "floatingip": (
        "floatingips",
        schema.floatingips,
        lambda conn, rows: floatingips.render(conn, rows, ranges=True),
    ),
    "instance": ("instances", schema.lab_instances, instances.render),
    "loadbalancer": ("loadbalancers", schema.lb_loadbalancers, lbaas.render_for_agents),
    "qos_policy": ("qos_policies", schema.qos_policies, qos.render),
    "metering_label": ("metering_labels", schema.metering_labels, metering.render_for_agents),
    "vxlan_endpoint": ("vxlan_endpoints", schema.network_agents, agents.render_endpoints),
}


DELETIONS_KEPT = timedelta(hours=1)
COMPACT_BATCH = 1000  # resources per write transaction: writers wait for one batch at most


class Gone(Exception):
    """The agent's revision is unknown here (the database was reset) or behind the compacted
    part of the log: it must resync."""


def snapshot(db: Database) -> dict[str, Any]:
    with db.read() as conn:
        model: dict[str, Any] = {"revision": Database.head_revision(conn)}
        for key, table, render in RESOURCES.values():
            model[key] = render(conn, list(conn.execute(select(table).order_by(table.c.id))))
        return model


def changes_since(db: Database, since: int) -> dict[str, Any]:
    C = schema.changes
    with db.read() as conn:
        head = Database.head_revision(conn)
        if since > head:
            raise Gone()
        latest: dict[tuple[str, str], int] = {}
        for revision, kind, resource_id in conn.execute(
            select(C.c.revision, C.c.resource_type, C.c.resource_id)
            .where(C.c.revision > since)
            .order_by(C.c.revision)
        ):
            if kind in RESOURCES:
                latest[(kind, resource_id)] = revision
        bodies: dict[tuple[str, str], dict[str, Any]] = {}
        by_kind: dict[str, list[str]] = {}
        for kind, resource_id in latest:
            by_kind.setdefault(kind, []).append(resource_id)
        for kind, ids in by_kind.items():
            _key, table, render = RESOURCES[kind]
            for chunk in common.chunked(ids):
                for body in render(
                    conn, list(conn.execute(select(table).where(table.c.id.in_(chunk))))
                ):
                    bodies[(kind, body["id"])] = body
        changes = [
            {
                "revision": revision,
                "type": kind,
                "id": resource_id,
                "resource": bodies.get((kind, resource_id)),
            }
            for (kind, resource_id), revision in sorted(latest.items(), key=lambda item: item[1])
        ]
        # Read after the entries: a compaction that removed one of them shows here.
        if since < (
            conn.execute(select(schema.feed_head.c.compacted_through)).scalar_one_or_none() or 0
        ):
            raise Gone()
        return {"revision": head, "changes": changes}


class Compactor:
    """Keeps the change log as long as the model, not as long as its history.

    Each pass looks only at the entries since the previous one: for each
    resource they name, the older entries go. Entries of deletions older than
    DELETIONS_KEPT go too, and the head records up to where they went.
    """

    def __init__(self) -> None:
        self.scanned = (
            0  # entries up to here have been looked at (0: all of them, once per process)
        )

    def compact(self, db: Database, now: datetime | None = None) -> int:
        """One pass; returns how many entries went."""
        C = schema.changes
        with db.read() as conn:
            head = Database.head_revision(conn)
            named = conn.execute(
                select(C.c.resource_type, C.c.resource_id, func.max(C.c.revision))
                .where(C.c.revision > self.scanned)
                .group_by(C.c.resource_type, C.c.resource_id)
            ).all()
        removed = 0
        older = delete(C).where(
            C.c.resource_type == bindparam("kind"),
            C.c.resource_id == bindparam("rid"),
            C.c.revision < bindparam("latest"),
        )
        for start in range(0, len(named), COMPACT_BATCH):
            with db.write() as conn:
                removed += conn.execute(
                    older,
                    [
                        {"kind": kind, "rid": rid, "latest": latest}
                        for kind, rid, latest in named[start : start + COMPACT_BATCH]
                    ],
                ).rowcount
        self.scanned = head
        cutoff = (now or common.now()) - DELETIONS_KEPT
        with db.write() as conn:
            through = conn.execute(
                select(func.max(C.c.revision)).where(C.c.op == "delete", C.c.at < cutoff)
            ).scalar()
            if through is not None:
                removed += conn.execute(
                    delete(C).where(C.c.op == "delete", C.c.revision <= through)
                ).rowcount
                conn.execute(update(schema.feed_head).values(compacted_through=through))
        return removed


class Waiters:
    """Wakes long-polls (on the server's event loop) when a write commits (in a worker thread)."""

    def __init__(self) -> None:
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()

    def notify(self) -> None:
        with self._lock:
            waiting = list(self._waiting)
        for loop, event in waiting:
            loop.call_soon_threadsafe(event.set)

    @contextmanager
    def listening(self) -> Iterator[asyncio.Event]:
        """An event set by the next commit, registered before the caller looks at the head."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiting.add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._waiting.discard(entry)


async def wait_for_change(
    waiters: Waiters, since: int, timeout: float, head: Callable[[], int]
) -> None:
    """Return once the head revision passes `since`, or after `timeout` seconds.

    Listening starts before each look at the head, so a commit between the two
    is never missed.
    """
    deadline = time.monotonic() + timeout
    while True:
        with waiters.listening() as committed:
            remaining = deadline - time.monotonic()
            if head() > since or remaining <= 0:
                return
            try:
                await asyncio.wait_for(committed.wait(), remaining)
            except TimeoutError:
                return


def record_report(db: Database, host: str, report: dict[str, Any]) -> None:
    """Store an agent's report and move statuses that changed (each change is itself in the
    feed)."""
    P, A = schema.ports, schema.agents
    wanted: dict[str, str] = report.get("ports", {})
    with db.write() as conn:
        known = conn.execute(select(A.c.host).where(A.c.host == host)).first()
        values = {
            "applied_revision": int(report.get("revision", 0)),
            "heartbeat_at": common.now(),
            "report": report,
        }
        if known:
            conn.execute(update(A).where(A.c.host == host).values(**values))
        else:
            conn.execute(insert(A).values(host=host, **values))
        agents.record_heartbeat(conn, host, report)
        for chunk in common.chunked(list(wanted)):
            for row in conn.execute(select(P).where(P.c.id.in_(chunk))):
                status = wanted[row.id]
                if row.status != status:
                    common.bump(conn, P, "port", row, {"status": status})
        trunks.record_report(conn, host, wanted)
        for fip_id, status in report.get("floatingips", {}).items():
            floatingips.set_status(conn, fip_id, status)
        instances.record_report(conn, host, report.get("instances", {}))
        loadbalancers.record_report(
            conn, host, values["applied_revision"], report.get("loadbalancers", {})
        )
