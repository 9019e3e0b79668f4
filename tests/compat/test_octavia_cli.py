"""The unchanged `openstack loadbalancer` commands (python-octaviaclient) and openstacksdk's
load_balancer proxy against a live neutrino.

The server runs no agent here: `realize` reports the load balancers as
running through the internal API, as the hosting agent would, so that
statuses move on (tests/netns/test_loadbalancer_s6.py does it for real).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from neutrino.client import Cloud, Session
from tests.conftest import CLI_BACKEND, LiveServer

pytestmark = [pytest.mark.compat, CLI_BACKEND]

DEMO = "neutrino-demo"


@pytest.fixture(scope="module")
def admin(live_server: LiveServer) -> Iterator[Session]:
    session = Session(Cloud.load("neutrino-admin", live_server.clouds_yaml))
    yield session
    session.close()


def realize(
    live_server: LiveServer, admin: Session, listeners: dict[str, dict[str, Any]] | None = None
) -> None:
    """Report every load balancer running, with `listeners`' counters as haproxy would show them."""
    snapshot = admin.call("GET", f"{live_server.url}/internal/v1/snapshot")
    report = {
        "revision": snapshot["revision"],
        "loadbalancers": {
            lb["id"]: {"revision": lb["revision"], "members": {}, "listeners": listeners or {}}
            for lb in snapshot["loadbalancers"]
            if lb["provisioning_status"] != "PENDING_DELETE"
        },
    }
    admin.call(
        "POST", f"{live_server.url}/internal/v1/agents/compat/report", content=json.dumps(report)
    )


@pytest.fixture(scope="module")
def subnet(live_server: LiveServer) -> dict[str, Any]:
    live_server.cli("network", "create", "lb-net", cloud=DEMO)
    return live_server.cli(
        "subnet",
        "create",
        "lb-sub",
        "--network",
        "lb-net",
        "--subnet-range",
        "192.168.70.0/24",
        cloud=DEMO,
    )


def test_s6_with_the_loadbalancer_commands(
    live_server: LiveServer, admin: Session, subnet: dict[str, Any]
) -> None:
    def cli(*args: str, output: bool = True) -> Any:
        return live_server.cli("loadbalancer", *args, cloud=DEMO, output=output)

    lb = cli("create", "--name", "s6-lb", "--vip-subnet-id", "lb-sub")
    assert lb["provisioning_status"] == "PENDING_CREATE" and lb["vip_address"].startswith(
        "192.168.70."
    )
    busy = live_server.run_cli(
        "loadbalancer",
        "listener",
        "create",
        "--protocol",
        "HTTP",
        "--protocol-port",
        "80",
        lb["id"],
        cloud=DEMO,
    )
    assert busy.returncode != 0 and "is immutable and cannot be updated" in busy.stderr
    realize(live_server, admin)
    assert cli("show", "s6-lb")["provisioning_status"] == "ACTIVE"
    listener = cli(
        "listener",
        "create",
        "--name",
        "http",
        "--protocol",
        "HTTP",
        "--protocol-port",
        "80",
        "s6-lb",
    )
    realize(live_server, admin)
    bad = live_server.run_cli(
        "loadbalancer",
        "pool",
        "create",
        "--lb-algorithm",
        "RANDOM",
        "--listener",
        "http",
        "--protocol",
        "HTTP",
        cloud=DEMO,
    )
    assert bad.returncode != 0 and "RANDOM" in bad.stderr
    pool = cli(
        "pool",
        "create",
        "--name",
        "web servers",
        "--lb-algorithm",
        "ROUND_ROBIN",
        "--listener",
        "http",
        "--protocol",
        "HTTP",
        "--session-persistence",
        "type=SOURCE_IP",
    )
    realize(live_server, admin)
    for name, address in (("WEB1", "192.168.70.11"), ("WEB2", "192.168.70.12")):
        cli(
            "member",
            "create",
            "--name",
            name,
            "--subnet-id",
            "lb-sub",
            "--address",
            address,
            "--protocol-port",
            "80",
            "--weight",
            "2",
            pool["id"],
        )
        realize(live_server, admin)
    members = cli("member", "list", pool["id"])
    assert sorted(m["name"] for m in members) == ["WEB1", "WEB2"]
    monitor = cli(
        "healthmonitor",
        "create",
        "--delay",
        "5",
        "--timeout",
        "3",
        "--max-retries",
        "2",
        "--type",
        "HTTP",
        "--url-path",
        "/health",
        "--expected-codes",
        "200-204",
        pool["id"],
    )
    realize(live_server, admin)
    assert cli("healthmonitor", "show", monitor["id"])["url_path"] == "/health"
    cli(
        "listener",
        "set",
        "--connection-limit",
        "100",
        "--timeout-client-data",
        "20000",
        listener["id"],
        output=False,
    )
    realize(live_server, admin)
    assert cli("listener", "show", "http")["connection_limit"] == 100
    counted = {
        "worker": "100@1",
        "active_connections": 2,
        "total_connections": 40,
        "bytes_in": 4000,
        "bytes_out": 9000,
        "request_errors": 1,
    }
    realize(live_server, admin, {listener["id"]: counted})
    expected = {k: v for k, v in counted.items() if k != "worker"}
    assert cli("stats", "show", "s6-lb") == expected
    assert cli("listener", "stats", "show", "http") == expected
    reject = cli("l7policy", "create", "--name", "no-admin", "--action", "REJECT", "http")
    realize(live_server, admin)
    rule = cli(
        "l7rule",
        "create",
        "--type",
        "PATH",
        "--compare-type",
        "STARTS_WITH",
        "--value",
        "/admin",
        reject["id"],
    )
    realize(live_server, admin)
    redirect = cli(
        "l7policy",
        "create",
        "--name",
        "old-site",
        "--action",
        "REDIRECT_TO_URL",
        "--redirect-url",
        "https://example.com/",
        "--position",
        "1",
        "http",
    )
    realize(live_server, admin)
    assert [(p["name"], p["position"]) for p in cli("l7policy", "list")] == [
        ("no-admin", 2),
        ("old-site", 1),
    ]
    assert cli("l7rule", "show", reject["id"], rule["id"])["value"] == "/admin"
    assert cli("l7policy", "show", "old-site")["redirect_http_code"] == 302
    cli("l7policy", "delete", redirect["id"], output=False)
    realize(live_server, admin)
    assert cli("l7policy", "show", "no-admin")["position"] == 1
    shown = live_server.run_cli(
        "loadbalancer", "status", "show", "s6-lb", cloud=DEMO
    )  # prints JSON itself
    status = json.loads(shown.stdout)
    assert status["loadbalancer"]["listeners"][0]["pools"][0]["name"] == "web servers"
    assert [row["name"] for row in cli("list")] == ["s6-lb"]
    assert [row["name"] for row in live_server.cli("loadbalancer", "provider", "list")] == [
        "amphora",
        "octavia",
    ]
    port = live_server.cli("port", "show", lb["vip_port_id"], cloud=DEMO)
    assert (port["device_owner"], port["device_id"]) == ("Octavia", lb["id"])

    quota = live_server.cli(
        "loadbalancer", "quota", "set", "--loadbalancer", "5", subnet["project_id"]
    )
    assert quota["load_balancer"] == 5
    assert (
        live_server.cli("loadbalancer", "quota", "show", subnet["project_id"])["load_balancer"] == 5
    )
    live_server.cli("loadbalancer", "quota", "reset", subnet["project_id"], output=False)

    cli("delete", "--cascade", "s6-lb", output=False)
    assert cli("show", lb["id"])["provisioning_status"] == "PENDING_DELETE"
    realize(live_server, admin)
    assert cli("list") == []


