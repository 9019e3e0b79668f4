"""UDP and SCTP listeners, pools and monitors through the Octavia API, with Octavia's rules and
fault strings (octavia/api/v2/controllers: listener, pool, health_monitor)."""

from __future__ import annotations

from typing import Any

from tests.api.test_loadbalancers import created, expect_fault, make_lb, octavia, realize, subnet
from tests.conftest import Api, ApiClient

__all__ = ["subnet"]  # the fixture


def listener(client: ApiClient, lb: dict[str, Any], protocol: str, port: int) -> Any:
    return client.post(
        "/listeners",
        json={
            "listener": {"loadbalancer_id": lb["id"], "protocol": protocol, "protocol_port": port}
        },
    )


def pool(client: ApiClient, protocol: str, **fields: Any) -> Any:
    return client.post(
        "/pools",
        json={"pool": {"protocol": protocol, "lb_algorithm": "ROUND_ROBIN", **fields}},
    )


def test_a_port_is_taken_per_transport(api: Api, subnet: dict[str, Any]) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    for protocol in ("UDP", "TCP", "SCTP"):
        created(listener(client, lb, protocol, 53), "listener")
        realize(api)
    expect_fault(
        listener(client, lb, "UDP", 53),
        409,
        "Another Listener on this Load Balancer is already using protocol UDP and protocol_port 53",
    )
    expect_fault(
        listener(client, lb, "HTTP", 53),
        409,
        "Another Listener on this Load Balancer is already using protocol TCP and protocol_port 53",
    )
    listeners = client.get(f"/listeners?loadbalancer_id={lb['id']}").json()["listeners"]
    assert sorted(li["protocol"] for li in listeners) == ["SCTP", "TCP", "UDP"]


def test_udp_and_sctp_pools_serve_only_their_own_listeners(
    api: Api, subnet: dict[str, Any]
) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    udp = created(listener(client, lb, "UDP", 53), "listener")
    realize(api)
    tcp = created(listener(client, lb, "TCP", 53), "listener")
    realize(api)
    expect_fault(
        pool(client, "UDP", listener_id=tcp["id"]),
        400,
        "Validation failure: The pool protocol 'UDP' is invalid while the listener protocol is "
        "'TCP'.",
    )
    expect_fault(
        pool(client, "SCTP", listener_id=udp["id"]),
        400,
        "Validation failure: The pool protocol 'SCTP' is invalid while the listener protocol is "
        "'UDP'.",
    )
    udp_pool = created(pool(client, "UDP", listener_id=udp["id"]), "pool")
    realize(api)
    assert (
        client.get(f"/listeners/{udp['id']}").json()["listener"]["default_pool_id"]
        == (udp_pool["id"])
    )
    expect_fault(
        client.post(
            "/l7policies", json={"l7policy": {"listener_id": udp["id"], "action": "REJECT"}}
        ),
        501,
        "Provider 'amphora' does not support a requested option: UDP protocol listeners do "
        "not support L7 policies",
    )


def test_udp_pools_persist_by_source_ip_only(api: Api, subnet: dict[str, Any]) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    on_lb = {"loadbalancer_id": lb["id"]}
    for persistence, message in (
        (
            {"type": "HTTP_COOKIE"},
            (
                "Validation failure: Session persistence of type HTTP_COOKIE is not supported for "
                "UDP/SCTP protocol pools."
            ),
        ),
        (
            {"type": "APP_COOKIE", "cookie_name": "c"},
            "Validation failure: Cookie names are not supported for UDP/SCTP pools.",
        ),
        (
            {"type": "SOURCE_IP", "cookie_name": "c"},
            (
                "Validation failure: session_persistence SOURCE_IP type for UDP and SCTP protocols "
                "only accepts: type, persistence_timeout, persistence_granularity."
            ),
        ),
    ):
        expect_fault(pool(client, "UDP", session_persistence=persistence, **on_lb), 400, message)
    assert client.get("/pools").json()["pools"] == []
    kept = {"type": "SOURCE_IP", "persistence_timeout": 60, "persistence_granularity": "255.0.0.0"}
    made = created(pool(client, "SCTP", session_persistence=kept, **on_lb), "pool")
    assert {key: made["session_persistence"][key] for key in kept} == kept
    realize(api)
    expect_fault(
        pool(client, "TCP", session_persistence=kept, **on_lb),
        400,
        "Validation failure: persistence_timeout and persistence_granularity is only for UDP and "
        "SCTP protocol pools.",
    )
    tcp = created(pool(client, "TCP", **on_lb), "pool")
    realize(api)
    expect_fault(
        client.put(f"/pools/{tcp['id']}", json={"pool": {"session_persistence": kept}}),
        400,
        "Validation failure: persistence_timeout and persistence_granularity is only for UDP "
        "protocol pools.",
    )


