"""Lists as clients read them: written as they are read, and the same bytes whichever columns
`fields` lets the server read, for every caller."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select, update

from neutrino.api.middleware import Aborted
from neutrino.db import Database, schema
from neutrino.services import floatingips, networks, ports, routers, security_groups, subnets
from neutrino.services.listing import CHUNK, Listing
from tests.api.l3 import routed_topology
from tests.conftest import Api, expect_error

# Each streamed collection: its path, its list's name and what it reads as plain columns.
STREAMED = {
    "ports": ("ports", ports.LISTING),
    "networks": ("networks", networks.LISTING),
    "subnets": ("subnets", subnets.LISTING),
    "floatingips": ("floatingips", floatingips.LISTING),
    "routers": ("routers", routers.LISTING),
    "security-groups": ("security_groups", security_groups.GROUP_LISTING),
    "security-group-rules": ("security_group_rules", security_groups.RULE_LISTING),
}
# The other collections whose lists are streamed: path and list name.
ALSO_STREAMED = {
    "trunks": "trunks",
    "address-groups": "address_groups",
    "subnetpools": "subnetpools",
    "rbac-policies": "rbac_policies",
    "qos/policies": "policies",
    "address-scopes": "address_scopes",
    "metering/metering-labels": "metering_labels",
}
# Attributes each list renders rather than reads (computed, joined, or shown to some callers).
RENDERED = {
    "ports": ["fixed_ips", "tags", "created_at", "security_groups", "binding:host_id"],
    "networks": ["shared", "subnets", "is_default", "provider:network_type", "tags"],
    "subnets": ["router:external", "created_at", "tags"],
    "floatingips": ["port_details", "port_forwardings", "updated_at"],
    "routers": ["external_gateway_info", "ha", "distributed", "availability_zones"],
    "security-groups": ["security_group_rules", "shared", "tags"],
    "security-group-rules": ["normalized_cidr", "belongs_to_default_sg", "created_at"],
}


@pytest.fixture
def world(api: Api) -> Api:
    """Something of every streamed collection, owned by demo, shared with everyone, or the
    admin's, with tags on some."""
    topology = routed_topology(api)
    shared = api.admin.create("networks", name="everyone's", shared=True)
    api.admin.create("subnets", network_id=shared["id"], cidr="10.70.0.0/24", ip_version=4)
    api.demo2.create("ports", network_id=shared["id"], name="on a shared network")
    second = api.demo.create("networks", name="second")
    for cidr in ("10.60.0.0/24", "fd00:60::/64"):
        version = 6 if ":" in cidr else 4
        api.demo.create("subnets", network_id=second["id"], cidr=cidr, ip_version=version)
    for i in range(3):
        api.demo.create("ports", network_id=topology.net["id"], name=f"p{i}", device_id=f"d{i}")
        api.demo.create("floatingips", floating_network_id=topology.ext_net["id"])
        api.demo.create("routers", name=f"r{i}")
    api.demo.create(
        "floatingips", floating_network_id=topology.ext_net["id"], port_id=topology.port["id"]
    )
    api.demo.create("security-groups", name="db")
    group = api.demo.create("security-groups", name="web", description="for the web")
    api.demo.create(
        "security-group-rules",
        security_group_id=group["id"],
        direction="ingress",
        protocol="tcp",
        port_range_min=80,
        port_range_max=80,
        remote_ip_prefix="10.1.2.3/16",
    )
    for path, resource in (("networks", topology.net), ("ports", topology.port)):
        tagged = api.demo.put(f"/{path}/{resource['id']}/tags", json={"tags": ["b", "a"]})
        assert tagged.status_code == 200, tagged.text
    return api


def cut(items: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k in fields} for item in items]


@pytest.mark.parametrize("path", list(STREAMED))
def test_fields_give_the_full_bodies_cut_to_them_byte_for_byte(world: Api, path: str) -> None:
    name, listing = STREAMED[path]
    plain = list(listing.plain)
    for client in (world.admin, world.demo, world.demo2):
        full = client.get(f"/{path}")
        assert full.status_code == 200, full.text
        # Written as it is read: no length known in advance.
        assert "content-length" not in full.headers
        items = full.json()[name]
        assert items or client is world.demo2, path
        assert full.content == orjson.dumps({name: items})
        rendered = RENDERED[path]
        assert not set(rendered) & set(plain)
        for fields in [
            *([f] for f in plain),
            plain,
            *([f] for f in rendered),
            ["id", *rendered],
            [plain[-1], rendered[0]],
            ["no_such_attribute"],
        ]:
            answer = client.get(f"/{path}", params={"fields": ",".join(fields)})
            assert answer.content == orjson.dumps({name: cut(items, fields)}), (path, fields)


