"""Load balancers with real packets: TLS passed through to the members, the PROXY protocol,
SOURCE_IP_PORT and a TLS-HELLO health monitor.

One live `neutrino serve` with its embedded agent for the module, S6's network (WEB1 and WEB2
running busybox httpd, CLIENT), and on WEB1 and WEB2 a TLS server with a certificate of its own
and a server that answers with the client address a PROXY protocol header told it.
"""

from __future__ import annotations

import hashlib
import ssl
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from netlab import wait_for
from test_loadbalancer_s6 import WEB_PORT, LbCloud, web  # noqa: F401 (web: a fixture)
from test_routers_api import eventually

from tests.conftest import Databases, dataplane_server

TLS_PORT, PROXY_PORT = 9443, 9000
# A member's server: `tls PORT NAME CERT KEY` answers NAME over TLS, serving the virtual host
# VHOST alone (an HTTP/1.1 request needs a Host header, as HTTP/1.1 says); `proxy PORT` answers
# "v1|v2 ADDRESS" from the PROXY protocol header its connections start with ("none PEER"
# without one).
VHOST = "members.example"
MEMBER = r"""
import re, socketserver, ssl, struct, sys
mode, port = sys.argv[1], int(sys.argv[2])
if mode == "tls":
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[4], sys.argv[5])

def exactly(conn, size):
    data = b""
    while len(data) < size:
        data += conn.recv(size - len(data)) or b"!" * size
    return data

def proxy_header(conn, peer):
    start = exactly(conn, 12)
    if start.startswith(b"PROXY "):
        while not start.endswith(b"\r\n"):
            start += exactly(conn, 1)
        return "v1 " + start.split()[2].decode()
    if start == b"\r\n\r\n\x00\r\nQUIT\n":
        _, family, size = struct.unpack("!BBH", exactly(conn, 4))
        addresses = exactly(conn, size)
        return "v2 " + ".".join(str(b) for b in addresses[:4]) if family == 0x11 else "v2 ?"
    return "none " + peer

class Answer(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.settimeout(5)
        if mode == "tls":
            conn, answer = context.wrap_socket(conn, server_side=True), sys.argv[3]
        else:
            answer = proxy_header(conn, self.client_address[0])
        request, status = conn.recv(4096), b"200 OK"
        host = re.search(rb"(?im)^host:\s*(\S+)", request)
        if host and host.group(1) != b"%s":
            status = b"404 Not Found"
        elif not host and request.split(b"\r\n")[0].endswith(b"HTTP/1.1"):
            status = b"400 Bad Request"
        conn.sendall(b"HTTP/1.0 " + status + b"\r\n\r\n" + answer.encode() + b"\n")
        conn.close()

class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a health check's handshake that fails, a client that goes

Server(("0.0.0.0", port), Answer).serve_forever()
""".replace("%s", VHOST)
# From CLIENT: for each source port argv[3:], three TLS connections to VIP:argv[2] (no
# verification); prints "PORT SHA256-OF-THE-SERVER'S-CERTIFICATE ANSWER" for each.
TLS_CLIENT = r"""
import hashlib, socket, ssl, sys
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
for port in sys.argv[3:]:
    for _ in range(3):
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        raw.settimeout(5)
        raw.bind(("", int(port)))
        raw.connect((sys.argv[1], int(sys.argv[2])))
        conn = context.wrap_socket(raw)
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
        certificate = hashlib.sha256(conn.getpeercert(binary_form=True)).hexdigest()
        print(port, certificate, answer.decode().split()[-1], flush=True)
        conn.close()
"""
# Says argv[3] (not HTTP) to argv[1]:argv[2] and prints the whole answer.
SAY = r"""
import socket, sys
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
conn.sendall(sys.argv[3].encode() + b"\n")
answer = b""
while chunk := conn.recv(4096):
    answer += chunk
print(answer.decode(), end="")
"""
SOURCE_PORTS = [str(port) for port in range(41000, 41016)]


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LbCloud]:
    with dataplane_server(databases, tmp_path_factory, "tp", LbCloud, host=LbCloud.host) as server:
        server.www = tmp_path_factory.mktemp("www")
        yield server


