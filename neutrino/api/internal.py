"""`/internal/v1`: the change feed for agents (admin credentials only)."""

from __future__ import annotations

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino import errors
from neutrino.api import Authenticate
from neutrino.api.errors import json_response
from neutrino.api.text import load_json
from neutrino.context import Context
from neutrino.db import Database
from neutrino.services import feed

LONG_POLL_MAX = 55.0


def routes(db: Database, authenticate: Authenticate) -> list[BaseRoute]:
    waiters = feed.Waiters()
    mirror = feed.Mirror(db)  # the model hosts' shares are cut from
    db.on_commit.append(waiters.notify)  # this process's writes
    db.listen("neutrino_feed", waiters.notify)  # other processes'

    async def agent(request: Request) -> Context:
        ctx = await authenticate(request)
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized(action="read the change feed")
        return ctx

    async def snapshot(request: Request) -> Response:
        await agent(request)
        host = request.query_params.get("host")
        if host is None:
            return json_response(await run_in_threadpool(feed.snapshot, db))
        return json_response(await run_in_threadpool(mirror.snapshot, host))

    def head() -> int:
        with db.read() as conn:
            return Database.head_revision(conn)

    async def changes(request: Request) -> Response:
        await agent(request)
        try:
            since = int(request.query_params["since"])
            timeout = min(float(request.query_params.get("timeout", "0")), LONG_POLL_MAX)
        except (KeyError, ValueError):
            raise errors.HTTPBadRequest(
                "give since=REVISION and optionally timeout=SECONDS"
            ) from None
        host = request.query_params.get("host")
        echoed = None
        if host is not None and request.method == "POST":
            try:
                echoed = feed.decode(load_json(await request.body()).get("anchors"))
            except (orjson.JSONDecodeError, AttributeError):
                raise errors.HTTPBadRequest('the body must be {"anchors": ...}') from None
            if echoed is None:
                raise errors.HTTPBadRequest("the anchors must be those of the last answer")
        try:
            if host is None:
                await feed.wait_for_change(waiters, since, timeout, head)
                return json_response(await run_in_threadpool(feed.changes_since, db, since))
            if echoed is None:  # a host's changes depend on what it was sent
                raise feed.Gone()
            await feed.wait_for_change(waiters, since, timeout, head)
            return json_response(await run_in_threadpool(mirror.changes, host, since, echoed))
        except feed.Gone:
            return json_response({"revision": head(), "resync": True}, status=410)

    async def report(request: Request) -> Response:
        await agent(request)
        try:
            body = load_json(await request.body())
        except orjson.JSONDecodeError:
            raise errors.HTTPBadRequest("the report must be JSON") from None
        if not isinstance(body, dict):
            raise errors.HTTPBadRequest("the report must be a JSON object")
        await run_in_threadpool(feed.record_report, db, request.path_params["host"], body)
        return Response(status_code=204)

    return [
        Route("/v1/snapshot", snapshot),
        Route("/v1/changes", changes, methods=["GET", "POST"]),
        Route("/v1/agents/{host}/report", report, methods=["POST"]),
    ]
