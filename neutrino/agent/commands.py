"""A command run in a namespace for the server, its output streamed as it comes.

The frames of an exec are the same on every hop (the client, the API server,
this agent), in the manner of Kubernetes' channel protocol: binary frames
carry bytes, the first byte naming the stream (0 stdin, 1 stdout, 2 stderr);
text frames carry JSON control messages: `{"signal": "INT"}` and
`{"resize": [rows, columns]}` towards the command, `{"eof": true}` when stdin
ends, and last `{"exit_status": N}` from it (-1 with `"timed_out": true` when
the timeout the client asked for ran out, or with `"idle": true` when nothing
passed either way for as long as its idle timeout).

Without a terminal the command gets pipes and a session of its own, so a
signal reaches its whole process group. With one (`tty`) it gets a
pseudo-terminal as its controlling terminal: stdout and stderr are one
stream, and ^C typed by the client becomes SIGINT through the terminal's line
discipline, as on a console.

Either way the command leads a session of its own, and a command that is
stopped (its timeout, its idle timeout, its client gone) takes the whole
session with it: an interactive shell puts each job in a process group of its
own, and what it left running in the background goes too.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import termios
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STDIN, STDOUT, STDERR = 0, 1, 2
SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM, "HUP": signal.SIGHUP}

Send = Callable[[bytes | str], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    netns: str
    argv: list[str]
    tty: bool = False
    timeout: float | None = None
    size: tuple[int, int] = (24, 80)
    idle_timeout: float | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Command:
        rows, columns = body.get("size") or (24, 80)
        return cls(
            str(body["netns"]),
            [str(arg) for arg in body["command"]],
            bool(body.get("tty")),
            None if body.get("timeout") is None else float(body["timeout"]),
            (int(rows), int(columns)),
            None if body.get("idle_timeout") is None else float(body["idle_timeout"]),
        )


def exit_frame(status: int, stopped: str | None = None) -> str:
    """The last frame: the exit status, and why the command was stopped (`timed_out`, `idle`)."""
    return json.dumps({"exit_status": status, **({stopped: True} if stopped else {})})


def _resize(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


async def _chunks(fd: int) -> AsyncIterator[bytes]:
    """What `fd` yields until its end (EOF; EIO on a terminal whose last user closed it)."""
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    os.set_blocking(fd, False)
    loop.add_reader(fd, readable.set)
    try:
        while True:
            await readable.wait()
            readable.clear()
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not data:
                return
            yield data
    finally:
        loop.remove_reader(fd)


def kill_session(session: int) -> None:
    """SIGKILL every live process of `session`, including those it starts meanwhile."""
    while True:
        members = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                # After the command's name, in parentheses: state, ppid, pgrp, session.
                state, _, _, sid = stat.read_text().rpartition(")")[2].split()[:4]
                if int(sid) == session and state != "Z":
                    members.append(int(stat.parent.name))
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class Running:
    """One command started in its namespace; `run` streams it until it exits."""

    def __init__(self, command: Command) -> None:
        self.command = command
        self.active_at = time.monotonic()  # when something last passed either way
        argv = ["ip", "netns", "exec", command.netns, *command.argv]
        if command.tty:
            self.terminal, child = pty.openpty()
            _resize(self.terminal, *command.size)
            # setsid execs in place (its caller leads no group): a new session, whose
            # controlling terminal is the one on its stdin.
            self.process = subprocess.Popen(
                ["setsid", "--ctty", *argv],
                stdin=child,
                stdout=child,
                stderr=child,
                env={**os.environ, "TERM": "xterm"},  # what the clients emulate, as docker says
            )
            os.close(child)
            self.outputs = {STDOUT: self.terminal}
            self.stdin: int | None = self.terminal
        else:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            assert self.process.stdin and self.process.stdout and self.process.stderr
            self.outputs = {
                STDOUT: self.process.stdout.fileno(),
                STDERR: self.process.stderr.fileno(),
            }
            self.stdin = self.process.stdin.fileno()

    def control(self, message: dict[str, Any]) -> None:
        """A control message from the client: a signal, a terminal size, the end of stdin."""
        if message.get("signal") in SIGNALS:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, SIGNALS[message["signal"]])
        elif "resize" in message and self.command.tty:
            with contextlib.suppress(TypeError, ValueError, struct.error):  # not a size
                _resize(self.terminal, *message["resize"])
        elif message.get("eof") and not self.command.tty and self.process.stdin:
            self.process.stdin.close()
            self.stdin = None

    def write(self, data: bytes) -> None:
        self.active_at = time.monotonic()
        if self.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                os.write(self.stdin, data)

    async def run(self, send: Send) -> None:
        """Stream the output with `send` until the command exits; then its exit frame."""

        async def pump(channel: int, fd: int) -> None:
            async for data in _chunks(fd):
                self.active_at = time.monotonic()
                await send(bytes([channel]) + data)

        pumps = [asyncio.create_task(pump(ch, fd)) for ch, fd in self.outputs.items()]
        try:
            exited = asyncio.ensure_future(asyncio.to_thread(self.process.wait))
            stopped = await self._stopped(exited)
            if stopped:
                kill_session(self.process.pid)
            await exited
            if self.command.tty:
                # The terminal stays open while anything the command started holds it: what
                # was written before the exit is read, not waited for beyond that.
                await asyncio.wait(pumps, timeout=0.5)
            else:
                await asyncio.gather(*pumps)
            await send(exit_frame(-1 if stopped else self.process.returncode, stopped))
        finally:
            self.close(pumps)

    async def _stopped(self, exited: asyncio.Future[int]) -> str | None:
        """Wait until the command exits (None) or one of its timeouts runs out (which one)."""
        started = time.monotonic()
        timeout, idle_timeout = self.command.timeout, self.command.idle_timeout
        while not exited.done():
            now = time.monotonic()
            left: dict[str, float] = {}
            if timeout is not None:
                left["timed_out"] = started + timeout - now
            if idle_timeout is not None:
                left["idle"] = self.active_at + idle_timeout - now
            if left and min(left.values()) <= 0:
                return min(left, key=left.__getitem__)
            await asyncio.wait([exited], timeout=min(left.values(), default=None))
        return None

    def close(self, pumps: list[asyncio.Task[None]]) -> None:
        """Stop what still runs (the client went away) and release the descriptors."""
        for task in pumps:
            task.cancel()
        if self.process.poll() is None:
            kill_session(self.process.pid)
        if self.command.tty:
            os.close(self.terminal)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
