"""The Octavia v2 API in-process, on both databases.

No agent runs here: `realize` plays the agent's part through the real
internal API (read the snapshot, report the load balancers as running), which
is what moves statuses from PENDING_* to ACTIVE.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import httpx
import pytest

from neutrino.config import Settings
from tests.conftest import ADMIN_PASSWORD, Api, ApiClient, dashboard_login

LBAAS = "/load-balancer/v2/lbaas"
FORBIDDEN = "Policy does not allow this request to be performed."


def octavia(client: ApiClient) -> ApiClient:
    return ApiClient(client.http, client.token, client.project_id, client.user_id, prefix=LBAAS)


def expect_fault(response: httpx.Response, status: int, text: str = "") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"faultcode", "faultstring", "debuginfo"} and body["debuginfo"] is None, (
        body
    )
    assert text in body["faultstring"], body
    return body["faultstring"]


def created(response: httpx.Response, member: str) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return response.json()[member]


def realize(
    api: Api,
    members: dict[str, str] | None = None,
    host: str = "lbhost",
    listeners: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Report every load balancer as running its current tree, as the hosting agent would,
    with `members`' health and `listeners`' status and counters as haproxy would show them
    (haproxy's listeners OPEN unless told otherwise; a disabled frontend, of a disabled
    listener or load balancer, is not in haproxy's `show stat`)."""
    snapshot = api.admin.http.get(
        "/internal/v1/snapshot", headers={"X-Auth-Token": api.admin.token}
    ).json()
    report = {
        "revision": snapshot["revision"],
        "loadbalancers": {
            lb["id"]: {
                "revision": lb["revision"],
                "members": members or {},
                "listeners": {
                    listener["id"]: {"status": "OPEN", **(listeners or {}).get(listener["id"], {})}
                    for listener in lb.get("listeners", [])
                    if listener["protocol"] not in ("UDP", "SCTP")
                    and lb["admin_state_up"]
                    and listener["admin_state_up"]
                },
            }
            for lb in snapshot["loadbalancers"]
            if lb["provisioning_status"] != "PENDING_DELETE"
        },
    }
    response = api.admin.http.post(
        f"/internal/v1/agents/{host}/report", json=report, headers={"X-Auth-Token": api.admin.token}
    )
    assert response.status_code == 204, response.text


@pytest.fixture
def subnet(api: Api) -> dict[str, Any]:
    net = api.demo.create("networks", name="lb-net")
    return api.demo.create("subnets", network_id=net["id"], cidr="10.20.0.0/24", ip_version=4)


def make_lb(api: Api, subnet: dict[str, Any], **extra: Any) -> dict[str, Any]:
    lb = created(
        octavia(api.demo).post(
            "/loadbalancers",
            json={"loadbalancer": {"name": "lb1", "vip_subnet_id": subnet["id"], **extra}},
        ),
        "loadbalancer",
    )
    realize(api)
    return lb


