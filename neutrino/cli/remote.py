"""A command run by the lab API's WebSocket exec: its output as it comes, stdin, Ctrl-C, a terminal.

Like `kubectl exec`: without a terminal, stdout and stderr arrive on their own
streams and Ctrl-C sends SIGINT to the remote command, whose exit status
becomes this process's (124 when the `--timeout` ran out). With one (`-t`), the
local terminal is put in raw mode and every key, ^C included, goes to the
remote terminal; its size follows the local one; left idle for the server's
idle timeout, it ends (124 too). The frames are described in
neutrino.agent.commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import termios
import threading
import tty as terminal
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from neutrino.client import ClientError, Session, error_message

STDIN, STDOUT, STDERR = 0, 1, 2
TIMED_OUT = 124  # as timeout(1) exits


def _connect(session: Session, url: str) -> ClientConnection:
    for attempt in range(2):
        try:
            return connect(
                url,
                additional_headers={"X-Auth-Token": session.token(renew=bool(attempt))},
                max_size=None,
                open_timeout=60,
                ping_interval=None,
            )
        except InvalidStatus as refused:
            answer = refused.response
            if answer.status_code == 401 and not attempt:
                continue  # the token expired: once more with a new one
            raise ClientError(
                answer.status_code,
                error_message(httpx.Response(answer.status_code, content=bytes(answer.body))),
            ) from None
        except OSError as error:
            raise ClientError(0, f"cannot reach {url}: {error}") from None
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    saved = termios.tcgetattr(STDIN)
    terminal.setraw(STDIN)
    try:
        yield
    finally:
        termios.tcsetattr(STDIN, termios.TCSADRAIN, saved)


def _send_stdin(ws: ClientConnection) -> None:
    """Forward stdin until it ends, then say so."""
    with contextlib.suppress(ConnectionClosed, OSError):
        while data := os.read(STDIN, 65536):
            ws.send(bytes([STDIN]) + data)
        ws.send(json.dumps({"eof": True}))


def run(
    session: Session,
    path: str,
    command: list[str],
    *,
    interactive: bool = False,
    tty: bool = False,
    timeout: float | None = None,
    query: dict[str, str] | None = None,
) -> int:
    """Run `command` through the lab API's WebSocket at `path`; its exit status."""
    params: list[tuple[str, Any]] = [("command", arg) for arg in command]
    params += list((query or {}).items())
    if timeout is not None:
        params.append(("timeout", timeout))
    if tty:
        columns, rows = shutil.get_terminal_size()
        params += [("tty", 1), ("rows", rows), ("cols", columns)]
    base = session.endpoint("lab").replace("http", "ws", 1)
    ws = _connect(session, f"{base}{path}?{urlencode(params)}")
    with ws, _raw_terminal(tty):
        if interactive:
            threading.Thread(target=_send_stdin, args=(ws,), daemon=True).start()
        else:
            ws.send(json.dumps({"eof": True}))
        if tty:

            def resized(_signum: int, _frame: Any) -> None:
                columns, rows = shutil.get_terminal_size()
                with contextlib.suppress(ConnectionClosed):
                    ws.send(json.dumps({"resize": [rows, columns]}))

            signal.signal(signal.SIGWINCH, resized)
        return _receive(ws)


def _receive(ws: ClientConnection) -> int:
    """Write the output as it comes until the exit frame; Ctrl-C meanwhile interrupts the remote
    command, not this one."""
    streams = {STDOUT: sys.stdout.buffer, STDERR: sys.stderr.buffer}
    while True:
        try:
            for frame in ws:
                if isinstance(frame, bytes):
                    streams[frame[0]].write(frame[1:])
                    streams[frame[0]].flush()
                    continue
                ended = json.loads(frame)
                if ended.get("timed_out") or ended.get("idle"):
                    return TIMED_OUT
                status = int(ended["exit_status"])
                return 128 - status if status < 0 else status  # killed by signal N: 128 + N
            raise ClientError(0, "the connection closed before the command ended")
        except KeyboardInterrupt:
            with contextlib.suppress(ConnectionClosed):
                ws.send(json.dumps({"signal": "INT"}))
