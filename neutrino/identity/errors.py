"""Keystone's error vocabulary: the titles and messages its clients expect."""

from __future__ import annotations

from neutrino.errors import KeystoneError

AUTH_REQUIRED = "The request you have made requires authentication."


def unauthorized(message: str = AUTH_REQUIRED) -> KeystoneError:
    return KeystoneError(401, "Unauthorized", message)


def forbidden(action: str) -> KeystoneError:
    return KeystoneError(
        403, "Forbidden", f"You are not authorized to perform the requested action: {action}."
    )


def not_found(kind: str, ident: str) -> KeystoneError:
    return KeystoneError(404, "Not Found", f"Could not find {kind}: {ident}.")


def conflict(kind: str, detail: str) -> KeystoneError:
    return KeystoneError(
        409, "Conflict", f"Conflict occurred attempting to store {kind} - {detail}."
    )


def bad_request(message: str) -> KeystoneError:
    return KeystoneError(400, "Bad Request", message)
