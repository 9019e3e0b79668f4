"""Refusals of the APIs that are not Neutron's (Octavia's load balancers, Barbican's key
manager): a status and a message, which each API renders in its own shape (api/octavia.py,
api/keymanager.py). Neutron's errors, with their types, are neutrino/errors.py."""

from __future__ import annotations


class Refusal(Exception):
    status = 400
    retry_after: int | None = None  # seconds, for a refusal worth retrying in a moment

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(Refusal):
    status = 400


class Forbidden(Refusal):
    status = 403


class NotFound(Refusal):
    status = 404


class Conflict(Refusal):
    status = 409
