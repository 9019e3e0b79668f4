"""`neutrino serve --workers 4` on PostgreSQL: what a client sees is what one process shows.

Each test talks to every worker on purpose: a kept-alive connection stays with
the worker that accepted it, and `ss` says which one that is, so the module
opens connections until it holds one to each of the four.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import (
    ADMIN_PASSWORD,
    VENV_BIN,
    Databases,
    LiveServer,
    cloud_password,
    eventually,
    expect_error,
    login,
    start_server,
    stop_server,
)

WORKERS = 4
NETWORKS = "/networking/v2.0/networks"


def worker_pids(server: LiveServer) -> set[int]:
    """The processes uvicorn's supervisor spawned to serve (not its resource tracker)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == server.process.pid and b"spawn_main" in cmdline:
            found.add(int(stat.parent.name))
    return found


def serving_pid(server: LiveServer, client: httpx.Client) -> int:
    """The worker that holds `client`'s connection (after one request on it)."""
    response = client.get("/healthz")
    local_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    server_port = int(server.url.rsplit(":", 1)[1])
    listed = subprocess.run(
        [
            "ss",
            "-Htnp",
            "state",
            "established",
            f"( sport = :{server_port} and dport = :{local_port} )",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(re.search(r"pid=(\d+)", listed).group(1))  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def server(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = databases.new("postgresql")
    live = start_server(
        tmp_path_factory.mktemp("workers") / "state", url, ["--no-agent", "--workers", str(WORKERS)]
    )
    assert eventually(lambda: len(worker_pids(live)) == WORKERS, 60)
    yield live
    stop_server(live)
    databases.drop(url)


@pytest.fixture(scope="module")
def workers(server: LiveServer) -> Iterator[list[httpx.Client]]:
    """One kept-alive client on each worker."""
    by_pid: dict[int, httpx.Client] = {}
    deadline = time.monotonic() + 60
    while len(by_pid) < WORKERS and time.monotonic() < deadline:
        client = httpx.Client(base_url=server.url, timeout=60)
        if by_pid.setdefault(serving_pid(server, client), client) is not client:
            client.close()  # a worker already held
    assert len(by_pid) == WORKERS, "could not reach every worker"
    yield list(by_pid.values())
    for client in by_pid.values():
        client.close()


def test_sqlite_refuses_more_than_one_worker(tmp_path: Path) -> None:
    refused = subprocess.run(
        [
            str(VENV_BIN / "neutrino"),
            "serve",
            "--workers",
            "2",
            "--state-dir",
            str(tmp_path / "state"),
            "--database-url",
            f"sqlite:///{tmp_path / 'neutrino.db'}",
            "--no-agent",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "--workers needs PostgreSQL" in refused.stderr
    assert not (tmp_path / "neutrino.db").exists()  # refused before touching anything


def test_a_token_issued_by_one_worker_works_on_all(workers: list[httpx.Client]) -> None:
    admin = login(workers[0], "admin", ADMIN_PASSWORD, "admin")
    for worker in workers:
        answer = worker.get(NETWORKS, headers={"X-Auth-Token": admin.token})
        assert answer.status_code == 200, answer.text


def test_a_token_revoked_on_one_worker_is_refused_by_all_at_once(
    workers: list[httpx.Client],
) -> None:
    token = login(workers[0], "admin", ADMIN_PASSWORD, "admin").token
    for worker in workers:  # every worker has just checked it, and would trust it a while
        assert worker.get(NETWORKS, headers={"X-Auth-Token": token}).status_code == 200
    revoked = workers[1].delete(
        "/identity/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}
    )
    assert revoked.status_code == 204, revoked.text
    # Each worker hears of it from PostgreSQL within moments, well before the second for which
    # it would trust a token it checked.
    assert eventually(
        lambda: all(
            worker.get(NETWORKS, headers={"X-Auth-Token": token}).status_code == 401
            for worker in workers
        ),
        0.5,
        0.01,
    )


def test_a_dashboard_session_follows_the_browser_to_every_worker(
    server: LiveServer, workers: list[httpx.Client]
) -> None:
    password = cloud_password(server.state_dir, "neutrino-demo")
    form = workers[0].get("/dashboard/login")
    csrf = form.cookies["neutrino_login_csrf"]
    signed_in = workers[1].post(
        "/dashboard/login",
        headers={"Cookie": f"neutrino_login_csrf={csrf}"},
        data={
            "csrf_token": csrf,
            "next": "/dashboard/",
            "username": "demo",
            "password": password,
            "project": "demo",
        },
    )
    assert signed_in.status_code == 303, signed_in.text
    cookie = {"Cookie": f"neutrino_dashboard={signed_in.cookies['neutrino_dashboard']}"}
    pages = [worker.get("/dashboard/project/networks", headers=cookie) for worker in workers]
    assert [page.status_code for page in pages] == [200] * WORKERS
    session_csrf = re.search(r'name="csrf_token" value="([^"]+)"', pages[0].text).group(1)  # type: ignore[union-attr]

    # A notice set by one worker's action is shown once, by the next page, on another.
    demo_project = login(workers[0], "demo", password, "demo").project_id
    switched = workers[2].post(
        "/dashboard/switch-project",
        headers=cookie,
        data={"csrf_token": session_csrf, "project_id": demo_project},
    )
    assert switched.status_code == 303, switched.text
    assert (
        "Now working in project demo."
        in workers[3].get("/dashboard/project/networks", headers=cookie).text
    )
    assert (
        "Now working in project demo."
        not in workers[0].get("/dashboard/project/networks", headers=cookie).text
    )

    signed_out = workers[3].post(
        "/dashboard/logout", headers=cookie, data={"csrf_token": session_csrf}
    )
    assert signed_out.status_code == 303
    for worker in workers:
        page = worker.get("/dashboard/project/networks", headers=cookie)
        assert page.status_code == 303 and "/dashboard/login" in page.headers["location"]


def long_poll(
    worker: httpx.Client, since: int, headers: dict[str, str]
) -> tuple[float, httpx.Response]:
    """Wait for changes after `since`; when the answer came, and the answer."""
    answer = worker.get(
        "/internal/v1/changes", params={"since": since, "timeout": 30}, headers=headers
    )
    return time.monotonic(), answer


def test_a_long_poll_wakes_at_once_for_a_write_through_another_worker(
    workers: list[httpx.Client],
) -> None:
    admin = login(workers[0], "admin", ADMIN_PASSWORD, "admin")
    headers = {"X-Auth-Token": admin.token}
    with ThreadPoolExecutor(1) as background:
        for index, poller in enumerate(workers):
            writer = workers[(index + 1) % WORKERS]
            since = poller.get("/internal/v1/changes", params={"since": 0}, headers=headers)
            waiting = background.submit(long_poll, poller, since.json()["revision"], headers)
            time.sleep(0.3)  # the poll is waiting on its worker
            assert not waiting.done()
            created = writer.post(
                NETWORKS, headers=headers, json={"network": {"name": f"p{index}"}}
            )
            written = time.monotonic()
            assert created.status_code == 201, created.text
            woke, answer = waiting.result(30)
            # Before, another process's write was seen at the next look at the head, each second.
            assert woke - written < 0.5, f"woke {woke - written:.2f} s after the write"
            assert [(c["type"], c["id"]) for c in answer.json()["changes"]] == [
                ("network", created.json()["network"]["id"])
            ]


def test_concurrent_creates_through_all_workers_stay_consistent(
    workers: list[httpx.Client],
) -> None:
    admin = login(workers[0], "admin", ADMIN_PASSWORD, "admin")
    net = admin.create("networks", name="crowded")
    admin.create(
        "subnets",
        network_id=net["id"],
        cidr="10.31.0.0/24",
        ip_version=4,
        enable_dhcp=False,
        allocation_pools=[{"start": "10.31.0.10", "end": "10.31.0.29"}],
    )

    def create(attempt: int) -> httpx.Response:
        return workers[attempt % WORKERS].post(
            "/networking/v2.0/ports",
            headers={"X-Auth-Token": admin.token},
            json={"port": {"network_id": net["id"]}},
        )

    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(create, range(32)))
    created = [r.json()["port"] for r in responses if r.status_code == 201]
    assert len(created) == 20
    for refused in (r for r in responses if r.status_code != 201):
        expect_error(refused, 409, "IpAddressGenerationFailure")
    ips = {p["fixed_ips"][0]["ip_address"] for p in created}
    assert ips == {f"10.31.0.{i}" for i in range(10, 30)}
    assert len({p["mac_address"] for p in created}) == 20
    for worker in workers:
        listed = worker.get(
            "/networking/v2.0/ports",
            params={"network_id": net["id"]},
            headers={"X-Auth-Token": admin.token},
        ).json()["ports"]
        assert {p["id"] for p in listed} == {p["id"] for p in created}


def test_every_worker_answers_at_once_after_postgresql_ends_its_connections(
    server: LiveServer, workers: list[httpx.Client]
) -> None:
    """A restart or an idle timeout ends the pooled connections of every worker: the next
    requests are answered all the same, on new ones."""
    admin = login(workers[0], "admin", ADMIN_PASSWORD, "admin")
    headers = {"X-Auth-Token": admin.token}
    for worker in workers:  # each holds pooled connections now
        assert worker.get(NETWORKS, headers=headers).status_code == 200
    engine = create_engine(server.database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        ended = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalars()
        assert sum(ended) >= WORKERS
    engine.dispose()
    for worker in workers:
        listed = worker.get(NETWORKS, headers=headers)
        assert listed.status_code == 200, listed.text
        created = worker.post(NETWORKS, headers=headers, json={"network": {"name": "after"}})
        assert created.status_code == 201, created.text


def test_a_dead_worker_is_replaced_and_sigterm_stops_them_all(
    databases: Databases, tmp_path: Path
) -> None:
    url = databases.new("postgresql")
    live = start_server(tmp_path / "state", url, ["--no-agent", "--workers", "2"])
    try:
        assert eventually(lambda: len(worker_pids(live)) == 2, 60)
        first = worker_pids(live)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        assert eventually(lambda: len(worker_pids(live) - {victim}) == 2, 60)
        assert httpx.get(live.url + "/healthz").status_code == 200
        replaced = worker_pids(live)
        live.process.send_signal(signal.SIGTERM)
        assert live.process.wait(30) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in replaced)
    finally:
        stop_server(live)
        databases.drop(url)


def test_workers_end_with_a_supervisor_killed_outright(
    databases: Databases, tmp_path: Path
) -> None:
    url = databases.new("postgresql")
    live = start_server(tmp_path / "state", url, ["--no-agent", "--workers", "2"])
    try:
        assert eventually(lambda: len(worker_pids(live)) == 2, 60)
        orphans = worker_pids(live)
        live.process.kill()  # no chance to stop its workers
        live.process.wait()
        assert eventually(lambda: not any(Path(f"/proc/{pid}").exists() for pid in orphans), 30)
        with pytest.raises(httpx.ConnectError):
            httpx.get(live.url + "/healthz")
    finally:
        stop_server(live)
        databases.drop(url)
