"""Fixtures shared by all test layers.

API tests run once on SQLite and once on PostgreSQL: each test gets a fresh
database copied from a template migrated once per session (a file copy for
SQLite, `CREATE DATABASE ... TEMPLATE` for PostgreSQL). `scripts/test`
starts a private PostgreSQL and exports NEUTRINO_TEST_POSTGRES_URL; without
it (a bare `pytest` on a laptop) the PostgreSQL half is skipped, and in CI
its absence is an error.

On SQLite the application runs in-process; on PostgreSQL the requests go to
one real `neutrino serve --workers 4` (per test process), as in production,
where what requests share (tokens and their revocation, the change feed's
long-polls, the server's limits, concurrent writes) crosses processes. Tests
that change the application's settings run in-process on both (marked
`in_process`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from sqlalchemy import Connection, create_engine, text
from starlette.testclient import TestClient

from neutrino.app import Neutrino, create_app, prepare
from neutrino.config import Settings, make_settings
from neutrino.db import Database

PG_URL = os.environ.get("NEUTRINO_TEST_POSTGRES_URL")
ADMIN_PASSWORD = "admin-secret-for-tests"
VENV_BIN = Path(sys.executable).parent
BACKENDS = ["sqlite", "postgresql"]


# -- order -------------------------------------------------------------------------
# The test layers, from the longest files to the quickest. pytest-xdist's workers (scripts/test)
# take whole files in this order: the many quick files come last and even out their ends, where
# a data-plane file of one long test, last, kept one worker busy alone for minutes.
LAYERS = ("netns", "browser", "compat", "api", "unit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def layer(item: pytest.Item) -> int:
        name = item.path.parent.name
        return LAYERS.index(name) if name in LAYERS else len(LAYERS)

    items.sort(key=layer)  # stable: each file's tests stay together, in their order


# -- databases -------------------------------------------------------------------
class Databases:
    """Hands out fresh, migrated databases of either kind."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._sqlite_template: Path | None = None
        self._pg_template = False
        # One template a test process: parallel workers (pytest -n) must not share it.
        self._pg_template_name = (
            f"neutrino_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
        )

    def new(self, backend: str) -> str:
        if backend == "sqlite":
            return self._new_sqlite()
        if not PG_URL:
            if os.environ.get("CI"):
                pytest.fail(
                    "NEUTRINO_TEST_POSTGRES_URL is not set: run the suite with scripts/test"
                )
            pytest.skip("PostgreSQL not available: run the suite with scripts/test")
        return self._new_postgres()

    def empty(self, backend: str) -> str:
        """A database with nothing in it yet."""
        if backend == "sqlite":
            return f"sqlite:///{self.workdir / uuid.uuid4().hex}.db"
        if not PG_URL:
            pytest.skip("PostgreSQL not available: run the suite with scripts/test")
        engine = self._admin()
        with engine.connect() as conn:
            name = f"n_{uuid.uuid4().hex[:16]}"
            conn.execute(text(f"CREATE DATABASE {name}"))
        engine.dispose()
        return PG_URL.rsplit("/", 1)[0] + f"/{name}"

    def _new_sqlite(self) -> str:
        if self._sqlite_template is None:
            self._sqlite_template = self.workdir / "template.db"
            db = Database(f"sqlite:///{self._sqlite_template}")
            db.migrate()
            db.dispose()
        target = self.workdir / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(self._sqlite_template, target)
        return f"sqlite:///{target}"

    def _admin(self):  # type: ignore[no-untyped-def]
        return create_engine(PG_URL, isolation_level="AUTOCOMMIT")  # type: ignore[arg-type]

    def _new_postgres(self) -> str:
        assert PG_URL
        engine = self._admin()
        with engine.connect() as conn:
            if not self._pg_template:
                template = self._pg_template_name
                conn.execute(text(f"DROP DATABASE IF EXISTS {template} WITH (FORCE)"))
                conn.execute(text(f"CREATE DATABASE {template}"))
                db = Database(PG_URL.rsplit("/", 1)[0] + f"/{template}")
                db.migrate()
                db.dispose()
                self._pg_template = True
            name = f"n_{uuid.uuid4().hex[:16]}"
            conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {self._pg_template_name}"))
        engine.dispose()
        return PG_URL.rsplit("/", 1)[0] + f"/{name}"

    def renew(self, url: str) -> str:
        """The PostgreSQL database at `url` as the template has it, whoever is connected."""
        self.drop(url)
        engine = self._admin()
        with engine.connect() as conn:
            name = url.rsplit("/", 1)[1]
            conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {self._pg_template_name}"))
        engine.dispose()
        return url

    def drop(self, url: str) -> None:
        if url.startswith("sqlite"):
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
            return
        engine = self._admin()
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)"))
        engine.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Databases:
    return Databases(tmp_path_factory.mktemp("databases"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--api-workers",
        type=int,
        default=4,
        help="Worker processes of the `neutrino serve` that API tests on PostgreSQL talk to "
        "(0: the application in-process, as on SQLite)",
    )


PUBLIC_URL = "http://127.0.0.1:9696"  # of the API under test, as links and the catalog show it


@pytest.fixture(scope="session")
def workers_server(
    request: pytest.FixtureRequest, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server for the whole run on PostgreSQL: each test gets its database afresh under the
    same name (the workers reconnect) and shares the server's state directory."""
    url = databases.new("postgresql")
    os.environ["NEUTRINO_PUBLIC_URL"] = PUBLIC_URL
    try:
        server = start_server(
            tmp_path_factory.mktemp("api-workers") / "state",
            url,
            [
                "--no-agent",
                "--physnet",
                "physnet2",
                "--workers",
                str(request.config.getoption("api_workers")),
            ],
        )
    finally:
        del os.environ["NEUTRINO_PUBLIC_URL"]
    yield server
    stop_server(server)
    databases.drop(url)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def api_server(request: pytest.FixtureRequest, backend: str) -> LiveServer | None:
    """The live server the test's requests go to, or None for the application in-process."""
    if (
        backend == "sqlite"
        or not request.config.getoption("api_workers")
        or request.node.get_closest_marker("in_process")
    ):
        return None
    server: LiveServer = request.getfixturevalue("workers_server")
    return server


@pytest.fixture
def database_url(
    backend: str, databases: Databases, api_server: LiveServer | None
) -> Iterator[str]:
    if api_server is not None:
        yield databases.renew(api_server.database_url)
        return
    url = databases.new(backend)
    yield url
    databases.drop(url)


# -- an in-process service -------------------------------------------------------------
@pytest.fixture
def settings(tmp_path: Path, database_url: str, api_server: LiveServer | None) -> Settings:
    os.environ["NEUTRINO_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    return make_settings(
        api_server.state_dir if api_server else tmp_path / "state",
        database_url,
        PUBLIC_URL.removeprefix("http://"),
        ["default:100:199", "physnet2"],
    )


@pytest.fixture
def core(settings: Settings) -> Iterator[Neutrino]:
    neutrino = prepare(settings)
    yield neutrino
    neutrino.db.dispose()


@pytest.fixture
def http(
    settings: Settings, core: Neutrino, api_server: LiveServer | None
) -> Iterator[TestClient | httpx.Client]:
    """The API's client: the application in-process, or the live server."""
    if api_server is not None:
        with httpx.Client(base_url=api_server.url, timeout=60) as client:
            yield client
        return
    with TestClient(create_app(settings, core), raise_server_exceptions=True) as client:
        yield client


@dataclass
class ApiClient:
    """One caller of the networking API, with its token; paths are relative to /networking/v2.0."""

    http: TestClient | httpx.Client
    token: str
    project_id: str
    user_id: str
    prefix: str = "/networking/v2.0"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Auth-Token": self.token, **kwargs.pop("headers", {})}
        return self.http.request(method, self.prefix + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def create(self, collection: str, **body: Any) -> dict[str, Any]:
        """POST and return the created resource, failing loudly on an error."""
        member = collection.rstrip("s").replace("-", "_")
        response = self.post(f"/{collection}", json={member: body})
        assert response.status_code == 201, response.text
        return response.json()[member]


@contextmanager
def behind_the_api(database_url: str) -> Iterator[Connection]:
    """One transaction straight on the test's database, beside its server: to put rows in
    states the API would refuse."""
    db = Database(database_url)
    try:
        with db.engine.begin() as conn:
            yield conn
    finally:
        db.engine.dispose()


def expect_error(response: httpx.Response, status: int, kind: str) -> str:
    """Assert a NeutronError body of `kind` with `status`; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()["NeutronError"]
    assert body["type"] == kind, body
    assert set(body) == {"type", "message", "detail"}
    return body["message"]


def login(http: TestClient | httpx.Client, user: str, password: str, project: str) -> ApiClient:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"id": "default"}, "password": password}
                },
            },
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }
    }
    response = http.post("/identity/v3/auth/tokens", json=body)
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    return ApiClient(
        http, response.headers["X-Subject-Token"], token["project"]["id"], token["user"]["id"]
    )


def dashboard_login(http: TestClient | httpx.Client, user: str, password: str, project: str) -> str:
    """Sign `http` in to the dashboard (its cookie holds the session); the session's CSRF token
    for the forms it posts."""
    form = http.get("/dashboard/login")
    signed_in = http.post(
        "/dashboard/login",
        follow_redirects=False,
        data={
            "csrf_token": form.cookies["neutrino_login_csrf"],
            "next": "/dashboard/",
            "username": user,
            "password": password,
            "project": project,
        },
    )
    assert signed_in.status_code == 303, signed_in.text
    page = http.get("/dashboard/project/networks")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def cloud_password(state_dir: Path, cloud: str) -> str:
    clouds = yaml.safe_load((state_dir / "clouds.yaml").read_text())
    return clouds["clouds"][cloud]["auth"]["password"]


def add_member_project(admin: ApiClient, name: str, role: str = "member") -> tuple[str, str]:
    """A new project with a user of the same name who has `role` on it; returns (name,
    password)."""
    password = f"{name}-password"
    headers = {"X-Auth-Token": admin.token}
    project = admin.http.post(
        "/identity/v3/projects",
        headers=headers,
        json={"project": {"name": name, "domain_id": "default"}},
    ).json()["project"]
    user = admin.http.post(
        "/identity/v3/users",
        headers=headers,
        json={
            "user": {
                "name": name,
                "domain_id": "default",
                "password": password,
                "default_project_id": project["id"],
            }
        },
    ).json()["user"]
    roles = admin.http.get("/identity/v3/roles", headers=headers, params={"name": role}).json()[
        "roles"
    ]
    response = admin.http.put(
        f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{roles[0]['id']}",
        headers=headers,
    )
    assert response.status_code == 204, response.text
    return name, password


@dataclass
class Api:
    admin: ApiClient
    demo: ApiClient
    demo2: ApiClient


@pytest.fixture
def api(http: TestClient, settings: Settings) -> Api:
    admin = login(http, "admin", ADMIN_PASSWORD, "admin")
    demo = login(http, "demo", cloud_password(settings.state_dir, "neutrino-demo"), "demo")
    name, password = add_member_project(admin, "demo2")
    return Api(admin, demo, login(http, name, password, name))


# -- a live server for the unchanged clients ------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def eventually(check: Callable[[], Any], seconds: float = 10.0, interval: float = 0.05) -> bool:
    """Whether `check()` turns true within `seconds` (what the kernel or a server does in
    its time)."""
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


@dataclass
class LiveServer:
    url: str
    state_dir: Path
    process: subprocess.Popen[bytes]
    prefix: str = ""  # of the namespaces its agent makes, when it runs one
    host: str = ""
    processes: list[subprocess.Popen[str]] = field(
        default_factory=list
    )  # started by a test, stopped after it
    database_url: str = ""
    options: list[str] = field(default_factory=list)  # of `neutrino serve`, beyond where and what

    @property
    def clouds_yaml(self) -> Path:
        return self.state_dir / "clouds.yaml"

    def env(self, cloud: str) -> dict[str, str]:
        return {**os.environ, "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml), "OS_CLOUD": cloud}

    def neutrino(
        self, *args: str, check: bool = True, cloud: str = "neutrino-admin"
    ) -> subprocess.CompletedProcess[str]:
        """Run the `neutrino` CLI (as admin unless `cloud` says); with `check`, an
        AssertionError unless it succeeds."""
        result = subprocess.run(
            [str(VENV_BIN / "neutrino"), *args],
            env=self.env(cloud),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert not check or result.returncode == 0, (
            f"neutrino {' '.join(args)}: {result.stdout}{result.stderr}"
        )
        return result

    def run_cli(
        self, *args: str, cloud: str = "neutrino-admin"
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "openstack"), *args],
            env=self.env(cloud),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def cli(self, *args: str, cloud: str = "neutrino-admin", output: bool = True) -> Any:
        """Run `openstack ARGS -f json` (without -f for commands that print nothing:
        output=False); the parsed output, or an AssertionError with stderr."""
        result = self.run_cli(*args, *(["-f", "json"] if output else []), cloud=cloud)
        assert result.returncode == 0, f"openstack {' '.join(args)} failed:\n{result.stderr}"
        return json.loads(result.stdout) if output else None

    def sdk(self, cloud: str = "neutrino-admin"):  # type: ignore[no-untyped-def]
        import openstack.config
        import openstack.connection

        config = openstack.config.OpenStackConfig(config_files=[str(self.clouds_yaml)])
        return openstack.connection.Connection(config=config.get_one(cloud))


def start_server(
    state_dir: Path,
    database_url: str,
    extra: list[str] | None = None,
    kind: type[LiveServer] = LiveServer,
    port: int | None = None,
) -> LiveServer:
    """`neutrino serve` on `port` or a free one (its output in STATE_DIR.log), once healthy.

    A free port can be taken by another process before the server binds it (an outgoing
    connection's, another test worker's): then another is tried. Without `extra` options it
    runs no agent: API tests must not touch the kernel."""
    log_path = state_dir.parent / f"{state_dir.name}.log"
    for _ in range(5):
        chosen = port or free_port()
        started = log_path.stat().st_size if log_path.exists() else 0
        process = _serve(state_dir, database_url, chosen, extra or ["--no-agent"], log_path)
        url = f"http://127.0.0.1:{chosen}"
        deadline = time.monotonic() + 90  # several workers importing on a busy machine take long
        while time.monotonic() < deadline:
            if process.poll() is not None:
                with log_path.open("rb") as log:
                    log.seek(started)
                    said = log.read().decode(errors="replace")
                if port is None and "address already in use" in said:
                    break
                raise RuntimeError(f"neutrino serve exited: {said}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    return kind(
                        url, state_dir, process, database_url=database_url, options=extra or []
                    )
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            os.killpg(process.pid, signal.SIGKILL)  # with any worker it spawned
            process.wait()
            raise RuntimeError("neutrino serve did not become healthy in 90 s")
    raise RuntimeError("neutrino serve found no free port in 5 tries")


def _serve(
    state_dir: Path, database_url: str, port: int, options: list[str], log_path: Path
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NEUTRINO_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [
                str(VENV_BIN / "neutrino"),
                "serve",
                "--bind",
                f"127.0.0.1:{port}",
                "--state-dir",
                str(state_dir),
                "--database-url",
                database_url,
                "--physnet",
                "default:100:199",
                "--log-level",
                "warning",
                *options,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


Server = TypeVar("Server", bound=LiveServer)


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)  # with any worker it spawned
        server.process.wait()


def crash(server: LiveServer) -> None:
    """SIGKILL `neutrino serve`'s process group: the server, its embedded agent in the middle of
    whatever it did, and every process it started without letting it go its own way."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()
    if (session := getattr(server, "_session", None)) is not None:
        session.close()
        del server._session  # type: ignore[attr-defined]


def restart(server: LiveServer) -> None:
    """Start `neutrino serve` again on the same port, database and state directory, once healthy."""
    port = int(server.url.rsplit(":", 1)[1])
    server.process = start_server(
        server.state_dir, server.database_url, server.options, port=port
    ).process


@contextmanager
def dataplane_server(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    tag: str,
    kind: type[Server],
    host: str = "dp",
    options: tuple[str, ...] = (),
) -> Iterator[Server]:
    """A live server WITH its embedded agent, isolated under a unique namespace prefix, and
    `options` of `neutrino serve`.

    On the way out it stops what the test started in `server.processes`,
    stops the server, tears down everything the agent made and asserts that
    nothing with the prefix is left, pass or fail.
    """
    from neutrino.agent.reconciler import Agent
    from neutrino.plan import HostConfig
    from tests.netns.netlab import leftovers

    if os.geteuid() != 0:
        pytest.skip("the data plane needs root")
    prefix = f"{tag}{secrets.token_hex(3)}-"
    url = databases.new("sqlite")
    state = tmp_path_factory.mktemp(tag) / "state"
    server = start_server(
        state, url, ["--host", host, "--netns-prefix", prefix, *options], kind=kind
    )
    assert isinstance(server, kind)
    server.prefix, server.host = prefix, host
    try:
        yield server
    finally:
        for process in server.processes:
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if (session := getattr(server, "_session", None)) is not None:
            session.close()
        stop_server(server)
        # In a thread of its own: pyroute2 runs an asyncio loop, and the caller's thread may
        # hold one.
        with ThreadPoolExecutor(1) as worker:
            worker.submit(
                Agent(HostConfig.isolated(host, prefix=prefix), state / "agent").teardown
            ).result()
            assert worker.submit(leftovers, prefix, state / "agent").result() == []
        databases.drop(url)


@pytest.fixture(scope="module", params=BACKENDS)
def live_server(
    request: pytest.FixtureRequest, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    url = databases.new(request.param)
    server = start_server(tmp_path_factory.mktemp("live") / "state", url)
    yield server
    stop_server(server)
    databases.drop(url)


# Each `openstack` command spends a second or two starting up: the modules of the unchanged CLI
# run on PostgreSQL only. What the server does with their requests is the API tests' to check, on
# both backends.
CLI_BACKEND = pytest.mark.parametrize("live_server", ["postgresql"], indirect=True)
