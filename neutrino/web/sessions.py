"""Signed-in browser sessions: a random id in an HttpOnly, SameSite cookie.

The session itself (the user's token, its project, the CSRF secret) stays
in this process; the browser only holds an unguessable id. Every form
carries the session's CSRF token and every POST is checked against it.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

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
    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}

    def add(self, session: Session) -> str:
        self._expire()
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = session
        return sid

    def get(self, sid: str | None) -> Session | None:
        session = self._by_id.get(sid or "")
        if session is None or session.expires_at < time.time():
            return None
        return session

    def replace(self, sid: str, session: Session) -> None:
        self._by_id[sid] = session

    def remove(self, sid: str | None) -> Session | None:
        return self._by_id.pop(sid or "", None)

    def _expire(self) -> None:
        now = time.time()
        for sid in [sid for sid, s in self._by_id.items() if s.expires_at < now]:
            del self._by_id[sid]
