"""The Octavia v2 API at /load-balancer: load balancers, listeners, pools, members, health monitors,
L7 policies and rules, and the statistics haproxy counts for load balancers and listeners.

A load balancer can be created with its whole tree in one call (Octavia's
fully populated create). Served under both `/v2` (openstacksdk) and `/v2.0`
(python-octaviaclient).
Errors take Octavia's shape, `{"faultcode", "faultstring", "debuginfo"}`,
whether they come from the load balancer rules or from the Neutron port
underneath (a VIP address already taken is a 409 here too). Lists filter on
the objects' attributes (a filter on another name is ignored), project
`fields`, sort (`sort=key:dir`) and page (`limit`/`marker`, `<collection>_links`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino.api import Authenticate
from neutrino.api.errors import Handler, json_response, refusing_endpoint
from neutrino.api.octavia_shapes import (
    HEALTHMONITOR,
    L7POLICY,
    L7RULE,
    LISTENER,
    LOADBALANCER,
    MEMBER,
    POOL,
    QUOTA,
    Field,
    parse,
    parse_loadbalancer,
)
from neutrino.api.text import load_json
from neutrino.api.v2 import streamed_object
from neutrino.context import Context
from neutrino.db import Database
from neutrino.services import lb_base, lb_policy, lbaas, loadbalancers
from neutrino.services.listing import Chunks
from neutrino.services.refusals import Forbidden, Invalid

VERSIONS = [
    ("v2.0", "SUPPORTED", "2016-12-11T00:00:00Z"),
    ("v2.27", "CURRENT", "2023-05-17T00:00:00Z"),
]
# What a member of a batch update that exists takes from Octavia's defaults when not given.
MEMBER_DEFAULTS = ("admin_state_up", "weight", "backup")
TRUE = ("true", "1", "yes", "y", "on", "t")  # oslo's bool_from_string
PAGING = {"limit", "marker", "sort", "sort_key", "sort_dir", "page_reverse", "fields"}


def fault(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "faultcode": "Client" if status < 500 else "Server",
        "faultstring": message,
        "debuginfo": None,
    }
    return json_response(body, status, headers)


def render_error(_request: Request, status: int, message: str) -> Response:
    """For api.middleware: refusals and failures on /load-balancer."""
    return fault(status, message)


async def body_of(request: Request) -> Any:
    try:
        return load_json(await request.body())
    except orjson.JSONDecodeError:
        raise Invalid("Invalid input: the request body must be JSON.") from None


def values_of(item: dict[str, Any], key: str) -> list[Any]:
    """An attribute's values for a filter. Listeners and pools are filtered by `loadbalancer_id`
    although they show their load balancers as a list, `loadbalancers`."""
    if key == "loadbalancer_id" and "loadbalancers" in item:
        return [lb["id"] for lb in item["loadbalancers"]]
    return [item[key]] if key in item else []


def has(item: dict[str, Any], key: str) -> bool:
    return key in item or (key == "loadbalancer_id" and "loadbalancers" in item)


Filters = dict[str, set[str]]


def filters_of(params: Any, example: dict[str, Any] | None) -> Filters:
    """The request's filters, values lowered, on what the objects have (`example`, any of them;
    None: there are none). A filter on an attribute the objects do not have is ignored:
    openstacksdk sends the parent's id (l7policy_id) when it lists a policy's rules."""
    keys = set(params.keys()) - PAGING
    return {
        key: {v.lower() for v in params.getlist(key)}
        for key in keys
        if example is None or has(example, key)
    }


def matches(item: dict[str, Any], filters: Filters) -> bool:
    return all(
        wanted & {str(v).lower() for v in values_of(item, key)} for key, wanted in filters.items()
    )


def page_links(
    request: Request, count: int, ends: tuple[Any, Any] | None, limit: int | None
) -> list[dict[str, str]]:
    """A full page links to the `next`, a page after a marker to the `previous`; an empty page
    to none."""
    if ends is None:
        return []
    params = request.query_params
    query = [(k, v) for k, v in params.multi_items() if k not in ("marker", "page_reverse")]
    here = str(request.url.replace(query=""))
    links = []
    if params.get("marker") is not None:
        previous = [*query, ("marker", ends[0]), ("page_reverse", "True")]
        links.append({"rel": "previous", "href": f"{here}?{urlencode(previous)}"})
    if limit is None or count >= limit:
        following = [*query, ("marker", ends[1])]
        links.append({"rel": "next", "href": f"{here}?{urlencode(following)}"})
    return links


def fields_of(params: Any) -> list[str]:
    return [f for v in params.getlist("fields") for f in v.split(",") if f]


def listing(
    request: Request,
    collection: str,
    items: list[dict[str, Any]],
    max_limit: int,
    *,
    links_key: str | None = None,
    marker_key: str = "id",
) -> Response:
    """Filter, sort, page and project a list as Octavia's pagination does: at most `max_limit`
    items (`pagination_max_limit`), fewer when the request's limit says so (a limit below 1 means
    no limit); a full page links to the `next`, a page after a marker to the `previous`
    (`page_reverse=True`: the page before the marker), under `links_key`, else
    `<collection>_links`. A limit, sort direction, sort key or marker that is not valid is a 400."""
    params = request.query_params
    filters = filters_of(params, items[0] if items else None)
    items = [i for i in items if matches(i, filters)]
    for key, descending in reversed(sort_keys(params)):
        if items and key not in items[0]:
            raise Invalid(f"Supplied sort key '{key}' is not valid.")
        items.sort(key=lambda i: (i.get(key) is None, str(i.get(key))), reverse=descending)
    limit = page_limit(params, max_limit)
    marker = params.get("marker")
    backwards = params.get("page_reverse") == "True"
    if marker is not None:
        ids = [i[marker_key] for i in items]
        if marker not in ids:
            raise Invalid(bad_marker(marker))
        at = ids.index(marker)
        items = items[max(0, at - (limit or at)) : at] if backwards else items[at + 1 :]
    items = items[:limit]
    # Providers have no marker key, and never need one: they are fewer than a page.
    ends = (items[0].get(marker_key), items[-1].get(marker_key)) if items else None
    links = page_links(request, len(items), ends, limit)
    fields = fields_of(params)
    if fields:
        items = [{k: v for k, v in i.items() if k in fields} for i in items]
    return json_response({collection: items, links_key or f"{collection}_links": links})


def bad_marker(marker: str) -> str:
    return f"Supplied pagination marker '{marker}' is not valid."


Stream = Callable[[list[str]], Chunks]


async def streamed_listing(
    request: Request,
    collection: str,
    stream: Stream,
    max_limit: int,
    *,
    links_key: str | None = None,
    marker_key: str = "id",
) -> Response:
    """`listing` written as the objects are read, so memory does not grow with the list: the
    same bytes, the same errors. `stream(fields)` gives the objects in chunks, the oldest first;
    `fields`, when it can, reads only those. A sorted list is still sorted whole."""
    params = request.query_params
    fields = fields_of(params)
    ordered = bool(params.get("sort") or params.get("sort_key"))
    filtered = bool(set(params.keys()) - PAGING)
    chunks = stream([] if ordered or filtered else fields)
    # As `listing`: the service's refusals (an unseen parent, a caller who may not read) first.
    first: list[dict[str, Any]] = await run_in_threadpool(next, chunks, [])
    if ordered:
        items = await run_in_threadpool(lambda: [*first, *(i for c in chunks for i in c)])
        return listing(
            request, collection, items, max_limit, links_key=links_key, marker_key=marker_key
        )
    try:
        limit = page_limit(params, max_limit)
    except Invalid:
        await run_in_threadpool(chunks.close)
        raise

    def ending(count: int, ends: tuple[str, str] | None) -> dict[str, Any]:
        return {links_key or f"{collection}_links": page_links(request, count, ends, limit)}

    page = paged(first, chunks, params, limit, marker_key)
    return await streamed_object(collection, marker_key, page, fields, ending)


def paged(
    first: list[dict[str, Any]],
    rest: Chunks,
    params: Any,
    limit: int | None,
    marker_key: str,
) -> Iterator[list[dict[str, Any]]]:
    """The page `listing` answers of an unsorted list, in chunks as `first` and `rest` are read;
    reads no further than the page. A marker not among the objects is a 400 before any chunk."""
    marker = params.get("marker")
    backwards = params.get("page_reverse") == "True"
    found = marker is None
    before: deque[dict[str, Any]] = deque(maxlen=limit)  # backwards: the page before the marker
    filters: Filters | None = None
    left = limit
    try:
        for chunk in chain([first], rest):
            if filters is None and chunk:
                filters = filters_of(params, chunk[0])
            chunk = [i for i in chunk if matches(i, filters or {})]
            if not found:
                ids = [i[marker_key] for i in chunk]
                if marker not in ids:
                    if backwards:
                        before.extend(chunk)
                    continue
                at = ids.index(marker)
                if backwards:
                    before.extend(chunk[:at])
                    if before:
                        yield list(before)
                    return
                found, chunk = True, chunk[at + 1 :]
            if left is not None:
                chunk = chunk[:left]
                left -= len(chunk)
            if chunk:
                yield chunk
            if left == 0:
                return
        if not found:
            raise Invalid(bad_marker(marker))
    finally:
        rest.close()


def sort_keys(params: Any) -> list[tuple[str, bool]]:
    """`sort=k1:dir,k2` or `sort_key=k1,k2&sort_dir=dir`: (key, descending) pairs."""
    if params.get("sort"):
        pairs = [s.split(":") for s in params["sort"].split(",")]
    else:
        keys = params.get("sort_key", "").split(",") if params.get("sort_key") else []
        directions = params.get("sort_dir", "").split(",") if params.get("sort_dir") else []
        pairs = [[k, *directions[i : i + 1]] for i, k in enumerate(keys)]
    out = []
    for key, *direction in pairs:
        if len(direction) > 1:
            raise Invalid(f"Supplied sort key '{[key, *direction]}' is not valid.")
        way = (direction or ["asc"])[0].lower()
        if way not in ("asc", "desc"):
            raise Invalid(f"Supplied sort direction '{way}' is not valid.")
        out.append((key, way == "desc"))
    return out


def page_limit(params: Any, max_limit: int) -> int | None:
    """The page size: the request's limit up to `max_limit`; none below 1."""
    given = params.get("limit")
    if given is None:
        return max_limit
    try:
        limit = int(given)
    except ValueError:
        raise Invalid(f"Supplied pagination limit '{given}' is not valid.") from None
    return None if limit < 1 else min(limit, max_limit)


