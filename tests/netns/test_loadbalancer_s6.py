"""SCENARIOS.md S6 with real packets: a load balancer in front of two web servers, through the APIs.

One live `neutrino serve` with its embedded agent (isolated mode, a unique
namespace prefix) for the module. WEB1 and WEB2 are instances running a web
server that answers its name; CLIENT asks the VIP from inside, the outside
namespace asks the floating IP of the VIP. The load balancer is made with the
unchanged `openstack loadbalancer` commands; everything else through the API.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netlab import wait_for
from test_loadbalancer_udp import ASK, SERVER
from test_routers_api import RoutedCloud, eventually

from neutrino.agent.drivers import haproxy
from neutrino.agent.drivers import netns as ns
from tests.certificates import issue
from tests.conftest import Databases, dataplane_server

WEB_PORT = 8000
# Opens one connection to VIP:port and holds it; once the file argv[3] exists, asks on it
# and prints the answer.
HOLD = (
    "import os,socket,sys,time\n"
    "s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=10)\n"
    "print('open',flush=True)\nwhile not os.path.exists(sys.argv[3]): time.sleep(0.02)\n"
    "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n');answer=b''\n"
    "while (chunk:=s.recv(4096)): answer+=chunk\n"
    "print(answer.decode().split()[-1],flush=True)\n"
)


class LbCloud(RoutedCloud):
    host = "lb"
    www: Path

    @property
    def lbaas(self) -> str:
        return self.api.endpoint("load-balancer") + "/v2/lbaas"

    def lb(self, path: str) -> Any:
        return self.api.call("GET", f"{self.lbaas}/{path}")

    def lb_change(self, method: str, path: str, lb_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """One change through the API, returned (if the answer has one) once the load balancer
        is ACTIVE again."""
        answer = self.api.call(method, f"{self.lbaas}/{path}", json=body)
        item: dict[str, Any] = next(iter(answer.values())) if answer else {}
        wait_for(
            lambda: (
                self.lb(f"loadbalancers/{lb_id}")["loadbalancer"]["provisioning_status"] == "ACTIVE"
            )
        )
        return item

    def start_web(self, vm: dict[str, Any]) -> None:
        root = self.www / vm["name"]
        root.mkdir(parents=True, exist_ok=True)
        (root / "index.html").write_text(vm["name"] + "\n")
        self.neutrino(
            "instance",
            "exec",
            vm["name"],
            "--",
            "sh",
            "-c",
            f"busybox httpd -f -p {WEB_PORT} -h {root} >/dev/null 2>&1 & echo $! > {root}/pid",
        )
        wait_for(lambda: (root / "pid").exists())

    def stop_web(self, vm: dict[str, Any]) -> None:
        pid_file = self.www / vm["name"] / "pid"
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()

    def answers(self, netns: str, address: str, count: int, port: int = 80) -> list[str]:
        return [
            self.run(netns, "curl", "-s", "-m", "2", f"http://{address}:{port}/").stdout.strip()
            for _ in range(count)
        ]


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LbCloud]:
    with dataplane_server(databases, tmp_path_factory, "tl", LbCloud, host=LbCloud.host) as server:
        server.www = tmp_path_factory.mktemp("www")
        yield server


@pytest.fixture(scope="module")
def web(cloud: LbCloud) -> dict[str, Any]:
    """A tenant network behind a router with a gateway on ext_net; WEB1, WEB2 and CLIENT on it."""
    routed = cloud.routed_network("web", "10.10.30.0/24", "192.168.60.0/24")
    net = routed["net"]
    # Members accept the load balancer's connections (its address is on their subnet).
    cloud.allow("tcp", WEB_PORT, "192.168.60.0/24")
    vms = {
        name: {**cloud.new_instance(name, net["id"]), "name": name}
        for name in ("WEB1", "WEB2", "CLIENT")
    }
    for name in ("WEB1", "WEB2"):
        cloud.start_web(vms[name])
        assert eventually(
            lambda vm=vms[name]: (
                cloud.answers(vms["CLIENT"]["netns"], vm["ip"], 1, WEB_PORT) == [vm["name"]]
            )
        )
    return {**routed, **vms}


@pytest.fixture(scope="module")
def balancer(cloud: LbCloud, web: dict[str, Any]) -> dict[str, Any]:
    """S6's load balancer, made with the unchanged openstack CLI (each step --wait: ACTIVE)."""
    lb = cloud.cli(
        "loadbalancer",
        "create",
        "--name",
        "s6-lb",
        "--vip-subnet-id",
        web["subnet"]["id"],
        "--wait",
    )
    listener = cloud.cli(
        "loadbalancer",
        "listener",
        "create",
        "--name",
        "s6-http",
        "--protocol",
        "HTTP",
        "--protocol-port",
        "80",
        "--wait",
        lb["id"],
    )
    pool = cloud.cli(
        "loadbalancer",
        "pool",
        "create",
        "--name",
        "web servers",
        "--lb-algorithm",
        "ROUND_ROBIN",
        "--listener",
        listener["id"],
        "--protocol",
        "HTTP",
        "--wait",
    )
    members = {
        name: cloud.cli(
            "loadbalancer",
            "member",
            "create",
            "--name",
            name,
            "--subnet-id",
            web["subnet"]["id"],
            "--address",
            web[name]["ip"],
            "--protocol-port",
            str(WEB_PORT),
            "--wait",
            pool["id"],
        )
        for name in ("WEB1", "WEB2")
    }
    monitor = cloud.cli(
        "loadbalancer",
        "healthmonitor",
        "create",
        "--name",
        "s6-check",
        "--delay",
        "1",
        "--timeout",
        "1",
        "--max-retries",
        "1",
        "--max-retries-down",
        "2",
        "--type",
        "HTTP",
        "--url-path",
        "/",
        "--wait",
        pool["id"],
    )
    return {
        "lb": cloud.cli("loadbalancer", "show", lb["id"]),
        "listener": listener,
        "pool": pool,
        "members": members,
        "monitor": monitor,
    }


