"""`neutrino instance exec` and `console`: carried out by the agent, streamed, with a terminal.

A real `neutrino serve` with its embedded agent runs one instance; the
`neutrino` CLI is driven as a person would, through pipes or a
pseudo-terminal, and the lab API's WebSocket as the dashboard's console
drives it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import pty
import select
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from neutrino.agent.endpoint import make_certificate
from neutrino.api.agent_link import pinned
from neutrino.client import Cloud, Session
from neutrino.db import Database, schema
from tests.conftest import VENV_BIN, Databases, LiveServer, dataplane_server, eventually

VM = "ex-vm1"


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dataplane_server(databases, tmp_path_factory, "tx", LiveServer) as server:
        server.cli(
            "network",
            "create",
            "ex_net",
            "--provider-network-type",
            "flat",
            "--provider-physical-network",
            "default",
        )
        server.cli("subnet", "create", "--network", "ex_net", "--subnet-range", "10.77.0.0/24", "s")
        server.neutrino("instance", "create", VM, "--network", "ex_net")
        yield server


def start(cloud: LiveServer, *args: str, **how: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(VENV_BIN / "neutrino"), *args], env=cloud.env("neutrino-admin"), **how
    )


def test_output_streams_line_by_line_for_as_long_as_the_command_runs(cloud: LiveServer) -> None:
    script = "for i in $(seq 10); do echo line $i; sleep 0.3; done; echo done >&2; exit 7"
    argv = ["instance", "exec", VM, "--", "sh", "-c", script]
    with start(cloud, *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        arrivals = [(line, time.monotonic()) for line in iter(process.stdout.readline, b"")]
        assert process.wait(timeout=30) == 7  # the command's exit status is the CLI's
        assert process.stderr.read() == b"done\n"
    assert [line for line, _ in arrivals] == [f"line {i}\n".encode() for i in range(1, 11)]
    gaps = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(arrivals)]
    # Each line as it was printed, 0.3 s apart, not all at once at the end (3 s in all).
    assert all(0.15 < gap < 1.0 for gap in gaps), gaps


def test_a_timeout_is_the_clients_choice_and_stops_all_the_command_started(
    cloud: LiveServer,
) -> None:
    script = "echo a; sleep 20; echo b"
    started = time.monotonic()
    stopped = cloud.neutrino(
        "instance", "exec", VM, "--timeout", "1", "--", "sh", "-c", script, check=False
    )
    assert (stopped.returncode, stopped.stdout) == (124, "a\n")
    # sleep went with its shell: nothing held the output open until it ended.
    assert time.monotonic() - started < 12


def test_ctrl_c_interrupts_the_remote_command(cloud: LiveServer) -> None:
    script = 'trap "echo interrupted; exit 5" INT; echo ready; while :; do sleep 0.1; done'
    argv = ["instance", "exec", VM, "--", "sh", "-c", script]
    # The CLI as in a terminal's foreground, SIGINT at its default: a shell starts background
    # jobs with SIGINT ignored, and whatever runs the tests may have been one.
    foreground = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    with start(cloud, *argv, stdout=subprocess.PIPE, preexec_fn=foreground) as process:
        assert process.stdout is not None
        try:
            read_until(process.stdout.fileno(), b"ready\n")
            process.send_signal(signal.SIGINT)  # what Ctrl-C does to the CLI
            read_until(process.stdout.fileno(), b"interrupted\n")
            assert process.wait(timeout=10) == 5
        finally:
            process.kill()


def read_until(fd: int, wanted: bytes, timeout: float = 20.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {wanted!r} within {timeout} s; the terminal showed {seen!r}"
        seen += os.read(fd, 4096)
    return seen


@pytest.mark.parametrize("command", [["instance", "console", VM], ["instance", "exec", "-t", VM]])
def test_an_interactive_shell_on_a_terminal(cloud: LiveServer, command: list[str]) -> None:
    terminal, child = pty.openpty()
    process = start(
        cloud, *command, stdin=child, stdout=child, stderr=child, start_new_session=True
    )
    os.close(child)
    try:
        read_until(terminal, b"# ")  # the shell's prompt (root's): typing may begin
        os.write(terminal, b"tty; echo $((6*7))\r")
        shown = read_until(terminal, b"42\r\n")
        assert b"/dev/pts/" in shown  # the remote shell has a terminal of its own
        os.write(terminal, b"sleep 30\r")
        time.sleep(0.5)
        os.write(terminal, b"\x03echo after $?\r")  # ^C stops sleep: 130 = 128 + SIGINT
        read_until(terminal, b"after 130")
        os.write(terminal, b"exit 3\r")
        assert process.wait(timeout=20) == 3
    finally:
        process.kill()
        process.wait()
        os.close(terminal)


def token(cloud: LiveServer, name: str) -> str:
    with contextlib.closing(Session(Cloud.load(name, cloud.clouds_yaml))) as session:
        return session.token()


@pytest.fixture(scope="module")
def exec_as_admin(cloud: LiveServer) -> tuple[str, dict[str, str]]:
    """The URL of the instance's WebSocket exec, and an administrator's headers."""
    vm = json.loads(cloud.neutrino("instance", "show", VM, "-f", "json").stdout)
    url = f"{cloud.url.replace('http', 'ws', 1)}/lab/v1/instances/{vm['id']}/exec"
    return url, {"X-Auth-Token": token(cloud, "neutrino-admin")}


def terminal(exec_as_admin: tuple[str, dict[str, str]], **query: Any) -> ClientConnection:
    """A shell on a terminal in the instance, through the lab API's WebSocket exec."""
    url, headers = exec_as_admin
    query = {"command": "sh", "tty": 1, "rows": 24, "cols": 80, **query}
    return connect(f"{url}?{urlencode(query)}", additional_headers=headers)


