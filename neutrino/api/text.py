"""Only text that both databases store gets in: one check for bodies, one for URLs
(api.middleware makes it).

PostgreSQL's text cannot hold NUL (U+0000); SQLite stores it. A request that
carries one, in a JSON body (keys or values, at any depth), a path or a query
string, is refused with a 400 in its API's own shape before anything is
looked up or stored, so both databases answer alike. The other characters
neither database takes never get this far: orjson refuses lone surrogates and
invalid UTF-8 in a body, and a URL's percent-escapes decode with invalid UTF-8
replaced by U+FFFD.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Scope

from neutrino import errors

NUL = "\x00"
REFUSAL = "text must not contain the NUL character (U+0000)"


def holds_nul(value: Any) -> bool:
    """Whether a string anywhere in a parsed JSON value, key or value, holds NUL."""
    pending = [value]  # not recursive: JSON may nest deeper than Python's stack
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def url_holds_nul(scope: Scope) -> bool:
    """Whether a request's path (decoded) or query string (as sent) holds NUL."""
    query = scope["query_string"]
    return NUL in scope["path"] or b"%00" in query or b"\x00" in query


def load_json(raw: bytes) -> Any:
    """A request body parsed: orjson.JSONDecodeError when it is not JSON, InvalidInput (400) when
    a string in it holds NUL. JSON spells NUL only as the escape \\u0000: without it, no walk."""
    value = orjson.loads(raw)
    if b"\\u0000" in raw and holds_nul(value):
        raise errors.InvalidInput(error_message=REFUSAL)
    return value
