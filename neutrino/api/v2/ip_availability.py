"""`/v2.0/network-ip-availabilities`: read-only, keyed by network ID.

Not a `Collection`: an entry is computed, not stored, and has no `id`;
sorting and pages go by `network_id`, its primary key in Neutron.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino import errors
from neutrino.api.errors import json_response
from neutrino.api.v2 import Authenticate, page_links, project_fields
from neutrino.api.v2.attrs import Attr, integer
from neutrino.api.v2.query import ListQuery, parse_list_query
from neutrino.db import Database
from neutrino.services.ip_availability import NetworkIpAvailabilities

ATTRIBUTES = {
    "network_id": Attr(sort=True),
    "network_name": Attr(),
    "project_id": Attr(),
    "tenant_id": Attr(),
    "ip_version": Attr(filter_convert=integer),
    **{
        name: Attr(filter=False)
        for name in ("total_ips", "used_ips", "subnet_ip_availability", "ip_availability_details")
    },
}


@dataclass(frozen=True)
class Resource:
    name: str = "network_ip_availabilities"
    attributes: Any = None


RESOURCE = Resource(attributes=ATTRIBUTES)


def page(items: list[dict[str, Any]], query: ListQuery) -> tuple[list[dict[str, Any]], bool]:
    """The requested page of `items` in network_id order, and whether more follow."""
    ascending = all(asc for _, asc in query.sorts) != query.page_reverse
    items = sorted(items, key=lambda i: i["network_id"], reverse=not ascending)
    if query.marker:
        keys = [i["network_id"] for i in items]
        if query.marker not in keys:
            raise errors.NotFound(f"Marker {query.marker} could not be found.")
        items = items[keys.index(query.marker) + 1 :]
    more = bool(query.limit) and len(items) > query.limit  # type: ignore[operator]
    items = items[: query.limit] if query.limit else items
    return (items[::-1] if query.page_reverse else items), more


def ip_availability_routes(db: Database, authenticate: Authenticate) -> list[BaseRoute]:
    service = NetworkIpAvailabilities()

    async def index(request: Request) -> Response:
        ctx = await authenticate(request)
        query = parse_list_query(request.query_params, RESOURCE)
        items, more = page(await run_in_threadpool(service.list, db, ctx, query.filters), query)
        body: dict[str, Any] = {RESOURCE.name: [project_fields(i, query.fields) for i in items]}
        links = page_links(request, RESOURCE, items, query, more, key="network_id")
        if links:
            body[f"{RESOURCE.name}_links"] = links
        return json_response(body)

    async def member(request: Request) -> Response:
        ctx = await authenticate(request)
        fields = [f for v in request.query_params.getlist("fields") for f in v.split(",") if f]
        item = await run_in_threadpool(service.get, db, ctx, request.path_params["network_id"])
        return json_response({"network_ip_availability": project_fields(item, fields)})

    base = "/v2.0/network-ip-availabilities"
    return [
        Route(base, index, methods=["GET"]),
        Route(base + ".json", index, methods=["GET"]),
        Route(base + "/{network_id}", member, methods=["GET"]),
    ]
