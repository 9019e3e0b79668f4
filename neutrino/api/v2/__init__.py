"""The Neutron v2.0 API: one `Collection` per resource family, routes made from them.

A collection names its attributes (request shapes, filters, sorts) and the
service functions behind it. Every collection gets the same list / show /
create / update / delete routes, the `/tags` sub-resource, and its member
actions (e.g. `PUT /routers/{id}/add_router_interface`). Services do the
rules and own their transaction; this layer parses, authenticates and shapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable
from urllib.parse import urlencode

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from neutrino import errors
from neutrino.api import Authenticate
from neutrino.api.errors import encode_json, json_response
from neutrino.api.text import load_json
from neutrino.api.v2.attrs import Attr, list_of, parse_body, tag
from neutrino.api.v2.query import ListQuery, parse_list_query
from neutrino.context import Context
from neutrino.db import Database
from neutrino.services.common import Tags


class Service(Protocol):
    def list(
        self, db: Database, ctx: Context, query: ListQuery
    ) -> tuple[list[dict[str, Any]], bool]: ...
    def get(self, db: Database, ctx: Context, resource_id: str) -> dict[str, Any]: ...
    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]: ...
    def update(
        self,
        db: Database,
        ctx: Context,
        resource_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]: ...
    def delete(self, db: Database, ctx: Context, resource_id: str) -> None: ...


@runtime_checkable
class Tagged(Service, Protocol):
    """The service of a collection with Neutron's tag sub-resource (most; not RBAC policies)."""

    def set_tags(
        self, db: Database, ctx: Context, resource_id: str, add: Tags, remove: Tags | None
    ) -> Tags: ...


@runtime_checkable
class Streaming(Protocol):
    def stream(
        self, db: Database, ctx: Context, query: ListQuery
    ) -> Iterator[list[dict[str, Any]]]:
        """What `list` answers (without `page_reverse`), in chunks read as they are consumed."""
        ...


class ChildService(Service, Protocol):
    def under(self, parent_id: str) -> Service:
        """The same service for the members of one parent (a collection with a `parent`)."""
        ...


Action = Callable[[Database, Context, str, Any], dict[str, Any]]


@dataclass
class Collection:
    name: str
    member: str
    attributes: dict[str, Attr]
    service: Service
    actions: dict[str, Action] = field(default_factory=dict)
    path: str = ""  # URL path when it differs from the name (security-groups)
    parent: str = ""  # the collection this one lives under (floatingips/{id}/port_forwardings)
    tagged: bool = True  # has the /tags sub-resource
    key: str = "id"  # what identifies a member: its URL segment and a page's marker

    @property
    def url(self) -> str:
        return self.path or self.name