@pytest.fixture(scope="module")
def members(cloud: LbCloud, web: dict[str, Any]) -> dict[str, str]:  # noqa: F811
    """WEB1 and WEB2 serve TLS (each its own certificate) and PROXY; the SHA-256 of each
    certificate by name."""
    for port in (TLS_PORT, PROXY_PORT):
        cloud.allow("tcp", port, "192.168.60.0/24")
    fingerprints = {}
    for name in ("WEB1", "WEB2"):
        cert, key = cloud.www / f"{name}.crt", cloud.www / f"{name}.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
            + ["-nodes", "-days", "1", "-subj", f"/CN={name}", "-keyout", key, "-out", cert],
            capture_output=True,
            check=True,
        )
        der = ssl.PEM_cert_to_DER_cert(cert.read_text())
        fingerprints[name] = hashlib.sha256(der).hexdigest()
        netns = web[name]["netns"]
        cloud.background(netns, MEMBER, "tls", str(TLS_PORT), name, str(cert), str(key))
        cloud.background(netns, MEMBER, "proxy", str(PROXY_PORT))
    return fingerprints


@pytest.fixture(scope="module")
def balancer(
    cloud: LbCloud,
    web: dict[str, Any],  # noqa: F811
    members: dict[str, str],
) -> dict[str, Any]:
    """One load balancer, made in one step: HTTPS on 443 to an HTTPS pool hashing the client's
    address and port over both TLS servers; HTTP on 80 to a PROXY pool of WEB1's and TCP on 81
    to a PROXYV2 pool of WEB2's."""

    def pool(protocol: str, algorithm: str, port: int, *names: str) -> dict[str, Any]:
        return {
            "protocol": protocol,
            "lb_algorithm": algorithm,
            "members": [{"address": web[n]["ip"], "protocol_port": port} for n in names],
        }

    listeners = [
        ("HTTPS", 443, pool("HTTPS", "SOURCE_IP_PORT", TLS_PORT, "WEB1", "WEB2")),
        ("HTTP", 80, pool("PROXY", "ROUND_ROBIN", PROXY_PORT, "WEB1")),
        ("TCP", 81, pool("PROXYV2", "ROUND_ROBIN", PROXY_PORT, "WEB2")),
    ]
    lb = cloud.api.call(
        "POST",
        f"{cloud.lbaas}/loadbalancers",
        json={
            "loadbalancer": {
                "name": "protocols",
                "vip_subnet_id": web["subnet"]["id"],
                "listeners": [
                    {"protocol": protocol, "protocol_port": port, "default_pool": default}
                    for protocol, port, default in listeners
                ],
            }
        },
    )["loadbalancer"]
    wait_for(
        lambda: (
            cloud.lb(f"loadbalancers/{lb['id']}")["loadbalancer"]["provisioning_status"] == "ACTIVE"
        ),
        timeout=30,
    )
    return cloud.lb(f"loadbalancers/{lb['id']}")["loadbalancer"]


def ask_tls(cloud: LbCloud, client: str, vip: str) -> list[tuple[str, str, str]]:
    """(source port, the certificate's SHA-256, the answer) of each TLS_CLIENT connection from
    the namespace `client`."""
    process = cloud.background(client, TLS_CLIENT, vip, "443", *SOURCE_PORTS)
    output, _ = process.communicate(timeout=60)
    return [tuple(line.split()) for line in output.splitlines()]  # type: ignore[misc]


def test_tls_passes_through_and_source_ip_port_keeps_a_connection_on_one_member(
    cloud: LbCloud,
    web: dict[str, Any],  # noqa: F811
    members: dict[str, str],
    balancer: dict[str, Any],
) -> None:
    answers = ask_tls(cloud, web["CLIENT"]["netns"], balancer["vip_address"])
    assert len(answers) == 3 * len(SOURCE_PORTS)
    # The client sees the certificate of the member that answers: haproxy only passes TLS on.
    assert {(certificate, name) for _, certificate, name in answers} == {
        (members[name], name) for name in ("WEB1", "WEB2")
    }
    # One client address and port, one member; the ports spread over both.
    by_port: dict[str, set[str]] = {}
    for port, _, name in answers:
        by_port.setdefault(port, set()).add(name)
    assert all(len(names) == 1 for names in by_port.values()), by_port


def test_proxy_protocol_tells_the_members_the_client_address(
    cloud: LbCloud,
    web: dict[str, Any],  # noqa: F811
    balancer: dict[str, Any],
) -> None:
    client, vip = web["CLIENT"], balancer["vip_address"]
    assert cloud.answers(client["netns"], vip, 2, port=80) == [f"v1 {client['ip']}"] * 2
    assert cloud.answers(client["netns"], vip, 2, port=81) == [f"v2 {client['ip']}"] * 2


