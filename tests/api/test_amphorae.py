"""Amphorae (/load-balancer/v2/octavia/amphorae) and failovers, in-process on both databases.

`realize` plays the hosting agent's part (see test_loadbalancers); a failover's new instance is
ALLOCATED, and the one it replaces gone, only once the agent reports the new revision.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from alembic import command

from neutrino.app import Neutrino
from neutrino.db.migrations import alembic_config
from tests.api import test_loadbalancers
from tests.api.test_agents import agents_by_type, heartbeat
from tests.api.test_lbaas_flavors import flavor, flavor_profile
from tests.api.test_loadbalancers import FORBIDDEN, created, expect_fault, make_lb, octavia, realize
from tests.api.test_octavia_policy import MISSING, user_with_roles
from tests.conftest import Api, ApiClient

subnet = test_loadbalancers.subnet  # the fixture
AMPHORAE = "/load-balancer/v2/octavia/amphorae"


def amphorae(client: ApiClient, query: str = "") -> list[dict[str, Any]]:
    response = client.http.get(f"{AMPHORAE}{query}", headers={"X-Auth-Token": client.token})
    assert response.status_code == 200, response.text
    return response.json()["amphorae"]


def call(client: ApiClient, method: str, path: str) -> Any:
    return client.http.request(method, AMPHORAE + path, headers={"X-Auth-Token": client.token})


def status_of(api: Api, lb_id: str) -> str:
    lb = octavia(api.demo).get(f"/loadbalancers/{lb_id}").json()["loadbalancer"]
    return str(lb["provisioning_status"])


def test_one_amphora_per_load_balancer(api: Api, subnet: dict[str, Any]) -> None:
    lb = created(
        octavia(api.demo).post(
            "/loadbalancers", json={"loadbalancer": {"vip_subnet_id": subnet["id"]}}
        ),
        "loadbalancer",
    )
    (building,) = amphorae(api.admin)
    assert (building["status"], building["compute_id"], building["cached_zone"]) == (
        "BOOTING",
        None,
        None,
    )
    realize(api)
    other = make_lb(api, subnet)
    heartbeat(api, "lbhost", zone="az1")
    agent = agents_by_type(api, "lbhost")["Linux bridge agent"]
    (amphora,) = amphorae(api.admin, f"?loadbalancer_id={lb['id']}")
    assert amphora == {
        "id": building["id"],
        "loadbalancer_id": lb["id"],
        "compute_id": agent["id"],
        "lb_network_ip": None,
        "vrrp_ip": lb["vip_address"],
        "ha_ip": lb["vip_address"],
        "vrrp_port_id": lb["vip_port_id"],
        "ha_port_id": lb["vip_port_id"],
        "cert_expiration": None,
        "cert_busy": False,
        "role": "STANDALONE",
        "status": "ALLOCATED",
        "vrrp_interface": f"vip-{lb['vip_port_id'][:11]}",
        "vrrp_id": None,
        "vrrp_priority": None,
        "cached_zone": "az1",
        "created_at": amphora["created_at"],
        "updated_at": amphora["updated_at"],
        "image_id": None,
        "compute_flavor": None,
    }
    assert {a["loadbalancer_id"] for a in amphorae(api.admin)} == {lb["id"], other["id"]}
    assert amphorae(api.admin, "?status=BOOTING") == []
    first = amphorae(api.admin)[0]
    assert amphorae(api.admin, "?limit=1&fields=id") == [{"id": first["id"]}]
    shown = call(api.admin, "GET", f"/{amphora['id']}")
    assert shown.status_code == 200 and shown.json() == {"amphora": amphora}
    expect_fault(call(api.admin, "GET", f"/{MISSING}"), 404, f"Amphora {MISSING} not found.")
    # Deleted with its load balancer.
    assert octavia(api.demo).delete(f"/loadbalancers/{other['id']}").status_code == 204
    assert {a["status"] for a in amphorae(api.admin, f"?loadbalancer_id={other['id']}")} == {
        "PENDING_DELETE"
    }
    realize(api)
    assert [a["loadbalancer_id"] for a in amphorae(api.admin)] == [lb["id"]]


def test_administrators_only(api: Api, subnet: dict[str, Any]) -> None:
    lb = make_lb(api, subnet)
    (amphora,) = amphorae(api.admin)
    lb_admin = user_with_roles(
        api.admin, {"id": api.demo.project_id, "name": "demo"}, ["load-balancer_admin"]
    )
    assert amphorae(lb_admin) == [amphora]
    observer = user_with_roles(
        api.admin, {"id": api.demo.project_id, "name": "demo"}, ["load-balancer_global_observer"]
    )
    for client in (api.demo, observer):
        expect_fault(call(client, "GET", ""), 403, FORBIDDEN)
        for method, path in (
            ("GET", ""),
            ("GET", "/stats"),
            ("PUT", "/config"),
            ("PUT", "/failover"),
        ):
            expect_fault(call(client, method, f"/{amphora['id']}{path}"), 403, FORBIDDEN)
        expect_fault(octavia(client).put(f"/loadbalancers/{lb['id']}/failover"), 403, FORBIDDEN)
    # Octavia finds the amphora before it asks who wants it.
    expect_fault(call(api.demo, "GET", f"/{MISSING}"), 404, f"Amphora {MISSING} not found.")
    assert status_of(api, lb["id"]) == "ACTIVE"


@pytest.mark.parametrize("through", ["loadbalancer", "amphora"])
def test_failover_builds_a_new_amphora(api: Api, subnet: dict[str, Any], through: str) -> None:
    lb = make_lb(api, subnet)
    (old,) = amphorae(api.admin)
    if through == "loadbalancer":
        response = octavia(api.admin).put(f"/loadbalancers/{lb['id']}/failover")
    else:
        response = call(api.admin, "PUT", f"/{old['id']}/failover")
    assert response.status_code == 202 and response.content == b""
    assert status_of(api, lb["id"]) == "PENDING_UPDATE"
    # The running instance goes only once the new one runs.
    going, new = sorted(amphorae(api.admin), key=lambda a: a["id"] != old["id"])
    assert (going["id"], going["status"]) == (old["id"], "PENDING_DELETE")
    assert new["status"] == "BOOTING" and new["id"] != old["id"]
    snapshot = api.admin.http.get(
        "/internal/v1/snapshot", headers={"X-Auth-Token": api.admin.token}
    ).json()
    assert [b["amphora_id"] for b in snapshot["loadbalancers"]] == [new["id"]]
    realize(api)
    assert status_of(api, lb["id"]) == "ACTIVE"
    assert [(a["id"], a["status"]) for a in amphorae(api.admin)] == [(new["id"], "ALLOCATED")]


def test_failover_refused(api: Api, subnet: dict[str, Any]) -> None:
    lb = make_lb(api, subnet)
    (amphora,) = amphorae(api.admin)
    admin = octavia(api.admin)
    expect_fault(
        admin.put(f"/loadbalancers/{MISSING}/failover"), 404, f"Load Balancer {MISSING} not found."
    )
    expect_fault(call(api.admin, "PUT", f"/{MISSING}/failover"), 404, "not found")
    assert admin.put(f"/loadbalancers/{lb['id']}/failover").status_code == 202
    expect_fault(
        admin.put(f"/loadbalancers/{lb['id']}/failover"),
        409,
        f"Invalid state PENDING_UPDATE of loadbalancer resource {lb['id']}",
    )
    (new,) = [a for a in amphorae(api.admin) if a["id"] != amphora["id"]]
    expect_fault(
        call(api.admin, "PUT", f"/{new['id']}/failover"),
        409,
        f"Load Balancer {lb['id']} is immutable and cannot be updated.",
    )
    realize(api)
    assert status_of(api, lb["id"]) == "ACTIVE"


def test_failover_of_a_failed_load_balancer(api: Api, subnet: dict[str, Any]) -> None:
    """A load balancer in ERROR may fail over (not through its amphora: that needs ACTIVE)."""
    lb = make_lb(api, subnet)
    listener = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}
    created(octavia(api.demo).post("/listeners", json={"listener": listener}), "listener")
    snapshot = api.admin.http.get(
        "/internal/v1/snapshot", headers={"X-Auth-Token": api.admin.token}
    ).json()
    failed = {
        "revision": snapshot["revision"],
        "loadbalancers": {lb["id"]: {"revision": snapshot["loadbalancers"][0]["revision"]}},
        "failed": {"loadbalancers": [lb["id"]]},
    }
    failed["loadbalancers"][lb["id"]]["error"] = "haproxy does not start"
    response = api.admin.http.post(
        "/internal/v1/agents/lbhost/report", json=failed, headers={"X-Auth-Token": api.admin.token}
    )
    assert response.status_code == 204 and status_of(api, lb["id"]) == "ERROR"
    (amphora,) = amphorae(api.admin)
    expect_fault(call(api.admin, "PUT", f"/{amphora['id']}/failover"), 409, "immutable")
    assert octavia(api.admin).put(f"/loadbalancers/{lb['id']}/failover").status_code == 202
    realize(api)
    assert status_of(api, lb["id"]) == "ACTIVE"
    assert [a["status"] for a in amphorae(api.admin)] == ["ALLOCATED"]


def test_statistics_and_config(api: Api, subnet: dict[str, Any]) -> None:
    lb = make_lb(api, subnet)
    (amphora,) = amphorae(api.admin)
    expect_fault(
        call(api.admin, "GET", f"/{amphora['id']}/stats"),
        404,
        f"Amphora stats for {amphora['id']} not found.",
    )
    listener = created(
        octavia(api.demo).post(
            "/listeners",
            json={
                "listener": {"loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 22}
            },
        ),
        "listener",
    )
    counts = {"worker": "1@1", "active_connections": 2, "bytes_in": 10, "bytes_out": 20}
    realize(api, listeners={listener["id"]: {**counts, "total_connections": 3}})
    stats = call(api.admin, "GET", f"/{amphora['id']}/stats")
    assert stats.status_code == 200
    assert stats.json() == {
        "amphora_stats": [
            {
                "id": amphora["id"],
                "loadbalancer_id": lb["id"],
                "listener_id": listener["id"],
                "active_connections": 2,
                "bytes_in": 10,
                "bytes_out": 20,
                "total_connections": 3,
                "request_errors": 0,
            }
        ]
    }
    configured = call(api.admin, "PUT", f"/{amphora['id']}/config")
    assert configured.status_code == 202 and configured.content == b""
    assert status_of(api, lb["id"]) == "ACTIVE"
    assert amphorae(api.admin)[0]["status"] == "ALLOCATED"


def active_standby(api: Api, subnet: dict[str, Any], running: bool = True) -> dict[str, Any]:
    """A load balancer of a flavor whose topology is ACTIVE_STANDBY, `running` or just made."""
    profile = flavor_profile(api, json.dumps({"loadbalancer_topology": "ACTIVE_STANDBY"}))
    offered = flavor(api, profile["id"])
    lb = created(
        octavia(api.demo).post(
            "/loadbalancers",
            json={"loadbalancer": {"vip_subnet_id": subnet["id"], "flavor_id": offered["id"]}},
        ),
        "loadbalancer",
    )
    if running:
        realize(api)
    return dict(lb)


def test_active_standby_on_two_hosts_is_active_once_both_run_it(
    api: Api, subnet: dict[str, Any]
) -> None:
    heartbeat(api, "h1")
    heartbeat(api, "h2")
    lb = active_standby(api, subnet, running=False)
    hosts = {port["binding:host_id"] for port in vrrp_ports(api).values()}
    assert hosts == {"h1", "h2"}  # anti-affinity
    vip = api.admin.get(f"/ports/{lb['vip_port_id']}").json()["port"]["binding:host_id"]
    (other,) = hosts - {vip}
    realize(api, host=vip)
    assert status_of(api, lb["id"]) == "PENDING_CREATE"  # its other amphora is not running yet
    realize(api, host=other)
    assert status_of(api, lb["id"]) == "ACTIVE"


def by_role(api: Api) -> dict[str, dict[str, Any]]:
    return {a["role"]: a for a in amphorae(api.admin)}


def vrrp_ports(api: Api) -> dict[str, dict[str, Any]]:
    listed = api.admin.get("/ports", params={"device_owner": "Octavia"}).json()["ports"]
    return {p["id"]: p for p in listed if p["name"].startswith("octavia-lb-vrrp-")}


def test_active_standby_has_a_master_and_a_backup(api: Api, subnet: dict[str, Any]) -> None:
    lb = active_standby(api, subnet)
    heartbeat(api, "lbhost", zone="az1")
    agent = agents_by_type(api, "lbhost")["Linux bridge agent"]
    ports = vrrp_ports(api)
    roles = by_role(api)
    assert sorted(roles) == ["BACKUP", "MASTER"] and len(ports) == 2
    for role, priority in (("MASTER", 100), ("BACKUP", 90)):
        amphora = roles[role]
        port = ports[amphora["vrrp_port_id"]]
        assert amphora == {
            "id": amphora["id"],
            "loadbalancer_id": lb["id"],
            "compute_id": agent["id"],
            "lb_network_ip": None,
            "vrrp_ip": port["fixed_ips"][0]["ip_address"],
            "ha_ip": lb["vip_address"],
            "vrrp_port_id": port["id"],
            "ha_port_id": lb["vip_port_id"],
            "cert_expiration": None,
            "cert_busy": False,
            "role": role,
            "status": "ALLOCATED",
            "vrrp_interface": f"vip-{port['id'][:11]}",
            "vrrp_id": 1,
            "vrrp_priority": priority,
            "cached_zone": "az1",
            "created_at": amphora["created_at"],
            "updated_at": amphora["updated_at"],
            "image_id": None,
            "compute_flavor": None,
        }
        assert port["name"] == f"octavia-lb-vrrp-{amphora['id']}"
        assert port["fixed_ips"][0]["subnet_id"] == subnet["id"]
        assert port["port_security_enabled"] is True
        assert port["binding:host_id"] == "lbhost"
        assert port["allowed_address_pairs"] == [
            {"ip_address": lb["vip_address"], "mac_address": port["mac_address"]}
        ]
    assert roles["MASTER"]["vrrp_ip"] != roles["BACKUP"]["vrrp_ip"] != lb["vip_address"]
    (group,) = {group for port in ports.values() for group in port["security_groups"]}
    shown = api.admin.get(f"/security-groups/{group}").json()["security_group"]
    assert shown["name"] == f"lb-{lb['id']}"
    # Everything goes with the load balancer.
    assert octavia(api.demo).delete(f"/loadbalancers/{lb['id']}").status_code == 204
    realize(api)
    assert amphorae(api.admin) == [] and vrrp_ports(api) == {}
    assert api.admin.get(f"/security-groups/{group}").status_code == 404


def usage(api: Api) -> dict[str, int]:
    """What the demo project's quota counts of ports and security groups."""
    details = api.demo.get(f"/quotas/{api.demo.project_id}/details").json()["quota"]
    return {resource: details[resource]["used"] for resource in ("port", "security_group")}