def own_projects_only(request: Request, ctx: Context) -> None:
    """A list filtered by another project's `project_id` is refused unless the caller reads
    every project (Octavia checks the filter's project against the policy, then lists)."""
    asked = set(request.query_params.getlist("project_id"))
    if asked - {ctx.project_id} and not lb_policy.reads_everything(ctx):
        raise Forbidden(loadbalancers.FORBIDDEN)


def routes(
    db: Database, authenticate: Authenticate, public_url: str, max_limit: int
) -> list[BaseRoute]:
    base = public_url + "/load-balancer"
    lbs, listeners = loadbalancers.LoadBalancers(), lbaas.Listeners()
    families: list[tuple[str, str, lbaas.Family, dict[str, Field]]] = [
        ("listeners", "listener", listeners, LISTENER),
        ("pools", "pool", lbaas.Pools(), POOL),
        ("healthmonitors", "healthmonitor", lbaas.HealthMonitors(), HEALTHMONITOR),
        ("l7policies", "l7policy", lbaas.L7Policies(), L7POLICY),
    ]

    def version(name: str, status: str, updated: str) -> dict[str, Any]:
        return {
            "id": name,
            "status": status,
            "updated": updated,
            "links": [{"rel": "self", "href": f"{base}/v2"}],
        }

    async def versions(_request: Request) -> Response:
        return json_response({"versions": [version(*v) for v in VERSIONS]})

    async def v2_root(_request: Request) -> Response:
        return json_response({"versions": [version(*v) for v in VERSIONS]})

    # -- load balancers ---------------------------------------------------------------------
    async def lb_index(request: Request, ctx: Context) -> Response:
        if request.method == "POST":
            values, listeners, pools = parse_loadbalancer(await body_of(request))
            if listeners or pools:
                item = await run_in_threadpool(
                    lbaas.create_populated, db, ctx, values, listeners, pools
                )
            else:
                item = await run_in_threadpool(lbs.create, db, ctx, values)
            return json_response({"loadbalancer": item}, 201)
        own_projects_only(request, ctx)
        return await streamed_listing(
            request, "loadbalancers", lambda fields: lbs.stream(db, ctx, fields), max_limit
        )

    async def lb_member(request: Request, ctx: Context) -> Response:
        lb_id = request.path_params["id"]
        if request.method == "GET":
            return json_response({"loadbalancer": await run_in_threadpool(lbs.get, db, ctx, lb_id)})
        if request.method == "PUT":
            values = parse(await body_of(request), "loadbalancer", LOADBALANCER, create=False)
            return json_response(
                {"loadbalancer": await run_in_threadpool(lbs.update, db, ctx, lb_id, values)}
            )
        cascade = request.query_params.get("cascade", "false").lower() == "true"
        await run_in_threadpool(lbs.delete, db, ctx, lb_id, cascade)
        return Response(status_code=204)

    async def lb_status(request: Request, ctx: Context) -> Response:
        return json_response(
            await run_in_threadpool(lbs.status_tree, db, ctx, request.path_params["id"])
        )

    async def lb_stats(request: Request, ctx: Context) -> Response:
        return json_response(
            await run_in_threadpool(lbs.statistics, db, ctx, request.path_params["id"])
        )

    async def lb_failover(request: Request, ctx: Context) -> Response:
        await run_in_threadpool(lbs.failover, db, ctx, request.path_params["id"])
        return Response(status_code=202)

    async def listener_stats(request: Request, ctx: Context) -> Response:
        return json_response(
            await run_in_threadpool(listeners.statistics, db, ctx, request.path_params["id"])
        )

    # -- listeners, pools, health monitors, L7 policies; members and L7 rules under their parent --
    def family_routes(
        collection: str, member: str, family: lbaas.Family, fields: dict[str, Field], path: str
    ) -> list[tuple[str, Handler, list[str]]]:
        async def index(request: Request, ctx: Context) -> Response:
            parent = request.path_params.get("parent_id")
            if request.method == "POST":
                values = parse(await body_of(request), member, fields, create=True)
                item = await run_in_threadpool(family.create, db, ctx, values, parent)
                return json_response({member: item}, 201)
            own_projects_only(request, ctx)
            return await streamed_listing(
                request,
                collection,
                lambda fields: family.stream(db, ctx, parent, fields),
                max_limit,
            )

        async def one(request: Request, ctx: Context) -> Response:
            object_id, parent = request.path_params["id"], request.path_params.get("parent_id")
            if request.method == "GET":
                return json_response(
                    {member: await run_in_threadpool(family.get, db, ctx, object_id, parent)}
                )
            if request.method == "PUT":
                values = parse(await body_of(request), member, fields, create=False)
                item = await run_in_threadpool(family.update, db, ctx, object_id, values, parent)
                return json_response({member: item})
            await run_in_threadpool(family.delete, db, ctx, object_id, parent)
            return Response(status_code=204)

        return [(path, index, ["GET", "POST"]), (path + "/{id}", one, ["GET", "PUT", "DELETE"])]

    async def members_batch(request: Request, ctx: Context) -> Response:
        """PUT /pools/{id}/members: each member as on create; those that exist keep what the
        body leaves out but the settings Octavia defaults (enabled, weight 1, not backup)."""
        body = await body_of(request)
        if not isinstance(body, dict) or not isinstance(body.get("members"), list):
            raise Invalid(
                "Invalid input: the request body must be an object with the key 'members'."
            )
        members = []
        for given in body["members"]:
            values = parse({"member": given}, "member", MEMBER, create=True)
            members.append({k: v for k, v in values.items() if k in given or k in MEMBER_DEFAULTS})
        additive = request.query_params.get("additive_only", "false").lower() in TRUE
        await run_in_threadpool(
            lbaas.Members().replace_all,
            db,
            ctx,
            request.path_params["parent_id"],
            members,
            additive,
        )
        return Response(status_code=202)

    # -- quotas, providers (their flavors and zones: octavia_admin.py) -----------------------------
    async def quotas(request: Request, ctx: Context) -> Response:
        items = await run_in_threadpool(loadbalancers.quota_list, db, ctx)
        return listing(request, "quotas", items, max_limit)

    async def quota_defaults(_request: Request, ctx: Context) -> Response:
        return json_response({"quota": loadbalancers.quota_defaults(ctx)})

    async def quota(request: Request, ctx: Context) -> Response:
        project = request.path_params["project_id"]
        if request.method == "GET":
            return json_response(
                {"quota": await run_in_threadpool(loadbalancers.quota_get, db, ctx, project)}
            )
        if request.method == "PUT":
            values = parse(await body_of(request), "quota", QUOTA, create=False)
            result = await run_in_threadpool(loadbalancers.quota_set, db, ctx, project, values)
            return json_response({"quota": result}, 202)
        await run_in_threadpool(loadbalancers.quota_set, db, ctx, project, None)
        return Response(status_code=204)

    async def providers(request: Request, ctx: Context) -> Response:
        loadbalancers.authorize(ctx, ctx.project_id)
        providers = [
            {"name": name, "description": description}
            for name, description in lb_base.PROVIDERS.items()
        ]
        return listing(request, "providers", providers, max_limit)

    handlers: list[tuple[str, Handler, list[str]]] = [
        ("/loadbalancers", lb_index, ["GET", "POST"]),
        ("/loadbalancers/{id}", lb_member, ["GET", "PUT", "DELETE"]),
        ("/loadbalancers/{id}/status", lb_status, ["GET"]),
        ("/loadbalancers/{id}/stats", lb_stats, ["GET"]),
        ("/loadbalancers/{id}/failover", lb_failover, ["PUT"]),
        ("/listeners/{id}/stats", listener_stats, ["GET"]),
        *(
            r
            for collection, member, family, fields in families
            for r in family_routes(collection, member, family, fields, f"/{collection}")
        ),
        *family_routes("members", "member", lbaas.Members(), MEMBER, "/pools/{parent_id}/members"),
        ("/pools/{parent_id}/members", members_batch, ["PUT"]),
        *family_routes("rules", "rule", lbaas.L7Rules(), L7RULE, "/l7policies/{parent_id}/rules"),
        ("/quotas", quotas, ["GET"]),
        ("/quotas/defaults", quota_defaults, ["GET"]),
        ("/quotas/{project_id}", quota, ["GET", "PUT", "DELETE"]),
        ("/providers", providers, ["GET"]),
    ]
    out: list[BaseRoute] = [
        Route("/", versions),
        Route("/v2", v2_root),
        Route("/v2/", v2_root),
        Route("/v2.0", v2_root),
        Route("/v2.0/", v2_root),
    ]
    for prefix in ("/v2/lbaas", "/v2.0/lbaas"):
        out += [
            Route(prefix + path, refusing_endpoint(authenticate, handler, fault), methods=methods)
            for path, handler, methods in handlers
        ]
    return out
