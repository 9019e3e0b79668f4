"""The Key Manager (Barbican) v1 API at /key-manager: secrets, containers, their ACLs and the
containers' consumers (the rules are in services/keymanager).

Served as Barbican serves microversion 1.0, which python-barbicanclient settles on when the
version document says `stable` (1.1 would add secrets' consumers). Errors take Barbican's shape,
`{"code", "title", "description"}`; a missing or bad token is keystonemiddleware's 401, in
Keystone's shape, as in front of Barbican. Refs are full URLs under the public URL, as the
catalog gives the endpoint.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino.api import Authenticate
from neutrino.api.errors import Handler, json_response, refusing_endpoint
from neutrino.context import Context
from neutrino.services.keymanager import KINDS, JsonBody, KeyManager

# webob's titles, which Barbican's error hook puts in `title`
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def error(status: int, description: str | None, headers: dict[str, str] | None = None) -> Response:
    body = {"code": status, "title": TITLES.get(status, "Error"), "description": description}
    return json_response(body, status, headers)


def render_error(_request: Request, status: int, message: str) -> Response:
    """For api.middleware: refusals and failures on /key-manager."""
    return error(status, message)


def media_type(request: Request) -> str | None:
    """The Content-Type without its parameters, as webob gives it to Barbican."""
    content_type = request.headers.get("content-type")
    return content_type.split(";")[0].strip().lower() if content_type else None


async def json_body(request: Request) -> JsonBody:
    return JsonBody(media_type(request), await request.body())


def version(endpoint_url: str) -> dict[str, Any]:
    """Barbican's v1 at microversion 1.0 (`updated` it never sends)."""
    return {
        "id": "v1",
        "status": "stable",
        "links": [
            {"rel": "self", "href": f"{endpoint_url}/v1/"},
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
        ],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.key-manager-v1+json"}
        ],
    }


def routes(keys: KeyManager, authenticate: Authenticate) -> list[BaseRoute]:
    async def versions(_request: Request) -> Response:
        # All versions offered: Multiple Choices, as Barbican answers.
        return json_response({"versions": {"values": [version(keys.endpoint)]}}, 300)

    async def v1(_request: Request, _ctx: Context) -> Response:
        return json_response({"version": version(keys.endpoint)})

    def created(ref_name: str, ref: str) -> Response:
        return json_response({ref_name: ref}, 201, {"Location": ref})

    async def secrets(request: Request, ctx: Context) -> Response:
        if request.method == "POST":
            body = await json_body(request)
            return created("secret_ref", await run_in_threadpool(keys.create_secret, ctx, body))
        query = list(request.query_params.multi_items())
        return json_response(await run_in_threadpool(keys.list_secrets, ctx, query))

    async def secret(request: Request, ctx: Context) -> Response:
        secret_id = request.path_params["id"]
        if request.method == "GET":
            accept = request.headers.get("accept")
            if accept in (None, "", "application/json", "*/*"):
                return json_response(await run_in_threadpool(keys.secret, ctx, secret_id))
            # The older way to read a payload: the metadata's URL with another Accept.
            return await payload_response(ctx, secret_id, accept, "Secret retrieval")
        if request.method == "PUT":
            await run_in_threadpool(
                keys.store_payload,
                ctx,
                secret_id,
                await request.body(),
                media_type(request),
                request.headers.get("content-encoding"),
            )
            return Response(status_code=204)
        await run_in_threadpool(keys.delete_secret, ctx, secret_id)
        return Response(status_code=204)

    async def payload_response(
        ctx: Context, secret_id: str, accept: str | None, operation: str
    ) -> Response:
        payload, media = await run_in_threadpool(
            keys.secret_payload, ctx, secret_id, accept, operation
        )
        return Response(payload, media_type=media)

    async def payload(request: Request, ctx: Context) -> Response:
        accept = request.headers.get("accept")
        return await payload_response(
            ctx, request.path_params["id"], accept, "Secret payload retrieval"
        )

    async def containers(request: Request, ctx: Context) -> Response:
        if request.method == "POST":
            body = await json_body(request)
            ref = await run_in_threadpool(keys.create_container, ctx, body)
            return created("container_ref", ref)
        query = list(request.query_params.multi_items())
        return json_response(await run_in_threadpool(keys.list_containers, ctx, query))

    async def container(request: Request, ctx: Context) -> Response:
        container_id = request.path_params["id"]
        if request.method == "GET":
            return json_response(await run_in_threadpool(keys.container, ctx, container_id))
        await run_in_threadpool(keys.delete_container, ctx, container_id)
        return Response(status_code=204)

    async def consumers(request: Request, ctx: Context) -> Response:
        change = keys.register_consumer if request.method == "POST" else keys.remove_consumer
        body = await json_body(request)
        return json_response(await run_in_threadpool(change, ctx, request.path_params["id"], body))

    async def acl(request: Request, ctx: Context) -> Response:
        kind = KINDS[request.url.path.split("/v1/")[1].split("/")[0]]
        object_id = request.path_params["id"]
        if request.method == "GET":
            return json_response(await run_in_threadpool(keys.acl, ctx, kind, object_id))
        if request.method == "DELETE":
            await run_in_threadpool(keys.delete_acl, ctx, kind, object_id)
            return json_response(None)
        body = await json_body(request)
        replace = request.method == "PUT"
        return json_response(
            await run_in_threadpool(keys.set_acl, ctx, kind, object_id, body, replace=replace)
        )

    acl_methods = ["GET", "PUT", "PATCH", "DELETE"]
    handlers: list[tuple[str, Handler, list[str]]] = [
        ("/v1", v1, ["GET"]),
        ("/v1/secrets", secrets, ["GET", "POST"]),
        ("/v1/secrets/{id}", secret, ["GET", "PUT", "DELETE"]),
        ("/v1/secrets/{id}/payload", payload, ["GET"]),
        ("/v1/secrets/{id}/acl", acl, acl_methods),
        ("/v1/containers", containers, ["GET", "POST"]),
        ("/v1/containers/{id}", container, ["GET", "DELETE"]),
        ("/v1/containers/{id}/acl", acl, acl_methods),
        ("/v1/containers/{id}/consumers", consumers, ["POST", "DELETE"]),
    ]
    out: list[BaseRoute] = [Route("/", versions)]
    for path, handler, methods in handlers:
        # python-barbicanclient ends the paths it POSTs to with a slash.
        run = refusing_endpoint(authenticate, handler, error)
        out.extend(Route(variant, run, methods=methods) for variant in (path, path + "/"))
    return out
