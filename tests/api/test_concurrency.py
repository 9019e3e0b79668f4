"""IPAM under concurrency: no duplicate address or MAC, clean exhaustion errors, on both
databases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import Api


def test_32_concurrent_creates_on_20_free_addresses(api: Api, settings, core) -> None:  # type: ignore[no-untyped-def]
    net = api.demo.create("networks")
    api.demo.create(
        "subnets",
        network_id=net["id"],
        cidr="10.30.0.0/24",
        ip_version=4,
        enable_dhcp=False,
        allocation_pools=[{"start": "10.30.0.10", "end": "10.30.0.29"}],
    )
    from starlette.testclient import TestClient

    from neutrino.app import create_app

    def create(_: int) -> httpx.Response:
        # One client per thread: the test client is not shared across threads.
        with TestClient(create_app(settings, core)) as client:
            return client.post(
                "/networking/v2.0/ports",
                headers={"X-Auth-Token": api.demo.token},
                json={"port": {"network_id": net["id"]}},
            )

    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(create, range(32)))
    created = [r.json()["port"] for r in responses if r.status_code == 201]
    failed = [r.json()["NeutronError"]["type"] for r in responses if r.status_code != 201]
    assert len(created) == 20
    assert failed == ["IpAddressGenerationFailure"] * 12
    ips = [p["fixed_ips"][0]["ip_address"] for p in created]
    assert len(set(ips)) == 20 and set(ips) == {f"10.30.0.{i}" for i in range(10, 30)}
    assert len({p["mac_address"] for p in created}) == 20
    listed = api.demo.get("/ports", params={"network_id": net["id"]}).json()["ports"]
    assert len(listed) == 20
