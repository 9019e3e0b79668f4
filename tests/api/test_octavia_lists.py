"""Octavia's lists as clients read them: written as they are read, the same bytes whichever
columns `fields` lets the server read, for every caller, and the same pages as a list sorted
whole (a sort reads the whole list, and keeps the order of objects it finds equal)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import orjson
import pytest
from sqlalchemy import func, select, text, update

from neutrino.api.middleware import Aborted
from neutrino.db import schema
from neutrino.services import lbaas, loadbalancers
from neutrino.services.listing import CHUNK
from tests.api.test_lbaas_flavors import SINGLE, flavor, flavor_profile, zone, zone_profile
from tests.api.test_loadbalancers import created, expect_fault, octavia, realize
from tests.conftest import Api, ApiClient, behind_the_api

LBAAS = "/load-balancer/v2/lbaas"
AMPHORAE = "/load-balancer/v2/octavia/amphorae"
# Each list: its path ({pool}, {policy}: in `world`), its name, what it reads as plain columns
# (none: it reads whole rows) and what it renders.
LISTS: dict[str, tuple[str, tuple[str, ...], list[str]]] = {
    "loadbalancers": (
        "loadbalancers",
        loadbalancers.LISTING.plain,
        ["created_at", "tags", "vip_vnic_type", "listeners", "pools"],
    ),
    "listeners": ("listeners", lbaas.Listeners.plain, ["loadbalancers", "default_pool_id"]),
    "pools": ("pools", lbaas.Pools.plain, ["listeners", "members", "healthmonitor_id"]),
    "pools/{pool}/members": ("members", lbaas.Members.plain, ["updated_at", "vnic_type"]),
    "healthmonitors": ("healthmonitors", lbaas.HealthMonitors.plain, ["pools", "tags"]),
    "l7policies": ("l7policies", lbaas.L7Policies.plain, ["rules", "listener_id"]),
    "l7policies/{policy}/rules": ("rules", lbaas.L7Rules.plain, ["created_at", "tags"]),
    "flavors": ("flavors", (), ["id", "name", "flavor_profile_id"]),
    "flavorprofiles": ("flavorprofiles", (), ["id", "flavor_data"]),
    "availabilityzones": ("availability_zones", (), ["name", "enabled"]),
    "availabilityzoneprofiles": ("availability_zone_profiles", (), ["id", "name"]),
    AMPHORAE: ("amphorae", (), ["id", "role", "cached_zone"]),
}
# What only administrators list (the others are refused).
ADMIN_ONLY = {"flavorprofiles", "availabilityzoneprofiles", AMPHORAE}
# Under what the links are, and what the marker is, when not `<name>_links` and `id`.
LINKS = {
    "flavorprofiles": "flavorprofile_links",
    "availabilityzoneprofiles": "availability_zone_profile_links",
}
MARKERS = {"availabilityzones": "name"}
# What does not show when it was created (a list sorted on that is the list as it streams).
UNDATED = {"flavors", "flavorprofiles", "availabilityzones", "availabilityzoneprofiles"}


def get(client: ApiClient, path: str, **params: Any) -> httpx.Response:
    url = path if path.startswith("/") else f"{LBAAS}/{path}"
    return client.http.get(url, params=params, headers={"X-Auth-Token": client.token})


@pytest.fixture
def world(api: Api) -> dict[str, str]:
    """Four of every kind: demo's load balancers (one with the tree), the admin's, flavors and
    zones; the ids of the pool and the L7 policy that hold members and rules."""
    client = octavia(api.demo)
    net = api.demo.create("networks", name="lb-net")
    subnet = api.demo.create("subnets", network_id=net["id"], cidr="10.20.0.0/24", ip_version=4)
    admin_net = api.admin.create("networks", name="admin-lb-net")
    admin_subnet = api.admin.create(
        "subnets", network_id=admin_net["id"], cidr="10.21.0.0/24", ip_version=4
    )

    def make(path: str, member: str, **body: Any) -> dict[str, Any]:
        item = created(client.post(path, json={member: body}), member)
        realize(api)
        return item

    lbs = [make("/loadbalancers", "loadbalancer", name="lb0", vip_subnet_id=subnet["id"])]
    created(
        octavia(api.admin).post(
            "/loadbalancers",
            json={"loadbalancer": {"name": "admin's", "vip_subnet_id": admin_subnet["id"]}},
        ),
        "loadbalancer",
    )
    lbs += [
        make("/loadbalancers", "loadbalancer", name=f"lb{i}", vip_subnet_id=subnet["id"])
        for i in range(1, 3)
    ]
    lb = lbs[0]["id"]
    pools = []
    for i in range(4):
        listener = make(
            "/listeners",
            "listener",
            loadbalancer_id=lb,
            protocol="HTTP",
            protocol_port=80 + i,
            name=f"l{i}",
        )
        pools.append(
            make(
                "/pools",
                "pool",
                listener_id=listener["id"],
                protocol="HTTP",
                lb_algorithm="ROUND_ROBIN",
                name=f"p{i}",
            )
        )
        make(
            "/healthmonitors",
            "healthmonitor",
            pool_id=pools[-1]["id"],
            type="HTTP",
            delay=1 + i,
            timeout=1,
            max_retries=2,
        )
        make(
            "/l7policies",
            "l7policy",
            listener_id=listener["id"],
            action="REJECT",
            name=f"policy {i}",
        )
    members = [
        {"address": f"10.20.0.{10 + i}", "protocol_port": 8080, "weight": i, "name": f"m{i}"}
        for i in range(4)
    ]
    batch = client.put(f"/pools/{pools[0]['id']}/members", json={"members": members})
    assert batch.status_code == 202, batch.text
    realize(api)
    [policy, *_] = client.get("/l7policies").json()["l7policies"]
    for i in range(4):
        make(
            f"/l7policies/{policy['id']}/rules",
            "rule",
            type="PATH",
            compare_type="STARTS_WITH",
            value=f"/{i}",
        )
    profile = flavor_profile(api, SINGLE)
    zone_data = zone_profile(api, {})
    for i in range(4):
        flavor(api, profile["id"], name=f"f{i}", enabled=i != 1)
        flavor_profile(api, SINGLE, name=f"fp{i}")
        zone(api, f"zone{i}", zone_data["id"], description=f"z{i}")
        zone_profile(api, {"compute_zone": f"nova{i}"})
    return {"pool": pools[0]["id"], "policy": policy["id"]}


def cut(items: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k in fields} for item in items]


def body(path: str, name: str, items: list[dict[str, Any]], links: list[Any]) -> bytes:
    return orjson.dumps({name: items, LINKS.get(path, f"{name}_links"): links})


@pytest.mark.parametrize("path", list(LISTS))
def test_fields_give_the_full_bodies_cut_to_them_byte_for_byte(
    api: Api, world: dict[str, str], path: str
) -> None:
    name, plain, rendered = LISTS[path]
    url = path.format(**world)
    assert not set(rendered) & set(plain)
    for client in (api.admin, api.demo, api.demo2):
        full = get(client, url)
        if client is not api.admin and path in ADMIN_ONLY:
            expect_fault(full, 403)
            continue
        if client is api.demo2 and "{" in path:  # another project's pool or policy
            expect_fault(full, 403)
            continue
        assert full.status_code == 200, full.text
        # Written as it is read: no length known in advance.
        assert "content-length" not in full.headers
        items = full.json()[name]
        assert len(items) >= 4 or client is api.demo2 or path == "loadbalancers", path
        assert full.content == body(path, name, items, [])
        attributes = list(plain) or list(items[0])
        for fields in [
            *([f] for f in attributes),
            attributes,
            *([f] for f in rendered),
            [attributes[-1], *rendered],
            ["no_such_attribute"],
        ]:
            answer = get(client, url, fields=",".join(fields))
            assert answer.content == body(path, name, cut(items, fields), []), (path, fields)
    if path == "loadbalancers":  # the admin's is the admin's alone
        assert ["admin's" in i["name"] for i in get(api.admin, url).json()[name]].count(True) == 1
        assert all(i["name"] != "admin's" for i in get(api.demo, url).json()[name])


def sorted_whole(url: str) -> str:
    """A link as a list sorted whole would give it, less the sort (to compare with one not)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "sort"]
    return parts._replace(query=urlencode(query)).geturl()