def service_project(api: Api) -> str:
    projects = api.admin.http.get(
        "/identity/v3/projects",
        params={"name": "service"},
        headers={"X-Auth-Token": api.admin.token},
    )
    (service,) = projects.json()["projects"]
    return str(service["id"])


def test_vrrp_ports_belong_to_the_service_project(api: Api) -> None:
    """As Octavia's, made by its service user: the load balancer's project does not pay for them,
    and sees them only on a network of its own (Neutron shows a network's owner every port)."""
    shared = api.admin.create("networks", name="lb-shared", shared=True)
    subnet = api.admin.create("subnets", network_id=shared["id"], cidr="10.30.0.0/24", ip_version=4)
    before = usage(api)
    lb = active_standby(api, subnet)
    assert usage(api) == {"port": before["port"] + 1, "security_group": before["security_group"]}
    listed = api.demo.get("/ports", params={"network_id": shared["id"]}).json()["ports"]
    assert [port["id"] for port in listed] == [lb["vip_port_id"]]
    service = service_project(api)
    ports = vrrp_ports(api)
    assert {amphora["vrrp_port_id"] for amphora in amphorae(api.admin)} == set(ports)
    for amphora in amphorae(api.admin):
        port = ports[amphora["vrrp_port_id"]]
        assert (port["name"], port["device_owner"], port["project_id"]) == (
            f"octavia-lb-vrrp-{amphora['id']}",
            "Octavia",
            service,
        )
        (group,) = port["security_groups"]
        shown = api.admin.get(f"/security-groups/{group}").json()["security_group"]
        assert shown["project_id"] == service
        assert api.demo.get(f"/security-groups/{group}").status_code == 404
        assert api.demo.get(f"/ports/{port['id']}").status_code == 404