def add_listener(client: ApiClient, lb_id: str, **extra: Any) -> dict[str, Any]:
    """An HTTP listener on port 80 of the load balancer (pending until realized)."""
    body = {"loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 80, **extra}
    return created(client.post("/listeners", json={"listener": body}), "listener")


def add_pool(client: ApiClient, listener_id: str, **extra: Any) -> dict[str, Any]:
    """An HTTP round-robin pool of the listener (pending until realized)."""
    body = {"listener_id": listener_id, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", **extra}
    return created(client.post("/pools", json={"pool": body}), "pool")


def add_member(client: ApiClient, pool_id: str, address: str, **extra: Any) -> dict[str, Any]:
    """A member of the pool on port 80 unless `extra` says otherwise (pending until realized)."""
    body = {"address": address, "protocol_port": 80, **extra}
    return created(client.post(f"/pools/{pool_id}/members", json={"member": body}), "member")


def test_versions_and_root(api: Api) -> None:
    versions = api.demo.http.get("/load-balancer/").json()["versions"]
    assert [v["status"] for v in versions][-1] == "CURRENT" and versions[0]["id"] == "v2.0"
    lbs = octavia(api.demo).get("/loadbalancers")
    assert lbs.status_code == 200 and lbs.json() == {"loadbalancers": [], "loadbalancers_links": []}
    assert (
        api.demo.http.get(
            "/load-balancer/v2.0/lbaas/providers", headers={"X-Auth-Token": api.demo.token}
        ).json()["providers"][0]["name"]
        == "amphora"
    )


def test_create_vip_port_and_realization(api: Api, subnet: dict[str, Any]) -> None:
    lb = created(
        octavia(api.demo).post(
            "/loadbalancers",
            json={
                "loadbalancer": {
                    "name": "web",
                    "vip_subnet_id": subnet["id"],
                    "vip_address": "10.20.0.50",
                }
            },
        ),
        "loadbalancer",
    )
    assert (lb["provisioning_status"], lb["operating_status"]) == ("PENDING_CREATE", "OFFLINE")
    assert lb["vip_address"] == "10.20.0.50" and lb["vip_network_id"] == subnet["network_id"]
    port = api.demo.get(f"/ports/{lb['vip_port_id']}").json()["port"]
    assert (port["device_owner"], port["device_id"]) == ("Octavia", lb["id"])
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.20.0.50"}]
    realize(api)
    lb = octavia(api.demo).get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"]
    assert (lb["provisioning_status"], lb["operating_status"]) == ("ACTIVE", "ONLINE")
    assert (
        api.admin.get(f"/ports/{lb['vip_port_id']}").json()["port"]["binding:host_id"] == "lbhost"
    )
    taken = octavia(api.demo).post(
        "/loadbalancers",
        json={"loadbalancer": {"vip_subnet_id": subnet["id"], "vip_address": "10.20.0.50"}},
    )
    expect_fault(taken, 409, "10.20.0.50")
    by_network = created(
        octavia(api.demo).post(
            "/loadbalancers", json={"loadbalancer": {"vip_network_id": subnet["network_id"]}}
        ),
        "loadbalancer",
    )
    assert by_network["vip_subnet_id"] == subnet["id"]
    expect_fault(
        octavia(api.demo).post("/loadbalancers", json={"loadbalancer": {"name": "x"}}), 400, "VIP"
    )
    own = api.demo.create(
        "ports", network_id=subnet["network_id"], fixed_ips=[{"ip_address": "10.20.0.60"}]
    )
    on_port = created(
        octavia(api.demo).post("/loadbalancers", json={"loadbalancer": {"vip_port_id": own["id"]}}),
        "loadbalancer",
    )
    assert (on_port["vip_address"], on_port["vip_port_id"]) == ("10.20.0.60", own["id"])
    assert api.demo.get(f"/ports/{own['id']}").json()["port"]["device_owner"] == "Octavia"
    expect_fault(
        octavia(api.demo).post("/loadbalancers", json={"loadbalancer": {"vip_port_id": own["id"]}}),
        409,
        "in use",
    )


@pytest.mark.parametrize("given", [False, True], ids=["made", "given"])
def test_a_member_subnet_of_the_other_family_gets_an_address_on_the_vip_port(
    api: Api, subnet: dict[str, Any], given: bool
) -> None:
    """As Octavia's amphora: an IPv6 VIP's port takes an address on the IPv4 subnet its members
    name, and gives it back with the last of them; a port its user gave keeps it (it may have
    been theirs)."""
    v6 = api.demo.create(
        "subnets", network_id=subnet["network_id"], cidr="fd00:20::/64", ip_version=6
    )
    if given:
        own = api.demo.create(
            "ports", network_id=subnet["network_id"], fixed_ips=[{"subnet_id": v6["id"]}]
        )
        lb = created(
            octavia(api.demo).post(
                "/loadbalancers", json={"loadbalancer": {"vip_port_id": own["id"]}}
            ),
            "loadbalancer",
        )
        realize(api)
    else:
        lb = make_lb(api, v6)
    client = octavia(api.demo)

    def port_subnets() -> list[str]:
        port = api.demo.get(f"/ports/{lb['vip_port_id']}").json()["port"]
        return [ip["subnet_id"] for ip in port["fixed_ips"]]

    assert port_subnets() == [v6["id"]]
    listener = add_listener(client, lb["id"])
    realize(api)
    pool = add_pool(client, listener["id"])
    realize(api)
    members = []
    for address in ("10.20.0.11", "10.20.0.12"):
        members.append(add_member(client, pool["id"], address, subnet_id=subnet["id"]))
        realize(api)
        assert port_subnets() == [v6["id"], subnet["id"]]
    for member in members:
        assert port_subnets() == [v6["id"], subnet["id"]]
        assert client.delete(f"/pools/{pool['id']}/members/{member['id']}").status_code == 204
        realize(api)
    assert port_subnets() == [v6["id"], subnet["id"]] if given else [v6["id"]]


def test_tree_statuses_immutability_and_cascade(api: Api, subnet: dict[str, Any]) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    listener = add_listener(client, lb["id"], connection_limit=100)
    assert listener["provisioning_status"] == "PENDING_CREATE"
    assert (
        client.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"]["provisioning_status"]
        == "PENDING_UPDATE"
    )
    # Immutable while an earlier change is in flight: Octavia's 409.
    busy = client.post(
        "/pools",
        json={
            "pool": {
                "listener_id": listener["id"],
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
            }
        },
    )
    assert busy.headers["Retry-After"] == "1"
    expect_fault(busy, 409, f"Load Balancer {lb['id']} is immutable and cannot be updated.")
    expect_fault(
        client.put(f"/listeners/{listener['id']}", json={"listener": {"name": "n"}}),
        409,
        "immutable",
    )
    realize(api)
    assert (
        client.get(f"/listeners/{listener['id']}").json()["listener"]["provisioning_status"]
        == "ACTIVE"
    )
    pool = add_pool(
        client, listener["id"], name="web servers", session_persistence={"type": "SOURCE_IP"}
    )
    realize(api)
    assert (
        client.get(f"/listeners/{listener['id']}").json()["listener"]["default_pool_id"]
        == pool["id"]
    )
    ids = []
    for address in ("10.20.0.11", "10.20.0.12"):
        member = add_member(
            client, pool["id"], address, protocol_port=8000, subnet_id=subnet["id"], weight=2
        )
        assert member["operating_status"] == "NO_MONITOR"
        ids.append(member["id"])
        realize(api)
    monitor = created(
        client.post(
            "/healthmonitors",
            json={
                "healthmonitor": {
                    "pool_id": pool["id"],
                    "type": "HTTP",
                    "delay": 1,
                    "timeout": 1,
                    "max_retries": 2,
                }
            },
        ),
        "healthmonitor",
    )
    assert (monitor["url_path"], monitor["expected_codes"], monitor["max_retries_down"]) == (
        "/",
        "200",
        3,
    )
    realize(api, {ids[0]: "UP", ids[1]: "DOWN"})
    members = {m["id"]: m for m in client.get(f"/pools/{pool['id']}/members").json()["members"]}
    assert (
        members[ids[0]]["operating_status"] == "ONLINE"
        and members[ids[1]]["operating_status"] == "ERROR"
    )
    status = client.get(f"/loadbalancers/{lb['id']}/status").json()["statuses"]["loadbalancer"]
    assert status["operating_status"] == "DEGRADED"
    tree_pool = status["listeners"][0]["pools"][0]
    assert (
        tree_pool["operating_status"] == "DEGRADED"
        and tree_pool["health_monitor"]["type"] == "HTTP"
    )
    assert {m["address"] for m in tree_pool["members"]} == {"10.20.0.11", "10.20.0.12"}
    realize(api, {ids[0]: "DOWN", ids[1]: "DOWN"})
    assert client.get(f"/pools/{pool['id']}").json()["pool"]["operating_status"] == "ERROR"

    # A member update goes PENDING_UPDATE, then ACTIVE; a delete leaves it PENDING_DELETE until
    # realized.
    client.put(f"/pools/{pool['id']}/members/{ids[0]}", json={"member": {"weight": 5}})
    assert (
        client.get(f"/pools/{pool['id']}/members/{ids[0]}").json()["member"]["provisioning_status"]
        == "PENDING_UPDATE"
    )
    realize(api)
    assert client.delete(f"/pools/{pool['id']}/members/{ids[1]}").status_code == 204
    gone = client.get(f"/pools/{pool['id']}/members/{ids[1]}").json()["member"]
    assert gone["provisioning_status"] == "PENDING_DELETE"
    realize(api)
    expect_fault(client.get(f"/pools/{pool['id']}/members/{ids[1]}"), 404, "not found")

    expect_fault(client.delete(f"/loadbalancers/{lb['id']}"), 400, "it has children")
    assert client.delete(f"/loadbalancers/{lb['id']}?cascade=true").status_code == 204
    assert (
        client.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"]["provisioning_status"]
        == "PENDING_DELETE"
    )
    assert (
        client.get(f"/pools/{pool['id']}").json()["pool"]["provisioning_status"] == "PENDING_DELETE"
    )
    realize(api)  # the host no longer reports it: it is gone, with its VIP port
    expect_fault(client.get(f"/loadbalancers/{lb['id']}"), 404, "not found")
    assert api.demo.get(f"/ports/{lb['vip_port_id']}").status_code == 404
    assert client.get("/listeners").json()["listeners"] == []


def test_a_full_listener_is_degraded_and_so_is_its_load_balancer(
    api: Api, subnet: dict[str, Any]
) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    listener = add_listener(client, lb["id"], connection_limit=1)
    realize(api)

    def statuses() -> tuple[str, str]:
        tree = client.get(f"/loadbalancers/{lb['id']}/status").json()["statuses"]["loadbalancer"]
        return tree["operating_status"], tree["listeners"][0]["operating_status"]

    assert statuses() == ("ONLINE", "ONLINE")
    realize(api, listeners={listener["id"]: {"status": "FULL"}})
    assert statuses() == ("DEGRADED", "DEGRADED")
    assert (
        client.get(f"/listeners/{listener['id']}").json()["listener"]["operating_status"]
        == "DEGRADED"
    )
    realize(api, listeners={listener["id"]: {"status": "OPEN"}})
    assert statuses() == ("ONLINE", "ONLINE")
    realize(api, listeners={listener["id"]: {"status": "STOP"}})
    assert statuses() == ("ONLINE", "OFFLINE")


def test_a_disabled_load_balancer_leaves_its_enabled_listeners_in_error(
    api: Api, subnet: dict[str, Any]
) -> None:
    """Octavia's amphora runs no frontend of a disabled load balancer: its health manager finds
    the enabled listeners missing (ERROR, the disabled ones OFFLINE) and no pool reported
    (OFFLINE, their members keeping their last health); the load balancer is OFFLINE."""
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    listener = add_listener(client, lb["id"])
    realize(api)
    idle = add_listener(client, lb["id"], protocol_port=81, admin_state_up=False)
    realize(api)
    pool = add_pool(client, listener["id"])
    realize(api)
    member = add_member(client, pool["id"], "10.20.0.11")
    realize(api)
    body = {"pool_id": pool["id"], "type": "TCP", "delay": 1, "timeout": 1, "max_retries": 2}
    created(client.post("/healthmonitors", json={"healthmonitor": body}), "healthmonitor")
    realize(api, {member["id"]: "UP"})

    def shown() -> dict[str, str]:
        return {
            "loadbalancer": client.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"][
                "operating_status"
            ],
            "listener": client.get(f"/listeners/{listener['id']}").json()["listener"][
                "operating_status"
            ],
            "idle": client.get(f"/listeners/{idle['id']}").json()["listener"]["operating_status"],
            "pool": client.get(f"/pools/{pool['id']}").json()["pool"]["operating_status"],
            "member": client.get(f"/pools/{pool['id']}/members/{member['id']}").json()["member"][
                "operating_status"
            ],
        }

    def tree() -> dict[str, str]:
        status = client.get(f"/loadbalancers/{lb['id']}/status").json()["statuses"]
        listeners = {li["id"]: li for li in status["loadbalancer"]["listeners"]}
        tree_pool = listeners[listener["id"]]["pools"][0]
        return {
            "loadbalancer": status["loadbalancer"]["operating_status"],
            "listener": listeners[listener["id"]]["operating_status"],
            "idle": listeners[idle["id"]]["operating_status"],
            "pool": tree_pool["operating_status"],
            "member": tree_pool["members"][0]["operating_status"],
        }

    running = {
        "loadbalancer": "ONLINE",
        "listener": "ONLINE",
        "idle": "OFFLINE",
        "pool": "ONLINE",
        "member": "ONLINE",
    }
    assert shown() == tree() == running
    client.put(f"/loadbalancers/{lb['id']}", json={"loadbalancer": {"admin_state_up": False}})
    realize(api)
    disabled = {**running, "loadbalancer": "OFFLINE", "listener": "ERROR", "pool": "OFFLINE"}
    assert shown() == tree() == disabled
    client.put(f"/loadbalancers/{lb['id']}", json={"loadbalancer": {"admin_state_up": True}})
    realize(api, {member["id"]: "UP"})
    assert shown() == tree() == running


def test_validation_errors(api: Api, subnet: dict[str, Any]) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    listener = {"loadbalancer_id": lb["id"], "protocol": "HTTP"}
    expect_fault(
        client.post("/listeners", json={"listener": {**listener, "protocol_port": 70000}}),
        400,
        "protocol_port",
    )
    expect_fault(
        client.post("/listeners", json={"listener": {**listener, "protocol_port": 0}}),
        400,
        "protocol_port",
    )
    expect_fault(
        client.post(
            "/listeners", json={"listener": {**listener, "protocol": "QUIC", "protocol_port": 80}}
        ),
        400,
        "protocol",
    )
    expect_fault(
        client.post("/listeners", json={"listener": {"protocol": "HTTP", "protocol_port": 80}}),
        400,
        "loadbalancer_id",
    )
    expect_fault(
        client.post(
            "/pools",
            json={
                "pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "RANDOM"}
            },
        ),
        400,
        "lb_algorithm",
    )
    created(
        client.post("/listeners", json={"listener": {**listener, "protocol_port": 80}}), "listener"
    )
    realize(api)
    expect_fault(
        client.post("/listeners", json={"listener": {**listener, "protocol_port": 80}}),
        409,
        "already using",
    )
    pool = created(
        client.post(
            "/pools",
            json={
                "pool": {
                    "loadbalancer_id": lb["id"],
                    "protocol": "TCP",
                    "lb_algorithm": "LEAST_CONNECTIONS",
                }
            },
        ),
        "pool",
    )
    realize(api)
    # A member on a subnet the VIP cannot reach without a router is accepted, as Octavia does.
    net2 = api.demo.create("networks", name="far")
    far = api.demo.create("subnets", network_id=net2["id"], cidr="10.30.0.0/24", ip_version=4)
    add_member(client, pool["id"], "10.30.0.5", subnet_id=far["id"])
    realize(api)
    expect_fault(
        client.post(
            f"/pools/{pool['id']}/members",
            json={"member": {"address": "10.30.0.5", "protocol_port": 80}},
        ),
        409,
        "already using",
    )
    expect_fault(
        client.post(
            f"/pools/{pool['id']}/members",
            json={"member": {"address": "10.30.0.6", "protocol_port": 80, "weight": 300}},
        ),
        400,
        "weight",
    )
    expect_fault(
        client.post(
            "/healthmonitors",
            json={
                "healthmonitor": {
                    "pool_id": pool["id"],
                    "type": "TCP",
                    "delay": 1,
                    "timeout": 1,
                    "max_retries": 11,
                }
            },
        ),
        400,
        "max_retries",
    )
    expect_fault(
        client.post(
            "/healthmonitors",
            json={
                "healthmonitor": {
                    "pool_id": pool["id"],
                    "type": "TCP",
                    "delay": 1,
                    "timeout": 1,
                    "max_retries": 3,
                    "url_path": "/x",
                }
            },
        ),
        400,
        "not valid",
    )
    expect_fault(client.get("/pools/00000000-0000-0000-0000-000000000000"), 404, "Pool")


def test_project_isolation_and_quotas(api: Api, subnet: dict[str, Any]) -> None:
    lb = make_lb(api, subnet)
    other = octavia(api.demo2)
    # Octavia finds the object, then refuses the caller: 403, where Neutron answers 404.
    expect_fault(other.get(f"/loadbalancers/{lb['id']}"), 403, FORBIDDEN)
    expect_fault(
        other.put(f"/loadbalancers/{lb['id']}", json={"loadbalancer": {"name": "x"}}),
        403,
        FORBIDDEN,
    )
    expect_fault(other.delete(f"/loadbalancers/{lb['id']}"), 403, FORBIDDEN)
    assert other.get("/loadbalancers").json()["loadbalancers"] == []
    # Asking for another project's list is refused; one's own, or by an admin, answers.
    expect_fault(other.get(f"/loadbalancers?project_id={api.demo.project_id}"), 403, FORBIDDEN)
    expect_fault(other.get(f"/listeners?project_id={api.demo.project_id}"), 403, FORBIDDEN)
    assert other.get(f"/pools?project_id={api.demo2.project_id}").json()["pools"] == []
    mine = octavia(api.admin).get(f"/loadbalancers?project_id={api.demo.project_id}")
    assert [item["id"] for item in mine.json()["loadbalancers"]] == [lb["id"]]
    # Another project's subnet cannot carry a VIP.
    expect_fault(
        other.post("/loadbalancers", json={"loadbalancer": {"vip_subnet_id": subnet["id"]}}),
        400,
        subnet["id"],
    )
    assert len(octavia(api.admin).get("/loadbalancers").json()["loadbalancers"]) == 1

    admin = octavia(api.admin)
    assert admin.get("/quotas/defaults").json()["quota"]["load_balancer"] == -1
    expect_fault(
        octavia(api.demo).put(
            f"/quotas/{api.demo.project_id}", json={"quota": {"load_balancer": 1}}
        ),
        403,
    )
    response = admin.put(f"/quotas/{api.demo.project_id}", json={"quota": {"load_balancer": 1}})
    assert response.status_code == 202 and response.json()["quota"]["load_balancer"] == 1
    assert (
        octavia(api.demo).get(f"/quotas/{api.demo.project_id}").json()["quota"]["load_balancer"]
        == 1
    )
    expect_fault(
        octavia(api.demo).post(
            "/loadbalancers", json={"loadbalancer": {"vip_subnet_id": subnet["id"]}}
        ),
        403,
        "Quota has been met",
    )
    assert admin.delete(f"/quotas/{api.demo.project_id}").status_code == 204
    assert admin.get("/quotas").json()["quotas"] == []
    # A limit set to the default is kept: the project is listed with it.
    unlimited = admin.put(f"/quotas/{api.demo.project_id}", json={"quota": {"pool": -1}})
    assert unlimited.status_code == 202, unlimited.text
    assert [q["project_id"] for q in admin.get("/quotas").json()["quotas"]] == [api.demo.project_id]
    created(
        octavia(api.demo).post(
            "/loadbalancers", json={"loadbalancer": {"vip_subnet_id": subnet["id"]}}
        ),
        "loadbalancer",
    )


@pytest.mark.in_process  # the defaults are the application's settings
class TestConfiguredQuotaDefaults:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return dataclasses.replace(settings, default_lb_quotas={"load_balancer": 1, "pool": 0})

    def test_shown_and_enforced(self, api: Api, subnet: dict[str, Any]) -> None:
        admin, demo, project = octavia(api.admin), octavia(api.demo), api.demo.project_id
        configured = {
            "quota": {
                "load_balancer": 1,
                "listener": -1,
                "pool": 0,
                "member": -1,
                "health_monitor": -1,
                "l7policy": -1,
                "l7rule": -1,
            }
        }
        assert demo.get("/quotas/defaults").json() == configured
        assert demo.get(f"/quotas/{project}").json() == configured
        lb = make_lb(api, subnet)
        refused = demo.post(
            "/loadbalancers", json={"loadbalancer": {"vip_subnet_id": subnet["id"]}}
        )
        assert refused.status_code == 403
        assert refused.json() == {
            "faultcode": "Client",
            "faultstring": "Quota has been met for resources: Load Balancer",
            "debuginfo": None,
        }
        listener = add_listener(demo, lb["id"])
        realize(api)
        refused = demo.post(
            "/pools",
            json={
                "pool": {
                    "listener_id": listener["id"],
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                }
            },
        )
        assert refused.status_code == 403
        assert refused.json()["faultstring"] == "Quota has been met for resources: Pool"
        # A project's own limit comes before the default, until it is unset.
        own = admin.put(f"/quotas/{project}", json={"quota": {"load_balancer": 2}})
        assert own.status_code == 202
        assert own.json() == {"quota": {**configured["quota"], "load_balancer": 2}}
        assert admin.get("/quotas").json()["quotas"] == [
            {"project_id": project, **configured["quota"], "load_balancer": 2}
        ]
        created(
            demo.post("/loadbalancers", json={"loadbalancer": {"vip_subnet_id": subnet["id"]}}),
            "loadbalancer",
        )
        assert admin.delete(f"/quotas/{project}").status_code == 204
        assert demo.get(f"/quotas/{project}").json() == configured


def test_l7_policies_order_actions_and_rules(api: Api, subnet: dict[str, Any]) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)

    def make(path: str, member: str, **body: Any) -> dict[str, Any]:
        item = created(client.post(path, json={member: body}), member)
        realize(api)
        return item

    def put(path: str, member: str, **body: Any) -> dict[str, Any]:
        response = client.put(path, json={member: body})
        assert response.status_code == 200, response.text
        realize(api)
        item: dict[str, Any] = response.json()[member]
        return item

    def order() -> list[tuple[int, str]]:
        return sorted(
            (p["position"], p["name"]) for p in client.get("/l7policies").json()["l7policies"]
        )

    http = make(
        "/listeners", "listener", loadbalancer_id=lb["id"], protocol="HTTP", protocol_port=80
    )
    tcp = make("/listeners", "listener", loadbalancer_id=lb["id"], protocol="TCP", protocol_port=81)
    images = make(
        "/pools", "pool", loadbalancer_id=lb["id"], protocol="HTTP", lb_algorithm="ROUND_ROBIN"
    )
    policy = {"listener_id": http["id"]}
    expect_fault(
        client.post(
            "/l7policies", json={"l7policy": {"listener_id": tcp["id"], "action": "REJECT"}}
        ),
        501,
        "Provider 'amphora' does not support a requested option: TCP protocol listeners do "
        "not support L7 policies",
    )
    expect_fault(
        client.post("/l7policies", json={"l7policy": {**policy, "action": "REDIRECT_TO_POOL"}}),
        400,
        "An L7 policy with action REDIRECT_TO_POOL needs redirect_pool_id.",
    )
    expect_fault(
        client.post(
            "/l7policies",
            json={
                "l7policy": {**policy, "action": "REDIRECT_TO_URL", "redirect_url": "example.com"}
            },
        ),
        400,
        "redirect_url",
    )
    expect_fault(
        client.post("/l7policies", json={"l7policy": {**policy, "action": "DROP"}}), 400, "DROP"
    )
    expect_fault(
        client.post(
            "/l7policies", json={"l7policy": {**policy, "action": "REJECT", "position": 0}}
        ),
        400,
        "position",
    )

    to_pool = make(
        "/l7policies",
        "l7policy",
        **policy,
        name="a",
        action="REDIRECT_TO_POOL",
        redirect_pool_id=images["id"],
        redirect_url="https://ignored.example",
    )
    assert (to_pool["position"], to_pool["redirect_url"], to_pool["redirect_http_code"]) == (
        1,
        None,
        None,
    )
    assert to_pool["provisioning_status"] == "PENDING_CREATE"
    expect_fault(
        client.delete(f"/pools/{images['id']}"), 409, f"Pool {images['id']} is in use by L7 policy"
    )
    to_url = make(
        "/l7policies",
        "l7policy",
        **policy,
        name="b",
        action="REDIRECT_TO_URL",
        redirect_url="https://example.com/moved",
    )
    assert (to_url["position"], to_url["redirect_http_code"]) == (2, 302)
    reject = make("/l7policies", "l7policy", **policy, name="c", action="REJECT", position=1)
    assert order() == [(1, "c"), (2, "a"), (3, "b")]
    listener = client.get(f"/listeners/{http['id']}").json()["listener"]
    assert listener["l7policies"] == [{"id": p["id"]} for p in (reject, to_pool, to_url)]
    put(f"/l7policies/{to_url['id']}", "l7policy", position=1)
    assert order() == [(1, "b"), (2, "c"), (3, "a")]
    put(f"/l7policies/{reject['id']}", "l7policy", position=99)  # beyond the end: the last
    assert order() == [(1, "b"), (2, "a"), (3, "c")]
    changed = put(
        f"/l7policies/{to_pool['id']}",
        "l7policy",
        action="REDIRECT_PREFIX",
        redirect_prefix="https://example.com",
        redirect_http_code=301,
    )
    assert (
        changed["redirect_pool_id"],
        changed["redirect_prefix"],
        changed["redirect_http_code"],
    ) == (None, "https://example.com", 301)

    rules = f"/l7policies/{to_url['id']}/rules"
    for body, text in (
        (
            {"type": "HEADER", "compare_type": "EQUAL_TO", "value": "x"},
            "A HEADER rule needs a key.",
        ),
        (
            {"type": "PATH", "compare_type": "REGEX", "value": "(["},
            "not a valid regular expression",
        ),
        ({"type": "PATH", "compare_type": "EQUAL_TO", "value": "/a b"}, "without spaces or quotes"),
        (
            {"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "x"},
            "Error parsing L7Rule: Invalid L7 Rule: L7rule value x is not a boolean True string.",
        ),
        (
            {"type": "SSL_DN_FIELD", "compare_type": "EQUAL_TO", "value": "x", "key": "1CN"},
            "Error parsing L7Rule: Invalid L7 Rule: Invalid L7rule distinguished name field.",
        ),
        (
            {"type": "SSL_VERIFY_RESULT", "compare_type": "STARTS_WITH", "value": "0"},
            "Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT only supports the EQUAL_TO compare",
        ),
        ({"type": "FILE_TYPE", "compare_type": "CONTAINS", "value": "jpg"}, "EQUAL_TO or REGEX"),
        (
            {"type": "PATH", "compare_type": "EQUAL_TO", "value": "/", "name": "x"},
            "Unknown attribute",
        ),
    ):
        expect_fault(client.post(rules, json={"rule": body}), 400, text)
    rule = make(rules, "rule", type="PATH", compare_type="STARTS_WITH", value="/old", key="ignored")
    assert "name" not in rule and (rule["key"], rule["invert"], rule["value"]) == (
        None,
        False,
        "/old",
    )
    assert client.get(f"{rules}/{rule['id']}").json()["rule"]["provisioning_status"] == "ACTIVE"
    shown = client.get(f"/l7policies/{to_url['id']}").json()["l7policy"]
    assert (shown["rules"], shown["provisioning_status"], shown["operating_status"]) == (
        [{"id": rule["id"]}],
        "ACTIVE",
        "ONLINE",
    )

    admin = octavia(api.admin)
    assert (
        admin.put(f"/quotas/{api.demo.project_id}", json={"quota": {"l7policy": 3}}).status_code
        == 202
    )
    expect_fault(
        client.post("/l7policies", json={"l7policy": {**policy, "action": "REJECT"}}),
        403,
        "Quota has been met for resources: L7Policy",
    )
    assert admin.delete(f"/quotas/{api.demo.project_id}").status_code == 204

    other = octavia(api.demo2)
    expect_fault(other.get(f"/l7policies/{to_url['id']}"), 403, FORBIDDEN)
    expect_fault(other.get(rules), 403, FORBIDDEN)
    assert other.get("/l7policies").json()["l7policies"] == []
    # A deleted policy leaves no gap; a deleted listener takes its policies and their rules.
    assert client.delete(f"/l7policies/{to_url['id']}").status_code == 204
    realize(api)
    assert order() == [(1, "a"), (2, "c")]
    assert client.delete(f"/listeners/{http['id']}").status_code == 204
    realize(api)
    assert client.get("/l7policies").json()["l7policies"] == []
    expect_fault(client.get(rules), 404, "not found")


def test_fully_populated_create_makes_the_tree_in_one_step(
    api: Api, subnet: dict[str, Any]
) -> None:
    client = octavia(api.demo)
    web = {
        "name": "web",
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "members": [
            {"address": "10.20.0.11", "protocol_port": 8000},
            {"address": "10.20.0.12", "protocol_port": 8000, "weight": 3},
        ],
        "healthmonitor": {
            "type": "HTTP",
            "delay": 2,
            "timeout": 1,
            "max_retries": 2,
            "url_path": "/health",
        },
    }
    http = {
        "name": "http",
        "protocol": "HTTP",
        "protocol_port": 80,
        "default_pool": web,
        "l7policies": [
            {
                "name": "images",
                "action": "REDIRECT_TO_POOL",
                "redirect_pool": {"name": "images"},
                "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/images"}],
            },
            {"name": "away", "action": "REDIRECT_TO_URL", "redirect_url": "https://example.com/"},
        ],
    }
    ssh = {"name": "ssh", "protocol": "TCP", "protocol_port": 22, "default_pool": {"name": "ssh"}}
    pools = [
        {
            "name": "images",
            "protocol": "HTTP",
            "lb_algorithm": "LEAST_CONNECTIONS",
            "members": [{"address": "10.20.0.13", "protocol_port": 80}],
        },
        {"name": "ssh", "protocol": "TCP", "lb_algorithm": "SOURCE_IP"},
    ]

    def body(**change: Any) -> dict[str, Any]:
        return {
            "loadbalancer": {
                "name": "full",
                "vip_subnet_id": subnet["id"],
                "listeners": [http, ssh],
                "pools": pools,
                **change,
            }
        }

    # A mistake anywhere in the tree refuses all of it.
    expect_fault(
        client.post(
            "/loadbalancers", json=body(listeners=[{**ssh, "default_pool": {"name": "nope"}}])
        ),
        400,
        "Pool 'nope' is not among the load balancer's pools.",
    )
    expect_fault(
        client.post(
            "/loadbalancers",
            json=body(
                pools=[{**pools[0], "members": [{"address": "10.20.0.13", "protocol_port": 70000}]}]
            ),
        ),
        400,
        "protocol_port",
    )
    expect_fault(
        client.post("/loadbalancers", json=body(listeners=[{**ssh, "protocol": "UDP"}])), 400, "UDP"
    )
    expect_fault(
        client.post(
            "/loadbalancers", json=body(listeners=[{**http, "default_pool": {"name": "ssh"}}])
        ),
        400,
        "The pool protocol 'TCP' is invalid while the listener protocol is 'HTTP'.",
    )
    expect_fault(client.post("/loadbalancers", json=body(pools="web")), 400, "pools")
    assert client.get("/loadbalancers").json()["loadbalancers"] == []
    assert api.demo.get("/ports", params={"device_owner": "Octavia"}).json()["ports"] == []

    lb = created(client.post("/loadbalancers", json=body()), "loadbalancer")
    assert lb["provisioning_status"] == "PENDING_CREATE" and "revision" not in lb
    listeners = {listener["name"]: listener for listener in lb["listeners"]}
    made = {pool["name"]: pool for pool in lb["pools"]}
    assert set(made) == {"web", "images", "ssh"}
    assert listeners["http"]["default_pool_id"] == made["web"]["id"]
    assert listeners["ssh"]["default_pool_id"] == made["ssh"]["id"]
    assert [m["weight"] for m in made["web"]["members"]] == [1, 3]
    assert made["web"]["healthmonitor"]["url_path"] == "/health"
    policies = listeners["http"]["l7policies"]
    assert [(p["name"], p["position"]) for p in policies] == [("images", 1), ("away", 2)]
    assert (
        policies[0]["redirect_pool_id"] == made["images"]["id"]
        and policies[0]["rules"][0]["value"] == "/images"
    )
    realize(api)  # one report: the whole tree runs
    tree = client.get(f"/loadbalancers/{lb['id']}/status").json()["statuses"]["loadbalancer"]
    statuses = [tree["provisioning_status"]] + [
        o["provisioning_status"]
        for listener in tree["listeners"]
        for o in [listener, *listener["pools"]]
    ]
    assert statuses == ["ACTIVE"] * 5
    assert {
        m["provisioning_status"]
        for m in client.get(f"/pools/{made['web']['id']}/members").json()["members"]
    } == {"ACTIVE"}


