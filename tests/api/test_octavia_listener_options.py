"""Octavia's listener options (inserted headers, allowed CIDRs, PROMETHEUS), the members' batch
update and the operating statuses Octavia derives, in-process on both databases."""

from __future__ import annotations

from typing import Any

from tests.api.test_loadbalancers import created, expect_fault, make_lb, octavia, realize, subnet
from tests.conftest import Api, ApiClient

__all__ = ["subnet"]  # the fixture


def listener(client: ApiClient, lb: dict[str, Any], **values: Any) -> dict[str, Any]:
    body = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80, **values}
    return created(client.post("/listeners", json={"listener": body}), "listener")


def pool(client: ApiClient, **values: Any) -> dict[str, Any]:
    body = {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", **values}
    return created(client.post("/pools", json={"pool": body}), "pool")


def test_insert_headers_as_octavia_validates_and_shows_them(
    api: Api, subnet: dict[str, Any]
) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    post = {"loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 81}
    expect_fault(
        client.post(
            "/listeners", json={"listener": {**post, "insert_headers": {"X-Forwarded-For": "true"}}}
        ),
        400,
        "insert-headers is not a valid option for a TCP protocol listener.",
    )
    post["protocol"] = "HTTP"
    refusals = {
        "X-Forwarded-Host": "dict_keys(['X-Forwarded-Host']) is not a valid option for "
        "insert_headers",
        "X-SSL-Client-DN": "['X-SSL-Client-DN'] is not a valid option for HTTP protocol listener.",
    }
    for header, message in refusals.items():
        response = client.post(
            "/listeners", json={"listener": {**post, "insert_headers": {header: "true"}}}
        )
        assert expect_fault(response, 400) == message
    assert client.get("/listeners").json()["listeners"] == []

    headers = {"X-Forwarded-For": "true", "X-Forwarded-Port": "true", "X-Forwarded-Proto": "true"}
    made = listener(client, lb, insert_headers=headers)
    assert made["insert_headers"] == headers
    realize(api)
    assert client.get(f"/listeners/{made['id']}").json()["listener"]["insert_headers"] == headers
    update = client.put(
        f"/listeners/{made['id']}", json={"listener": {"insert_headers": {"X-Forwarded-Host": "1"}}}
    )
    assert (
        expect_fault(update, 400) == "['X-Forwarded-Host'] is not a valid option for insert_headers"
    )
    update = client.put(
        f"/listeners/{made['id']}", json={"listener": {"insert_headers": {"X-Forwarded-For": "1"}}}
    )
    assert update.json()["listener"]["insert_headers"] == {"X-Forwarded-For": "1"}
    realize(api)
    plain = listener(client, lb, protocol_port=82)
    assert plain["insert_headers"] == {}


def test_allowed_cidrs_as_octavia_validates_stores_and_shows_them(
    api: Api, subnet: dict[str, Any]
) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    post = {"loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 80}
    mixed = client.post(
        "/listeners",
        json={"listener": {**post, "allowed_cidrs": ["192.0.1.0/24", "2001:db8:a0b:12f0::/64"]}},
    )
    assert expect_fault(mixed, 400) == (
        "Validation failure: CIDR 2001:db8:a0b:12f0::/64 IP version incompatible with all VIPs "
        f"['{lb['vip_address']}'] IP version."
    )
    bad = client.post("/listeners", json={"listener": {**post, "allowed_cidrs": ["nope"]}})
    assert expect_fault(bad, 400) == (
        "Invalid input for field/attribute allowed_cidrs. Value: '['nope']'. "
        "Value should be IPv4 or IPv6 CIDR format"
    )
    made = listener(
        client, lb, protocol="TCP", allowed_cidrs=["192.0.1.7/24", "10.0.0.0/8", "192.0.1.0/24"]
    )
    assert made["allowed_cidrs"] == ["192.0.1.0/24", "10.0.0.0/8"]
    realize(api)
    shown = client.get(f"/listeners/{made['id']}").json()["listener"]
    assert shown["allowed_cidrs"] == ["192.0.1.0/24", "10.0.0.0/8"]
    update = client.put(
        f"/listeners/{made['id']}", json={"listener": {"allowed_cidrs": ["2001:db8::/32"]}}
    )
    assert expect_fault(update, 400).startswith("Validation failure: CIDR 2001:db8::/32 IP")
    for cleared in ([], None):
        update = client.put(
            f"/listeners/{made['id']}", json={"listener": {"allowed_cidrs": cleared}}
        )
        assert update.json()["listener"]["allowed_cidrs"] is None
        realize(api)
    assert listener(client, lb, protocol_port=81)["allowed_cidrs"] is None


def test_prometheus_listeners_take_no_children(api: Api, subnet: dict[str, Any]) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    standalone = pool(client, loadbalancer_id=lb["id"])
    realize(api)
    childless = "Protocol PROMETHEUS listeners cannot have child objects."
    with_pool = client.post(
        "/listeners",
        json={
            "listener": {
                "loadbalancer_id": lb["id"],
                "protocol": "PROMETHEUS",
                "protocol_port": 9100,
                "default_pool_id": standalone["id"],
            }
        },
    )
    assert expect_fault(with_pool, 400) == childless
    metrics = listener(client, lb, protocol="PROMETHEUS", protocol_port=9100)
    assert (metrics["protocol"], metrics["insert_headers"]) == ("PROMETHEUS", {})
    realize(api)
    shown = client.get(f"/listeners/{metrics['id']}").json()["listener"]
    assert (shown["provisioning_status"], shown["operating_status"]) == ("ACTIVE", "ONLINE")
    refusals = [
        client.post(
            "/pools",
            json={
                "pool": {
                    "listener_id": metrics["id"],
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                }
            },
        ),
        client.post(
            "/l7policies", json={"l7policy": {"listener_id": metrics["id"], "action": "REJECT"}}
        ),
        client.put(
            f"/listeners/{metrics['id']}", json={"listener": {"default_pool_id": standalone["id"]}}
        ),
        client.put(
            f"/listeners/{metrics['id']}",
            json={"listener": {"insert_headers": {"X-Forwarded-For": "true"}}},
        ),
    ]
    assert [expect_fault(r, 400) for r in refusals] == [childless] * 3 + [
        "insert-headers is not a valid option for a PROMETHEUS protocol listener."
    ]


def members_of(client: ApiClient, pool_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    return {
        (m["address"], m["protocol_port"]): m
        for m in client.get(f"/pools/{pool_id}/members").json()["members"]
    }


def test_members_batch_update_creates_updates_and_deletes_in_one_change(
    api: Api, subnet: dict[str, Any]
) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    target = pool(client, loadbalancer_id=lb["id"])
    realize(api)
    path = f"/pools/{target['id']}/members"
    for address, port, name in (("192.0.2.1", 80, "one"), ("192.0.2.3", 81, "two")):
        body = {"address": address, "protocol_port": port, "name": name, "weight": 50}
        created(client.post(path, json={"member": body}), "member")
        realize(api)
    before = members_of(client, target["id"])
    two = before[("192.0.2.3", 81)]

    # Another project is refused; a busy load balancer too; nothing changes.
    other = octavia(api.demo2).put(path, json={"members": []})
    assert expect_fault(other, 403) == "Policy does not allow this request to be performed."
    twice = [{"address": "192.0.2.3", "protocol_port": 81}] * 2
    assert expect_fault(client.put(path, json={"members": twice}), 400) == (
        "Validation failure: Member must be updated only once in the same request."
    )
    missing = client.put(path, json={"members": [{"address": "192.0.2.9"}]})
    assert expect_fault(missing, 400) == (
        "Invalid input for field/attribute protocol_port. Value: 'None'. Mandatory field missing."
    )
    missing = "6b1c4f5e-8a3d-4e21-9c0f-2d7e5a9b3c11"
    nowhere = {"address": "192.0.2.9", "protocol_port": 80, "subnet_id": missing}
    assert expect_fault(client.put(path, json={"members": [nowhere]}), 404) == (
        f"Subnet {missing} not found."
    )
    assert members_of(client, target["id"]) == before

    batch = [
        {"address": "192.0.2.3", "protocol_port": 81, "name": "two-new", "backup": True},
        {"address": "192.0.2.5", "protocol_port": 82, "name": "three", "weight": 52},
    ]
    response = client.put(path, json={"members": batch})
    assert (response.status_code, response.content) == (202, b"")
    after = members_of(client, target["id"])
    assert after[("192.0.2.1", 80)]["provisioning_status"] == "PENDING_DELETE"
    updated, new = after[("192.0.2.3", 81)], after[("192.0.2.5", 82)]
    # Given fields change; weight goes back to Octavia's default; the rest is kept.
    assert (updated["id"], updated["name"], updated["backup"], updated["weight"]) == (
        two["id"],
        "two-new",
        True,
        1,
    )
    assert updated["provisioning_status"] == "PENDING_UPDATE"
    assert (new["name"], new["weight"], new["provisioning_status"]) == (
        "three",
        52,
        "PENDING_CREATE",
    )
    shown = client.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"]
    assert shown["provisioning_status"] == "PENDING_UPDATE"
    expect_fault(client.put(path, json={"members": batch}), 409, "immutable")
    realize(api)
    after = members_of(client, target["id"])
    assert sorted(after) == [("192.0.2.3", 81), ("192.0.2.5", 82)]
    assert {m["provisioning_status"] for m in after.values()} == {"ACTIVE"}

    # additive_only keeps the members the body leaves out.
    extra = [{"address": "192.0.2.7", "protocol_port": 83}]
    assert client.put(f"{path}?additive_only=true", json={"members": extra}).status_code == 202
    realize(api)
    assert len(members_of(client, target["id"])) == 3

    # The quota counts what the batch adds net of what it deletes.
    admin = octavia(api.admin)
    admin.put(f"/quotas/{api.demo.project_id}", json={"quota": {"member": 3}})
    four = [*batch, *extra, {"address": "192.0.2.8", "protocol_port": 84}]
    assert expect_fault(client.put(path, json={"members": four}), 403) == (
        "Quota has been met for resources: Member"
    )
    swap = [*batch, {"address": "192.0.2.8", "protocol_port": 84}]
    assert client.put(path, json={"members": swap}).status_code == 202
    realize(api)
    assert sorted(members_of(client, target["id"])) == [
        ("192.0.2.3", 81),
        ("192.0.2.5", 82),
        ("192.0.2.8", 84),
    ]
    # Emptying the pool deletes them all; an empty batch on an empty pool changes nothing.
    assert client.put(path, json={"members": []}).status_code == 202
    realize(api)
    assert members_of(client, target["id"]) == {}
    assert client.put(path, json={"members": []}).status_code == 202
    assert (
        client.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"]["provisioning_status"]
        == "ACTIVE"
    )


def test_statuses_as_octavia_derives_them(api: Api, subnet: dict[str, Any]) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    front = listener(client, lb)
    realize(api)
    served = pool(client, listener_id=front["id"])
    realize(api)
    alone = pool(client, loadbalancer_id=lb["id"])
    realize(api)
    # A pool on no listener is not in haproxy's configuration: OFFLINE, as Octavia keeps it.
    assert client.get(f"/pools/{alone['id']}").json()["pool"]["operating_status"] == "OFFLINE"
    assert client.get(f"/pools/{served['id']}").json()["pool"]["operating_status"] == "ONLINE"
    ids = []
    for address in ("10.20.0.11", "2001:db8:0:0::0001"):
        body = {"address": address, "protocol_port": 80, "monitor_address": address}
        member = created(
            client.post(f"/pools/{served['id']}/members", json={"member": body}), "member"
        )
        # The address as given, not compressed (Octavia stores the string).
        assert (member["address"], member["monitor_address"]) == (address, address)
        assert member["operating_status"] == "NO_MONITOR"
        ids.append(member["id"])
        realize(api)
    monitor = {"pool_id": served["id"], "type": "TCP", "delay": 1, "timeout": 1, "max_retries": 1}
    created(client.post("/healthmonitors", json={"healthmonitor": monitor}), "healthmonitor")
    realize(api, {ids[0]: "UP", ids[1]: "DOWN"})

    def statuses() -> tuple[str, str, str, list[str]]:
        tree = client.get(f"/loadbalancers/{lb['id']}/status").json()["statuses"]["loadbalancer"]
        tree_listener = tree["listeners"][0]
        tree_pool = tree_listener["pools"][0]
        return (
            tree["operating_status"],
            tree_listener["operating_status"],
            tree_pool["operating_status"],
            [m["operating_status"] for m in tree_pool["members"]],
        )

    # A member down degrades its pool and the load balancer, not the listener.
    assert statuses() == ("DEGRADED", "ONLINE", "DEGRADED", ["ONLINE", "ERROR"])
    # No member able to serve: the pool and the load balancer are in ERROR.
    realize(api, {ids[0]: "DOWN", ids[1]: "DOWN"})
    assert statuses() == ("ERROR", "ONLINE", "ERROR", ["ERROR", "ERROR"])
    # A monitored member haproxy does not report is OFFLINE.
    realize(api, {ids[0]: "UP"})
    assert statuses() == ("ONLINE", "ONLINE", "ONLINE", ["ONLINE", "OFFLINE"])
    # Members of a pool on no listener keep the status they were created with.
    lone = created(
        client.post(
            f"/pools/{alone['id']}/members",
            json={"member": {"address": "10.20.0.12", "protocol_port": 80}},
        ),
        "member",
    )
    realize(api, {ids[0]: "UP", ids[1]: "UP", lone["id"]: "UP"})
    shown = client.get(f"/pools/{alone['id']}/members/{lone['id']}").json()["member"]
    assert shown["operating_status"] == "NO_MONITOR"
    # A health monitor is ONLINE once realized while enabled, whether its pool is used or not.
    idle = {"pool_id": alone["id"], "type": "PING", "delay": 1, "timeout": 1, "max_retries": 1}
    idle = created(client.post("/healthmonitors", json={"healthmonitor": idle}), "healthmonitor")
    realize(api)
    shown = client.get(f"/healthmonitors/{idle['id']}").json()["healthmonitor"]
    assert shown["operating_status"] == "ONLINE"
    client.put(f"/healthmonitors/{idle['id']}", json={"healthmonitor": {"admin_state_up": False}})
    realize(api)
    shown = client.get(f"/healthmonitors/{idle['id']}").json()["healthmonitor"]
    assert shown["operating_status"] == "OFFLINE"