def test_a_network_owner_sees_the_vrrp_ports_on_it(api: Api, subnet: dict[str, Any]) -> None:
    """Neutron shows a network's owner every port on it, the service project's too; its quota
    still counts only the VIP's."""
    before = usage(api)
    lb = active_standby(api, subnet)
    assert usage(api) == {"port": before["port"] + 1, "security_group": before["security_group"]}
    listed = api.demo.get("/ports", params={"network_id": subnet["network_id"]}).json()["ports"]
    vrrp = {amphora["vrrp_port_id"] for amphora in amphorae(api.admin)}
    assert len(vrrp) == 2 and vrrp | {lb["vip_port_id"]} <= {port["id"] for port in listed}
    for port_id in vrrp:
        shown = api.demo.get(f"/ports/{port_id}").json()["port"]
        assert shown["project_id"] == service_project(api)


def test_an_upgrade_moves_earlier_vrrp_ports_to_the_service_project(
    api: Api, subnet: dict[str, Any], core: Neutrino
) -> None:
    """Those made in the load balancer's project before: the migration moves them (with their
    group and its rules) where they are made now, and back on a downgrade."""
    before = usage(api)
    active_standby(api, subnet)
    config = alembic_config(core.db.engine)

    def owners() -> set[str]:
        """The projects of its VRRP ports, their groups and the groups' rules."""
        ports = list(vrrp_ports(api).values())
        ids = {group for port in ports for group in port["security_groups"]}
        groups = [api.admin.get(f"/security-groups/{g}").json()["security_group"] for g in ids]
        rules = [rule for group in groups for rule in group["security_group_rules"]]
        assert len(ports) == 2 and len(groups) == 1 and rules
        return {item["project_id"] for item in [*ports, *groups, *rules]}

    command.downgrade(config, "0046-1")  # before the migration that moves them
    assert owners() == {api.demo.project_id}
    assert usage(api) == {
        "port": before["port"] + 3,
        "security_group": before["security_group"] + 1,
    }
    command.upgrade(config, "head")
    assert owners() == {service_project(api)}
    assert usage(api) == {"port": before["port"] + 1, "security_group": before["security_group"]}