@pytest.mark.parametrize("path", list(STREAMED))
def test_pages_read_by_columns_still_link_on_by_id(world: Api, path: str) -> None:
    name, listing = STREAMED[path]
    listed = world.admin.get(f"/{path}").json()[name]
    assert len(listed) >= 4, path
    ids = [item["id"] for item in listed]
    field = next(f for f in listing.plain if f != "id")
    params = {"fields": field, "limit": 2}
    first = world.admin.get(f"/{path}", params=params).json()
    assert first[name] == cut(listed[:2], [field])
    links = {link["rel"]: link["href"] for link in first[f"{name}_links"]}
    assert f"marker={ids[1]}" in links["next"] and f"marker={ids[0]}" in links["previous"]
    rest = world.admin.get(f"/{path}", params={**params, "marker": ids[1]}).json()
    assert rest[name] == cut(listed[2:4], [field])
    # Backwards, read at once (not streamed): the same items.
    back = world.admin.get(
        f"/{path}", params={**params, "marker": ids[3], "page_reverse": "True"}
    ).json()
    assert back[name] == cut(listed[1:3], [field])


@pytest.mark.parametrize("path", [*STREAMED, *ALSO_STREAMED])
@pytest.mark.parametrize("fields", [[], ["id"], ["id", "tags"]])
def test_an_empty_list_is_an_empty_array(api: Api, path: str, fields: list[str]) -> None:
    name = STREAMED[path][0] if path in STREAMED else ALSO_STREAMED[path]
    params = {"id": "none-such", "fields": ",".join(fields)}
    empty = api.demo.get(f"/{path}", params=params)
    assert empty.content == b'{"%s":[]}' % name.encode()
    assert "content-length" not in empty.headers  # streamed
    paged = api.demo.get(f"/{path}", params={**params, "limit": 2})
    assert paged.json()[name] == [] and paged.content == orjson.dumps(paged.json())
    assert [link["rel"] for link in paged.json()[f"{name}_links"]] == ["previous"]


@pytest.mark.parametrize("path", list(STREAMED))
def test_an_unknown_marker_is_404_before_anything_is_written(api: Api, path: str) -> None:
    response = api.demo.get(f"/{path}", params={"marker": "nope", "fields": "id"})
    assert expect_error(response, 404, "NotFound") == "Marker nope could not be found."


def rules_of_a_new_group(api: Api, count: int) -> str:
    """A new group of demo's holding `count` rules."""
    unlimited = {"quota": {"security_group_rule": -1}}
    assert api.admin.put(f"/quotas/{api.demo.project_id}", json=unlimited).status_code == 200
    group = api.demo.create("security-groups", name="many")
    bodies = [
        {
            "security_group_id": group["id"],
            "direction": "ingress",
            "protocol": "tcp",
            "port_range_min": port,
            "port_range_max": port,
        }
        for port in range(1, count + 1)
    ]
    created = api.demo.post("/security-group-rules", json={"security_group_rules": bodies})
    assert created.status_code == 201, created.text
    return group["id"]


def spoil_last_rule(database_url: str, group_id: str) -> None:
    """Give the group's last rule (by id) a prefix no rule can hold: it cannot be rendered."""
    rule = schema.security_group_rules
    db = Database(database_url)
    try:
        with db.engine.begin() as conn:
            last = conn.execute(
                select(func.max(rule.c.id)).where(rule.c.security_group_id == group_id)
            ).scalar_one()
            conn.execute(update(rule).where(rule.c.id == last).values(remote_ip_prefix="spoilt"))
    finally:
        db.engine.dispose()


def test_a_row_that_cannot_be_rendered_first_is_a_500(api: Api, database_url: str) -> None:
    group_id = rules_of_a_new_group(api, 1)
    spoil_last_rule(database_url, group_id)
    response = api.demo.get("/security-group-rules", params={"security_group_id": group_id})
    assert expect_error(response, 500, "HTTPInternalServerError").startswith("Request Failed")


def test_a_row_that_cannot_be_rendered_later_aborts_the_answer(api: Api, database_url: str) -> None:
    # The first chunk is written before the bad row is read: the answer cannot turn into an
    # error any more, and must not end as if it were whole.
    group_id = rules_of_a_new_group(api, CHUNK + 1)
    spoil_last_rule(database_url, group_id)
    with pytest.raises((Aborted, httpx.RemoteProtocolError)):
        api.demo.get("/security-group-rules", params={"security_group_id": group_id})
    # The server serves on.
    assert api.demo.get("/security-group-rules", params={"fields": "id"}).status_code == 200


def test_plain_attributes_are_columns_of_the_table() -> None:
    for _, listing in STREAMED.values():
        assert isinstance(listing, Listing)
        for attr in listing.plain:
            assert listing.column(attr) is not None, attr