def test_s6_round_robin_from_inside(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any]
) -> None:
    lb = balancer["lb"]
    assert lb["provisioning_status"] == "ACTIVE"
    port = cloud.get(f"ports/{lb['vip_port_id']}")["port"]
    assert (port["device_owner"], port["device_id"], port["status"]) == (
        "Octavia",
        lb["id"],
        "ACTIVE",
    )
    vip = lb["vip_address"]
    answers = cloud.answers(web["CLIENT"]["netns"], vip, 6)
    assert set(answers) == {"WEB1", "WEB2"} and all(a != b for a, b in itertools.pairwise(answers))
    assert eventually(
        lambda: (
            {
                m["operating_status"]
                for m in cloud.lb(f"pools/{balancer['pool']['id']}/members")["members"]
            }
            == {"ONLINE"}
        )
    )
    assert cloud.lb(f"loadbalancers/{lb['id']}")["loadbalancer"]["operating_status"] == "ONLINE"
    netns = f"{cloud.prefix}{cloud.host}-qlbaas-{lb['id']}"
    assert f"{vip}/24" in cloud.run(netns, "ip", "-4", "addr").stdout


@pytest.fixture(scope="module")
def vip_fip(cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any]) -> str:
    """A floating IP of S6's VIP: its address."""
    fip = cloud.create(
        "floatingips",
        "floatingip",
        floating_network_id=web["ext"]["id"],
        port_id=balancer["lb"]["vip_port_id"],
    )
    return str(fip["floating_ip_address"])


def test_s6_floating_ip_from_outside(cloud: LbCloud, vip_fip: str) -> None:
    address = vip_fip
    assert eventually(lambda: cloud.answers(cloud.outside, address, 1) != [""])
    answers = cloud.answers(cloud.outside, address, 6)
    assert set(answers) == {"WEB1", "WEB2"} and all(a != b for a, b in itertools.pairwise(answers))


def test_s6_statistics_count_the_requests(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any]
) -> None:
    lb, listener = balancer["lb"], balancer["listener"]
    before = cloud.lb(f"loadbalancers/{lb['id']}/stats")["stats"]
    assert set(cloud.answers(web["CLIENT"]["netns"], lb["vip_address"], 5)) == {"WEB1", "WEB2"}
    # haproxy counted five more connections, each a request in and an answer out; the agent
    # reports its counters with its next sync.
    grown = {
        "total_connections": 5,
        "bytes_in": 5 * len("GET / HTTP/1.1\r\n"),
        "bytes_out": 5 * len("WEB1\n"),
    }

    def counted(now: dict[str, int]) -> bool:
        return all(now[key] - before[key] >= least for key, least in grown.items())

    assert eventually(
        lambda: counted(cloud.lb(f"loadbalancers/{lb['id']}/stats")["stats"]), seconds=10
    )
    assert counted(cloud.cli("loadbalancer", "stats", "show", lb["id"]))
    assert (
        cloud.cli("loadbalancer", "listener", "stats", "show", listener["id"])["total_connections"]
        >= 5
    )


def test_inspect_shows_haproxy_and_what_it_sees(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any]
) -> None:
    lb, members = balancer["lb"], balancer["members"]
    seen = json.loads(cloud.neutrino("inspect", "loadbalancer", "s6-lb", "-f", "json").stdout)
    assert seen["namespace"] == f"{cloud.prefix}{cloud.host}-qlbaas-{lb['id']}"
    assert seen["vip_interface"]["addresses"] == [f"{lb['vip_address']}/24"]
    assert f"{lb['vip_address']}:80" in seen["listening"]
    process = seen["haproxy"]
    assert process["workers"] and f"bind {lb['vip_address']}:80" in process["config"]
    assert seen["frontends"] == [
        {
            "listener_id": balancer["listener"]["id"],
            "state": "OPEN",
            "open_connections": 0,
            "connections": seen["frontends"][0]["connections"],
        }
    ]
    assert {(s["member_id"], s["address"], s["state"]) for s in seen["servers"]} == {
        (members[name]["id"], f"{web[name]['ip']}:{WEB_PORT}", "UP") for name in ("WEB1", "WEB2")
    }
    assert cloud.neutrino("inspect", "loadbalancer", "no-such-lb", check=False).returncode == 1