def same_as_sorted_whole(client: ApiClient, path: str, url: str, **params: Any) -> Any:
    """The answer to `params`, checked against the same list sorted whole by creation."""
    name = LISTS[path][0]
    streamed = get(client, url, **params)
    whole = get(client, url, sort="created_at", **params)
    assert whole.status_code == streamed.status_code, (params, whole.text, streamed.text)
    if streamed.status_code != 200:
        assert streamed.content == whole.content
        return streamed.json()
    assert "content-length" not in streamed.headers
    answer = streamed.json()
    assert streamed.content == orjson.dumps(answer)
    expected = whole.json()
    links = LINKS.get(path, f"{name}_links")
    for link in expected[links]:
        link["href"] = sorted_whole(link["href"])
    assert answer == expected, params
    return answer


@pytest.mark.parametrize("path", [p for p in LISTS if p not in UNDATED])
def test_pages_filters_and_markers_as_on_a_list_sorted_whole(
    api: Api, world: dict[str, str], path: str
) -> None:
    name, plain, rendered = LISTS[path]
    url = path.format(**world)
    listed = get(api.admin, url).json()[name]
    ids = [item["id"] for item in listed]
    field = (plain or rendered)[1]
    for params in [
        {},
        {"limit": 2},
        {"limit": 2, "fields": field},
        {"limit": 0},
        {"limit": -3, "fields": "id"},
        {"limit": len(listed)},
        {"marker": ids[1]},
        {"marker": ids[1], "limit": 2, "fields": field},
        {"marker": ids[-1]},
        {"marker": ids[3], "page_reverse": "True", "limit": 2},
        {"marker": ids[3], "page_reverse": "True"},
        {"marker": ids[0], "page_reverse": "True", "limit": 2},
        {"marker": "nonexistent"},
        {"limit": "two"},
        {"limit": "two", "marker": "nonexistent"},
        {field: str(listed[2][field]).upper()},
        {field: str(listed[2][field]), "marker": ids[0], "limit": 1},
        {field: str(listed[2][field]), "marker": ids[3]},
        {"l7policy_id": "ignored", "limit": 3},
        {"name": ["lb0", "LB2", "p2", "l1", "m0", "policy 2"]},
    ]:
        same_as_sorted_whole(api.admin, path, url, **params)
    if plain:  # a project's objects: another project's are refused
        expect_fault(get(api.demo, url, project_id=api.admin.project_id), 403)


