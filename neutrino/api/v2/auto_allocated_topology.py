"""`/v2.0/auto-allocated-topology/{project_id}`: a project's network, made on first ask.

Not a `Collection`: it is addressed by project ID, GET may create it, and it has no list.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino.api import Authenticate
from neutrino.api.errors import json_response
from neutrino.db import Database
from neutrino.services.auto_allocate import AutoAllocatedTopologies


def auto_allocated_topology_routes(
    db: Database, authenticate: Authenticate, topologies: AutoAllocatedTopologies
) -> list[BaseRoute]:
    async def member(request: Request) -> Response:
        ctx = await authenticate(request)
        project_id = request.path_params["project_id"]
        if request.method == "GET":
            fields = [f for v in request.query_params.getlist("fields") for f in v.split(",") if f]
            topology = await run_in_threadpool(topologies.get, db, ctx, project_id, fields)
            return json_response({"auto_allocated_topology": topology})
        await run_in_threadpool(topologies.delete, db, ctx, project_id)
        return Response(status_code=204)

    return [Route("/v2.0/auto-allocated-topology/{project_id}", member, methods=["GET", "DELETE"])]
