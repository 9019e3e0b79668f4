"""Realization: a resource's status follows what the hosts that implement it have applied.

As OVN's nb_cfg -> hv_cfg: each report of a host's agent carries `revision`,
the feed revision of the model it has applied (every piece of its share that
changed up to there), and `failed`, per collection the resources it could
not apply at that revision (they stay as they were before). A resource that
last changed at feed revision R (`changed_at`) is realized once every host
that must implement it has applied a revision >= R without failing it; one
of them failing it at such a revision fails it. Services turn this into the
statuses clients see (ports, floating IPs, load balancers) when a report
arrives (feed.record_report), and a write puts the resource back in its
not-yet state (DOWN, PENDING_*).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sqlalchemy import Connection, func, select

from neutrino.db import schema
from neutrino.services import common

C = schema.changes


class State(Enum):
    PENDING = "pending"  # some host has not applied it yet
    REALIZED = "realized"
    FAILED = "failed"


@dataclass(frozen=True)
class Applied:
    """What one host has applied, as its last report says."""

    revision: int = -1  # -1: it never reported
    failed: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, report: dict[str, Any]) -> Applied:
        failed = report.get("failed") or {}
        return cls(
            int(report.get("revision", 0)),
            {collection: frozenset(ids) for collection, ids in failed.items()},
        )

    def failures(self, collection: str) -> frozenset[str]:
        return self.failed.get(collection, frozenset())

    def state(self, collection: str, resource_id: str, revision: int) -> State:
        if self.revision < revision:
            return State.PENDING
        return State.FAILED if resource_id in self.failures(collection) else State.REALIZED


class Hosts:
    """The hosts' last reports, read once each, for the length of one transaction."""

    def __init__(self, conn: Connection, reporting: str, report: dict[str, Any]) -> None:
        self.conn = conn
        self.known = {reporting: Applied.of(report)}

    def __getitem__(self, host: str) -> Applied:
        if host not in self.known:
            A = schema.agents
            row = self.conn.execute(select(A.c.report).where(A.c.host == host)).first()
            self.known[host] = Applied.of(row.report) if row else Applied()
        return self.known[host]

    def state(
        self, hosts: Iterable[str], collection: str, resource_id: str, revision: int
    ) -> State:
        """Over every host that must implement the resource ("": none bound yet, pending)."""
        states = {self[host].state(collection, resource_id, revision) for host in hosts}
        if not states or (State.PENDING in states and State.FAILED not in states):
            return State.PENDING
        return State.FAILED if State.FAILED in states else State.REALIZED


def changed_at(conn: Connection, resource_type: str, ids: Iterable[str]) -> dict[str, int]:
    """The feed revision of each resource's latest change (the log keeps it: see feed)."""
    latest = (
        select(C.c.resource_id, func.max(C.c.revision))
        .where(C.c.resource_type == resource_type, C.c.resource_id.in_(common.IDS))
        .group_by(C.c.resource_id)
    )
    return {resource_id: revision for resource_id, revision in common.rows_for(conn, latest, ids)}


def changed_between(conn: Connection, resource_type: str, after: int, through: int) -> set[str]:
    """The resources of a type that changed in the feed after revision `after` up to `through`:
    those a host's report of `through`, following one of `after`, may have realized."""
    return set(
        conn.execute(
            select(C.c.resource_id).where(
                C.c.resource_type == resource_type, C.c.revision > after, C.c.revision <= through
            )
        ).scalars()
    )