def test_active_standby_amphora_failover_replaces_that_one(
    api: Api, subnet: dict[str, Any]
) -> None:
    lb = active_standby(api, subnet)
    old = by_role(api)
    response = call(api.admin, "PUT", f"/{old['MASTER']['id']}/failover")
    assert response.status_code == 202 and status_of(api, lb["id"]) == "PENDING_UPDATE"
    statuses = {(a["id"], a["role"], a["status"]) for a in amphorae(api.admin)}
    (new,) = [a for a in amphorae(api.admin) if a["status"] == "BOOTING"]
    assert statuses == {
        (old["MASTER"]["id"], "MASTER", "PENDING_DELETE"),
        (old["BACKUP"]["id"], "BACKUP", "ALLOCATED"),
        (new["id"], "MASTER", "BOOTING"),
    }
    assert new["vrrp_port_id"] not in (old["MASTER"]["vrrp_port_id"], old["BACKUP"]["vrrp_port_id"])
    realize(api)
    assert status_of(api, lb["id"]) == "ACTIVE"
    now = by_role(api)
    assert (now["MASTER"]["id"], now["BACKUP"]["id"]) == (new["id"], old["BACKUP"]["id"])
    assert {a["status"] for a in now.values()} == {"ALLOCATED"}
    assert set(vrrp_ports(api)) == {new["vrrp_port_id"], old["BACKUP"]["vrrp_port_id"]}


