"""IPAM as clients see it: the lowest free address of the pools, exactly as many addresses as
the pools hold, addresses freed by any path handed out again, on both databases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import select
from starlette.testclient import TestClient

from neutrino import ipam
from neutrino.app import create_app
from neutrino.db import schema
from tests.conftest import Api, ApiClient, expect_error


def subnet_of(client: ApiClient, cidr: str, pools: list[tuple[str, str]], **extra: Any) -> dict:
    net = client.create("networks")
    return client.create(
        "subnets",
        network_id=net["id"],
        cidr=cidr,
        ip_version=4,
        enable_dhcp=False,
        allocation_pools=[{"start": a, "end": b} for a, b in pools],
        **extra,
    )


def new_ip(client: ApiClient, subnet: dict, **port: Any) -> str:
    created = client.create("ports", network_id=subnet["network_id"], **port)
    return created["fixed_ips"][0]["ip_address"]


def port_with(client: ApiClient, subnet: dict, address: str) -> dict:
    fixed = [{"subnet_id": subnet["id"], "ip_address": address}]
    return client.create("ports", network_id=subnet["network_id"], fixed_ips=fixed)


def exhausted(client: ApiClient, subnet: dict) -> None:
    response = client.post("/ports", json={"port": {"network_id": subnet["network_id"]}})
    message = expect_error(response, 409, "IpAddressGenerationFailure")
    assert message == (f"No more IP addresses available on network {subnet['network_id']}.")


def test_exhaustion_comes_exactly_at_the_pools_size(api: Api) -> None:
    subnet = subnet_of(
        api.demo, "10.40.0.0/24", [("10.40.0.10", "10.40.0.12"), ("10.40.0.20", "10.40.0.22")]
    )
    # Addresses asked for, inside the pools and outside them, count only where they are taken.
    port_with(api.demo, subnet, "10.40.0.11")
    port_with(api.demo, subnet, "10.40.0.100")
    got = [new_ip(api.demo, subnet) for _ in range(5)]
    assert got == ["10.40.0.10", "10.40.0.12", "10.40.0.20", "10.40.0.21", "10.40.0.22"]
    exhausted(api.demo, subnet)


def test_a_freed_address_is_the_next_one_handed_out(api: Api) -> None:
    subnet = subnet_of(api.demo, "10.41.0.0/24", [("10.41.0.10", "10.41.0.15")])
    ports = [api.demo.create("ports", network_id=subnet["network_id"]) for _ in range(6)]
    exhausted(api.demo, subnet)
    # Deleted ports give theirs back; the lowest is handed out first.
    for port in (ports[3], ports[1]):
        assert api.demo.delete(f"/ports/{port['id']}").status_code == 204
    assert [new_ip(api.demo, subnet), new_ip(api.demo, subnet)] == ["10.41.0.11", "10.41.0.13"]
    exhausted(api.demo, subnet)
    # A port moved to an address outside the pool gives its pool address back.
    moved = {"fixed_ips": [{"subnet_id": subnet["id"], "ip_address": "10.41.0.200"}]}
    response = api.demo.put(f"/ports/{ports[4]['id']}", json={"port": moved})
    assert response.status_code == 200, response.text
    assert new_ip(api.demo, subnet) == "10.41.0.14"
    exhausted(api.demo, subnet)
    # ... and the address it leaves outside the pool is never handed out.
    assert api.demo.delete(f"/ports/{ports[4]['id']}").status_code == 204
    exhausted(api.demo, subnet)


def test_freed_addresses_join_their_neighbours_until_the_pool_is_one_range_again(
    api: Api,
    core,  # type: ignore[no-untyped-def]
) -> None:
    subnet = subnet_of(api.demo, "10.45.0.0/24", [("10.45.0.10", "10.45.0.19")])
    ports = {new_ip(api.demo, subnet): None for _ in range(10)}
    listed = api.demo.get("/ports", params={"network_id": subnet["network_id"]}).json()["ports"]
    by_address = {p["fixed_ips"][0]["ip_address"]: p["id"] for p in listed}
    assert list(ports) == [f"10.45.0.{i}" for i in range(10, 20)]
    # Freed with no free neighbour, below one, above one, between two: every way of joining.
    for last in (12, 14, 13, 10, 11, 19, 18, 15, 17, 16):
        assert api.demo.delete(f"/ports/{by_address[f'10.45.0.{last}']}").status_code == 204
    with core.db.read() as conn:
        ranges = conn.execute(
            select(schema.ip_free_ranges.c.first_ip, schema.ip_free_ranges.c.last_ip).where(
                schema.ip_free_ranges.c.subnet_id == subnet["id"]
            )
        ).all()
    assert [tuple(map(str, map(ipam.from_sortable, r))) for r in ranges] == [
        ("10.45.0.10", "10.45.0.19")
    ]
    assert [new_ip(api.demo, subnet) for _ in range(10)] == list(ports)
    exhausted(api.demo, subnet)


def test_new_pools_leave_out_the_addresses_already_held(api: Api) -> None:
    subnet = subnet_of(api.demo, "10.42.0.0/24", [("10.42.0.10", "10.42.0.11")])
    held = [new_ip(api.demo, subnet) for _ in range(2)]
    port_with(api.demo, subnet, "10.42.0.31")
    pools = [
        {"start": "10.42.0.11", "end": "10.42.0.12"},
        {"start": "10.42.0.30", "end": "10.42.0.32"},
    ]
    response = api.demo.put(
        f"/subnets/{subnet['id']}", json={"subnet": {"allocation_pools": pools}}
    )
    assert response.status_code == 200, response.text
    assert held == ["10.42.0.10", "10.42.0.11"]
    got = [new_ip(api.demo, subnet) for _ in range(3)]
    assert got == ["10.42.0.12", "10.42.0.30", "10.42.0.32"]
    exhausted(api.demo, subnet)


def test_dhcp_and_router_ports_take_and_give_back_addresses(api: Api) -> None:
    subnet = subnet_of(
        api.demo, "10.43.0.0/24", [("10.43.0.10", "10.43.0.12")], gateway_ip="10.43.0.1"
    )
    router = api.demo.create("routers")
    # A router interface on another address than the gateway takes a pool address.
    port = port_with(api.demo, subnet, "10.43.0.11")
    path = f"/routers/{router['id']}"
    response = api.demo.put(f"{path}/add_router_interface", json={"port_id": port["id"]})
    assert response.status_code == 200, response.text
    enable = {"subnet": {"enable_dhcp": True}}
    assert api.demo.put(f"/subnets/{subnet['id']}", json=enable).status_code == 200
    assert new_ip(api.demo, subnet) == "10.43.0.12"
    exhausted(api.demo, subnet)
    response = api.demo.put(f"{path}/remove_router_interface", json={"port_id": port["id"]})
    assert response.status_code == 200, response.text
    disable = {"subnet": {"enable_dhcp": False}}
    assert api.demo.put(f"/subnets/{subnet['id']}", json=disable).status_code == 200
    assert [new_ip(api.demo, subnet), new_ip(api.demo, subnet)] == ["10.43.0.10", "10.43.0.11"]
    exhausted(api.demo, subnet)


def test_concurrent_creates_and_deletes_lose_and_double_no_address(
    api: Api,
    settings,
    core,  # type: ignore[no-untyped-def]
) -> None:
    subnet = subnet_of(api.demo, "10.44.0.0/24", [("10.44.0.10", "10.44.0.29")])
    first = [api.demo.create("ports", network_id=subnet["network_id"]) for _ in range(10)]
    headers = {"X-Auth-Token": api.demo.token}

    def act(i: int) -> httpx.Response:
        # One client per thread: the test client is not shared across threads.
        with TestClient(create_app(settings, core)) as client:
            if i % 2:
                path = f"/networking/v2.0/ports/{first[i // 2]['id']}"
                return client.delete(path, headers=headers)
            body = {"port": {"network_id": subnet["network_id"]}}
            return client.post("/networking/v2.0/ports", headers=headers, json=body)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(act, range(20)))
    assert [r.status_code for r in responses] == [201, 204] * 10
    # Then the pools fill up exactly: every address once, none lost.
    for _ in range(10):
        api.demo.create("ports", network_id=subnet["network_id"])
    exhausted(api.demo, subnet)
    listed = api.demo.get("/ports", params={"network_id": subnet["network_id"]}).json()["ports"]
    ips = sorted(p["fixed_ips"][0]["ip_address"] for p in listed)
    assert ips == sorted(f"10.44.0.{i}" for i in range(10, 30))