def shown_until(ws: ClientConnection, wanted: bytes) -> bytes:
    """The terminal's output until `wanted` appears."""
    seen = b""
    while wanted not in seen:
        frame = ws.recv(timeout=20)
        assert isinstance(frame, bytes), f"{frame!r} before {wanted!r}; shown: {seen!r}"
        assert frame[0] == 1  # a terminal has one stream, stdout
        seen += frame[1:]
    return seen


def running(command: str) -> int:
    """How many processes run exactly `command`."""
    found = subprocess.run(
        ["pgrep", "-c", "-x", "-f", command], capture_output=True, text=True, check=False
    )
    return int(found.stdout or 0)


def test_a_shell_on_a_terminal_over_the_websocket(
    exec_as_admin: tuple[str, dict[str, str]],
) -> None:
    def type_in(keys: str) -> None:
        ws.send(b"\0" + keys.encode())

    with terminal(exec_as_admin) as ws:
        shown_until(ws, b"# ")  # the prompt
        type_in("echo $((6*7))\n")
        shown_until(ws, b"42\r\n")
        # ^C interrupts what runs in the foreground, through the terminal, and the shell goes on.
        type_in("sleep 4242\n")
        assert eventually(lambda: running("sleep 4242") == 1)
        type_in("\x03")
        shown_until(ws, b"# ")
        type_in("echo after $?\n")
        shown_until(ws, b"after 130")  # 128 + SIGINT
        assert running("sleep 4242") == 0
        ws.send(json.dumps({"resize": [33, 101]}))
        type_in("stty size\n")
        shown_until(ws, b"33 101\r\n")
        # Closing the terminal ends all its shell started, in the foreground and in the background.
        type_in("sleep 4243 & sleep 4243\n")
        assert eventually(lambda: running("sleep 4243") == 2)
    assert eventually(lambda: running("sleep 4243") == 0)


def test_an_idle_terminal_ends_its_shell(exec_as_admin: tuple[str, dict[str, str]]) -> None:
    with terminal(exec_as_admin, idle_timeout=1) as ws:
        shown_until(ws, b"# ")
        ws.send(b"\0echo still here\n")  # typing keeps it alive
        shown_until(ws, b"still here\r\n")
        ended = ws.recv(timeout=20)
        while isinstance(ended, bytes):  # the prompt again, then nothing for a second
            ended = ws.recv(timeout=20)
    assert json.loads(ended) == {"exit_status": -1, "idle": True}