def test_active_standby_load_balancer_failover_one_at_a_time(
    api: Api, subnet: dict[str, Any]
) -> None:
    lb = active_standby(api, subnet)
    old = by_role(api)
    assert octavia(api.admin).put(f"/loadbalancers/{lb['id']}/failover").status_code == 202
    # The BACKUP first: the MASTER keeps the VIP meanwhile.
    assert {(a["role"], a["status"]) for a in amphorae(api.admin)} == {
        ("MASTER", "ALLOCATED"),
        ("BACKUP", "PENDING_DELETE"),
        ("BACKUP", "BOOTING"),
    }
    realize(api)
    assert status_of(api, lb["id"]) == "PENDING_UPDATE"
    halfway = {(a["role"], a["status"]) for a in amphorae(api.admin)}
    assert halfway == {("MASTER", "PENDING_DELETE"), ("MASTER", "BOOTING"), ("BACKUP", "ALLOCATED")}
    assert by_role(api)["BACKUP"]["id"] != old["BACKUP"]["id"]
    realize(api)
    assert status_of(api, lb["id"]) == "ACTIVE"
    now = by_role(api)
    assert {a["status"] for a in now.values()} == {"ALLOCATED"} and len(amphorae(api.admin)) == 2
    assert now["MASTER"]["id"] != old["MASTER"]["id"]
    assert now["BACKUP"]["id"] != old["BACKUP"]["id"]


