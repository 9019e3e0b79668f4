"""The instance console: a shell in the instance, on a terminal in the browser (xterm.js).

The browser's WebSocket becomes the lab API's WebSocket exec of the signed-in
user, in terminal mode (frames: neutrino.agent.commands). The dashboard hands
the connection over in-process, as its pages make their API calls
(neutrino.web.clients): the same application gets the lab API's path, the
user's token in place of the session cookie, and the browser's own receive and
send, so every keystroke and every byte of output goes straight through, and
the lab API decides what the user may do. Only a refusal is put in words: a
browser cannot read the HTTP answer to a refused WebSocket, so the terminal
gets the API's message and status as a frame `{"error": message, "status": N}`
instead (409: the instance is not running yet, the console waits for it).

A WebSocket carries no CSRF token, so the handshake is taken only from the
dashboard's own pages: its Origin must be this very host.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit

import httpx
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send

from neutrino.web.clients import api_error
from neutrino.web.sessions import COOKIE
from neutrino.web.ui import Dashboard

# Bash without the host's rc files (a user's own setup, maybe slow, is not the instance's), at
# the root of the filesystem, with the usual prompt.
SHELL = ["env", "--chdir=/", r"PS1=\u@\h:\w\$ ", "bash", "--norc"]


class Terminal:
    """The WebSocket of an instance's console, as an ASGI application."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        browser = HTTPConnection(scope)
        session = self.dashboard.sessions.get(browser.cookies.get(COOKIE))
        origin = urlsplit(browser.headers.get("origin", ""))
        own_page = origin.netloc == browser.headers.get("host")
        if session is None or "lab" not in session.services or not own_page:
            await send({"type": "websocket.close", "code": 1008})  # refused: HTTP 403
            return
        query = [*(("command", arg) for arg in SHELL), ("tty", "1")]
        query += [
            (name, browser.query_params[name])
            for name in ("rows", "cols")
            if name in browser.query_params
        ]
        path = f"{session.services['lab']}/v1/instances/{scope['path_params']['id']}"
        lab = {
            "type": "websocket",
            "asgi": scope["asgi"],
            "http_version": scope.get("http_version", "1.1"),
            "scheme": scope["scheme"],
            "server": scope.get("server"),
            "client": scope.get("client"),
            "root_path": "",
            "path": path + "/exec",
            "raw_path": (path + "/exec").encode(),
            "query_string": urlencode(query).encode(),
            "headers": [
                *((k, v) for k, v in scope["headers"] if k not in (b"cookie", b"x-auth-token")),
                (b"x-auth-token", session.token.encode()),
            ],
            "subprotocols": [],
            "extensions": {"websocket.http.response": {}},
        }
        refusal: list[Message] = []

        async def send_to_browser(message: Message) -> None:
            if not message["type"].startswith("websocket.http.response"):
                await send(message)
                return
            refusal.append(message)
            if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
                body = b"".join(part.get("body", b"") for part in refusal[1:])
                error = api_error(httpx.Response(refusal[0]["status"], content=body))
                await send({"type": "websocket.accept"})
                await send(
                    {
                        "type": "websocket.send",
                        "text": json.dumps({"error": str(error), "status": error.status}),
                    }
                )
                await send({"type": "websocket.close", "code": 1000})

        await scope["app"](lab, receive, send_to_browser)


def routes(d: Dashboard) -> list[BaseRoute]:
    return [WebSocketRoute("/project/instances/{id}/terminal", Terminal(d))]
