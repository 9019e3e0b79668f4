"""The HTTP front of a live `neutrino serve`: request ids, failures that keep the connection,
the access log, the body size limit and slow clients, over real sockets."""

from __future__ import annotations

import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import (
    ADMIN_PASSWORD,
    ApiClient,
    Databases,
    LiveServer,
    add_member_project,
    eventually,
    expect_error,
    login,
    start_server,
    stop_server,
)

BODY_LIMIT = 1000
CLIENT_TIMEOUT = 1.0
REQUEST_ID = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")
GARBLED = "not a time"


@dataclass
class Front:
    server: LiveServer
    database_url: str
    http: httpx.Client  # one connection, kept alive between requests
    admin: ApiClient

    def log(self) -> str:
        return (self.server.state_dir.parent / f"{self.server.state_dir.name}.log").read_text()

    def records(self, request_id: str) -> list[str]:
        """The log's records (a line and what follows it, such as a traceback) naming a request."""
        records = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} )", self.log())
        return [record for record in records if request_id in record]

    def garble(self, table: str, column: str, row_id: str) -> None:
        """A fault from outside: the database now holds what the server cannot read."""
        with closing(sqlite3.connect(self.database_url.removeprefix("sqlite:///"))) as conn, conn:
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (GARBLED, row_id))


