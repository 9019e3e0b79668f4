"""Read-only collections computed on each request: network IP availability, floating IP pools.

Not a `Collection`: an entry is computed, not stored, and has no `id`; it is
sorted and paged by its primary key in Neutron (`key`), filtered by what the
service understands, and cut to `fields`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino import errors
from neutrino.api import Authenticate
from neutrino.api.errors import json_response
from neutrino.api.v2 import page_links, project_fields
from neutrino.api.v2.attrs import Attr
from neutrino.api.v2.query import ListQuery, parse_list_query
from neutrino.context import Context
from neutrino.db import Database

Item = dict[str, Any]


@dataclass(frozen=True)
class Computed:
    name: str  # the collection's key in a list body
    member: str  # the key in a show body
    path: str
    key: str
    attributes: dict[str, Attr]
    list: Callable[[Database, Context, dict[str, list[Any]]], list[Item]]
    get: Callable[[Database, Context, str], Item] | None = None


def page(items: list[Item], query: ListQuery, key: str) -> list[Item]:
    """The requested page of `items` in the requested order, then `key` order; a null sorts
    before any value, as on Neutron's database."""
    order = list(query.sorts)
    if all(attr != key for attr, _ in order):
        order.append((key, order[-1][1] if order else True))
    if query.page_reverse:
        order = [(attr, not asc) for attr, asc in order]
    for attr, asc in reversed(order):  # stable sorts, least significant first
        items = sorted(items, key=lambda i: (i[attr] is not None, i[attr]), reverse=not asc)
    if query.marker:
        keys = [i[key] for i in items]
        if query.marker not in keys:
            raise errors.NotFound(f"Marker {query.marker} could not be found.")
        items = items[keys.index(query.marker) + 1 :]
    items = items[: query.limit] if query.limit else items
    return items[::-1] if query.page_reverse else items


def computed_routes(
    c: Computed, db: Database, authenticate: Authenticate, max_limit: int
) -> list[BaseRoute]:
    async def index(request: Request) -> Response:
        ctx = await authenticate(request)
        query = parse_list_query(request.query_params, c, max_limit)
        items = page(await run_in_threadpool(c.list, db, ctx, query.filters), query, c.key)
        body: dict[str, Any] = {c.name: [project_fields(i, query.fields) for i in items]}
        links = page_links(request, items, query, key=c.key)
        if links:
            body[f"{c.name}_links"] = links
        return json_response(body)

    async def member(request: Request) -> Response:
        ctx = await authenticate(request)
        assert c.get is not None
        fields = [f for v in request.query_params.getlist("fields") for f in v.split(",") if f]
        item = await run_in_threadpool(c.get, db, ctx, request.path_params["id"])
        return json_response({c.member: project_fields(item, fields)})

    base = f"/v2.0/{c.path}"
    routes: list[BaseRoute] = [
        Route(base, index, methods=["GET"]),
        Route(base + ".json", index, methods=["GET"]),
    ]
    if c.get is not None:
        routes.append(Route(base + "/{id}", member, methods=["GET"]))
    return routes
