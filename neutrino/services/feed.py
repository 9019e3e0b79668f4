"""The change feed: how agents learn what to realize, and tell what they did.

Every write bumps one global revision and logs (revision, type, id, op) in
the same transaction (services/common.record_change). An agent reads a
snapshot of its host's share of the model (plan.share: what compile_host
reads for that host, not the whole cloud) with its revision, then asks for
the changes after that revision; the answer carries the current body of each
changed resource in the share (null once it is gone or out of the share), so
the agent's copy is exact after applying it. Long-polls wait on a signal set
after each commit of this process and, on PostgreSQL, on each commit of
another process that moved the head (its notification, see
db.Database.listen): no polling.

A share is the closure of a few anchors (networks, routers, security groups,
...). Each answer carries the host's anchors and the agent sends them back
with its next request, so any process can answer it: beside the changed
resources, it sends those that entered the share as its anchors moved (a
port bound on a new network brings that network's ports, subnets, ...) and
nulls for those that left. Shares are cut from a `Mirror` of the whole model
kept by each process and advanced by the log. Without a host, the endpoints
answer the whole model.

The log is compacted while the server runs (`Compactor`): an entry is
dropped once a later one names the same resource (an answer carries only
the current body anyway, so nothing an agent learns changes), and the entry
of a deletion once it is older than DELETIONS_KEPT; an agent still behind
that deletion gets 410 and reads a snapshot again.

Agents report the revision they applied, what they failed to apply, and what
they observed (port links, instances' namespaces and addresses, haproxy's
health); services.realization turns that into statuses. A port turns ACTIVE
when its host has applied it and plugged it; a floating IP when its router's
host has applied it; a load balancer when every host of its amphorae has. A
port neutrino-cni made for a container goes once its host reports its device
gone (ports.collect_absent).
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
from neutrino.plan.share import ANCHORS, Anchors, anchors, belongs, cut
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
    realization,
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
    "instance": (
        "instances",
        schema.lab_instances,
        lambda conn, rows: instances.render(conn, ADMIN, rows),
    ),
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
    """The whole model and its revision."""
    with db.read() as conn:
        return _snapshot(conn)


def _snapshot(conn: Connection) -> dict[str, Any]:
    model: dict[str, Any] = {"revision": Database.head_revision(conn)}
    for key, table, render in RESOURCES.values():
        model[key] = render(conn, list(conn.execute(select(table).order_by(table.c.id))))
    return model


def changes_since(db: Database, since: int) -> dict[str, Any]:
    """The changes of the whole model after `since`; Gone when the agent must resync."""
    with db.read() as conn:
        return _changes(conn, since)


def _compacted_through(conn: Connection) -> int:
    return conn.execute(select(schema.feed_head.c.compacted_through)).scalar_one_or_none() or 0


def _changes(conn: Connection, since: int) -> dict[str, Any]:
    C = schema.changes
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
    if since < _compacted_through(conn):
        raise Gone()
    return {"revision": head, "changes": changes}


class Mirror:
    """The whole model at one revision, in this process, from which hosts' shares are cut.

    It is read once, then advanced by the change log (only what changed is rendered),
    however many agents poll. It also remembers the revision of each resource's latest
    change, deleted ones included, so it can tell an agent what changed since its revision.
    Answers of any process are interchangeable: an agent echoes the anchors of its share
    (plan.share) with its next request, and the answer carries, beside the changes in its
    share, what entered it (in full) and what left it (null) as its anchors moved.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.revision = -1  # nothing read yet
        self.items: dict[str, dict[str, dict[str, Any]]] = {}  # collection -> id -> body
        self.changed: dict[tuple[str, str], int] = {}  # (type, id) -> revision, oldest first
        self.compacted_through = 0
        self._anchors: dict[str, tuple[int, Anchors]] = {}  # host -> (revision, anchors)
        self._lock = threading.Lock()

    def snapshot(self, host: str) -> dict[str, Any]:
        """The share of `host` and its anchors."""
        with self._lock:
            self._advance()
            found = self._anchors_of(host)
            return {**cut(self._model(), host, found), "anchors": encode(found)}

    def changes(self, host: str, since: int, echoed: Anchors) -> dict[str, Any]:
        """What turns the share of `host` at `since` (whose anchors were `echoed`) into its
        share now."""
        with self._lock:
            self._advance()
            if since > self.revision or since < self.compacted_through:
                raise Gone()
            found = self._anchors_of(host)
            changes = []
            for (kind, resource_id), revision in reversed(self.changed.items()):
                if revision <= since:
                    break
                key = RESOURCES[kind][0]
                body = self.items[key].get(resource_id)
                if body is not None and not belongs(key, body, host, found):
                    body = None
                changes.append(
                    {"revision": revision, "type": kind, "id": resource_id, "resource": body}
                )
            changes.reverse()
            if echoed != found:
                changed = {(c["type"], c["id"]) for c in changes}
                for kind, (key, _table, _render) in RESOURCES.items():
                    for resource_id, body in self.items[key].items():
                        now = belongs(key, body, host, found)
                        if (
                            now != belongs(key, body, host, echoed)
                            and (kind, resource_id) not in changed
                        ):
                            changes.append(
                                {
                                    "revision": self.changed.get((kind, resource_id), 0),
                                    "type": kind,
                                    "id": resource_id,
                                    "resource": body if now else None,
                                }
                            )
            return {"revision": self.revision, "changes": changes, "anchors": encode(found)}

    def _model(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            **{key: list(items.values()) for key, items in self.items.items()},
        }

    def _anchors_of(self, host: str) -> Anchors:
        revision, found = self._anchors.get(host, (-1, {}))
        if revision != self.revision:
            found = anchors(self._model(), host)
            self._anchors[host] = (self.revision, found)
        return found

    def _advance(self) -> None:
        with self.db.read() as conn:
            head = Database.head_revision(conn)
            if head == self.revision:
                return
            try:
                if self.revision < 0 or head < self.revision:  # first read, or a reset database
                    raise Gone()
                delta = _changes(conn, self.revision)
            except Gone:
                self._read(conn)
                return
            for change in delta["changes"]:
                kind, resource_id = change["type"], change["id"]
                items = self.items[RESOURCES[kind][0]]
                if change["resource"] is None:
                    items.pop(resource_id, None)
                else:
                    items[resource_id] = change["resource"]
                self.changed.pop((kind, resource_id), None)  # keeps the order of revisions
                self.changed[(kind, resource_id)] = change["revision"]
            compacted_through = _compacted_through(conn)
            if compacted_through != self.compacted_through:  # agents behind it resync anyway
                self.compacted_through = compacted_through
                self.changed = {
                    (kind, resource_id): revision
                    for (kind, resource_id), revision in self.changed.items()
                    if revision > compacted_through or resource_id in self.items[RESOURCES[kind][0]]
                }
            self.revision = delta["revision"]

    def _read(self, conn: Connection) -> None:
        C = schema.changes
        model = _snapshot(conn)
        self.items = {key: {i["id"]: i for i in model[key]} for key, _t, _r in RESOURCES.values()}
        latest = func.max(C.c.revision)
        self.changed = {
            (kind, resource_id): revision
            for kind, resource_id, revision in conn.execute(
                select(C.c.resource_type, C.c.resource_id, latest)
                .group_by(C.c.resource_type, C.c.resource_id)
                .order_by(latest)
            )
            if kind in RESOURCES
        }
        self.compacted_through = _compacted_through(conn)
        self.revision = model["revision"]
        self._anchors.clear()