def test_exec_answers_as_if_an_instance_the_caller_cannot_see_did_not_exist(
    cloud: LiveServer,
) -> None:
    vm = json.loads(cloud.neutrino("instance", "show", VM, "-f", "json").stdout)
    url = f"{cloud.url.replace('http', 'ws', 1)}/lab/v1/instances/{vm['id']}/exec"
    with pytest.raises(InvalidStatus) as refused:
        connect(
            f"{url}?command=sh&tty=1",
            additional_headers={"X-Auth-Token": token(cloud, "neutrino-demo")},
        )
    assert refused.value.response.status_code == 404
    assert json.loads(refused.value.response.body)["NeutronError"]["type"] == "NotFound"


def agent_report(cloud: LiveServer) -> dict:
    database = Database(cloud.database_url)
    with database.read() as conn:
        (report,) = conn.execute(sqlalchemy.select(schema.agents.c.report)).scalars()
    database.dispose()
    return dict(report)


def test_the_agent_takes_requests_only_with_an_administrators_token(cloud: LiveServer) -> None:
    report = agent_report(cloud)
    inspect = f"{report['endpoint']}/v1/inspect/routers/{'0' * 32}"
    trusted = pinned(report["endpoint_certificate"])
    assert httpx.get(inspect, verify=trusted).status_code == 401
    demo = {"X-Auth-Token": token(cloud, "neutrino-demo")}
    assert httpx.get(inspect, headers=demo, verify=trusted).status_code == 401
    # An administrator's token is taken: the agent knows no such router.
    admin = {"X-Auth-Token": token(cloud, "neutrino-admin")}
    taken = httpx.get(inspect, headers=admin, verify=trusted)
    assert (taken.status_code, taken.json()["NeutronError"]["type"]) == (404, "NotFound")


def test_the_agent_speaks_tls_with_the_certificate_it_reports_alone(
    cloud: LiveServer, tmp_path: Path
) -> None:
    report = agent_report(cloud)
    url, certificate = report["endpoint"], report["endpoint_certificate"]
    assert url.startswith("https://")
    inspect = f"{url}/v1/inspect/routers/{'0' * 32}"
    with pytest.raises(httpx.RemoteProtocolError):  # plain HTTP gets no answer
        httpx.get(inspect.replace("https", "http", 1))
    # A client that trusts another certificate (or only the usual authorities) refuses the
    # agent's before it sends anything, over HTTP and WebSocket alike.
    other = pinned(make_certificate(tmp_path, "elsewhere").pem)
    for refusing in (other, True):
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(inspect, verify=refusing)
    exec_url = url.replace("https", "wss", 1) + "/v1/exec"
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(exec_url, ssl=other)
    with pytest.raises(InvalidStatus) as denied:  # trusted, but without a token
        connect(exec_url, ssl=pinned(certificate))
    assert denied.value.response.status_code == 403
    # Its key is the agent's alone.
    key = cloud.state_dir / "agent" / "endpoint" / "endpoint.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_the_answer_at_the_end_as_a_script_asks(cloud: LiveServer) -> None:
    vm = json.loads(cloud.neutrino("instance", "show", VM, "-f", "json").stdout)
    answer = httpx.post(
        f"{cloud.url}/lab/v1/instances/{vm['id']}/exec",
        json={"command": ["sh", "-c", "echo out; echo err >&2; exit 4"], "timeout": 20},
        headers={"X-Auth-Token": token(cloud, "neutrino-admin")},
        timeout=60,
    )
    assert answer.json() == {"exit_status": 4, "stdout": "out\n", "stderr": "err\n"}


@pytest.mark.parametrize(
    "query", ["", "command=sh&tty=1&rows=0", "command=true&timeout=-1", "command=sh&idle_timeout=0"]
)
def test_a_bad_exec_is_refused_with_the_apis_error(cloud: LiveServer, query: str) -> None:
    vm = json.loads(cloud.neutrino("instance", "show", VM, "-f", "json").stdout)
    url = f"{cloud.url.replace('http', 'ws', 1)}/lab/v1/instances/{vm['id']}/exec?{query}"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers={"X-Auth-Token": token(cloud, "neutrino-admin")})
    assert refused.value.response.status_code == 400
    assert "NeutronError" in json.loads(refused.value.response.body)