def test_active_standby_failover_stops_when_a_step_fails(api: Api, subnet: dict[str, Any]) -> None:
    lb = active_standby(api, subnet)
    old = by_role(api)
    assert octavia(api.admin).put(f"/loadbalancers/{lb['id']}/failover").status_code == 202
    snapshot = api.admin.http.get(
        "/internal/v1/snapshot", headers={"X-Auth-Token": api.admin.token}
    ).json()
    (tree,) = snapshot["loadbalancers"]
    failed = {
        "revision": snapshot["revision"],
        "loadbalancers": {lb["id"]: {"revision": tree["revision"], "error": "no keepalived"}},
        "failed": {"loadbalancers": [lb["id"]]},
    }
    response = api.admin.http.post(
        "/internal/v1/agents/lbhost/report", json=failed, headers={"X-Auth-Token": api.admin.token}
    )
    assert response.status_code == 204 and status_of(api, lb["id"]) == "ERROR"
    statuses = {(a["role"], a["status"]) for a in amphorae(api.admin)}
    assert statuses == {("MASTER", "ALLOCATED"), ("BACKUP", "PENDING_DELETE"), ("BACKUP", "ERROR")}
    # A later success settles the new BACKUP; the MASTER, which the failover did not reach, stays.
    realize(api)
    assert status_of(api, lb["id"]) == "ACTIVE"
    assert by_role(api)["MASTER"]["id"] == old["MASTER"]["id"]
    assert {a["status"] for a in amphorae(api.admin)} == {"ALLOCATED"}