def test_a_proxy_pool_shared_by_a_tcp_and_an_http_listener_serves_both(
    cloud: LbCloud,
    web: dict[str, Any],  # noqa: F811
    balancer: dict[str, Any],
) -> None:
    client, vip = web["CLIENT"], balancer["vip_address"]
    listeners = cloud.lb(f"listeners?loadbalancer_id={balancer['id']}")["listeners"]
    [tcp] = [listener for listener in listeners if listener["protocol_port"] == 81]
    body = {
        "loadbalancer_id": balancer["id"],
        "protocol": "HTTP",
        "protocol_port": 82,
        "default_pool_id": tcp["default_pool_id"],
    }
    cloud.lb_change("POST", "listeners", balancer["id"], {"listener": body})
    assert cloud.answers(client["netns"], vip, 2, port=82) == [f"v2 {client['ip']}"] * 2
    # The TCP listener still passes any bytes on: no HTTP is asked of its clients.
    said = cloud.run(client["netns"], sys.executable, "-c", SAY, vip, "81", "hello")
    assert said.stdout.splitlines()[-1] == f"v2 {client['ip']}"


def test_tls_hello_monitor_takes_out_a_member_that_does_not_speak_tls(
    cloud: LbCloud,
    web: dict[str, Any],  # noqa: F811
    members: dict[str, str],
    balancer: dict[str, Any],
) -> None:
    [https] = [
        listener
        for listener in cloud.lb(f"listeners?loadbalancer_id={balancer['id']}")["listeners"]
        if listener["protocol"] == "HTTPS"
    ]
    pool_id = https["default_pool_id"]
    plain = cloud.lb_change(
        "POST",
        f"pools/{pool_id}/members",
        balancer["id"],
        {"member": {"address": web["WEB1"]["ip"], "protocol_port": WEB_PORT}},
    )
    cloud.lb_change(
        "POST",
        "healthmonitors",
        balancer["id"],
        {
            "healthmonitor": {
                "pool_id": pool_id,
                "type": "TLS-HELLO",
                "delay": 1,
                "timeout": 1,
                "max_retries": 1,
                "max_retries_down": 1,
            }
        },
    )

    def statuses() -> dict[str, str]:
        found = cloud.lb(f"pools/{pool_id}/members")["members"]
        return {m["id"]: m["operating_status"] for m in found}

    assert eventually(
        lambda: statuses() == {m: ("ERROR" if m == plain["id"] else "ONLINE") for m in statuses()},
        seconds=10,
    ), statuses()
    # Every connection reaches a TLS server.
    answers = ask_tls(cloud, web["CLIENT"]["netns"], balancer["vip_address"])
    assert len(answers) == 3 * len(SOURCE_PORTS)
    assert {name for _, _, name in answers} == {"WEB1", "WEB2"}


def test_https_monitor_asks_for_its_domain_over_tls(
    cloud: LbCloud,
    web: dict[str, Any],  # noqa: F811
    members: dict[str, str],
    balancer: dict[str, Any],
) -> None:
    [https] = [
        listener
        for listener in cloud.lb(f"listeners?loadbalancer_id={balancer['id']}")["listeners"]
        if listener["protocol"] == "HTTPS"
    ]
    pool = cloud.lb(f"pools/{https['default_pool_id']}")["pool"]
    if pool["healthmonitor_id"]:  # the TLS-HELLO one
        cloud.api.call("DELETE", f"{cloud.lbaas}/healthmonitors/{pool['healthmonitor_id']}")
        wait_for(
            lambda: (
                cloud.lb(f"pools/{pool['id']}")["pool"]["healthmonitor_id"] is None
                and cloud.lb(f"loadbalancers/{balancer['id']}")["loadbalancer"][
                    "provisioning_status"
                ]
                == "ACTIVE"
            )
        )
    monitor = cloud.lb_change(
        "POST",
        "healthmonitors",
        balancer["id"],
        {
            "healthmonitor": {
                "pool_id": pool["id"],
                "type": "HTTPS",
                "delay": 1,
                "timeout": 1,
                "max_retries": 1,
                "max_retries_down": 1,
                "http_version": 1.1,
                "domain_name": "elsewhere.example",
            }
        },
    )

    def statuses() -> dict[str, str]:
        found = cloud.lb(f"pools/{pool['id']}/members")["members"]
        return {f"{m['address']}:{m['protocol_port']}": m["operating_status"] for m in found}

    tls = {f"{web[name]['ip']}:{TLS_PORT}" for name in ("WEB1", "WEB2")}
    # The TLS servers answer another host's check with a 404; the plain one cannot do TLS.
    assert eventually(lambda: set(statuses().values()) == {"ERROR"}, seconds=10), statuses()
    cloud.lb_change(
        "PUT",
        f"healthmonitors/{monitor['id']}",
        balancer["id"],
        {"healthmonitor": {"domain_name": VHOST}},
    )
    assert eventually(
        lambda: statuses() == {a: "ONLINE" if a in tls else "ERROR" for a in statuses()},
        seconds=10,
    ), statuses()