def test_s6_health_monitor_takes_a_member_out_and_back(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any], vip_fip: str
) -> None:
    vip, client = balancer["lb"]["vip_address"], web["CLIENT"]["netns"]
    member = balancer["members"]["WEB1"]
    cloud.stop_web(web["WEB1"])
    stopped = time.monotonic()
    # delay 1 s x max_retries_down 2: haproxy takes it out; the API says so at the agent's
    # next report.
    assert eventually(lambda: cloud.answers(client, vip, 4) == ["WEB2"] * 4, seconds=5)
    assert time.monotonic() - stopped < 5
    assert eventually(
        lambda: (
            cloud.lb(f"pools/{balancer['pool']['id']}/members/{member['id']}")["member"][
                "operating_status"
            ]
            == "ERROR"
        ),
        seconds=5,
    )
    assert cloud.lb(f"pools/{balancer['pool']['id']}")["pool"]["operating_status"] == "DEGRADED"
    assert (
        cloud.lb(f"loadbalancers/{balancer['lb']['id']}")["loadbalancer"]["operating_status"]
        == "DEGRADED"
    )
    # A configuration change reloads haproxy, whose new workers have not checked WEB1 yet: it
    # is not reported ONLINE meanwhile, nor sent a request.
    cloud.lb_change(
        "PUT",
        f"healthmonitors/{balancer['monitor']['id']}",
        balancer["lb"]["id"],
        {"healthmonitor": {"max_retries_down": 3}},
    )
    assert cloud.answers(client, vip, 4) == ["WEB2"] * 4
    assert (
        cloud.lb(f"pools/{balancer['pool']['id']}/members/{member['id']}")["member"][
            "operating_status"
        ]
        == "ERROR"
    )
    # Both down: haproxy answers 503, and the outside probe says why.
    cloud.stop_web(web["WEB2"])
    assert eventually(
        lambda: cloud.lb(f"pools/{balancer['pool']['id']}")["pool"]["operating_status"] == "ERROR",
        seconds=5,
    )
    said = cloud.neutrino("probe", vip_fip, "--http", "/", "-f", "json")
    found = json.loads(said.stdout)
    assert (found["reachable"], found["http_status"]) == (True, 503)
    members = ", ".join(f"{n} {web[n]['ip']}:{WEB_PORT} ERROR" for n in ("WEB1", "WEB2"))
    assert found["why"] == f"no member of pool web servers is healthy to send it to ({members})"
    cloud.start_web(web["WEB2"])
    cloud.start_web(web["WEB1"])
    assert eventually(lambda: "WEB1" in cloud.answers(client, vip, 2), seconds=5)
    assert eventually(
        lambda: (
            cloud.lb(f"pools/{balancer['pool']['id']}/members/{member['id']}")["member"][
                "operating_status"
            ]
            == "ONLINE"
        ),
        seconds=5,
    )
    assert eventually(
        lambda: cloud.lb(f"pools/{balancer['pool']['id']}")["pool"]["operating_status"] == "ONLINE",
        seconds=5,
    )


