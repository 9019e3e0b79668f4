"""`/v2.0/quotas`: limits per project (admin), one's own limits and usage (member).

These are not a `Collection`: a quota is addressed by project ID, has no
standard attributes, and a DELETE resets it to the defaults.
"""

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
from neutrino.api.v2.attrs import invalid
from neutrino.config import QUOTA_LIMIT_MAX
from neutrino.db import Database
from neutrino.services.quotas import NEUTRON_DEFAULTS, Quotas

IGNORED = {"project_id", "tenant_id"}  # openstacksdk may echo the project back in the body


def parse_quota_body(body: Any) -> tuple[dict[str, int], bool]:
    """The new limits, and whether they are checked against current usage.

    A limit below what the project already uses is refused unless `force` is
    true; `check_limit`, which asked for that check before it became the
    default, is accepted and changes nothing. Neither is validated, as in
    Neutron: only a JSON `true` forces.
    """
    if not isinstance(body, dict) or set(body) != {"quota"} or not isinstance(body["quota"], dict):
        raise errors.BadRequest(
            resource="quota", msg='Request body must be {"quota": {resource: limit}}'
        )
    values = {k: v for k, v in body["quota"].items() if k not in IGNORED}
    values.pop("check_limit", None)
    force = values.pop("force", None) is True
    unknown = sorted(set(values) - set(NEUTRON_DEFAULTS))
    if unknown:
        raise errors.BadRequest(
            resource="quota", msg=f"Unrecognized attribute(s) '{', '.join(unknown)}'"
        )
    return {resource: limit_of(resource, limit) for resource, limit in values.items()}, force


def limit_of(resource: str, value: Any) -> int:
    """A limit from -1 (unlimited) to QUOTA_LIMIT_MAX, refused in Neutron's words: a value that
    is no integer as its converter does, one out of range as its range validator does."""
    try:  # Neutron's convert_to_int: whatever int() takes (true is 1, 5.0 is 5)
        limit = int(value)
    except (ValueError, TypeError):
        raise invalid(f"'{value}' is not an integer") from None
    if limit < -1:
        reason = f"'{limit}' is too small - must be at least '-1'"
    elif limit > QUOTA_LIMIT_MAX:
        reason = f"'{limit}' is too large - must be no larger than '{QUOTA_LIMIT_MAX}'"
    else:
        return limit
    raise errors.HTTPBadRequest(f"Invalid input for {resource}. Reason: {reason}.")


def quota_routes(db: Database, authenticate: Authenticate) -> list[BaseRoute]:
    quotas = Quotas()

    async def index(request: Request) -> Response:
        ctx = await authenticate(request)
        return json_response({"quotas": await run_in_threadpool(quotas.list, db, ctx)})

    async def tenant(request: Request) -> Response:
        ctx = await authenticate(request)
        return json_response({"tenant": {"tenant_id": ctx.project_id}})

    async def project(request: Request) -> Response:
        ctx = await authenticate(request)
        return json_response({"project": {"project_id": ctx.project_id}})

    async def member(request: Request) -> Response:
        ctx = await authenticate(request)
        project_id = request.path_params["project_id"]
        if request.method == "GET":
            return json_response(
                {"quota": await run_in_threadpool(quotas.get, db, ctx, project_id)}
            )
        if request.method == "PUT":
            values, force = parse_quota_body(await read_json(request))
            limits = await run_in_threadpool(quotas.update, db, ctx, project_id, values, force)
            return json_response({"quota": limits})
        await run_in_threadpool(quotas.reset, db, ctx, project_id)
        return Response(status_code=204)

    async def defaults(request: Request) -> Response:
        ctx = await authenticate(request)
        return json_response({"quota": quotas.defaults(ctx, request.path_params["project_id"])})

    async def details(request: Request) -> Response:
        ctx = await authenticate(request)
        project_id = request.path_params["project_id"]
        return json_response(
            {"quota": await run_in_threadpool(quotas.details, db, ctx, project_id)}
        )

    return [
        Route("/v2.0/quotas", index, methods=["GET"]),
        Route("/v2.0/quotas.json", index, methods=["GET"]),
        Route("/v2.0/quotas/tenant", tenant, methods=["GET"]),
        Route("/v2.0/quotas/project", project, methods=["GET"]),
        Route("/v2.0/quotas/{project_id}/default", defaults, methods=["GET"]),
        Route("/v2.0/quotas/{project_id}/details", details, methods=["GET"]),
        Route("/v2.0/quotas/{project_id}", member, methods=["GET", "PUT", "DELETE"]),
    ]