@pytest.mark.parametrize("path", [*sorted(UNDATED), "pools/{pool}/members"])
def test_pages_link_on_by_their_markers(api: Api, world: dict[str, str], path: str) -> None:
    name, plain, rendered = LISTS[path]
    url, links = path.format(**world), LINKS.get(path, f"{name}_links")
    marker = MARKERS.get(path, "id")
    listed = get(api.admin, url).json()[name]
    keys = [item[marker] for item in listed]
    field = (plain or rendered)[-1]

    def page(**params: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
        answer = get(api.admin, url, fields=field, **params)
        assert "content-length" not in answer.headers
        assert answer.content == orjson.dumps(answer.json())
        return answer.json()[name], {link["rel"]: link["href"] for link in answer.json()[links]}

    first, onwards = page(limit=2)
    assert first == cut(listed[:2], [field]) and list(onwards) == ["next"]
    assert f"marker={keys[1]}" in onwards["next"]
    rest, around = page(limit=2, marker=keys[1])
    assert rest == cut(listed[2:4], [field]) and list(around) == ["previous", "next"]
    assert f"marker={keys[2]}" in around["previous"] and f"marker={keys[3]}" in around["next"]
    back, _ = page(limit=2, marker=keys[3], page_reverse="True")
    assert back == cut(listed[1:3], [field])
    last, after = page(marker=keys[-2])
    assert last == cut(listed[-1:], [field]) and list(after) == ["previous"]
    none, _ = page(marker=keys[-1])
    assert none == []
    refused = get(api.admin, url, marker="nonexistent")
    assert expect_fault(refused, 400) == "Supplied pagination marker 'nonexistent' is not valid."


@pytest.mark.parametrize("path", [p for p in LISTS if "{" not in p])
@pytest.mark.parametrize("fields", ["", "id", "id,tags"])
def test_an_empty_list_is_an_empty_array_and_no_links(api: Api, path: str, fields: str) -> None:
    name = LISTS[path][0]
    for params in [{"fields": fields}, {"fields": fields, "limit": 2}]:
        empty = get(api.admin, path, **params)
        assert empty.content == body(path, name, [], [])
        assert "content-length" not in empty.headers  # streamed


def members_of_a_new_pool(api: Api, count: int) -> str:
    client = octavia(api.demo)
    net = api.demo.create("networks", name="many")
    subnet = api.demo.create("subnets", network_id=net["id"], cidr="10.64.0.0/16", ip_version=4)
    lb = created(
        client.post("/loadbalancers", json={"loadbalancer": {"vip_subnet_id": subnet["id"]}}),
        "loadbalancer",
    )
    realize(api)
    pool = {"loadbalancer_id": lb["id"], "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}
    pool_id = created(client.post("/pools", json={"pool": pool}), "pool")["id"]
    realize(api)
    members = [
        {"address": f"10.64.{i // 250}.{i % 250 + 1}", "protocol_port": 80} for i in range(count)
    ]
    batch = client.put(f"/pools/{pool_id}/members", json={"members": members})
    assert batch.status_code == 202, batch.text
    return str(pool_id)


def spoil_last_member(database_url: str, pool_id: str) -> None:
    """Give the pool's last member (the last created) a creation time that is no time at all:
    it cannot be read."""
    member = schema.lb_members
    with behind_the_api(database_url) as conn:
        last = conn.execute(
            select(func.max(member.c.id)).where(member.c.lb_pool_id == pool_id)
        ).scalar_one()
        conn.execute(
            text("UPDATE lb_members SET created_at = '9999-99-99 spoilt' WHERE id = :id"),
            {"id": last},
        )


@pytest.fixture
def sqlite_only(database_url: str) -> str:
    if not database_url.startswith("sqlite"):
        pytest.skip("only SQLite stores a time that cannot be read")
    return database_url


def test_a_member_that_cannot_be_read_first_is_a_500(api: Api, sqlite_only: str) -> None:
    pool_id = members_of_a_new_pool(api, 1)
    spoil_last_member(sqlite_only, pool_id)
    response = get(api.demo, f"pools/{pool_id}/members")
    assert expect_fault(response, 500)


def test_a_member_that_cannot_be_read_later_aborts_the_answer(api: Api, sqlite_only: str) -> None:
    # The first chunk is written before the bad row is read: the answer cannot turn into an
    # error any more, and must not end as if it were whole.
    pool_id = members_of_a_new_pool(api, CHUNK + 1)
    spoil_last_member(sqlite_only, pool_id)
    with pytest.raises((Aborted, httpx.RemoteProtocolError)):
        get(api.demo, f"pools/{pool_id}/members")
    # The server serves on.
    assert get(api.demo, "loadbalancers", fields="id").status_code == 200


def test_objects_made_in_the_same_second_come_by_id_as_octavia_sorts_them(
    api: Api, database_url: str
) -> None:
    # Octavia's default sort keys are the creation time, then the id: the pages of a list stay
    # the same from one request to the next, whatever order the database finds rows in.
    pool_id = members_of_a_new_pool(api, 12)
    with behind_the_api(database_url) as conn:
        conn.execute(
            update(schema.lb_members)
            .where(schema.lb_members.c.lb_pool_id == pool_id)
            .values(created_at=datetime(2026, 1, 1))
        )
    ids = [m["id"] for m in get(api.demo, f"pools/{pool_id}/members").json()["members"]]
    assert len(ids) == 12 and ids == sorted(ids)
    page = get(api.demo, f"pools/{pool_id}/members", limit=5, marker=ids[3]).json()["members"]
    assert [m["id"] for m in page] == ids[4:9]