def counted(
    worker: str, active: int, total: int, bytes_in: int, bytes_out: int, errors: int = 0
) -> dict[str, Any]:
    """One listener's counters as an haproxy worker shows them (its own, since it started)."""
    return {
        "worker": worker,
        "active_connections": active,
        "total_connections": total,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "request_errors": errors,
    }


def test_statistics_add_up_what_haproxy_counted(api: Api, subnet: dict[str, Any]) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)

    def stats(path: str) -> dict[str, int]:
        response = client.get(f"{path}/stats")
        assert response.status_code == 200, response.text
        return response.json()["stats"]

    zero = {
        "active_connections": 0,
        "bytes_in": 0,
        "bytes_out": 0,
        "total_connections": 0,
        "request_errors": 0,
    }
    assert stats(f"/loadbalancers/{lb['id']}") == zero
    listeners = {}
    for protocol, port in (("HTTP", 80), ("TCP", 81)):
        listeners[protocol] = created(
            client.post(
                "/listeners",
                json={
                    "listener": {
                        "loadbalancer_id": lb["id"],
                        "protocol": protocol,
                        "protocol_port": port,
                    }
                },
            ),
            "listener",
        )
        realize(api)
    http, tcp = f"/listeners/{listeners['HTTP']['id']}", f"/listeners/{listeners['TCP']['id']}"
    assert stats(http) == zero

    first = {
        listeners["HTTP"]["id"]: counted("100@1", 3, 10, 1000, 5000, 1),
        listeners["TCP"]["id"]: counted("100@1", 0, 2, 50, 60),
    }
    realize(api, listeners=first)
    realize(api, listeners=first)  # the same report twice counts once
    assert stats(http) == {
        "active_connections": 3,
        "total_connections": 10,
        "bytes_in": 1000,
        "bytes_out": 5000,
        "request_errors": 1,
    }
    assert stats(f"/loadbalancers/{lb['id']}") == {
        "active_connections": 3,
        "total_connections": 12,
        "bytes_in": 1050,
        "bytes_out": 5060,
        "request_errors": 1,
    }
    # The worker counts on; a reload's new worker counts from zero, and that adds to the totals.
    realize(api, listeners={listeners["HTTP"]["id"]: counted("100@1", 1, 15, 1500, 7500, 1)})
    realize(api, listeners={listeners["HTTP"]["id"]: counted("200@2", 2, 4, 400, 2000)})
    assert stats(http) == {
        "active_connections": 2,
        "total_connections": 19,
        "bytes_in": 1900,
        "bytes_out": 9500,
        "request_errors": 1,
    }

    other = octavia(api.demo2)
    expect_fault(other.get(f"/loadbalancers/{lb['id']}/stats"), 403, FORBIDDEN)
    expect_fault(other.get(f"{http}/stats"), 403, FORBIDDEN)
    expect_fault(
        client.get("/loadbalancers/nothing/stats"), 404, "Load Balancer nothing not found."
    )
    # A listener's statistics go with it.
    assert client.delete(tcp).status_code == 204
    realize(api)
    assert stats(f"/loadbalancers/{lb['id']}")["total_connections"] == 19