def test_sdk_load_balancer_proxy(
    live_server: LiveServer, admin: Session, subnet: dict[str, Any]
) -> None:
    conn = live_server.sdk(DEMO)
    try:
        lbs = conn.load_balancer
        lb = lbs.create_load_balancer(name="sdk-lb", vip_subnet_id=subnet["id"])
        assert lb.provisioning_status == "PENDING_CREATE"
        realize(live_server, admin)
        lb = lbs.wait_for_load_balancer(lb.id, wait=10, interval=0.2)
        assert lb.provisioning_status == "ACTIVE" and lb.vip_subnet_id == subnet["id"]
        listener = lbs.create_listener(load_balancer_id=lb.id, protocol="TCP", protocol_port=22)
        realize(live_server, admin)
        pool = lbs.create_pool(
            listener_id=listener.id, protocol="TCP", lb_algorithm="LEAST_CONNECTIONS"
        )
        realize(live_server, admin)
        member = lbs.create_member(pool, address="192.168.70.20", protocol_port=22)
        realize(live_server, admin)
        assert [m.id for m in lbs.members(pool)] == [member.id]
        assert lbs.get_pool(pool.id).lb_algorithm == "LEAST_CONNECTIONS"
        assert [found.name for found in lbs.load_balancers()] == ["sdk-lb"]
        web = lbs.create_listener(load_balancer_id=lb.id, protocol="HTTP", protocol_port=80)
        realize(live_server, admin)
        policy = lbs.create_l7_policy(listener_id=web.id, action="REJECT")
        realize(live_server, admin)
        rule = lbs.create_l7_rule(
            policy, type="HEADER", key="X-Beta", compare_type="EQUAL_TO", rule_value="1"
        )
        realize(live_server, admin)
        assert [r.id for r in lbs.l7_rules(policy)] == [rule.id] and lbs.get_l7_policy(
            policy.id
        ).position == 1
        realize(
            live_server,
            admin,
            {listener.id: {"worker": "7@1", "total_connections": 3, "bytes_in": 30}},
        )
        assert (
            lbs.get_load_balancer_statistics(lb.id).total_connections,
            lbs.get_listener_statistics(listener.id).bytes_in,
        ) == (3, 30)
        full = lbs.create_load_balancer(
            name="sdk-full",
            vip_subnet_id=subnet["id"],
            listeners=[
                {
                    "protocol": "HTTP",
                    "protocol_port": 8080,
                    "default_pool": {
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [{"address": "192.168.70.30", "protocol_port": 80}],
                    },
                }
            ],
        )
        assert (len(full.listeners), len(full.pools), full.pools[0]["members"][0]["address"]) == (
            1,
            1,
            "192.168.70.30",
        )
        realize(live_server, admin)
        assert lbs.get_listener(full.listeners[0]["id"]).default_pool_id == full.pools[0]["id"]
        for made in (lb, full):
            lbs.delete_load_balancer(made.id, cascade=True)
        realize(live_server, admin)
        assert list(lbs.load_balancers()) == []
    finally:
        conn.close()