def connection_of(response: httpx.Response) -> Any:
    """The client's address of the connection a response came on."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


@pytest.fixture(scope="module")
def front(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    url = databases.new("sqlite")
    server = start_server(
        tmp_path_factory.mktemp("front") / "state",
        url,
        [
            "--no-agent",
            "--access-log",
            "--max-request-body-size",
            str(BODY_LIMIT),
            "--client-timeout",
            str(CLIENT_TIMEOUT),
        ],
    )
    http = httpx.Client(base_url=server.url, limits=httpx.Limits(max_connections=1), timeout=10)
    try:
        yield Front(server, url, http, login(http, "admin", ADMIN_PASSWORD, "admin"))
    finally:
        http.close()
        stop_server(server)
        databases.drop(url)


# -- failures -------------------------------------------------------------------------------------
def test_an_unexpected_error_is_a_500_that_keeps_the_connection(front: Front) -> None:
    network = front.admin.create("networks", name="garbled")
    kept = front.admin.create("networks", name="kept")
    front.garble("networks", "created_at", network["id"])

    failed = front.admin.get(f"/networks/{network['id']}")
    request_id = failed.headers["X-Openstack-Request-Id"]
    message = expect_error(failed, 500, "HTTPInternalServerError")
    assert message == (
        f"Request Failed: internal server error while processing your request ({request_id})."
    )
    assert GARBLED not in failed.text  # no internals

    # The next request, a POST no client would retry, goes on the same connection.
    created = front.admin.post("/networks", json={"network": {"name": "after"}})
    assert created.status_code == 201, created.text
    assert connection_of(created) == connection_of(failed)
    assert front.admin.get(f"/networks/{kept['id']}").status_code == 200

    assert eventually(lambda: len(front.records(request_id)) == 2)
    error, access = front.records(request_id)  # the error, and the request's line in the access log
    path = f"/networking/v2.0/networks/{network['id']}"
    assert (
        f"ERROR neutrino.api: unexpected error in GET {path} ({request_id})\n"
        "Traceback (most recent call last):" in error
    )
    assert error.count("Traceback") == 1
    assert f"ValueError: Invalid isoformat string: '{GARBLED}'" in error
    assert "neutrino.access: GET" in access
    assert "Exception in ASGI application" not in front.log()


def test_an_unexpected_error_on_load_balancers_is_an_octavia_500(front: Front) -> None:
    network = front.admin.create("networks")
    subnet = front.admin.create(
        "subnets", network_id=network["id"], cidr="10.50.0.0/24", ip_version=4
    )
    lbs = "/load-balancer/v2/lbaas/loadbalancers"
    headers = {"X-Auth-Token": front.admin.token}
    lb = front.http.post(
        lbs, headers=headers, json={"loadbalancer": {"vip_subnet_id": subnet["id"]}}
    )
    assert lb.status_code == 201, lb.text
    front.garble("lb_loadbalancers", "created_at", lb.json()["loadbalancer"]["id"])

    failed = front.http.get(lbs, headers=headers)
    assert failed.status_code == 500
    request_id = failed.headers["X-Openstack-Request-Id"]
    assert failed.json() == {
        "faultcode": "Server",
        "debuginfo": None,
        "faultstring": (
            f"Request Failed: internal server error while processing your request ({request_id})."
        ),
    }
    assert front.http.get("/load-balancer/v2/lbaas/pools", headers=headers).status_code == 200
    assert eventually(lambda: len(front.records(request_id)) == 2)
    error, _access = front.records(request_id)
    assert f"unexpected error in GET /load-balancer/v2/lbaas/loadbalancers ({request_id})" in error


def test_an_unexpected_error_on_identity_is_a_keystone_500(front: Front) -> None:
    name, password = add_member_project(front.admin, "garbled-user")
    users = front.http.get(
        "/identity/v3/users", params={"name": name}, headers={"X-Auth-Token": front.admin.token}
    ).json()["users"]
    front.garble("users", "tokens_valid_after", users[0]["id"])

    failed = front.http.post(
        "/identity/v3/auth/tokens",
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": name, "domain": {"id": "default"}, "password": password}
                    },
                }
            }
        },
    )
    assert failed.status_code == 500
    request_id = failed.headers["X-Openstack-Request-Id"]
    assert failed.json() == {
        "error": {
            "code": 500,
            "title": "Internal Server Error",
            "message": (
                "Request Failed: internal server error while processing your request "
                f"({request_id})."
            ),
        }
    }
    assert login(front.http, "admin", ADMIN_PASSWORD, "admin").token


# -- request ids and the access log ---------------------------------------------------------------
def test_every_answer_carries_its_own_request_id(front: Front) -> None:
    token = {"X-Auth-Token": front.admin.token}
    responses = [
        front.http.get("/healthz"),
        front.http.get("/networking/v2.0/networks", headers=token),
        front.http.get("/networking/v2.0/networks/nothing-here", headers=token),
        front.http.get("/networking/v2.0/networks"),  # unauthenticated
        front.http.get("/load-balancer/v2/lbaas/loadbalancers", headers=token),
        front.http.get(
            "/identity/v3/auth/tokens", headers={**token, "X-Subject-Token": front.admin.token}
        ),
        front.http.get("/dashboard/login"),
    ]
    ids = [r.headers["X-Openstack-Request-Id"] for r in responses]
    assert all(REQUEST_ID.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


def test_the_access_log_has_one_line_per_request(front: Front) -> None:
    listed = front.admin.get("/networks", params={"name": "kept"})
    missing = front.admin.get("/networks/nothing-here")
    # A request's line is written once its answer has gone out: the client may read it first.
    assert eventually(lambda: missing.headers["X-Openstack-Request-Id"] in front.log())
    lines = front.log().splitlines()
    for response, status in ((listed, 200), (missing, 404)):
        request_id = response.headers["X-Openstack-Request-Id"]
        mine = [line for line in lines if request_id in line]
        assert len(mine) == 1
        assert re.search(
            r"INFO neutrino\.access: GET "
            r"/networking/v2\.0/networks(\?name=kept|/nothing-here) "
            rf"{status} \d+\.\dms {request_id}$",
            mine[0],
        ), mine[0]


def test_no_access_log_unless_asked(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = databases.new("sqlite")
    server = start_server(tmp_path_factory.mktemp("quiet") / "state", url)
    try:
        assert httpx.get(server.url + "/healthz").status_code == 200
        assert httpx.get(server.url + "/networking/v2.0/networks").status_code == 401
    finally:
        stop_server(server)
        databases.drop(url)
    log = (server.state_dir.parent / f"{server.state_dir.name}.log").read_text()
    assert "/healthz" not in log and "/networking" not in log


# -- request bodies -------------------------------------------------------------------------------
TOO_LARGE = f"Request is too large. Larger than max_request_body_size ({BODY_LIMIT})."


def oversized_network() -> bytes:
    return b'{"network": {"name": "big", "description": "' + b"x" * BODY_LIMIT + b'"}}'


def chunks(body: bytes) -> Iterator[bytes]:
    yield from (body[i : i + 100] for i in range(0, len(body), 100))


def test_a_body_over_the_limit_is_a_413_and_creates_nothing(front: Front) -> None:
    announced = front.admin.post("/networks", content=oversized_network())
    assert expect_error(announced, 413, "HTTPRequestEntityTooLarge") == TOO_LARGE
    chunked = front.admin.post("/networks", content=chunks(oversized_network()))
    assert "content-length" not in chunked.request.headers
    assert expect_error(chunked, 413, "HTTPRequestEntityTooLarge") == TOO_LARGE
    assert front.admin.get("/networks", params={"name": "big"}).json()["networks"] == []
    # Up to the limit a body is read as usual.
    fits = b'{"network": {"name": "fits", "description": "' + b"x" * 200 + b'"}}'
    assert front.admin.post("/networks", content=chunks(fits)).status_code == 201


def test_a_body_over_the_limit_is_refused_in_each_api_format(front: Front) -> None:
    token = {"X-Auth-Token": front.admin.token}
    big = b"x" * (BODY_LIMIT + 1)
    octavia = front.http.post(
        "/load-balancer/v2/lbaas/loadbalancers", headers=token, content=chunks(big)
    )
    assert octavia.status_code == 413
    assert octavia.json() == {"faultcode": "Client", "faultstring": TOO_LARGE, "debuginfo": None}
    keystone = front.http.post("/identity/v3/auth/tokens", content=big)
    assert keystone.status_code == 413
    assert keystone.json() == {
        "error": {"code": 413, "title": "Request Entity Too Large", "message": TOO_LARGE}
    }
    form = front.http.post(
        "/dashboard/login", data={"username": "admin", "password": "x" * BODY_LIMIT}
    )
    assert form.status_code == 413
    assert form.headers["content-type"].startswith("text/html") and TOO_LARGE in form.text


def test_no_such_route_is_answered_in_each_api_format(front: Front) -> None:
    answers = {
        prefix: front.http.get(f"{prefix}/no-such-thing")
        for prefix in ("/networking/v2.0", "/load-balancer/v2", "/identity/v3", "/dashboard")
    }
    assert {prefix: answer.status_code for prefix, answer in answers.items()} == dict.fromkeys(
        answers, 404
    )
    assert answers["/networking/v2.0"].json() == {
        "NeutronError": {"type": "HTTPNotFound", "message": "Not Found", "detail": ""}
    }
    assert answers["/load-balancer/v2"].json() == {
        "faultcode": "Client",
        "faultstring": "Not Found",
        "debuginfo": None,
    }
    assert answers["/identity/v3"].json() == {
        "error": {"code": 404, "title": "Not Found", "message": "Not Found"}
    }
    assert answers["/dashboard"].headers["content-type"].startswith("text/html")
    not_allowed = front.http.delete(
        "/load-balancer/v2/lbaas/loadbalancers", headers={"X-Auth-Token": front.admin.token}
    )
    assert (not_allowed.status_code, not_allowed.json()["faultstring"]) == (
        405,
        "Method Not Allowed",
    )


def test_a_signed_in_form_over_the_limit_is_a_413_page(front: Front) -> None:
    with httpx.Client(base_url=front.server.url) as browser:
        login_page = browser.get("/dashboard/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page)
        assert csrf
        signed_in = browser.post(
            "/dashboard/login",
            data={
                "csrf_token": csrf.group(1),
                "username": "admin",
                "password": ADMIN_PASSWORD,
                "project": "admin",
                "next": "/dashboard/project/networks",
            },
        )
        assert signed_in.status_code == 303, signed_in.text
        form = browser.post(
            "/dashboard/project/networks",
            content=chunks(b"name=" + b"x" * BODY_LIMIT),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert form.status_code == 413
    assert TOO_LARGE in form.text and "Sign out" in form.text  # the signed-in page around it


# -- slow clients ---------------------------------------------------------------------------------
def raw_connection(front: Front) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(front.server.url.rsplit(":", 1)[1])))
    sock.settimeout(CLIENT_TIMEOUT + 5)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_body_that_does_not_arrive_in_time_is_a_408(front: Front) -> None:
    with raw_connection(front) as sock:
        sock.sendall(
            b"POST /networking/v2.0/networks HTTP/1.1\r\nHost: neutrino\r\n"
            b"X-Auth-Token: " + front.admin.token.encode() + b"\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"network": '
        )
        started = time.monotonic()
        answer = read_all(sock)
    assert CLIENT_TIMEOUT <= time.monotonic() - started < CLIENT_TIMEOUT + 3
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head.lower()
    assert httpx.Response(408, content=body).json() == {
        "NeutronError": {
            "type": "HTTPRequestTimeout",
            "message": "The request body did not arrive in time.",
            "detail": "",
        }
    }


def test_a_kept_alive_connection_outlives_a_pause(front: Front) -> None:
    with httpx.Client(base_url=front.server.url, limits=httpx.Limits(keepalive_expiry=60)) as http:
        before = connection_of(http.get("/healthz"))
        time.sleep(6)  # longer than uvicorn's own keep-alive timeout
        assert connection_of(http.get("/healthz")) == before


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: neutrino\r\n"])
def test_headers_that_do_not_arrive_in_time_lose_the_connection(front: Front, sent: bytes) -> None:
    with raw_connection(front) as sock:
        sock.sendall(sent)
        started = time.monotonic()
        assert read_all(sock) == b""
    assert CLIENT_TIMEOUT - 0.1 <= time.monotonic() - started < CLIENT_TIMEOUT + 3