def test_lists_filter_sort_page(api: Api, subnet: dict[str, Any]) -> None:
    client = octavia(api.demo)
    for name in ("c", "a", "b"):
        created(
            client.post(
                "/loadbalancers",
                json={"loadbalancer": {"name": name, "vip_subnet_id": subnet["id"]}},
            ),
            "loadbalancer",
        )
    names = [
        lb["name"] for lb in client.get("/loadbalancers?sort=name:asc").json()["loadbalancers"]
    ]
    assert names == ["a", "b", "c"]
    assert [lb["name"] for lb in client.get("/loadbalancers?name=b").json()["loadbalancers"]] == [
        "b"
    ]
    page = client.get("/loadbalancers?sort=name:desc&limit=2&fields=name,id").json()
    assert [lb["name"] for lb in page["loadbalancers"]] == ["c", "b"] and set(
        page["loadbalancers"][0]
    ) == {"id", "name"}
    following = httpx.URL(page["loadbalancers_links"][0]["href"])
    rest = client.http.get(
        following.path + "?" + following.query.decode(), headers={"X-Auth-Token": client.token}
    )
    assert [lb["name"] for lb in rest.json()["loadbalancers"]] == ["a"]
    assert [link["rel"] for link in rest.json()["loadbalancers_links"]] == ["previous"]
    before = httpx.URL(rest.json()["loadbalancers_links"][0]["href"])
    assert "page_reverse=True" in str(before) and "marker=" in str(before)
    back = client.get(
        "/loadbalancers?sort=name:desc&limit=1&marker="
        + page["loadbalancers"][1]["id"]
        + "&page_reverse=True"
    )
    assert [lb["name"] for lb in back.json()["loadbalancers"]] == ["c"]
    # A full page links to the next; a limit below 1 is no limit at all.
    whole = client.get("/loadbalancers?limit=0").json()
    assert len(whole["loadbalancers"]) == 3
    assert [link["rel"] for link in whole["loadbalancers_links"]] == ["next"]
    # What pagination cannot use is refused with Octavia's words.
    for query, text in [
        ("limit=two", "Supplied pagination limit 'two' is not valid."),
        ("sort=name:sideways", "Supplied sort direction 'sideways' is not valid."),
        ("sort_key=name&sort_dir=up", "Supplied sort direction 'up' is not valid."),
        ("sort=colour:asc", "Supplied sort key 'colour' is not valid."),
        ("marker=nonexistent", "Supplied pagination marker 'nonexistent' is not valid."),
    ]:
        assert expect_fault(client.get(f"/loadbalancers?{query}"), 400) == text
    # Listeners and pools are found by their load balancer, which they show as a list.
    lbs = {lb["name"]: lb["id"] for lb in client.get("/loadbalancers").json()["loadbalancers"]}
    realize(api)
    for name in ("a", "b"):
        listener = {"loadbalancer_id": lbs[name], "protocol": "HTTP", "protocol_port": 80}
        created(
            client.post("/listeners", json={"listener": {**listener, "name": name}}), "listener"
        )
    found = client.get(f"/listeners?loadbalancer_id={lbs['b']}").json()["listeners"]
    assert [listener["name"] for listener in found] == ["b"]