def encode(found: Anchors) -> dict[str, list[str]]:
    return {name: sorted(ids) for name, ids in found.items()}


def decode(echoed: Any) -> Anchors | None:
    """Anchors as an agent echoes them; None unless they are well formed."""
    if not isinstance(echoed, dict) or set(echoed) != set(ANCHORS):
        return None
    if not all(
        isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in echoed.values()
    ):
        return None
    return {name: frozenset(ids) for name, ids in echoed.items()}


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


PORT_WORDS = ("ports", "absent")  # what a report says of each port the host plugs


def record_report(db: Database, host: str, report: dict[str, Any]) -> None:
    """Store an agent's report and move the statuses it realizes (services.realization)."""
    A = schema.agents
    with db.write() as conn:
        before = conn.execute(select(A.c.report).where(A.c.host == host)).scalar()
        values = {
            "applied_revision": int(report.get("revision", 0)),
            "heartbeat_at": common.now(),
            # The ports' statuses are kept by the ports: a host's 10,000 are not stored again
            # at each report, nor read back.
            "report": {key: value for key, value in report.items() if key not in PORT_WORDS},
        }
        if before is None:
            conn.execute(insert(A).values(host=host, **values))
        else:
            conn.execute(update(A).where(A.c.host == host).values(**values))
        agents.record_heartbeat(conn, host, report)
        hosts = realization.Hosts(conn, host, report)
        ports.record_report(conn, host, hosts[host], report.get("ports", {}))
        ports.collect_absent(conn, host, hosts[host], report.get("absent", []))
        trunks.record_report(conn, host, report.get("ports", {}))
        earlier = realization.Applied.of(before) if before is not None else realization.Applied()
        floatingips.record_report(conn, host, earlier, hosts[host])
        instances.record_report(conn, host, report.get("instances", {}))
        loadbalancers.record_report(conn, host, hosts, report.get("loadbalancers", {}))
