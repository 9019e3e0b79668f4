"""A command run in a namespace for the server, its output streamed as it comes.

The frames of an exec are the same on every hop (the client, the API server,
this agent), in the manner of Kubernetes' channel protocol: binary frames
carry bytes, the first byte naming the stream (0 stdin, 1 stdout, 2 stderr);
text frames carry JSON control messages: `{"signal": "INT"}` and
`{"resize": [rows, columns]}` towards the command, `{"eof": true}` when stdin
ends, and last `{"exit_status": N}` from it (-1 with `"timed_out": true` when
the timeout the client asked for ran out).

Without a terminal the command gets pipes and a session of its own, so a
signal reaches its whole process group. With one (`tty`) it gets a
pseudo-terminal as its controlling terminal: stdout and stderr are one
stream, and ^C typed by the client becomes SIGINT through the terminal's line
discipline, as on a console.
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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
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

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Command:
        rows, columns = body.get("size") or (24, 80)
        return cls(
            str(body["netns"]),
            [str(arg) for arg in body["command"]],
            bool(body.get("tty")),
            None if body.get("timeout") is None else float(body["timeout"]),
            (int(rows), int(columns)),
        )


def exit_frame(status: int, timed_out: bool = False) -> str:
    return json.dumps({"exit_status": status, **({"timed_out": True} if timed_out else {})})


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


class Running:
    """One command started in its namespace; `run` streams it until it exits."""

    def __init__(self, command: Command) -> None:
        self.command = command
        argv = ["ip", "netns", "exec", command.netns, *command.argv]
        if command.tty:
            self.terminal, child = pty.openpty()
            _resize(self.terminal, *command.size)
            # setsid execs in place (its caller leads no group): a new session, whose
            # controlling terminal is the one on its stdin.
            self.process = subprocess.Popen(
                ["setsid", "--ctty", *argv], stdin=child, stdout=child, stderr=child
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
        if self.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                os.write(self.stdin, data)

    async def run(self, send: Send) -> None:
        """Stream the output with `send` until the command exits; then its exit frame."""

        async def pump(channel: int, fd: int) -> None:
            async for data in _chunks(fd):
                await send(bytes([channel]) + data)

        pumps = [asyncio.create_task(pump(ch, fd)) for ch, fd in self.outputs.items()]
        timed_out = False
        try:
            try:
                await asyncio.wait_for(asyncio.to_thread(self.process.wait), self.command.timeout)
            except TimeoutError:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                await asyncio.to_thread(self.process.wait)
            if self.command.tty:
                # The terminal stays open while anything the command started holds it: what
                # was written before the exit is read, not waited for beyond that.
                await asyncio.wait(pumps, timeout=0.5)
            else:
                await asyncio.gather(*pumps)
            await send(exit_frame(-1 if timed_out else self.process.returncode, timed_out))
        finally:
            self.close(pumps)

    def close(self, pumps: list[asyncio.Task[None]]) -> None:
        """Stop what still runs (the client went away) and release the descriptors."""
        for task in pumps:
            task.cancel()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.command.tty:
            os.close(self.terminal)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