def test_nothing_stays_pending(api: Api, subnet: dict[str, Any], core: Any) -> None:
    """Housekeeping: unrealized for 30 s, a creation fails and a deletion completes."""
    from datetime import timedelta

    from sqlalchemy import update

    from neutrino.db import schema
    from neutrino.services import common, loadbalancers

    client = octavia(api.demo)
    leaving = make_lb(api, subnet)
    stuck = created(
        client.post("/loadbalancers", json={"loadbalancer": {"vip_subnet_id": subnet["id"]}}),
        "loadbalancer",
    )
    client.delete(f"/loadbalancers/{leaving['id']}")
    loadbalancers.housekeeping(core.db)  # not yet: nothing is old enough
    assert (
        client.get(f"/loadbalancers/{stuck['id']}").json()["loadbalancer"]["provisioning_status"]
        == "PENDING_CREATE"
    )
    with core.db.write() as conn:  # as if no agent had answered for a while
        conn.execute(
            update(schema.lb_loadbalancers).values(updated_at=common.now() - timedelta(seconds=31))
        )
    loadbalancers.housekeeping(core.db)
    assert (
        client.get(f"/loadbalancers/{stuck['id']}").json()["loadbalancer"]["provisioning_status"]
        == "ERROR"
    )
    expect_fault(client.get(f"/loadbalancers/{leaving['id']}"), 404)
    realize(api)  # its agent reports it running after all: it heals
    assert (
        client.get(f"/loadbalancers/{stuck['id']}").json()["loadbalancer"]["provisioning_status"]
        == "ACTIVE"
    )
    assert client.delete(f"/loadbalancers/{stuck['id']}").status_code == 204


