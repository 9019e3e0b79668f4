"""Errors to HTTP, in one place.

Neutron-family errors render as `{"NeutronError": {"type", "message",
"detail"}}` with the status of their category; identity errors keep
Keystone's own shape. Anything unexpected goes on to api.middleware, which
logs it with a request id and answers a 500 that leaks no internals; it is a
bug by definition.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

import orjson
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from neutrino import errors
from neutrino.api import Authenticate
from neutrino.api.middleware import ErrorFormats
from neutrino.context import Context
from neutrino.services.refusals import Refusal

log = logging.getLogger("neutrino.api")
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]
Handler = Callable[[Request, Context], Awaitable[Response]]
# A status, a message and headers in the shape of one API
Render = Callable[[int, str, dict[str, str] | None], Response]


def encode_json(body: object) -> bytes:
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        # orjson stops at 64-bit integers; IPv6 address counts go beyond.
        return json.dumps(body, separators=(",", ":")).encode()


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        encode_json(body), status_code=status, media_type="application/json", headers=headers
    )


def neutron_error(exc: errors.NeutronError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    body = {"NeutronError": {"type": exc.type, "message": exc.msg, "detail": ""}}
    return json_response(body, exc.status, headers)


async def handle_neutron_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.NeutronError)
    return neutron_error(exc)


# webob's names for the HTTP errors Neutron answers without an exception of its own
HTTP_ERRORS = {
    400: "HTTPBadRequest",
    401: "HTTPUnauthorized",
    404: "HTTPNotFound",
    405: "HTTPMethodNotAllowed",
    408: "HTTPRequestTimeout",
    409: "HTTPConflict",
    413: "HTTPRequestEntityTooLarge",
    500: "HTTPInternalServerError",
    503: "HTTPServiceUnavailable",
}


def http_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    kind = HTTP_ERRORS.get(status, "HTTPError")
    body = {"NeutronError": {"type": kind, "message": message, "detail": ""}}
    return json_response(body, status, headers)


def render_error(_request: Request, status: int, message: str) -> Response:
    """For api.middleware: refusals and failures on the Neutron-family APIs."""
    return http_error(status, message)


def http_exception_handler(formats: ErrorFormats) -> ExceptionHandler:
    """Starlette's own refusals (no such route, method not allowed) in the path's API format."""

    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        response = formats.render(request, exc.status_code, exc.detail)
        response.headers.update(exc.headers or {})
        return response

    return handle


def database_error_handler(formats: ErrorFormats) -> ExceptionHandler:
    """A lost race that a constraint caught, a busy database or a lost connection to it: the
    client may retry."""

    async def handle(request: Request, exc: Exception) -> Response:
        if isinstance(exc, IntegrityError):
            log.warning(
                "constraint violation in %s %s: %s", request.method, request.url.path, exc.orig
            )
            return formats.render(
                request, 409, "The request conflicts with a concurrent change; retry it."
            )
        if isinstance(exc, OperationalError) and "locked" in str(exc):
            return formats.render(request, 503, "The database is busy; retry the request.")
        if isinstance(exc, OperationalError) and exc.connection_invalidated:
            # The server lost its connection (PostgreSQL restarted): the pool connects anew.
            return formats.render(
                request, 503, "The connection to the database was lost; retry the request."
            )
        raise exc  # anything else is a bug: api.middleware answers it

    return handle


def refusing_endpoint(
    authenticate: Authenticate, handler: Handler, render: Render
) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint of an API that is not Neutron's (Octavia's, Barbican's): authenticate, run,
    and render any refusal, its own or a Neutron error of a service they share, in that API's
    shape."""

    async def run(request: Request) -> Response:
        ctx = await authenticate(request)
        try:
            return await handler(request, ctx)
        except (Refusal, errors.NeutronError) as refused:
            message = refused.message if isinstance(refused, Refusal) else refused.msg
            retry = {"Retry-After": str(refused.retry_after)} if refused.retry_after else None
            return render(refused.status, message, retry)

    return run
