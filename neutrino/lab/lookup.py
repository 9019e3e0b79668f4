"""One resource of a model snapshot, named by id or by another key (the server and the agents
look resources up alike)."""

from __future__ import annotations

from typing import Any

from neutrino import errors

Model = dict[str, Any]


def find_one(items: list[Model], ref: str, kind: str, *keys: str) -> Model:
    """The one item whose id, or one of `keys`, is `ref`."""
    found = [item for item in items if any(item.get(key) == ref for key in ("id", *keys))]
    if len(found) != 1:
        raise errors.NotFound(f"No single {kind} matches {ref}.")
    return found[0]