def test_a_member_is_online_only_once_checked(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any]
) -> None:
    """haproxy takes a server it has not checked yet for up; the API waits for the check. CLIENT's
    group drops the load balancer's connections to port 9 unanswered: the first check runs for
    its whole timeout, and the member stays OFFLINE meanwhile."""
    lb_id = balancer["lb"]["id"]
    listener = cloud.lb_change(
        "POST",
        "listeners",
        lb_id,
        {"listener": {"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 82}},
    )
    pool = cloud.lb_change(
        "POST",
        "pools",
        lb_id,
        {"pool": {"listener_id": listener["id"], "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}},
    )
    try:
        cloud.lb_change(
            "POST",
            "healthmonitors",
            lb_id,
            {
                "healthmonitor": {
                    "pool_id": pool["id"],
                    "type": "TCP",
                    "delay": 30,
                    "timeout": 20,
                    "max_retries": 1,
                }
            },
        )
        member = cloud.lb_change(
            "POST",
            f"pools/{pool['id']}/members",
            lb_id,
            {"member": {"address": web["CLIENT"]["ip"], "protocol_port": 9}},
        )
        path = f"pools/{pool['id']}/members/{member['id']}"
        seen = set()
        deadline = time.monotonic() + 3  # three of the agent's health reports
        while time.monotonic() < deadline:
            seen.add(cloud.lb(path)["member"]["operating_status"])
            time.sleep(0.2)
        assert seen == {"OFFLINE"}
    finally:  # the pool takes its monitor and member with it
        for gone in (f"pools/{pool['id']}", f"listeners/{listener['id']}"):
            cloud.api.call("DELETE", f"{cloud.lbaas}/{gone}")
            wait_for(
                lambda: (
                    cloud.lb(f"loadbalancers/{lb_id}")["loadbalancer"]["provisioning_status"]
                    == "ACTIVE"
                )
            )


def test_weights_persistence_least_connections_and_reload_keeps_connections(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any]
) -> None:
    lb, pool, members = balancer["lb"], balancer["pool"], balancer["members"]
    vip, client = lb["vip_address"], web["CLIENT"]["netns"]
    cloud.cli(
        "loadbalancer",
        "member",
        "set",
        "--weight",
        "3",
        "--wait",
        pool["id"],
        members["WEB1"]["id"],
        output=False,
    )
    assert Counter(cloud.answers(client, vip, 8)) == {"WEB1": 6, "WEB2": 2}
    # Source IP persistence: one client address, one server.
    cloud.lb_change(
        "PUT",
        f"pools/{pool['id']}",
        lb["id"],
        {"pool": {"session_persistence": {"type": "SOURCE_IP"}}},
    )
    assert len(set(cloud.answers(client, vip, 6))) == 1
    cloud.lb_change("PUT", f"pools/{pool['id']}", lb["id"], {"pool": {"session_persistence": None}})

    # A TCP listener with least connections: while one connection is held open, new ones go
    # elsewhere.
    listener = cloud.lb_change(
        "POST",
        "listeners",
        lb["id"],
        {"listener": {"loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 81}},
    )
    tcp_pool = cloud.lb_change(
        "POST",
        "pools",
        lb["id"],
        {
            "pool": {
                "listener_id": listener["id"],
                "protocol": "TCP",
                "lb_algorithm": "LEAST_CONNECTIONS",
            }
        },
    )
    for name in ("WEB1", "WEB2"):
        cloud.lb_change(
            "POST",
            f"pools/{tcp_pool['id']}/members",
            lb["id"],
            {"member": {"address": web[name]["ip"], "protocol_port": WEB_PORT}},
        )
    go = cloud.www / "go"
    holder = cloud.background(client, HOLD, vip, "81", str(go))
    assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
    time.sleep(0.2)
    busy = set()
    for _ in range(6):
        busy |= set(cloud.answers(client, vip, 1, port=81))
    assert len(busy) == 1, busy  # every new connection to the server not holding one

    # A configuration change reloads haproxy; the held connection survives it.
    cloud.lb_change(
        "PUT", f"listeners/{listener['id']}", lb["id"], {"listener": {"connection_limit": 500}}
    )
    go.touch()
    assert holder.stdout.readline().strip() in ("WEB1", "WEB2")


def test_l7_policies_route_reject_and_redirect(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any]
) -> None:
    lb, listener = balancer["lb"], balancer["listener"]
    vip, client = lb["vip_address"], web["CLIENT"]["netns"]
    for name in ("WEB1", "WEB2"):
        (cloud.www / name / "images").mkdir(exist_ok=True)
        (cloud.www / name / "images" / "index.html").write_text(f"{name} images\n")

    def ask(path: str, *curl: str) -> str:
        return cloud.run(
            client, "curl", "-s", "-m", "2", *curl, f"http://{vip}{path}"
        ).stdout.strip()

    # /images/ goes to a pool of WEB2 alone (made with the openstack CLI); the rest stays
    # round robin.
    images = cloud.lb_change(
        "POST",
        "pools",
        lb["id"],
        {
            "pool": {
                "loadbalancer_id": lb["id"],
                "name": "images",
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
            }
        },
    )
    cloud.lb_change(
        "POST",
        f"pools/{images['id']}/members",
        lb["id"],
        {"member": {"address": web["WEB2"]["ip"], "protocol_port": WEB_PORT}},
    )
    to_images = cloud.cli(
        "loadbalancer",
        "l7policy",
        "create",
        "--name",
        "images",
        "--action",
        "REDIRECT_TO_POOL",
        "--redirect-pool",
        images["id"],
        "--wait",
        listener["id"],
    )
    cloud.cli(
        "loadbalancer",
        "l7rule",
        "create",
        "--type",
        "PATH",
        "--compare-type",
        "STARTS_WITH",
        "--value",
        "/images",
        "--wait",
        to_images["id"],
    )
    assert {ask("/images/") for _ in range(6)} == {"WEB2 images"}
    assert {ask("/") for _ in range(8)} == {"WEB1", "WEB2"}

    # A REJECT on a header answers 403, before any pool policy; a host name gets a prefix redirect.
    reject = cloud.lb_change(
        "POST",
        "l7policies",
        lb["id"],
        {"l7policy": {"listener_id": listener["id"], "action": "REJECT", "position": 2}},
    )
    cloud.lb_change(
        "POST",
        f"l7policies/{reject['id']}/rules",
        lb["id"],
        {"rule": {"type": "HEADER", "key": "X-Block", "compare_type": "EQUAL_TO", "value": "yes"}},
    )
    moved = cloud.lb_change(
        "POST",
        "l7policies",
        lb["id"],
        {
            "l7policy": {
                "listener_id": listener["id"],
                "action": "REDIRECT_PREFIX",
                "redirect_prefix": "https://new.example",
                "redirect_http_code": 301,
            }
        },
    )
    cloud.lb_change(
        "POST",
        f"l7policies/{moved['id']}/rules",
        lb["id"],
        {"rule": {"type": "HOST_NAME", "compare_type": "ENDS_WITH", "value": "old.example"}},
    )
    status = ("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}")
    assert ask("/images/", *status, "-H", "X-Block: yes") == "403"
    assert ask("/images/", *status) == "200"
    assert (
        ask("/a/page", *status, "-H", "Host: www.OLD.example") == "301 https://new.example/a/page"
    )
    assert ask("/", *status, "-H", "Host: www.new.example") == "200"
    # An inverted rule turns the policy around: everything but the header is rejected.
    rule = cloud.lb(f"l7policies/{reject['id']}/rules")["rules"][0]
    cloud.lb_change(
        "PUT", f"l7policies/{reject['id']}/rules/{rule['id']}", lb["id"], {"rule": {"invert": True}}
    )
    assert (ask("/", *status), ask("/", *status, "-H", "X-Block: yes")) == ("403", "200")


def test_terminated_https_serves_certificates_from_the_key_manager(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any]
) -> None:
    """A TERMINATED_HTTPS listener whose default and SNI certificates the user stored in the key
    manager: each name gets its certificate, the requests reach the members in plain HTTP."""
    ca = issue("S6 CA", ca=True)
    keys = cloud.api.endpoint("key-manager") + "/v1"

    def store(pem: str) -> str:
        body = {"payload": pem, "payload_content_type": "text/plain"}
        return str(cloud.api.call("POST", f"{keys}/secrets", json=body)["secret_ref"])

    def certificate(name: str) -> str:
        issued = issue(name, ca)
        parts = {"certificate": issued.certificate, "private_key": issued.private_key}
        refs = [{"name": k, "secret_ref": store(pem)} for k, pem in parts.items()]
        body = {"type": "certificate", "secret_refs": refs}
        return str(cloud.api.call("POST", f"{keys}/containers", json=body)["container_ref"])

    lb, vip, client = balancer["lb"], balancer["lb"]["vip_address"], web["CLIENT"]["netns"]
    listener = cloud.lb_change(
        "POST",
        "listeners",
        lb["id"],
        {
            "listener": {
                "loadbalancer_id": lb["id"],
                "protocol": "TERMINATED_HTTPS",
                "protocol_port": 443,
                "default_pool_id": balancer["pool"]["id"],
                "default_tls_container_ref": certificate("www.example.com"),
                "sni_container_refs": [certificate("shop.example.com")],
            }
        },
    )
    (cloud.www / "ca.pem").write_text(ca.certificate)

    def ask(name: str) -> subprocess.CompletedProcess[str]:
        return cloud.run(
            *(client, "curl", "-sv", "-m", "2", "--cacert", str(cloud.www / "ca.pem")),
            *("--resolve", f"{name}:443:{vip}", f"https://{name}/"),
        )

    try:
        for name in ("www.example.com", "shop.example.com"):
            answer = ask(name)
            assert answer.stdout.strip() in ("WEB1", "WEB2"), answer.stderr
            assert f"subject: CN={name}" in answer.stderr
    finally:
        cloud.api.call("DELETE", f"{cloud.lbaas}/listeners/{listener['id']}")
        wait_for(
            lambda: (
                cloud.lb(f"loadbalancers/{lb['id']}")["loadbalancer"]["provisioning_status"]
                == "ACTIVE"
            )
        )


def test_fully_populated_create_serves_at_once(cloud: LbCloud, web: dict[str, Any]) -> None:
    client, vip = web["CLIENT"]["netns"], "192.168.60.250"
    members = [{"address": web[name]["ip"], "protocol_port": WEB_PORT} for name in ("WEB1", "WEB2")]
    # The client asks for the VIP before it exists, and would not ask again for ten seconds:
    # only the VIP's gratuitous ARP lets it in sooner.
    cloud.run(client, "sysctl", "-qw", "net.ipv4.neigh.eth0.retrans_time_ms=10000")
    try:
        cloud.run(client, "curl", "-s", "-m", "0.2", f"http://{vip}/")
        started = time.monotonic()
        lb = cloud.api.call(
            "POST",
            f"{cloud.lbaas}/loadbalancers",
            json={
                "loadbalancer": {
                    "name": "one-step",
                    "vip_subnet_id": web["subnet"]["id"],
                    "vip_address": vip,
                    "listeners": [
                        {
                            "protocol": "HTTP",
                            "protocol_port": 80,
                            "default_pool": {
                                "protocol": "HTTP",
                                "lb_algorithm": "ROUND_ROBIN",
                                "members": members,
                            },
                        }
                    ],
                }
            },
        )["loadbalancer"]
        assert eventually(lambda: cloud.answers(client, vip, 1) != [""], seconds=5)
        assert time.monotonic() - started < 5
    finally:
        cloud.run(client, "sysctl", "-qw", "net.ipv4.neigh.eth0.retrans_time_ms=1000")
    assert set(cloud.answers(client, vip, 4)) == {"WEB1", "WEB2"}
    wait_for(
        lambda: (
            cloud.lb(f"loadbalancers/{lb['id']}")["loadbalancer"]["provisioning_status"] == "ACTIVE"
        )
    )
    cloud.api.call("DELETE", f"{cloud.lbaas}/loadbalancers/{lb['id']}?cascade=true")


# Asks VIP:port again and again (a new connection each time) until the file argv[3] exists;
# prints each answer's time and body ("" when refused or cut).
ASK_ALWAYS = (
    "import os,socket,sys,time\n"
    "while not os.path.exists(sys.argv[3]):\n"
    "    answer=b''\n"
    "    try:\n"
    "        s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=1)\n"
    "        s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
    "        while (chunk:=s.recv(4096)): answer+=chunk\n"
    "        s.close()\n"
    "    except OSError: pass\n"
    "    print(time.monotonic(),(answer.decode().split() or [''])[-1],flush=True)\n"
    "    time.sleep(0.01)\n"
)


def test_failover_restarts_haproxy_and_the_vip_serves_on(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any], tmp_path: Path
) -> None:
    """A failover (openstack loadbalancer failover) replaces the amphora and the haproxy: a
    client asking all along is served before and after, with at most a brief gap."""
    lb = balancer["lb"]
    netns = f"{cloud.prefix}{cloud.host}-qlbaas-{lb['id']}"
    (amphora,) = cloud.cli("loadbalancer", "amphora", "list", "--loadbalancer", lb["id"])
    assert (amphora["status"], amphora["role"]) == ("ALLOCATED", "STANDALONE")
    shown = cloud.cli("loadbalancer", "amphora", "show", amphora["id"])
    assert (shown["ha_ip"], shown["ha_port_id"]) == (lb["vip_address"], lb["vip_port_id"])
    before = haproxy.running_in(netns)
    assert before is not None and f"node {amphora['id']}" in before["config"]
    # What the load balancer answers now (its members, or what earlier tests' L7 policies say).
    served = set(cloud.answers(web["CLIENT"]["netns"], lb["vip_address"], 4))
    assert "" not in served
    stop = tmp_path / "stop"
    asking = cloud.background(
        web["CLIENT"]["netns"], ASK_ALWAYS, lb["vip_address"], "80", str(stop)
    )
    time.sleep(0.5)
    started = time.monotonic()
    cloud.cli("loadbalancer", "failover", "--wait", lb["id"], output=False)
    active = time.monotonic()
    # Served again as soon as the load balancer is ACTIVE.
    assert set(cloud.answers(web["CLIENT"]["netns"], lb["vip_address"], 4)) == served
    time.sleep(0.5)
    stop.touch()
    out, _ = asking.communicate(timeout=10)
    answers = [
        (float(t), body) for t, _, body in (line.partition(" ") for line in out.splitlines())
    ]
    asked_before = {body for t, body in answers if t < started}
    assert "" not in asked_before and {body for t, body in answers if t > active} == asked_before
    missed = [t for t, body in answers if not body]
    assert not missed or max(missed) - min(missed) < 1.0, missed
    after = haproxy.running_in(netns)
    (new,) = cloud.cli("loadbalancer", "amphora", "list", "--loadbalancer", lb["id"])
    assert new["id"] != amphora["id"] and new["status"] == "ALLOCATED"
    assert after is not None and after["pid"] != before["pid"]
    assert f"node {new['id']}" in after["config"] and Path(after["stats_socket"]).exists()
    # The amphora's own failover does the same.
    cloud.cli("loadbalancer", "amphora", "failover", "--wait", new["id"], output=False)
    (newer,) = cloud.cli("loadbalancer", "amphora", "list", "--loadbalancer", lb["id"])
    assert newer["id"] not in (amphora["id"], new["id"])
    assert set(cloud.answers(web["CLIENT"]["netns"], lb["vip_address"], 4)) == served


def test_ipv6_vip_serves_once_active(cloud: LbCloud, web: dict[str, Any]) -> None:
    """An IPv6 VIP answers as soon as its load balancer is ACTIVE (no duplicate address
    detection keeps it tentative)."""
    subnet = cloud.create(
        "subnets",
        "subnet",
        network_id=web["net"]["id"],
        ip_version=6,
        cidr="fd00:60::/64",
        name="web-v6",
    )
    cloud.allow("tcp", WEB_PORT, "fd00:60::/64")
    # The instances take an address of the subnet each (the port's, added by hand).
    v6 = {"CLIENT": "fd00:60::10", "WEB1": "fd00:60::11", "WEB2": "fd00:60::12"}
    for name, address in v6.items():
        port = cloud.get(f"ports?device_id={web[name]['id']}")["ports"][0]
        fixed = [*port["fixed_ips"], {"subnet_id": subnet["id"], "ip_address": address}]
        cloud.put(f"ports/{port['id']}", {"port": {"fixed_ips": fixed}})
        cloud.run(web[name]["netns"], "ip", "addr", "add", f"{address}/64", "dev", "eth0", "nodad")
    client = web["CLIENT"]
    members = [{"address": v6[name], "protocol_port": WEB_PORT} for name in ("WEB1", "WEB2")]
    lb = cloud.api.call(
        "POST",
        f"{cloud.lbaas}/loadbalancers",
        json={
            "loadbalancer": {
                "name": "v6",
                "vip_subnet_id": subnet["id"],
                "listeners": [
                    {
                        "protocol": "HTTP",
                        "protocol_port": 80,
                        "default_pool": {
                            "protocol": "HTTP",
                            "lb_algorithm": "ROUND_ROBIN",
                            "members": members,
                        },
                    }
                ],
            }
        },
    )["loadbalancer"]
    wait_for(
        lambda: (
            cloud.lb(f"loadbalancers/{lb['id']}")["loadbalancer"]["provisioning_status"]
            in ("ACTIVE", "ERROR")
        )
    )
    assert cloud.lb(f"loadbalancers/{lb['id']}")["loadbalancer"]["provisioning_status"] == "ACTIVE"
    assert set(cloud.answers(client["netns"], f"[{lb['vip_address']}]", 4)) == {"WEB1", "WEB2"}
    netns = f"{cloud.prefix}{cloud.host}-qlbaas-{lb['id']}"
    assert lb["vip_address"] not in cloud.run(netns, "ip", "-6", "addr", "show", "tentative").stdout
    cloud.api.call("DELETE", f"{cloud.lbaas}/loadbalancers/{lb['id']}?cascade=true")


# Answers every request with the X-Forwarded-* headers it got ("-" for each one missing).
FORWARDED_ECHO = (
    "import http.server,sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        names=('X-Forwarded-For','X-Forwarded-Port','X-Forwarded-Proto')\n"
    "        body=' '.join(self.headers.get(n,'-') for n in names).encode()\n"
    "        self.send_response(200);self.send_header('Content-Length',str(len(body)))\n"
    "        self.end_headers();self.wfile.write(body)\n"
    "http.server.HTTPServer(('',int(sys.argv[1])),H).serve_forever()\n"
)


def listener_with_pool(
    cloud: LbCloud, lb_id: str, port: int, members: list[dict[str, Any]], **options: Any
) -> dict[str, Any]:
    """A listener on `port` of load balancer `lb_id` with a default pool of `members`."""
    body = {"loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": port, **options}
    listener = cloud.lb_change("POST", "listeners", lb_id, {"listener": body})
    pool = {"listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    pool = cloud.lb_change("POST", "pools", lb_id, {"pool": pool})
    cloud.lb_change("PUT", f"pools/{pool['id']}/members", lb_id, {"members": members})
    return listener


@pytest.fixture(scope="module")
def echo(cloud: LbCloud, web: dict[str, Any]) -> dict[str, Any]:
    """WEB1 runs FORWARDED_ECHO: the member that answers it."""
    echo_port = WEB_PORT + 1
    cloud.allow("tcp", echo_port, "192.168.60.0/24")
    cloud.background(web["WEB1"]["netns"], FORWARDED_ECHO, str(echo_port))
    return {"address": web["WEB1"]["ip"], "protocol_port": echo_port}


def test_inserted_headers_reach_the_member(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any], echo: dict[str, Any]
) -> None:
    lb, client = balancer["lb"], web["CLIENT"]
    headers = {"X-Forwarded-For": "true", "X-Forwarded-Port": "true", "X-Forwarded-Proto": "true"}
    listener = listener_with_pool(cloud, lb["id"], 8081, [echo], insert_headers=headers)
    expected = f"{client['ip']} 8081 http"
    assert eventually(
        lambda: cloud.answers(client["netns"], lb["vip_address"], 1, 8081) == [expected]
    )
    # Without them, the member sees none.
    cloud.lb_change(
        "PUT", f"listeners/{listener['id']}", lb["id"], {"listener": {"insert_headers": {}}}
    )
    assert cloud.answers(client["netns"], lb["vip_address"], 1, 8081) == ["- - -"]


def test_a_pool_reached_by_an_l7_redirect_gets_its_listeners_headers(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any], echo: dict[str, Any]
) -> None:
    """The echo pool is the default pool of a listener without headers and the redirect pool
    of one that inserts X-Forwarded-For: its member sees the header from the second alone."""
    lb, client = balancer["lb"], web["CLIENT"]
    plain = listener_with_pool(cloud, lb["id"], 8085, [echo])
    echo_pool = cloud.lb(f"listeners/{plain['id']}")["listener"]["default_pool_id"]
    members = [{"address": web[name]["ip"], "protocol_port": WEB_PORT} for name in ("WEB1", "WEB2")]
    listener = listener_with_pool(
        cloud, lb["id"], 8083, members, insert_headers={"X-Forwarded-For": "true"}
    )
    policy = {"listener_id": listener["id"], "action": "REDIRECT_TO_POOL"}
    policy = cloud.lb_change(
        "POST", "l7policies", lb["id"], {"l7policy": {**policy, "redirect_pool_id": echo_pool}}
    )
    rule = {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/echo"}
    cloud.lb_change("POST", f"l7policies/{policy['id']}/rules", lb["id"], {"rule": rule})

    def ask(port: int, path: str) -> str:
        url = f"http://{lb['vip_address']}:{port}{path}"
        return cloud.run(client["netns"], "curl", "-s", "-m", "2", url).stdout.strip()

    assert eventually(lambda: ask(8083, "/echo") == f"{client['ip']} - -")
    assert ask(8083, "/") in ("WEB1", "WEB2")
    assert ask(8085, "/echo") == "- - -"


def test_a_listener_at_its_connection_limit_is_degraded_until_one_closes(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any]
) -> None:
    lb, client = balancer["lb"], web["CLIENT"]
    members = [{"address": web["WEB1"]["ip"], "protocol_port": WEB_PORT}]
    listener = listener_with_pool(cloud, lb["id"], 8084, members, connection_limit=1)

    def statuses() -> tuple[str, str]:
        tree = cloud.lb(f"loadbalancers/{lb['id']}/status")["statuses"]["loadbalancer"]
        [mine] = [li for li in tree["listeners"] if li["id"] == listener["id"]]
        return tree["operating_status"], mine["operating_status"]

    assert eventually(lambda: statuses() == ("ONLINE", "ONLINE"))
    # One connection that has not asked yet holds the listener's only place.
    go = cloud.www / "go-8084"
    held = cloud.background(client["netns"], HOLD, lb["vip_address"], "8084", str(go))
    assert held.stdout is not None and held.stdout.readline().strip() == "open"
    assert eventually(lambda: statuses() == ("DEGRADED", "DEGRADED"))
    go.touch()
    assert held.stdout.readline().strip() == "WEB1"
    assert eventually(lambda: statuses() == ("ONLINE", "ONLINE"))


def test_allowed_cidrs_refuse_other_clients(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any]
) -> None:
    lb, client, other = balancer["lb"], web["CLIENT"], web["WEB2"]
    members = [{"address": web[name]["ip"], "protocol_port": WEB_PORT} for name in ("WEB1", "WEB2")]
    listener = listener_with_pool(
        cloud, lb["id"], 8082, members, allowed_cidrs=[f"{client['ip']}/32"]
    )

    def served(vm: dict[str, Any]) -> bool:
        return cloud.answers(vm["netns"], lb["vip_address"], 1, 8082)[0] in ("WEB1", "WEB2")

    assert eventually(lambda: served(client))
    assert not served(other)
    cloud.lb_change(
        "PUT",
        f"listeners/{listener['id']}",
        lb["id"],
        {"listener": {"allowed_cidrs": [f"{client['ip']}/32", f"{other['ip']}/32"]}},
    )
    assert served(other) and served(client)
    cloud.lb_change(
        "PUT", f"listeners/{listener['id']}", lb["id"], {"listener": {"allowed_cidrs": None}}
    )
    assert served(other)


