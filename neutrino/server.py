"""The HTTP server: uvicorn, with a deadline for a request's headers, in one process or many.

uvicorn closes a connection idle between requests (keep-alive timeout), but waits
forever for the first request on a new connection and for headers that trickle
in. Here a connection that has not completed a request's headers `client_timeout`
seconds after it opened, or after that request began, is closed. The body's own
deadline is api.middleware's (it answers 408 in the API's format).

With `workers` > 1, uvicorn's supervisor binds the listening socket and spawns
that many worker processes that accept on it; it replaces a worker that dies
or stops answering its health checks, and stops them all on SIGTERM or SIGINT;
a worker also ends when the supervisor is killed. Each worker builds its own
application from the settings (`WorkerApp`); the database, the schema and
identity's bootstrap are ready before they start. What must run once (the
embedded agent, the chores) runs in the supervising process, which serves no
request. Everything a request can see lives in PostgreSQL: the workers hear
each other's commits through its notifications (db.Database.listen).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from neutrino.config import Settings, setup_logging

# An idle connection between requests is closed after this long. Longer than a client's pause
# between calls (a script polling every few seconds), so that the client rarely sends a request
# just as the server closes the connection under it, which fails a request no client retries.
# (uvicorn's default is 5 s; Neutron's client_socket_timeout is 900 s; nginx's keepalive 75 s.)
KEEP_ALIVE_SECONDS = 75
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends


class ServerConfig(uvicorn.Config):
    """uvicorn's configuration, with the deadline of a request's headers: it travels to
    spawned workers with the rest."""

    def __init__(self, app: ASGIApp | WorkerApp, client_timeout: float, **options: object):
        super().__init__(app, **options)  # type: ignore[arg-type]
        self.client_timeout = client_timeout


class HeaderDeadlineProtocol(HttpToolsProtocol):
    config: ServerConfig
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
        self.header_deadline = self.loop.call_later(
            self.config.client_timeout, self.transport.close
        )

    def disarm_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None


@dataclass(frozen=True)
class WorkerApp:
    """What a spawned worker calls to make its application (uvicorn's `factory`)."""

    settings: Settings
    log_level: str

    def __call__(self) -> Starlette:
        from neutrino.app import build, create_app

        follow_supervisor()
        setup_logging(self.log_level)
        if self.settings.access_log:
            logging.getLogger("neutrino.access").setLevel(logging.INFO)
        return create_app(self.settings, build(self.settings), run_chores=False)


def follow_supervisor() -> None:
    """End this worker with its supervisor, even one killed without a chance to stop it: a
    worker left behind would go on serving the listener with nobody to replace or stop it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != multiprocessing.parent_process().pid:  # type: ignore[union-attr]
        os.kill(os.getpid(), signal.SIGTERM)  # it was gone before we asked


def run(
    application: ASGIApp | WorkerApp, settings: Settings, log_level: str, workers: int = 1
) -> None:
    """Serve `application` until SIGTERM or SIGINT: in this process, or (given a WorkerApp) in
    `workers` processes."""
    # Requests are logged by api.middleware when asked (--access-log), not by uvicorn.
    config = ServerConfig(
        application,
        settings.client_timeout,
        host=settings.bind_host,
        port=settings.bind_port,
        log_level=log_level,
        http=HeaderDeadlineProtocol,
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        factory=isinstance(application, WorkerApp),
        workers=workers,
    )
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises Ctrl-C again once it stopped
        server.run()
    if not server.started:  # the address is taken, say: uvicorn logged why
        sys.exit(STARTUP_FAILURE)