def test_https_and_proxy_protocols_source_ip_port_and_monitor_options(
    api: Api, subnet: dict[str, Any]
) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)

    def add(path: str, member: str, **body: Any) -> dict[str, Any]:
        item = created(client.post(path, json={member: body}), member)
        realize(api)
        return item

    https = add(
        "/listeners", "listener", loadbalancer_id=lb["id"], protocol="HTTPS", protocol_port=443
    )
    http = add(
        "/listeners", "listener", loadbalancer_id=lb["id"], protocol="HTTP", protocol_port=80
    )
    # Octavia's listener -> pool protocol map: TLS passes through to HTTPS or TCP pools, never
    # to HTTP ones; an HTTP listener cannot hand its requests to HTTPS members.
    for listener, protocol in [(https, "HTTP"), (http, "HTTPS"), (http, "TCP")]:
        refused = client.post(
            "/pools",
            json={
                "pool": {
                    "listener_id": listener["id"],
                    "protocol": protocol,
                    "lb_algorithm": "ROUND_ROBIN",
                }
            },
        )
        assert expect_fault(refused, 400) == (
            f"Validation failure: The pool protocol '{protocol}' is invalid while the listener "
            f"protocol is '{listener['protocol']}'."
        )
    pool = add(
        "/pools",
        "pool",
        listener_id=https["id"],
        protocol="HTTPS",
        lb_algorithm="SOURCE_IP_PORT",
    )
    assert (pool["protocol"], pool["lb_algorithm"]) == ("HTTPS", "SOURCE_IP_PORT")
    proxy = add(
        "/pools", "pool", listener_id=http["id"], protocol="PROXYV2", lb_algorithm="SOURCE_IP"
    )
    assert proxy["protocol"] == "PROXYV2"
    expect_fault(
        client.post(
            "/pools",
            json={"pool": {"loadbalancer_id": lb["id"], "protocol": "PROXY", "lb_algorithm": "X"}},
        ),
        400,
        "Invalid input for field/attribute lb_algorithm.",
    )

    needs_version = (
        "Validation failure: 'http_version' must be specified when 'domain_name' is provided."
    )
    needs_11 = (
        "http_version 1.0 is not a valid option for health monitors HTTP 1.1 domain name "
        "health check"
    )
    monitor = {"pool_id": pool["id"], "type": "HTTPS", "delay": 2, "timeout": 1, "max_retries": 2}
    for extra, fault in [
        ({"domain_name": "www.example.com"}, needs_version),
        ({"domain_name": "www.example.com", "http_version": 1.0}, needs_11),
    ]:
        refused = client.post("/healthmonitors", json={"healthmonitor": {**monitor, **extra}})
        assert expect_fault(refused, 400) == fault
    for extra, field in [
        ({"http_version": 2}, "http_version"),
        ({"domain_name": "-x."}, "domain_name"),
    ]:
        refused = client.post("/healthmonitors", json={"healthmonitor": {**monitor, **extra}})
        expect_fault(refused, 400, f"Invalid input for field/attribute {field}.")
    checked = add(
        "/healthmonitors",
        "healthmonitor",
        **monitor,
        http_version=1.1,
        domain_name="www.example.com",
    )
    assert (checked["type"], checked["http_method"], checked["url_path"]) == ("HTTPS", "GET", "/")
    assert (checked["http_version"], checked["domain_name"]) == (1.1, "www.example.com")
    assert (
        expect_fault(
            client.put(
                f"/healthmonitors/{checked['id']}", json={"healthmonitor": {"http_version": 1.0}}
            ),
            400,
        )
        == needs_11
    )
    hello = add(
        "/healthmonitors",
        "healthmonitor",
        **{**monitor, "pool_id": proxy["id"], "type": "TLS-HELLO"},
    )
    assert (hello["type"], hello["http_method"], hello["http_version"]) == ("TLS-HELLO", None, None)
    assert (
        expect_fault(
            client.put(
                f"/healthmonitors/{hello['id']}", json={"healthmonitor": {"domain_name": "a.b"}}
            ),
            400,
        )
        == needs_version
    )
    assert (
        client.get(f"/healthmonitors/{checked['id']}").json()["healthmonitor"]["http_version"]
        == 1.1
    )


