"""Octavia's flavors, availability zones, their profiles and the providers' capabilities, at
/load-balancer/v2/lbaas and /load-balancer/v2.0/lbaas (services/lbaas_flavors.py has the rules),
and the amphorae at /load-balancer/v2/octavia/amphorae (services/amphorae.py).

Errors take Octavia's shape through `octavia.fault`; lists filter, sort, page and project
as the other Octavia lists do, under Octavia's keys (`flavorprofile_links`, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino.api import Authenticate
from neutrino.api.errors import Handler, json_response, refusing_endpoint
from neutrino.api.octavia import body_of, fault, streamed_listing
from neutrino.api.octavia_shapes import REQUIRED, Field, optional, parse
from neutrino.api.v2.attrs import boolean, string, uuid_str
from neutrino.context import Context
from neutrino.db import Database
from neutrino.services import amphorae, lbaas_flavors


def profile_shapes(data: str) -> tuple[dict[str, Field], dict[str, Field]]:
    """(create, update) shapes of a profile; an update's null is refused by the rules, in
    Octavia's words."""
    sizes = {"name": 255, "provider_name": 255, data: 4096}
    return (
        {key: Field(string(size), REQUIRED) for key, size in sizes.items()},
        {key: Field(optional(string(size)), put=True) for key, size in sizes.items()},
    )


def offer_shapes(profile_id: str, renamed: bool) -> tuple[dict[str, Field], dict[str, Field]]:
    """(create, update) shapes of a flavor or an availability zone (whose name is its key)."""
    update = {
        "description": Field(string(255), put=True),
        "enabled": Field(boolean, put=True),
    }
    if renamed:
        update["name"] = Field(string(255), put=True)
    create = {
        "name": Field(string(255), REQUIRED),
        "description": Field(string(255)),
        "enabled": Field(boolean, True),
        profile_id: Field(uuid_str(), REQUIRED),
    }
    return create, update


def routes(db: Database, authenticate: Authenticate, max_limit: int) -> list[BaseRoute]:
    def crud(
        path: str,
        member: str,
        collection: str,
        links: str,
        key: str,
        family: lbaas_flavors.Profiles | lbaas_flavors.Offers,
        shapes: tuple[dict[str, Field], dict[str, Field]],
    ) -> list[tuple[str, Handler, list[str]]]:
        create_shape, update_shape = shapes

        async def index(request: Request, ctx: Context) -> Response:
            if request.method == "POST":
                values = parse(await body_of(request), member, create_shape, create=True)
                item = await run_in_threadpool(family.create, db, ctx, values)
                return json_response({member: item}, 201)
            return await streamed_listing(
                request,
                collection,
                lambda _fields: family.stream(db, ctx),
                max_limit,
                links_key=links,
                marker_key=key,
            )

        async def one(request: Request, ctx: Context) -> Response:
            object_key = request.path_params["key"]
            if request.method == "GET":
                item = await run_in_threadpool(family.get, db, ctx, object_key)
                return json_response({member: fields(request, item)})
            if request.method == "PUT":
                values = parse(await body_of(request), member, update_shape, create=False)
                item = await run_in_threadpool(family.update, db, ctx, object_key, values)
                return json_response({member: item})
            await run_in_threadpool(family.delete, db, ctx, object_key)
            return Response(status_code=204)

        return [(path, index, ["GET", "POST"]), (path + "/{key}", one, ["GET", "PUT", "DELETE"])]

    def capabilities(zone: bool) -> Handler:
        collection = "availability_zone_capabilities" if zone else "flavor_capabilities"

        async def handler(request: Request, ctx: Context) -> Response:
            items = lbaas_flavors.capabilities(ctx, request.path_params["provider"], zone)
            # Octavia filters these on name and description only, exactly, and has no pages.
            for attribute in ("name", "description"):
                if request.query_params.get(attribute):
                    items = [i for i in items if i[attribute] == request.query_params[attribute]]
            items = [fields(request, item) for item in items]
            return json_response({collection: items})

        return handler

    handlers = [
        *crud(
            "/flavorprofiles",
            "flavorprofile",
            "flavorprofiles",
            "flavorprofile_links",
            "id",
            lbaas_flavors.flavor_profiles,
            profile_shapes("flavor_data"),
        ),
        *crud(
            "/flavors",
            "flavor",
            "flavors",
            "flavors_links",
            "id",
            lbaas_flavors.flavors,
            offer_shapes("flavor_profile_id", renamed=True),
        ),
        *crud(
            "/availabilityzoneprofiles",
            "availability_zone_profile",
            "availability_zone_profiles",
            "availability_zone_profile_links",
            "id",
            lbaas_flavors.availability_zone_profiles,
            profile_shapes("availability_zone_data"),
        ),
        *crud(
            "/availabilityzones",
            "availability_zone",
            "availability_zones",
            "availability_zones_links",
            "name",
            lbaas_flavors.availability_zones,
            offer_shapes("availability_zone_profile_id", renamed=False),
        ),
        ("/providers/{provider}/flavor_capabilities", capabilities(zone=False), ["GET"]),
        ("/providers/{provider}/availability_zone_capabilities", capabilities(zone=True), ["GET"]),
    ]

    async def amphora_index(request: Request, ctx: Context) -> Response:
        return await streamed_listing(
            request, "amphorae", lambda _fields: amphorae.stream(db, ctx), max_limit
        )

    async def amphora(request: Request, ctx: Context) -> Response:
        item = await run_in_threadpool(amphorae.get, db, ctx, request.path_params["id"])
        return json_response({"amphora": fields(request, item)})

    async def amphora_stats(request: Request, ctx: Context) -> Response:
        items = await run_in_threadpool(amphorae.statistics, db, ctx, request.path_params["id"])
        return json_response({"amphora_stats": items})

    def amphora_action(action: Callable[[Database, Context, str], None]) -> Handler:
        async def handler(request: Request, ctx: Context) -> Response:
            await run_in_threadpool(action, db, ctx, request.path_params["id"])
            return Response(status_code=202)

        return handler

    amphora_handlers = [
        ("/amphorae", amphora_index, ["GET"]),
        ("/amphorae/{id}", amphora, ["GET"]),
        ("/amphorae/{id}/stats", amphora_stats, ["GET"]),
        ("/amphorae/{id}/config", amphora_action(amphorae.configure), ["PUT"]),
        ("/amphorae/{id}/failover", amphora_action(amphorae.failover), ["PUT"]),
    ]
    return [
        Route(prefix + path, refusing_endpoint(authenticate, handler, fault), methods=methods)
        for version in ("/v2", "/v2.0")
        for prefix, family in (
            (version + "/lbaas", handlers),
            (version + "/octavia", amphora_handlers),
        )
        for path, handler, methods in family
    ]


def fields(request: Request, item: dict[str, Any]) -> dict[str, Any]:
    """`?fields=` on one object, as Octavia projects a show."""
    wanted = [f for v in request.query_params.getlist("fields") for f in v.split(",") if f]
    return {k: v for k, v in item.items() if k in wanted} if wanted else item
