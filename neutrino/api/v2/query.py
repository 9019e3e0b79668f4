"""List query semantics shared by every Neutron collection.

`?name=a&name=b` filters (repeated values OR), `fields`, `sort_key`/`sort_dir`
(several), `limit`/`marker`/`page_reverse`, and the tag filters `tags`,
`tags-any`, `not-tags`, `not-tags-any`. Parsing here only checks names and
shapes against the collection's attributes; services/listing.py turns the
result into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import QueryParams

from neutrino import errors
from neutrino.api.v2.attrs import boolean

PAGING = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


@dataclass
class ListQuery:
    filters: dict[str, list[Any]] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    sorts: list[tuple[str, bool]] = field(default_factory=list)  # (attribute, ascending)
    limit: int | None = None
    paged: bool = False  # the client asked for a limit (else the limit is pagination_max_limit)
    marker: str | None = None
    page_reverse: bool = False
    tags: dict[str, list[str]] = field(default_factory=dict)


def parse_list_query(params: QueryParams, collection: Any, max_limit: int) -> ListQuery:
    """`collection` is an api.v2.Collection: its attributes say what may be filtered or sorted.
    A list without a limit, or with a larger one, gets `max_limit` items and a `next` link."""
    query = ListQuery()
    attrs = collection.attributes
    for key in params:
        values = params.getlist(key)
        if key in PAGING:
            continue
        if key in TAG_FILTERS:
            query.tags[key] = [t for v in values for t in v.split(",") if t]
            continue
        attr = attrs.get(key)
        if attr is None or not attr.filter:
            raise errors.HTTPBadRequest(f"{key} is invalid attribute for filtering")
        try:
            query.filters[key] = [attr.parse_filter(v) for v in values]
        except errors.NeutronError:
            raise
        except (ValueError, TypeError) as exc:
            raise errors.HTTPBadRequest(f"Invalid value for filter {key}: {exc}") from None

    query.fields = [f for v in params.getlist("fields") for f in v.split(",") if f]

    keys, dirs = params.getlist("sort_key"), params.getlist("sort_dir")
    if dirs and len(dirs) != len(keys):
        raise errors.HTTPBadRequest("The number of sort_keys and sort_dirs must be same")
    for i, key in enumerate(keys):
        attr = attrs.get(key)
        if attr is None or not attr.sort:
            raise errors.HTTPBadRequest(f"{key} is invalid attribute for sort_keys")
        direction = dirs[i].lower() if dirs else "asc"
        if direction not in ("asc", "desc"):
            raise errors.HTTPBadRequest(
                f"{dirs[i]} is invalid value for sort_dirs, valid values are 'asc' and 'desc'"
            )
        query.sorts.append((key, direction == "asc"))

    limit = 0
    if "limit" in params:
        text = params["limit"]
        try:
            limit = int(text)
        except ValueError:
            raise errors.HTTPBadRequest(
                f"Limit must be an integer 0 or greater and not '{text}'"
            ) from None
        if limit < 0:
            raise errors.HTTPBadRequest(f"Limit must be an integer 0 or greater and not '{text}'")
    query.limit = min(limit or max_limit, max_limit)
    query.paged = limit > 0
    query.marker = params.get("marker") or None
    if "page_reverse" in params:
        query.page_reverse = boolean(params["page_reverse"])
    return query
