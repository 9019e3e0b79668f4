"""Request shapes of flavors and service profiles, and a flavor's profile bindings."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino import errors
from neutrino.api import Authenticate
from neutrino.api.errors import json_response
from neutrino.api.v2 import read_json
from neutrino.api.v2.attrs import REQUIRED, Attr, boolean, list_of, parse_body, string, uuid_str
from neutrino.db import Database
from neutrino.services.flavors import Flavors
from neutrino.services.providers import SERVICE_TYPES


def service_type(value: Any) -> str:
    if value not in SERVICE_TYPES:
        raise errors.InvalidServiceType(service_type=value)
    return str(value)


ID = Attr(post=False, sort=True, filter_convert=str)
DESCRIPTION = Attr(string(1024, allow_none=True), default="", put=True, sort=True)
ENABLED = Attr(boolean, default=True, put=True, sort=True)

FLAVOR = {
    "id": ID,
    "name": Attr(string(), default="", put=True, sort=True),
    "description": DESCRIPTION,
    "service_type": Attr(service_type, default=REQUIRED, sort=True),
    "service_profiles": Attr(list_of(uuid_str()), default=list, put=True, filter=False),
    "enabled": ENABLED,
}

SERVICE_PROFILE = {
    "id": ID,
    "description": DESCRIPTION,
    "driver": Attr(string(1024), default="", put=True, sort=True),
    "metainfo": Attr(string(4096), default="", put=True, sort=True, filter=False),
    "enabled": ENABLED,
}

BINDING = {"id": Attr(uuid_str(), default=REQUIRED)}


def flavor_profile_routes(
    db: Database, authenticate: Authenticate, service: Flavors
) -> list[BaseRoute]:
    """`POST /flavors/{id}/service_profiles` with `{"service_profile": {"id": ...}}` binds a
    profile to the flavor; `DELETE /flavors/{id}/service_profiles/{profile_id}` unbinds it."""

    async def bind(request: Request) -> Response:
        ctx = await authenticate(request)
        body = await read_json(request)
        values = parse_body(body, "service_profile", BINDING, create=True, is_admin=ctx.is_admin)
        bound = await run_in_threadpool(
            service.bind_profile, db, ctx, request.path_params["id"], values["id"]
        )
        return json_response({"service_profile": bound}, 201)

    async def unbind(request: Request) -> Response:
        ctx = await authenticate(request)
        await run_in_threadpool(
            service.unbind_profile,
            db,
            ctx,
            request.path_params["id"],
            request.path_params["profile_id"],
        )
        return Response(status_code=204)

    base = "/v2.0/flavors/{id}/service_profiles"
    return [
        Route(base, bind, methods=["POST"]),
        Route(base + "/{profile_id}", unbind, methods=["DELETE"]),
    ]
