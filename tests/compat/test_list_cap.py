"""A list answer holds at most `--pagination-max-limit` items and a `next` link to the rest
(Neutron's and Octavia's `pagination_max_limit`); the unchanged clients still list everything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import (
    ADMIN_PASSWORD,
    ApiClient,
    Databases,
    LiveServer,
    login,
    start_server,
    stop_server,
)

pytestmark = [pytest.mark.compat]

CAP = 3
NAMES = [f"cap-{i}" for i in range(7)]
LOADBALANCERS = "/load-balancer/v2/lbaas/loadbalancers"


@pytest.fixture(scope="module")
def capped(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = databases.new("sqlite")
    server = start_server(
        tmp_path_factory.mktemp("capped") / "state",
        url,
        ["--no-agent", "--pagination-max-limit", str(CAP)],
    )
    yield server
    stop_server(server)
    databases.drop(url)


@pytest.fixture(scope="module")
def admin(capped: LiveServer) -> Iterator[ApiClient]:
    with httpx.Client(base_url=capped.url) as http:
        yield login(http, "admin", ADMIN_PASSWORD, "admin")


@pytest.fixture(scope="module")
def networks(admin: ApiClient) -> list[dict[str, Any]]:
    return [admin.create("networks", name=name) for name in NAMES]


@pytest.fixture(scope="module")
def loadbalancers(admin: ApiClient, networks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    subnet = admin.create(
        "subnets", network_id=networks[0]["id"], cidr="10.60.0.0/24", ip_version=4
    )
    created = []
    for i in range(5):
        body = {"loadbalancer": {"name": f"cap-lb-{i}", "vip_subnet_id": subnet["id"]}}
        response = admin.http.post(LOADBALANCERS, headers={"X-Auth-Token": admin.token}, json=body)
        assert response.status_code == 201, response.text
        created.append(response.json()["loadbalancer"])
    return created


def follow(
    admin: ApiClient, collection: str, url: str, params: Any = None
) -> tuple[list[list[str]], list[str]]:
    """Names page by page, following `next` links; and each page's links' rels."""
    pages, rels = [], []
    while url:
        body = admin.http.get(url, params=params, headers={"X-Auth-Token": admin.token}).json()
        pages.append([item["name"] for item in body[collection]])
        links = body.get(f"{collection}_links", [])
        rels.append(",".join(link["rel"] for link in links))
        url, params = next((link["href"] for link in links if link["rel"] == "next"), ""), None
    return pages, rels


def test_a_neutron_list_stops_at_the_cap_with_a_next_link(
    admin: ApiClient, networks: list[dict[str, Any]]
) -> None:
    by_id = sorted(NAMES, key=lambda name: next(n["id"] for n in networks if n["name"] == name))
    url = "/networking/v2.0/networks"
    for limit in (None, 10, CAP):
        query = [("name", name) for name in NAMES] + ([("limit", str(limit))] if limit else [])
        pages, rels = follow(admin, "networks", url, query)
        assert pages == [by_id[0:3], by_id[3:6], by_id[6:7]]
        # Neutron links a full page both ways; a short one back only when the client asked for
        # pages (a list that the cap did not cut, unpaged, has no links at all).
        assert rels == ["next,previous", "next,previous", "previous" if limit else ""]
    pages, _ = follow(admin, "networks", url, [("name", name) for name in NAMES] + [("limit", "2")])
    assert [len(page) for page in pages] == [2, 2, 2, 1]


def test_an_octavia_list_stops_at_the_cap_with_a_next_link(
    admin: ApiClient, loadbalancers: list[dict[str, Any]]
) -> None:
    # Octavia's order: the oldest first, then by id (several are made in one second).
    oldest = sorted(loadbalancers, key=lambda lb: (lb["created_at"], lb["id"]))
    names = [lb["name"] for lb in oldest]
    for limit in (None, 10):
        pages, rels = follow(
            admin, "loadbalancers", LOADBALANCERS, {"limit": limit} if limit else None
        )
        assert pages == [names[0:3], names[3:5]]
        # As Octavia's pagination: a full page links on, a page after a marker back.
        assert rels == ["next", "previous"]
    pages, _ = follow(admin, "loadbalancers", LOADBALANCERS, {"limit": 2})
    assert pages == [names[0:2], names[2:4], names[4:5]]


def test_the_clients_list_everything_across_the_cap(
    capped: LiveServer, networks: list[dict[str, Any]], loadbalancers: list[dict[str, Any]]
) -> None:
    conn = capped.sdk()
    try:
        assert sorted(n.name for n in conn.network.networks() if n.name in NAMES) == NAMES
        names = [lb["name"] for lb in loadbalancers]
        assert sorted(lb.name for lb in conn.load_balancer.load_balancers()) == names
    finally:
        conn.close()
    assert sorted(n["Name"] for n in capped.cli("network", "list") if n["Name"] in NAMES) == NAMES
    names = [lb["name"] for lb in loadbalancers]
    assert sorted(lb["name"] for lb in capped.cli("loadbalancer", "list")) == names
