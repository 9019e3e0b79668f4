"""Every request's way in and out, in one ASGI layer around the whole application.

- Each response carries `X-Openstack-Request-Id: req-<uuid>`, as Neutron, Octavia and
  Keystone send it.
- A path or query string holding NUL is refused with 400 (see api.text).
- A body larger than `max_request_body_size` is refused with 413: at once when its
  Content-Length says so, as soon as the count passes the limit when it comes chunked.
- A body that has not arrived `client_timeout` seconds after the application began to read it
  is refused with 408.
- An exception no handler took is a bug: it is logged once, with its traceback and the
  request id, and answered 500 naming the request id. It never takes the connection down:
  the client's next request on the same connection is served as usual. One raised once the
  answer has begun (a list written as it is read) can no longer change its status: the
  answer is aborted (the server closes the connection before the body's end), so that no
  client takes the part written for the whole.
- With the access log on, one line per request: method, path, status, duration, request id.

Refusals and failures take the error format of the API the path belongs to. Refusals close
the connection, since the rest of the request is still on its way.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neutrino.api.text import REFUSAL, url_holds_nul

log = logging.getLogger("neutrino.api")
access = logging.getLogger("neutrino.access")

# (request, status, message) -> the error response in an API's format
Render = Callable[[Request, int, str], Response]
REQUEST_ID = b"x-openstack-request-id"


@dataclass(frozen=True)
class ErrorFormats:
    """Which API's error format a path takes: the first matching prefix's, else the default."""

    by_prefix: Sequence[tuple[str, Render]]
    default: Render

    def render(self, request: Request, status: int, message: str) -> Response:
        path = request.scope["path"]
        render = next((r for prefix, r in self.by_prefix if path.startswith(prefix)), self.default)
        return render(request, status, message)


class Aborted(Exception):
    """An answer that failed after it began; the server closes its connection."""


class Refused(Exception):
    """The request cannot be served as it is being sent (too large, too slow)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class FrontDoor:
    def __init__(
        self,
        app: ASGIApp,
        formats: ErrorFormats,
        max_body: int,
        body_timeout: float,
        access_log: bool,
    ) -> None:
        self.app = app
        self.formats = formats
        self.max_body, self.body_timeout, self.access_log = max_body, body_timeout, access_log
        self.too_large = f"Request is too large. Larger than max_request_body_size ({max_body})."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter() if self.access_log else 0.0
        request_id = f"req-{uuid.uuid4()}"
        id_header = (REQUEST_ID, request_id.encode())
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            await send(message)

        received, body_done, deadline = 0, False, 0.0

        async def receive_bounded() -> Message:
            nonlocal received, body_done, deadline
            if body_done:  # later calls wait for a disconnect, as long as the response takes
                return await receive()
            deadline = deadline or asyncio.get_running_loop().time() + self.body_timeout
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise Refused(408, "The request body did not arrive in time.") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise Refused(413, self.too_large)
                body_done = not message.get("more_body", False)
            return message

        try:
            if url_holds_nul(scope):
                raise Refused(400, f"Invalid URL: {REFUSAL}.")
            length = content_length(scope)
            if length is not None and length > self.max_body:
                raise Refused(413, self.too_large)
            await self.app(scope, receive_bounded, send_with_id)
        except Refused as refused:
            if not status:
                response = self.formats.render(Request(scope), refused.status, refused.message)
                response.headers["connection"] = "close"
                await response(scope, receive, send_with_id)
        except Exception as exc:
            log.error(
                "unexpected error in %s %s (%s)",
                scope["method"],
                scope["path"],
                request_id,
                exc_info=exc,
            )
            if status:
                raise Aborted(f"{request_id}: the answer failed after it began") from None
            message = (
                "Request Failed: internal server error while processing your request "
                f"({request_id})."
            )
            await self.formats.render(Request(scope), 500, message)(scope, receive, send_with_id)
        finally:
            if self.access_log:
                query = scope["query_string"]
                path = scope["path"] + ("?" + query.decode("latin-1") if query else "")
                access.info(
                    "%s %s %s %.1fms %s",
                    scope["method"],
                    path,
                    status or "-",
                    (time.perf_counter() - started) * 1000,
                    request_id,
                )
