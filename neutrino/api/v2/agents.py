"""Agents, the DHCP and L3 schedulers' sub-resources, and availability zones.

`/agents` is a `Collection` (list, show, update, delete); the schedulers' paths
hang off agents, networks and routers:

    GET  /agents/{id}/dhcp-networks      POST /agents/{id}/dhcp-networks {"network_id"}
    DELETE /agents/{id}/dhcp-networks/{network_id}     GET /networks/{id}/dhcp-agents
    GET  /agents/{id}/l3-routers         POST /agents/{id}/l3-routers {"router_id"}
    DELETE /agents/{id}/l3-routers/{router_id}         GET /routers/{id}/l3-agents

These routes come before the collections' own `/{id}/{action}` ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino import errors
from neutrino.api import Authenticate
from neutrino.api.errors import json_response
from neutrino.api.v2 import read_json
from neutrino.api.v2.attrs import Attr, boolean, invalid, list_of, string, uuid_str
from neutrino.api.v2.computed import Computed
from neutrino.context import Context
from neutrino.db import Database
from neutrino.services import agents as service

AGENT = {
    "id": Attr(post=False, sort=True, filter_convert=str),
    "agent_type": Attr(post=False, sort=True),
    "binary": Attr(post=False, sort=True),
    "topic": Attr(post=False, sort=True),
    "host": Attr(post=False, sort=True),
    "admin_state_up": Attr(boolean, post=False, put=True, sort=True),
    "created_at": Attr(post=False, filter=False, sort=True),
    "started_at": Attr(post=False, filter=False, sort=True),
    "heartbeat_timestamp": Attr(post=False, filter=False, sort=True),
    "alive": Attr(boolean, post=False, sort=True),
    "configurations": Attr(post=False, filter=False),
    "availability_zone": Attr(post=False, sort=True),
    # Whether the host's last report of its resources reached Placement: null, as Neutron
    # shows it for an agent that reports none (neutrino's agents report no resources).
    "resources_synced": Attr(post=False, filter=False, sort=True),
    "description": Attr(string(255, allow_none=True), post=False, put=True, sort=True),
}

AZ_HINTS_SIZE = 255  # Neutron keeps a resource's hints as one JSON text of this size


def zone_hints(value: Any) -> list[str]:
    hints: list[str] = list_of(string(), unique=True)(value)
    if len(json.dumps(hints)) > AZ_HINTS_SIZE:
        raise invalid("Too many availability_zone_hints specified")
    return hints


# On networks and routers: zones asked for (each one where an agent of its kind is), and the
# zones of the agents that serve it.
AVAILABILITY_ZONE_ATTRS = {
    "availability_zone_hints": Attr(zone_hints, default=[], filter=False),
    "availability_zones": Attr(post=False, filter=False),
}

AVAILABILITY_ZONES = Computed(
    "availability_zones",
    "availability_zone",
    "availability_zones",
    "name",
    {"name": Attr(post=False), "resource": Attr(post=False), "state": Attr(post=False)},
    service.availability_zones,
)


Show = Callable[[Database, Context, str], dict[str, Any]]


def scheduler_routes(
    db: Database, authenticate: Authenticate, show_network: Show, show_router: Show
) -> list[BaseRoute]:
    """`show_network`, `show_router`: the collections' own, so hosted items read as in them."""

    def hosted(bindings: Any, key: str, plural: str, show: Show, add: Any) -> Any:
        async def index(request: Request) -> Response:
            ctx = await authenticate(request)
            agent_id = request.path_params["id"]
            if request.method == "POST":
                body = await read_json(request)
                wanted = body.get(key) if isinstance(body, dict) else None
                if not isinstance(wanted, str):
                    raise errors.BadRequest(resource=key[:-3], msg=f"'{key}' is required")
                await run_in_threadpool(add, db, ctx, agent_id, uuid_str()(wanted))
                return json_response(None, 201)

            def items() -> list[dict[str, Any]]:
                ids = service.hosted_ids(db, ctx, agent_id, bindings, f"get_{plural}")
                return [show(db, ctx, i) for i in ids]

            return json_response({plural.split("-")[1]: await run_in_threadpool(items)})

        return index

    def unhost(remove: Callable[[Database, Context, str, str], None]) -> Any:
        async def drop(request: Request) -> Response:
            ctx = await authenticate(request)
            params = request.path_params
            await run_in_threadpool(remove, db, ctx, params["id"], params["resource_id"])
            return Response(status_code=204)

        return drop

    def hosting(find: Callable[[Database, Context, str], list[dict[str, Any]]]) -> Any:
        async def index(request: Request) -> Response:
            ctx = await authenticate(request)
            agents = await run_in_threadpool(find, db, ctx, request.path_params["id"])
            return json_response({"agents": agents})

        return index

    base = "/v2.0/agents/{id}"
    return [
        Route(
            base + "/dhcp-networks",
            hosted(service.NDA, "network_id", "dhcp-networks", show_network, service.add_network),
            methods=["GET", "POST"],
        ),
        Route(
            base + "/dhcp-networks/{resource_id}",
            unhost(service.remove_network),
            methods=["DELETE"],
        ),
        Route(
            base + "/l3-routers",
            hosted(service.RLA, "router_id", "l3-routers", show_router, service.add_router),
            methods=["GET", "POST"],
        ),
        Route(
            base + "/l3-routers/{resource_id}", unhost(service.remove_router), methods=["DELETE"]
        ),
        Route(
            "/v2.0/networks/{id}/dhcp-agents",
            hosting(service.dhcp_agents_of_network),
            methods=["GET"],
        ),
        Route(
            "/v2.0/routers/{id}/l3-agents", hosting(service.l3_agents_of_router), methods=["GET"]
        ),
    ]
