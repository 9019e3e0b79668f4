"""Password hashing with argon2id.

Parameters are OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): about
15-20 ms per check on one core, slow for a guesser and fast enough for token
issue. Each check holds 19 MiB, so concurrent checks are limited to the
number of CPUs: more would only queue on the CPU while multiplying memory.
"""

from __future__ import annotations

import functools
import os
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 1)


def hash_password(password: str) -> str:
    with _SLOTS:
        return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True if `password` matches `stored`; a missing hash costs a full check too.

    Checking against a decoy when the user has no password (or does not
    exist) keeps response time from telling which user names exist.
    """
    try:
        with _SLOTS:
            matched = _HASHER.verify(stored or _decoy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and stored is not None


def needs_rehash(stored: str) -> bool:
    """True for hashes made with other (older) parameters; rehash on next login."""
    return _HASHER.check_needs_rehash(stored)


@functools.cache
def _decoy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))