def test_prometheus_listener_serves_haproxys_metrics_on_the_vip(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any]
) -> None:
    lb, client = balancer["lb"], web["CLIENT"]
    body = {"loadbalancer_id": lb["id"], "protocol": "PROMETHEUS", "protocol_port": 9100}
    listener = cloud.lb_change("POST", "listeners", lb["id"], {"listener": body})

    def scrape() -> str:
        url = f"http://{lb['vip_address']}:9100/metrics"
        return cloud.run(client["netns"], "curl", "-s", "-m", "2", url).stdout

    # haproxy's own exporter, on the load balancer's frontends (the listeners, by id): the
    # scrape is the metrics listener's one session.
    assert eventually(
        lambda: f'haproxy_frontend_current_sessions{{proxy="{listener["id"]}"}} 1' in scrape()
    )
    web_listener = balancer["listener"]["id"]
    assert f'haproxy_frontend_status{{proxy="{web_listener}",state="UP"}} 1' in scrape()


def test_udp_listener_statistics_count_the_datagrams(
    cloud: LbCloud, web: dict[str, Any], balancer: dict[str, Any]
) -> None:
    lb, client, member = balancer["lb"], web["CLIENT"], web["WEB1"]
    port = WEB_PORT + 3
    cloud.allow("udp", port, "192.168.60.0/24")
    cloud.background(member["netns"], SERVER, str(port), "WEB1")
    body = {"loadbalancer_id": lb["id"], "protocol": "UDP", "protocol_port": 53}
    listener = cloud.lb_change("POST", "listeners", lb["id"], {"listener": body})
    pool = {"listener_id": listener["id"], "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN"}
    pool = cloud.lb_change("POST", "pools", lb["id"], {"pool": pool})
    members = {"members": [{"address": member["ip"], "protocol_port": port}]}
    cloud.lb_change("PUT", f"pools/{pool['id']}/members", lb["id"], members)
    before = cloud.lb(f"loadbalancers/{lb['id']}/stats")["stats"]
    asked = cloud.run(client["netns"], sys.executable, "-c", ASK, lb["vip_address"], "53", "5", "0")
    assert asked.stdout.split() == ["WEB1"] * 5, asked
    # five flows, each a question in (20 bytes of IP, 8 of UDP, "?") and "WEB1" out, which
    # conntrack still holds; the agent reports them with its next sync
    counted = {
        "active_connections": 5,
        "total_connections": 5,
        "bytes_in": 5 * 29,
        "bytes_out": 5 * 32,
        "request_errors": 0,
    }
    assert eventually(
        lambda: cloud.lb(f"listeners/{listener['id']}/stats")["stats"] == counted, seconds=10
    )
    after = cloud.lb(f"loadbalancers/{lb['id']}/stats")["stats"]
    assert all(after[name] - before[name] >= counted[name] for name in counted), (before, after)
    (amphora,) = cloud.cli("loadbalancer", "amphora", "list", "--loadbalancer", lb["id"])
    shown = cloud.api.call(
        "GET", cloud.api.endpoint("load-balancer") + f"/v2/octavia/amphorae/{amphora['id']}/stats"
    )["amphora_stats"]
    [udp] = [entry for entry in shown if entry["listener_id"] == listener["id"]]
    assert {name: udp[name] for name in counted} == counted
    # inspect shows the table that counts them
    seen = json.loads(cloud.neutrino("inspect", "loadbalancer", "s6-lb", "-f", "json").stdout)
    assert f"counter in-{listener['id']} {{" in seen["udp_sctp_counting"], seen


def test_cascade_delete_removes_namespace_and_haproxy(
    cloud: LbCloud, balancer: dict[str, Any]
) -> None:
    lb = balancer["lb"]
    netns = f"{cloud.prefix}{cloud.host}-qlbaas-{lb['id']}"
    assert netns in ns.list_namespaces()
    cloud.cli("loadbalancer", "delete", "--cascade", "--wait", lb["id"], output=False)
    assert netns not in ns.list_namespaces()
    assert not [p for p in ns.processes_in(netns)]
    assert not (Path(cloud.state_dir) / "agent" / "haproxy" / lb["id"]).exists()
    assert cloud.get(f"ports?device_id={lb['id']}")["ports"] == []