def project_fields(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in fields} if fields else item


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise errors.BadRequest(resource="resource", msg="Request body required")
    try:
        return load_json(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequest(
            resource="resource", msg=f"Malformed JSON in request body: {exc}"
        ) from None


IF_MATCH = re.compile(r"^\s*revision_number=(\d+)\s*$")


def parse_if_match(request: Request) -> int | None:
    header = request.headers.get("if-match")
    if header is None:
        return None
    match = IF_MATCH.match(header)
    if not match:
        raise errors.BadRequest(
            resource="resource", msg="If-Match header must be of the form revision_number=N"
        )
    return int(match.group(1))


def page_links(
    request: Request, items: list[dict[str, Any]], query: ListQuery, key: str = "id"
) -> list[dict[str, str]]:
    """`<collection>_links` as Neutron makes them: a full page always links onwards (following
    the link past the end gives an empty page); only a short page ends the walk. The marker is
    an item's `key`."""
    ends = (items[0][key], items[-1][key]) if items else None
    return links_for(request, len(items), ends, query)


def links_for(
    request: Request, count: int, ends: tuple[str, str] | None, query: ListQuery
) -> list[dict[str, str]]:
    """page_links for a page of `count` items whose first and last markers are `ends`."""
    short = count < (query.limit or 0)
    if not query.limit or (short and not query.paged):
        return []  # not paged, or a list that pagination_max_limit did not cut
    base = str(request.url.replace(query=""))
    params = [
        (k, v) for k, v in request.query_params.multi_items() if k not in ("marker", "page_reverse")
    ]

    def href(marker: list[tuple[str, str]], reverse: list[tuple[str, str]]) -> str:
        return f"{base}?{urlencode([*params, *marker, *reverse])}"

    links = []
    if not (short and not query.page_reverse):
        marker = [("marker", ends[1])] if ends else []
        links.append({"rel": "next", "href": href(marker, [])})
    if not (short and query.page_reverse):
        links.append(
            {
                "rel": "previous",
                "href": href([("marker", ends[0])] if ends else [], [("page_reverse", "True")]),
            }
        )
    return links


async def streamed_list(
    request: Request, name: str, key: str, chunks: Iterator[list[dict[str, Any]]], query: ListQuery
) -> Response:
    """A list answer written as its rows are read, so memory does not grow with the list; the
    same bytes as the whole body at once."""

    def ending(count: int, ends: tuple[str, str] | None) -> dict[str, Any]:
        links = links_for(request, count, ends, query)
        return {f"{name}_links": links} if links else {}

    return await streamed_object(name, key, chunks, query.fields, ending)


Ending = Callable[[int, tuple[str, str] | None], dict[str, Any]]


async def streamed_object(
    name: str,
    key: str,
    chunks: Iterator[list[dict[str, Any]]],
    fields: list[str],
    ending: Ending,
) -> Response:
    """`{name: [items cut to fields], ...ending}` written as the chunks are read: `ending` gets
    how many items there were and the `key` of the first and the last. The first chunk is read
    before answering: a bad request (an unknown marker) still gets its 4xx."""
    first: list[dict[str, Any]] = await run_in_threadpool(next, chunks, [])

    def body() -> Iterator[bytes]:
        yield b"{" + encode_json(name) + b":["
        count, ends, chunk = 0, None, first
        while chunk:
            raw = b",".join(encode_json(project_fields(item, fields)) for item in chunk)
            yield b"," + raw if count else raw
            count += len(chunk)
            ends = (ends[0] if ends else chunk[0][key], chunk[-1][key])
            chunk = next(chunks, [])
        yield (
            b"]"
            + b"".join(
                b"," + encode_json(k) + b":" + encode_json(v)
                for k, v in ending(count, ends).items()
            )
            + b"}"
        )

    return StreamingResponse(body(), media_type="application/json")


MAX_TAGS = 50  # on one resource, as in Neutron


def parse_tags(member: str, body: Any) -> list[str]:
    """A `{"tags": [...]}` body, checked as Neutron's tagging extension checks it."""
    if not isinstance(body, dict) or "tags" not in body:
        raise errors.InvalidInput(error_message="Invalid tags body")
    tags = list_of(tag, unique=True)(body["tags"])
    if len(tags) > MAX_TAGS:
        raise errors.BadRequest(
            resource=member, msg=f"The number of tags exceed the per-resource limit of {MAX_TAGS}"
        )
    return tags


def tagging(c: Collection) -> Tagged:
    assert isinstance(c.service, Tagged), c.name  # only such collections have tag routes
    return c.service


def collection_routes(
    collection: Collection,
    db: Database,
    authenticate: Authenticate,
    max_limit: int,
    prefix: str = "/v2.0",
) -> list[BaseRoute]:
    """`max_limit`: most items one list answer holds (Neutron's `pagination_max_limit`).

    A collection with a parent gets list / show / create / update / delete under one
    parent member: `{parent}/{parent_id}/{url}`.
    """
    c = collection

    def service_for(request: Request) -> Service:
        parent_id = request.path_params.get("parent_id")
        return c.service if parent_id is None else cast(ChildService, c.service).under(parent_id)

    async def index(request: Request) -> Response:
        ctx = await authenticate(request)
        if request.method == "POST":
            return await create(request, ctx)
        query = parse_list_query(request.query_params, c, max_limit)
        service = service_for(request)
        if isinstance(service, Streaming) and not query.page_reverse:
            return await streamed_list(
                request, c.name, c.key, service.stream(db, ctx, query), query
            )
        items, _ = await run_in_threadpool(service.list, db, ctx, query)
        body: dict[str, Any] = {c.name: [project_fields(i, query.fields) for i in items]}
        links = page_links(request, items, query, c.key)
        if links:
            body[f"{c.name}_links"] = links
        return json_response(body)

    async def create(request: Request, ctx: Context) -> Response:
        body = await read_json(request)
        # A collection named as its member (security_groups_default_statefulness) has no bulk.
        if isinstance(body, dict) and c.name in body and len(body) == 1 and c.name != c.member:
            return await bulk_create(ctx, service_for(request), body[c.name])
        values = parse_body(body, c.member, c.attributes, create=True, is_admin=ctx.is_admin)
        item = await run_in_threadpool(service_for(request).create, db, ctx, values)
        return json_response({c.member: item}, 201)

    async def bulk_create(ctx: Context, service: Service, bodies: Any) -> Response:
        if not isinstance(bodies, list) or not bodies:
            raise errors.BadRequest(resource=c.member, msg=f"'{c.name}' must be a non-empty list")
        # Items come bare or wrapped in the member key, as Neutron accepts both.
        wrapped = [b if isinstance(b, dict) and c.member in b else {c.member: b} for b in bodies]
        parsed = [
            parse_body(b, c.member, c.attributes, create=True, is_admin=ctx.is_admin)
            for b in wrapped
        ]
        answer = await run_in_threadpool(create_all, ctx, service, parsed)
        return json_response({c.name: answer}, 201)

    def create_all(
        ctx: Context, service: Service, parsed: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        with db.write():  # one transaction: all or nothing, as Neutron's bulk create
            return [service.create(db, ctx, values) for values in parsed]

    async def member(request: Request) -> Response:
        ctx = await authenticate(request)
        resource_id, service = request.path_params["id"], service_for(request)
        if request.method == "GET":
            fields = [f for v in request.query_params.getlist("fields") for f in v.split(",") if f]
            item = await run_in_threadpool(service.get, db, ctx, resource_id)
            return json_response({c.member: project_fields(item, fields)})
        if request.method == "PUT":
            values = parse_body(
                await read_json(request),
                c.member,
                c.attributes,
                create=False,
                is_admin=ctx.is_admin,
            )
            item = await run_in_threadpool(
                service.update, db, ctx, resource_id, values, parse_if_match(request)
            )
            return json_response({c.member: item})
        await run_in_threadpool(service.delete, db, ctx, resource_id)
        return Response(status_code=204)

    async def action(request: Request) -> Response:
        ctx = await authenticate(request)
        handler = c.actions.get(request.path_params["action"])
        if handler is None:
            raise errors.ResourceNotFound()
        body = await read_json(request) if request.method in ("PUT", "POST") else None
        result = await run_in_threadpool(handler, db, ctx, request.path_params["id"], body)
        return json_response(result)

    async def tags(request: Request) -> Response:
        ctx = await authenticate(request)
        resource_id = request.path_params["id"]
        if request.method == "GET":
            item = await run_in_threadpool(service.get, db, ctx, resource_id)
            return json_response({"tags": item["tags"]})
        if request.method == "PUT":
            new = parse_tags(c.member, await read_json(request))
            result = await run_in_threadpool(tagging(c).set_tags, db, ctx, resource_id, new, None)
            return json_response({"tags": result})
        if request.method == "POST":  # tag-creation: add these, keep the others
            new = parse_tags(c.member, await read_json(request))
            await run_in_threadpool(tagging(c).set_tags, db, ctx, resource_id, new, [])
            return json_response({"tags": new}, status=201)
        await run_in_threadpool(tagging(c).set_tags, db, ctx, resource_id, [], None)
        return Response(status_code=204)

    async def one_tag(request: Request) -> Response:
        ctx = await authenticate(request)
        resource_id, name = request.path_params["id"], tag(request.path_params["tag"])
        if request.method == "GET":
            item = await run_in_threadpool(service.get, db, ctx, resource_id)
            if name not in item["tags"]:
                raise errors.TagNotFound(tag=name, resource=c.member, resource_id=resource_id)
            return Response(status_code=204)
        if request.method == "PUT":
            await run_in_threadpool(tagging(c).set_tags, db, ctx, resource_id, [name], [])
            return Response(status_code=201)
        await run_in_threadpool(tagging(c).set_tags, db, ctx, resource_id, [], [name])
        return Response(status_code=204)

    if c.parent:
        base = f"{prefix}/{c.parent}/{{parent_id}}/{c.url}"
        return [
            Route(base, index, methods=["GET", "POST"]),
            Route(base + "/{id}", member, methods=["GET", "PUT", "DELETE"]),
        ]
    service = c.service
    routes: list[BaseRoute] = []
    # Neutron finds a collection by its name with dashes or with underscores alike
    # (/network-segment-ranges, /network_segment_ranges).
    for url in dict.fromkeys([c.url, c.url.replace("_", "-"), c.url.replace("-", "_")]):
        base = f"{prefix}/{url}"
        routes += [
            Route(base, index, methods=["GET", "POST"]),
            Route(base + ".json", index, methods=["GET", "POST"]),
        ]
        if c.tagged:
            # Neutron's tag extension names a collection by its last path segment: QoS
            # policies' tags are at /policies/{id}/tags.
            tagged = f"{prefix}/{url.rsplit('/', 1)[-1]}"
            routes += [
                Route(tagged + "/{id}/tags", tags, methods=["GET", "PUT", "POST", "DELETE"]),
                Route(tagged + "/{id}/tags/{tag}", one_tag, methods=["GET", "PUT", "DELETE"]),
            ]
        routes += [
            Route(base + "/{id}/{action}", action, methods=["PUT", "GET", "POST"]),
            Route(base + "/{id}", member, methods=["GET", "PUT", "DELETE"]),
        ]
    return routes
