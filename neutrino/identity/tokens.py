"""Fernet tokens: what a token says, how it is sealed, and the cache of checked tokens."""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from neutrino.identity.files import write_private

KEY_FILE = "fernet.keys"
_FORMAT = 2  # first field of every payload, so the layout can change later (2: microseconds)
METHODS = ("password", "token")
_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # what the identity tables hold, and never more
_AUDIT_ID = re.compile(r"[0-9A-Za-z_-]{22}")  # new_audit_id's
_EPOCH = datetime(1970, 1, 1)
_LATEST = (datetime.max - _EPOCH) // timedelta(microseconds=1)  # the last moment a datetime holds

V = TypeVar("V")


@dataclass(frozen=True)
class TokenPayload:
    user_id: str
    project_id: str | None  # None: unscoped
    methods: tuple[str, ...]
    # Unix microseconds, as Keystone counts them: a password change revokes exactly the
    # tokens issued before it, even within the same second.
    issued_at: int
    expires_at: int
    audit_ids: tuple[str, ...]  # its own, then (if rescoped) the first of its chain

    @property
    def audit_id(self) -> str:
        return self.audit_ids[0]


def new_audit_id() -> str:
    return secrets.token_urlsafe(16)


def moment(micros: int) -> datetime:
    """Unix microseconds as a naive UTC datetime, exactly."""
    return _EPOCH + timedelta(microseconds=micros)


def load_or_create_keys(path: Path) -> list[bytes]:
    """Keys one per line, the first one signs; several let a rotation overlap."""
    write_private(path, Fernet.generate_key() + b"\n", exclusive=True)
    keys = [line.strip() for line in path.read_bytes().splitlines() if line.strip()]
    if not keys:
        raise RuntimeError(f"{path} holds no Fernet key")
    return keys


class TokenCodec:
    def __init__(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def seal(self, payload: TokenPayload) -> str:
        fields = [
            _FORMAT,
            payload.user_id,
            payload.project_id,
            list(payload.methods),
            payload.issued_at,
            payload.expires_at,
            list(payload.audit_ids),
        ]
        return self._fernet.encrypt(orjson.dumps(fields)).decode()

    def open(self, token: str) -> TokenPayload | None:
        """The payload of an authentic, well-formed token, or None; expiry is the caller's
        to check."""
        try:
            fields = orjson.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, UnicodeError, orjson.JSONDecodeError):
            return None
        return _payload(fields)


def _payload(fields: Any) -> TokenPayload | None:
    """The payload if every field has the type, format and size `seal` writes, else None.

    Only a holder of the key can seal a token, yet a malformed one (an old layout, a bug, a
    leaked key) must be refused like any other invalid token, never reach a query or a format.
    """
    if not (isinstance(fields, list) and len(fields) == 7 and _is_int(fields[0])):
        return None
    version, user_id, project_id, methods, issued_at, expires_at, audit_ids = fields
    well_formed = (
        version == _FORMAT
        and _matches(_ID, user_id)
        and (project_id is None or _matches(_ID, project_id))
        and isinstance(methods, list)
        and 0 < len(methods) <= len(METHODS)
        and all(method in METHODS for method in methods)
        and _is_int(issued_at)
        and _is_int(expires_at)
        and 0 <= issued_at <= expires_at <= _LATEST
        and isinstance(audit_ids, list)
        and 0 < len(audit_ids) <= 2
        and all(_matches(_AUDIT_ID, audit_id) for audit_id in audit_ids)
    )
    if not well_formed:
        return None
    return TokenPayload(
        user_id, project_id, tuple(methods), issued_at, expires_at, tuple(audit_ids)
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _matches(pattern: re.Pattern[str], value: Any) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


class TokenCache(Generic[V]):
    """Recently checked tokens: a hit is a dictionary lookup, not a decrypt and four queries.

    Keyed by the token string itself, which was authenticated when it was put
    here. An entry is trusted for `fresh_seconds` (monotonic clock), which
    bounds how long a revocation or role change goes unseen by a process that
    hears of none (see Identity). What was read before a `clear` is not put
    after it: `put` takes the `generation` its value was read in.
    """

    def __init__(self, max_entries: int = 10_000, fresh_seconds: float = 1.0) -> None:
        self.max_entries = max_entries
        self.fresh_seconds = fresh_seconds
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self.generation = 0  # of clears

    def get(self, token: str, now: float) -> V | None:
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            if now - entry[0] > self.fresh_seconds:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return entry[1]

    def put(self, token: str, value: V, now: float, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return
            self._entries[token] = (now, value)
            self._entries.move_to_end(token)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.generation += 1

    def __len__(self) -> int:
        return len(self._entries)
