"""The HTTP server: uvicorn, with a deadline for a request's headers.

uvicorn closes a connection idle between requests (keep-alive timeout), but waits
forever for the first request on a new connection and for headers that trickle
in. Here a connection that has not completed a request's headers `client_timeout`
seconds after it opened, or after that request began, is closed. The body's own
deadline is api.middleware's (it answers 408 in the API's format).
"""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from neutrino.config import Settings

# An idle connection between requests is closed after this long. Longer than a client's pause
# between calls (a script polling every few seconds), so that the client rarely sends a request
# just as the server closes the connection under it, which fails a request no client retries.
# (uvicorn's default is 5 s; Neutron's client_socket_timeout is 900 s; nginx's keepalive 75 s.)
KEEP_ALIVE_SECONDS = 75


class HeaderDeadlineProtocol(HttpToolsProtocol):
    client_timeout = 30.0
    header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.arm_header_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.arm_header_deadline()

    def on_headers_complete(self) -> None:
        self.disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm_header_deadline()
        super().connection_lost(exc)

    def arm_header_deadline(self) -> None:
        self.disarm_header_deadline()
        self.header_deadline = self.loop.call_later(self.client_timeout, self.transport.close)

    def disarm_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None


def run(application: ASGIApp, settings: Settings, log_level: str) -> None:
    class Protocol(HeaderDeadlineProtocol):
        client_timeout = settings.client_timeout

    # Requests are logged by api.middleware when asked (--access-log), not by uvicorn.
    uvicorn.run(
        application,
        host=settings.bind_host,
        port=settings.bind_port,
        log_level=log_level,
        http=Protocol,
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