def test_the_dashboard_shows_the_vip_floating_ip_to_an_admin_and_a_busy_load_balancer(
    api: Api, subnet: dict[str, Any]
) -> None:
    """An administrator opening another project's load balancer sees its floating IP; an edit
    while it is PENDING_UPDATE is refused in words, the form kept."""
    ext = api.admin.create("networks", name="ext", **{"router:external": True})
    api.admin.create("subnets", network_id=ext["id"], cidr="198.51.100.0/24", ip_version=4)
    router = api.demo.create("routers", name="r", external_gateway_info={"network_id": ext["id"]})
    added = api.demo.put(
        f"/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]}
    )
    assert added.status_code == 200, added.text
    lb = make_lb(api, subnet)
    fip = api.demo.create("floatingips", floating_network_id=ext["id"], port_id=lb["vip_port_id"])
    csrf = dashboard_login(api.admin.http, "admin", ADMIN_PASSWORD, "admin")
    page = api.admin.http.get(f"/dashboard/project/load-balancers/{lb['id']}")
    assert page.status_code == 200, page.text
    shown = re.search(r"<th>Floating IP</th><td>(.*?)</td>", page.text)
    assert shown is not None and fip["floating_ip_address"] in shown.group(1), page.text

    busy = octavia(api.demo).put(
        f"/loadbalancers/{lb['id']}", json={"loadbalancer": {"description": "changing"}}
    )
    assert busy.status_code == 200 and busy.json()["loadbalancer"]["provisioning_status"] == (
        "PENDING_UPDATE"
    )
    refused = api.admin.http.post(
        f"/dashboard/project/load-balancers/{lb['id']}/edit",
        data={"csrf_token": csrf, "name": "renamed", "admin_state_up": "on"},
    )
    assert refused.status_code == 409
    assert (
        "Load balancer lb1 is still applying an earlier change (PENDING_UPDATE) and cannot "
        "change until it is done: try again in a moment." in refused.text
    )
    assert 'name="name" value="renamed"' in refused.text
