"""`/lab/v1` tools for seeing how it works (admin only): the outside world, inspect, trace.

`POST /lab/v1/outside/exec` runs a command in the outside namespace (the
upstream router of an isolated lab);
`GET /lab/v1/inspect/{routers,floatingips,ports,loadbalancers}/{ref}`
shows the kernel objects that implement a resource, read from the kernel;
`POST /lab/v1/trace` walks a packet's path and confirms it with a real probe.
Like an instance's exec, they work for the agents of this machine.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino import errors
from neutrino.api.errors import json_response
from neutrino.api.text import load_json
from neutrino.api.v2 import Authenticate
from neutrino.api.v2.attrs import dict_of, list_of, string
from neutrino.db import Database
from neutrino.lab import inspect, outside, trace

OUTSIDE_EXEC = dict_of(
    {
        "command": (list_of(string(4096), max_items=256), True),
        "timeout": (lambda v: float(v), False),
        "physnet": (string(64), False),
    }
)
TRACE = dict_of(
    {
        "from": (string(255), True),
        "to": (string(64), True),
        "protocol": (string(8), False),
        "port": (lambda v: int(v), False),
    }
)


def routes(db: Database, authenticate: Authenticate, host: str) -> list[BaseRoute]:
    async def admin(request: Request) -> None:
        ctx = await authenticate(request)
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized(action="use the lab's kernel tools")

    async def body_of(request: Request, shape: Any) -> dict[str, Any]:
        try:
            body = load_json(await request.body())
        except orjson.JSONDecodeError:
            raise errors.HTTPBadRequest("the body must be JSON") from None
        if not isinstance(body, dict):
            raise errors.HTTPBadRequest("the body must be a JSON object")
        parsed: dict[str, Any] = shape(body)
        return parsed

    async def outside_exec(request: Request) -> Response:
        await admin(request)
        wanted = await body_of(request, OUTSIDE_EXEC)
        if not wanted["command"]:
            raise errors.HTTPBadRequest("'command' must not be empty")
        timeout = min(max(wanted.get("timeout", 30.0), 0.1), 600.0)
        return json_response(
            await run_in_threadpool(
                outside.run_outside,
                db,
                wanted.get("physnet") or "default",
                wanted["command"],
                timeout,
                host,
            )
        )

    async def inspect_resource(request: Request) -> Response:
        await admin(request)
        kind, ref = request.path_params["kind"], request.path_params["ref"]
        readers = {
            "routers": inspect.router,
            "floatingips": inspect.floatingip,
            "ports": inspect.port,
            "loadbalancers": inspect.loadbalancer,
        }
        if kind not in readers:
            raise errors.NotFound(
                f"Nothing to inspect as {kind}: use routers, floatingips, ports or loadbalancers."
            )
        return json_response(await run_in_threadpool(readers[kind], db, ref, host))

    async def trace_packet(request: Request) -> Response:
        await admin(request)
        wanted = await body_of(request, TRACE)
        return json_response(
            await run_in_threadpool(
                trace.trace,
                db,
                wanted["from"],
                wanted["to"],
                wanted.get("protocol") or "icmp",
                wanted.get("port"),
                host,
            )
        )

    return [
        Route("/v1/outside/exec", outside_exec, methods=["POST"]),
        Route("/v1/inspect/{kind}/{ref}", inspect_resource),
        Route("/v1/trace", trace_packet, methods=["POST"]),
    ]
