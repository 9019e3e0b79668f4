"""The server's side of the agents' endpoints (neutrino.agent.endpoint).

What needs a host's kernel is asked of that host's agent, at the URL of its
last report, over TLS trusting exactly the certificate of that report, with a
token of the server's own; answers and streams are
relayed to the caller as they come. The frames of an exec are described in
neutrino.agent.commands.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from functools import lru_cache
from typing import Any

import httpx
import websockets
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection

from neutrino import errors
from neutrino.api import identity as identity_api
from neutrino.api.errors import json_response, neutron_error
from neutrino.db import Database
from neutrino.identity.service import Identity
from neutrino.lab.outside import agent_endpoint

TOKEN_RENEWAL_SECONDS = 600.0  # well within any token's lifetime
CALL_TIMEOUT = 60.0


@lru_cache(maxsize=256)
def pinned(certificate: str) -> ssl.SSLContext:
    """A TLS client trusting `certificate` (PEM) alone: no authority, and no name to check,
    as this very certificate is what the agent reported."""
    context = ssl.create_default_context(cadata=certificate)
    context.check_hostname = False
    return context


class AgentLink:
    def __init__(self, db: Database, identity: Identity) -> None:
        self.db, self.identity = db, identity
        self._token, self._renew_at = "", 0.0

    def token(self) -> str:
        if time.monotonic() >= self._renew_at:
            self._token = self.identity.issue_for_server()
            self._renew_at = time.monotonic() + TOKEN_RENEWAL_SECONDS
        return self._token

    def _unreachable(self, host: str, error: Exception) -> errors.ServiceUnavailable:
        return errors.ServiceUnavailable(f"The agent of host {host} cannot be reached: {error}.")

    def call(self, host: str, method: str, path: str, body: Any = None) -> Response:
        """The agent's answer to one request, as the caller gets it (its errors are in the
        API's format already)."""
        url, certificate = agent_endpoint(self.db, host)
        try:
            answer = httpx.request(
                method,
                url + path,
                json=body,
                headers={"X-Auth-Token": self.token()},
                timeout=CALL_TIMEOUT,
                verify=pinned(certificate),
            )
        except httpx.HTTPError as error:
            raise self._unreachable(host, error) from None
        if answer.status_code == 401:
            raise errors.ServiceUnavailable(f"The agent of host {host} refused the server's token.")
        return Response(answer.content, answer.status_code, media_type="application/json")

    async def connect_exec(self, host: str, command: dict[str, Any]) -> ClientConnection:
        """A stream to a command the agent of `host` starts (`command`: see Command.parse)."""
        (url, certificate), token = await run_in_threadpool(
            lambda: (agent_endpoint(self.db, host), self.token())
        )
        try:
            agent = await websockets.connect(
                url.replace("https", "wss", 1) + "/v1/exec",
                ssl=pinned(certificate),
                additional_headers={"X-Auth-Token": token},
                max_size=None,
                ping_interval=None,
            )
        except (OSError, websockets.WebSocketException) as error:
            raise self._unreachable(host, error) from None
        await agent.send(json.dumps(command))
        return agent

    async def run(self, host: str, command: dict[str, Any]) -> dict[str, Any]:
        """Run a command to its end: {"exit_status", "stdout", "stderr"}, as the JSON form of
        exec answers."""
        streams = {1: bytearray(), 2: bytearray()}
        async with await self.connect_exec(host, command) as agent:
            await agent.send(json.dumps({"eof": True}))
            ended: dict[str, Any] = {"exit_status": -1}
            async for frame in agent:
                if isinstance(frame, bytes):
                    streams[frame[0]] += frame[1:]
                else:
                    ended = json.loads(frame)
        stderr = streams[2].decode(errors="replace") + ("timeout" if ended.get("timed_out") else "")
        return {
            "exit_status": ended["exit_status"],
            "stdout": streams[1].decode(errors="replace"),
            "stderr": stderr,
        }


async def deny(websocket: WebSocket, error: Exception) -> None:
    """Refuse a WebSocket with the HTTP answer the same error gets elsewhere."""
    if isinstance(error, errors.KeystoneError):
        response = identity_api.keystone_error_response(error)
    elif isinstance(error, errors.NeutronError):
        response = neutron_error(error)
    else:
        response = json_response({"error": str(error)}, 500)
    await websocket.send_denial_response(response)


async def relay(websocket: WebSocket, agent: ClientConnection) -> None:
    """Carry frames both ways between the caller and the agent until the command exits or the
    caller leaves (the agent then stops the command)."""
    await websocket.accept()

    async def down() -> None:
        async for frame in agent:
            if isinstance(frame, bytes):
                await websocket.send_bytes(frame)
            else:
                await websocket.send_text(frame)

    async def up() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await agent.send(message["bytes"])
            elif message.get("text") is not None:
                await agent.send(message["text"])

    tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await agent.close()
    if tasks[0].done() and not tasks[0].cancelled():
        try:
            await websocket.close()
        except (RuntimeError, WebSocketDisconnect):
            pass  # the caller has gone already
