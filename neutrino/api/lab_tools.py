"""`/lab/v1` tools for seeing how it works: the outside world, inspect, trace (admin only), and
a probe of a floating IP from outside (every project, on its own floating IPs).

`POST /lab/v1/outside/exec` runs a command in the outside namespace (the
upstream router of an isolated lab);
`GET /lab/v1/inspect/{routers,floatingips,ports,loadbalancers}/{ref}`
shows the kernel objects that implement a resource, read from the kernel;
`POST /lab/v1/trace` walks a packet's path and confirms it with a real probe;
`POST /lab/v1/probes` pings, connects to or GETs a floating IP from the
outside and says why it is not answered (neutrino.lab.probe).
The agent of the host concerned carries them out (neutrino.agent.endpoint);
a WebSocket on `/lab/v1/outside/exec` streams a command as an instance's
exec does (neutrino.api.lab), with `physnet` in its query string.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from neutrino import errors
from neutrino.api import Authenticate
from neutrino.api.agent_link import AgentLink
from neutrino.api.errors import json_response
from neutrino.api.lab import command_of, stream
from neutrino.api.text import load_json
from neutrino.api.v2.attrs import dict_of, list_of, string
from neutrino.context import Context
from neutrino.db import Database
from neutrino.lab import outside, probe, trace
from neutrino.lab.lookup import find_one
from neutrino.services import feed

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


def inspected_host(db: Database, kind: str, ref: str, prefer: str) -> tuple[str, str] | Any:
    """(host whose agent to ask, resource id); or the whole answer when no kernel holds the
    resource (a floating IP that is not associated)."""
    model = feed.snapshot(db)
    if kind == "ports":
        port = find_one(model["ports"], ref, "port", "name")
        return port.get("binding:host_id") or prefer, port["id"]
    if kind == "floatingips":
        fip = find_one(model["floatingips"], ref, "floating IP", "floating_ip_address")
        if not fip.get("router_id"):
            return {"floatingip": fip, "associated": False}
        return outside.realized_netns(db, "routers", fip["router_id"], prefer)[0], fip["id"]
    noun, keys = {
        "routers": ("router", ("name",)),
        "loadbalancers": ("load balancer", ("name", "vip_address")),
    }[kind]
    found = find_one(model[kind], ref, noun, *keys)
    return outside.realized_netns(db, kind, found["id"], prefer)[0], found["id"]


def routes(db: Database, authenticate: Authenticate, host: str, link: AgentLink) -> list[BaseRoute]:
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
        command = command_of({k: v for k, v in wanted.items() if k != "physnet"})
        where, netns = await run_in_threadpool(
            outside.outside_netns, db, wanted.get("physnet") or "default", host
        )
        wanted = {**command, "netns": netns, "timeout": command["timeout"] or 30.0}
        return json_response(await link.run(where, wanted))

    def outside_of(ctx: Context, websocket: WebSocket) -> tuple[str, str]:
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized(action="use the lab's kernel tools")
        physnet = websocket.query_params.get("physnet") or "default"
        return outside.outside_netns(db, physnet, host)

    async def inspect_resource(request: Request) -> Response:
        await admin(request)
        kind, ref = request.path_params["kind"], request.path_params["ref"]
        if kind not in ("routers", "floatingips", "ports", "loadbalancers"):
            raise errors.NotFound(
                f"Nothing to inspect as {kind}: use routers, floatingips, ports or loadbalancers."
            )
        found = await run_in_threadpool(inspected_host, db, kind, ref, host)
        if not isinstance(found, tuple):
            return json_response(found)
        where, resource_id = found
        return await run_in_threadpool(link.call, where, "GET", f"/v1/inspect/{kind}/{resource_id}")

    def ask_agent(where: str, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """A part of a trace, from the agent of host `where` (neutrino.agent.trace)."""
        answer = link.call(where, method, path, body)
        if answer.status_code != 200:
            raise errors.ServiceUnavailable(
                f"The agent of host {where} could not take its part in the trace or probe."
            )
        return orjson.loads(answer.body)

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
                ask_agent,
            )
        )

    async def probe_floatingip(request: Request) -> Response:
        ctx = await authenticate(request)
        wanted = probe.wanted_probe(await body_of(request, lambda body: body))
        return json_response(await run_in_threadpool(probe.probe, db, ctx, wanted, host, ask_agent))

    return [
        Route("/v1/outside/exec", outside_exec, methods=["POST"]),
        Route("/v1/probes", probe_floatingip, methods=["POST"]),
        WebSocketRoute("/v1/outside/exec", stream(authenticate, link, outside_of)),
        Route("/v1/inspect/{kind}/{ref}", inspect_resource),
        Route("/v1/trace", trace_packet, methods=["POST"]),
    ]