def test_monitors_of_udp_pools(api: Api, subnet: dict[str, Any]) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    udp = created(pool(client, "UDP", loadbalancer_id=lb["id"]), "pool")
    realize(api)
    tcp = created(pool(client, "TCP", loadbalancer_id=lb["id"]), "pool")
    realize(api)

    def monitor(pool_id: str, kind: str, delay: int) -> Any:
        body = {"pool_id": pool_id, "type": kind, "delay": delay, "timeout": 2, "max_retries": 2}
        return client.post("/healthmonitors", json={"healthmonitor": body})

    expect_fault(
        monitor(udp["id"], "PING", 5),
        400,
        "Validation failure: The associated pool protocol is UDP, so only a "
        "UDP-CONNECT/SCTP/TCP/HTTP health monitor is supported.",
    )
    expect_fault(
        monitor(udp["id"], "UDP-CONNECT", 2),
        400,
        "Validation failure: The request delay value 2 should be larger than 3 for UDP-CONNECT "
        "health monitor type.",
    )
    expect_fault(
        monitor(tcp["id"], "UDP-CONNECT", 5),
        400,
        "Validation failure: The UDP-CONNECT type is only supported for pools of type UDP/SCTP.",
    )
    made = created(monitor(udp["id"], "UDP-CONNECT", 3), "healthmonitor")
    assert (made["type"], made["delay"], made["http_method"]) == ("UDP-CONNECT", 3, None)
    realize(api)
    expect_fault(
        client.put(f"/healthmonitors/{made['id']}", json={"healthmonitor": {"delay": 1}}),
        400,
        "Validation failure: The request delay value 1 should be larger than 3 for UDP-CONNECT "
        "health monitor type.",
    )
    assert client.get(f"/healthmonitors/{made['id']}").json()["healthmonitor"]["delay"] == 3


def test_sctp_members_are_of_the_vips_family_in_a_batch_too(
    api: Api, subnet: dict[str, Any]
) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    sctp = created(listener(client, lb, "SCTP", 5060), "listener")
    realize(api)
    sctp_pool = created(pool(client, "SCTP", listener_id=sctp["id"]), "pool")
    realize(api)
    expect_fault(
        client.put(
            f"/pools/{sctp_pool['id']}/members",
            json={"members": [{"address": "fd00::5", "protocol_port": 5060}]},
        ),
        400,
        "Provider 'amphora' does not support a requested option: This provider doesn't support "
        "mixing IPv4 and IPv6 addresses for its VIP and members in SCTP load balancers.",
    )
    assert client.get(f"/pools/{sctp_pool['id']}/members").json()["members"] == []


def test_udp_members_report_health_like_haproxy_ones(api: Api, subnet: dict[str, Any]) -> None:
    client = octavia(api.demo)
    lb = make_lb(api, subnet)
    udp = created(listener(client, lb, "UDP", 53), "listener")
    realize(api)
    udp_pool = created(pool(client, "UDP", listener_id=udp["id"]), "pool")
    realize(api)
    expect_fault(
        client.post(
            f"/pools/{udp_pool['id']}/members",
            json={"member": {"address": "fd00::5", "protocol_port": 53}},
        ),
        400,
        "Provider 'amphora' does not support a requested option: This provider doesn't support "
        "mixing IPv4 and IPv6 addresses for its VIP and members in UDP load balancers.",
    )
    members = []
    for address in ("10.20.0.11", "10.20.0.12"):
        body = {"member": {"address": address, "protocol_port": 53}}
        members.append(
            created(client.post(f"/pools/{udp_pool['id']}/members", json=body), "member")
        )
        realize(api)
    monitor = {"pool_id": udp_pool["id"], "type": "UDP-CONNECT", "delay": 3, "timeout": 1}
    created(
        client.post("/healthmonitors", json={"healthmonitor": {**monitor, "max_retries": 1}}),
        "healthmonitor",
    )
    realize(api, members={members[0]["id"]: "UP", members[1]["id"]: "DOWN"})
    statuses = client.get(f"/loadbalancers/{lb['id']}/status").json()["statuses"]["loadbalancer"]
    [seen_pool] = statuses["listeners"][0]["pools"]
    assert [m["operating_status"] for m in seen_pool["members"]] == ["ONLINE", "ERROR"]
    # As Octavia's health manager: the pool and the load balancer are DEGRADED, the listener
    # (its frontend answers) stays ONLINE.
    assert (
        seen_pool["operating_status"],
        statuses["listeners"][0]["operating_status"],
        statuses["operating_status"],
    ) == ("DEGRADED", "ONLINE", "DEGRADED")
    realize(api, members={members[0]["id"]: "UP", members[1]["id"]: "UP"})
    statuses = client.get(f"/loadbalancers/{lb['id']}/status").json()["statuses"]["loadbalancer"]
    assert (statuses["operating_status"], statuses["listeners"][0]["operating_status"]) == (
        "ONLINE",
        "ONLINE",
    )
