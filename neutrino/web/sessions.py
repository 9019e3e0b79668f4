"""Signed-in browser sessions: a random id in an HttpOnly, SameSite cookie.

The session itself (the user's token, its project, the CSRF secret) stays
on the server, in the database, where every server process finds it; the
browser only holds an unguessable id, and the database only its SHA-256.
Every form carries the session's CSRF token and every POST is checked
against it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from neutrino.db import Database
from neutrino.db.schema import dashboard_sessions as DS

COOKIE = "neutrino_dashboard"


@dataclass
class Session:
    token: str
    expires_at: float
    user: dict[str, Any]
    project: dict[str, Any]
    roles: list[str]
    services: dict[str, str]  # service type -> path of its endpoint
    projects: list[dict[str, Any]] = field(default_factory=list)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    notice: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def csrf_ok(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value, self.csrf)

    def pop_notice(self) -> str | None:
        notice, self.notice = self.notice, None
        return notice


class Sessions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, session: Session) -> str:
        sid = secrets.token_urlsafe(32)
        with self.db.write() as conn:
            conn.execute(delete(DS).where(DS.c.expires_at < moment(time.time())))
            conn.execute(
                insert(DS).values(
                    id=key(sid),
                    session=dataclasses.asdict(session),
                    expires_at=moment(session.expires_at),
                )
            )
        return sid

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self.db.read() as conn:
            stored = conn.execute(select(DS.c.session).where(DS.c.id == key(sid))).scalar()
        if stored is None or stored["expires_at"] < time.time():
            return None
        return Session(**stored)

    def save(self, sid: str, session: Session) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(DS)
                .where(DS.c.id == key(sid))
                .values(session=dataclasses.asdict(session), expires_at=moment(session.expires_at))
            )

    def remove(self, sid: str | None) -> None:
        with self.db.write() as conn:
            conn.execute(delete(DS).where(DS.c.id == key(sid or "")))


def key(sid: str) -> str:
    """What the database keeps of a session's id: enough to find it, not to use it."""
    return hashlib.sha256(sid.encode()).hexdigest()


def moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)
