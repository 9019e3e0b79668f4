"""The agent's endpoint: what the server asks of this host's kernel.

Only the agent touches the kernel, so the lab's tools (a command in an
instance or in the outside, the kernel's view of a resource, a traced probe)
are carried out by the agent of the host concerned. The API server reaches
that agent as Kubernetes' API server reaches a kubelet for `exec`: the agent
serves a small HTTP and WebSocket endpoint, reports its URL with every
report (heartbeat), and the server, after its own authentication and policy,
calls it and relays the answer or the stream.

Why the server calls the agent rather than the agent holding a connection
open to the server: any of several API workers can then reach any agent
without knowing which worker an agent happens to be connected to, and an
agent restart needs no reconnection protocol. Reaching the agent asks nothing
new of the network: hosts already reach each other directly (VXLAN between
their VTEPs), and the embedded agent listens on loopback.

The endpoint speaks only HTTPS (and WSS): at each start the agent makes a
self-signed certificate (its key, readable by root only, in the agent's state
directory) and reports it with its URL, over the authenticated feed; the
server trusts exactly that certificate when it calls, so its token goes to
this agent and nobody else.

Every request carries a token in `X-Auth-Token`. The agent checks it against
the server's identity with its own credentials (as keystonemiddleware does
for OpenStack services), accepts only an administrator's, and remembers a
valid one until it expires. The server shows a token of its own, not its
caller's: it has already decided what the caller may do.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from neutrino import errors
from neutrino.agent import inspect, trace
from neutrino.agent.commands import Command, Running
from neutrino.client import Session

TOKEN_MEMORY_SECONDS = 300.0


class Tokens:
    """Tokens the server's identity said belong to an administrator, until they expire."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._valid: dict[str, float] = {}  # token -> monotonic time to check it again

    def check(self, token: str) -> bool:
        now = time.monotonic()
        if self._valid.get(token, 0.0) > now:
            return True
        identity = self.session.cloud.auth["auth_url"].rstrip("/")
        answer = self.session.request(
            "GET", f"{identity}/auth/tokens", headers={"X-Subject-Token": token}
        )
        if answer.status_code != 200:
            return False
        body = answer.json()["token"]
        if "admin" not in {role["name"] for role in body.get("roles", [])}:
            return False
        expires = datetime.fromisoformat(body["expires_at"]).timestamp()
        remaining = min(expires - time.time(), TOKEN_MEMORY_SECONDS)
        self._valid = {t: at for t, at in self._valid.items() if at > now}
        self._valid[token] = now + remaining
        return True


def error_response(error: errors.NeutronError) -> Response:
    body = {"NeutronError": {"type": error.type, "message": error.msg, "detail": ""}}
    return JSONResponse(body, error.status)


def application(tokens: Tokens, realized: Callable[[], inspect.Realized | None]) -> Starlette:
    watches = trace.Watches()

    async def admitted(connection: HTTPConnection) -> bool:
        token = connection.headers.get("x-auth-token", "")
        return bool(token) and await run_in_threadpool(tokens.check, token)

    def view() -> inspect.Realized:
        found = realized()
        if found is None:
            raise errors.ServiceUnavailable("The agent has not synchronized its host yet.")
        return found

    async def answer(request: Request, work: Callable[[], Any]) -> Response:
        if not await admitted(request):
            return JSONResponse({"error": "an administrator's token is required"}, 401)
        try:
            return JSONResponse(await run_in_threadpool(work))
        except errors.NeutronError as error:
            return error_response(error)

    async def inspect_resource(request: Request) -> Response:
        kind, ref = request.path_params["kind"], request.path_params["id"]
        readers = {
            "routers": inspect.router,
            "floatingips": inspect.floatingip,
            "ports": inspect.port,
            "loadbalancers": inspect.loadbalancer,
        }
        if kind not in readers:
            return JSONResponse({"error": f"nothing to inspect as {kind}"}, 404)
        return await answer(request, lambda: readers[kind](view(), ref))

    async def probe(request: Request) -> Response:
        wanted = json.loads(await request.body())
        return await answer(
            request,
            lambda: trace.probe(
                wanted["netns"],
                wanted["destination"],
                wanted["protocol"],
                wanted.get("port"),
                wanted.get("path"),
                wanted.get("source"),
            ),
        )

    async def start_watch(request: Request) -> Response:
        wanted = json.loads(await request.body())
        return await answer(request, lambda: watches.start(view().host_netns, wanted))

    async def end_watch(request: Request) -> Response:
        def ended() -> list[dict[str, Any]]:
            seen = watches.end(request.path_params["id"])
            if seen is None:
                raise errors.NotFound("No such watch: it has ended already.")
            return seen

        return await answer(request, ended)

    async def execute(websocket: WebSocket) -> None:
        if not await admitted(websocket):
            await websocket.close(code=4401, reason="an administrator's token is required")
            return
        await websocket.accept()
        running = Running(Command.parse(json.loads(await websocket.receive_text())))

        async def send(frame: bytes | str) -> None:
            if isinstance(frame, bytes):
                await websocket.send_bytes(frame)
            else:
                await websocket.send_text(frame)

        async def take_input() -> None:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes"):
                    running.write(message["bytes"][1:])
                elif message.get("text"):
                    running.control(json.loads(message["text"]))

        streaming = asyncio.create_task(running.run(send))
        listening = asyncio.create_task(take_input())
        try:
            done, _ = await asyncio.wait(
                [streaming, listening], return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            listening.cancel()
            streaming.cancel()  # unless it has ended: the caller left, the command goes too
        if streaming in done and streaming.exception() is None:
            await websocket.close()

    return Starlette(
        routes=[
            Route("/v1/inspect/{kind}/{id}", inspect_resource),
            Route("/v1/probe", probe, methods=["POST"]),
            Route("/v1/watches", start_watch, methods=["POST"]),
            Route("/v1/watches/{id}", end_watch, methods=["DELETE"]),
            WebSocketRoute("/v1/exec", execute),
        ]
    )


@dataclass(frozen=True)
class Certificate:
    certificate_file: Path
    key_file: Path
    pem: str  # what the agent reports, and the server trusts


def make_certificate(directory: Path, host: str) -> Certificate:
    """A new self-signed certificate for the endpoint of `host`'s agent, in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))  # for clocks a little behind
        .not_valid_after(now + timedelta(days=3650))  # it lives as long as the agent runs
        # No authority: what trusts it trusts this certificate alone, nothing it might sign.
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "endpoint.key"
    key_file.unlink(missing_ok=True)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    certificate_file = directory / "endpoint.pem"
    certificate_file.write_text(pem)
    return Certificate(certificate_file, key_file, pem)


def serve(
    app: Starlette, listen: str, certificate: Certificate, advertise: str | None = None
) -> str:
    """Serve `app` over HTTPS with `certificate` on `listen` (HOST:PORT; port 0 picks one) in a
    thread; its URL."""
    host, _, port = listen.rpartition(":")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), int(port)))
    bound = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            ws_ping_interval=None,
            ssl_certfile=certificate.certificate_file,
            ssl_keyfile=certificate.key_file,
        )
    )
    threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])),
        name="agent-endpoint",
        daemon=True,
    ).start()
    where = advertise or (host if host not in ("0.0.0.0", "::", "") else socket.getfqdn())
    return f"https://{f'[{where}]' if ':' in where else where}:{bound}"
