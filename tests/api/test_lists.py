"""Lists as clients read them: written as they are read, and the same bytes whichever columns
`fields` lets the server read, for every caller."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select, update

from neutrino.api.middleware import Aborted
from neutrino.db import schema
from neutrino.services import (
    conntrack_helpers,
    flavors,
    floatingips,
    metering,
    networks,
    port_forwardings,
    ports,
    routers,
    security_groups,
    segment_ranges,
    subnets,
)
from neutrino.services.listing import CHUNK, Listing
from tests.api.l3 import routed_topology
from tests.conftest import Api, ApiClient, behind_the_api, expect_error

# Each streamed collection: its path, its list's name and what it reads as plain columns.
STREAMED = {
    "ports": ("ports", ports.LISTING),
    "networks": ("networks", networks.LISTING),
    "subnets": ("subnets", subnets.LISTING),
    "floatingips": ("floatingips", floatingips.LISTING),
    "routers": ("routers", routers.LISTING),
    "security-groups": ("security_groups", security_groups.GROUP_LISTING),
    "security-group-rules": ("security_group_rules", security_groups.RULE_LISTING),
    "floatingips/{fip}/port_forwardings": ("port_forwardings", port_forwardings.LISTING),
    "routers/{router}/conntrack_helpers": ("conntrack_helpers", conntrack_helpers.LISTING),
    "metering/metering-label-rules": ("metering_label_rules", metering.RULES),
    "network-segment-ranges": ("network_segment_ranges", segment_ranges.LISTING),
    "flavors": ("flavors", flavors.FLAVOR_LISTING),
    "service_profiles": ("service_profiles", flavors.PROFILE_LISTING),
    "default-security-group-rules": (
        "default_security_group_rules",
        security_groups.TEMPLATE_LISTING,
    ),
    "security-groups-default-statefulness": (
        "security_groups_default_statefulness",
        security_groups.STATEFULNESS_LISTING,
    ),
}
# What only administrators list (the others get an empty list).
ADMIN_ONLY = {"network-segment-ranges", "service_profiles"}
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
    "floatingips/{fip}/port_forwardings": [
        "external_port",
        "internal_port",
        "external_port_range",
        "internal_port_range",
    ],
    "routers/{router}/conntrack_helpers": [],
    "metering/metering-label-rules": [],
    "network-segment-ranges": ["tags", "created_at", "available", "used"],
    "flavors": ["service_profiles"],
    "service_profiles": [],
    "default-security-group-rules": [],
    "security-groups-default-statefulness": [],
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


@pytest.fixture
def parents(world: Api) -> dict[str, str]:
    """Members of the child collections and of the administrators' ones in `world`; the ids of
    the parents in their paths."""
    api = world
    ext_net = api.admin.get("/networks", params={"name": "ext_net"}).json()["networks"][0]
    [vm] = api.demo.get("/ports", params={"name": "vm"}).json()["ports"]  # has a floating IP
    port = api.demo.create("ports", network_id=vm["network_id"], name="forwarded to")
    fip = api.demo.create("floatingips", floating_network_id=ext_net["id"])
    [router] = api.demo.get("/routers", params={"name": "r"}).json()["routers"]
    for i in range(4):
        forwarding = {
            "protocol": "tcp",
            "internal_port_id": port["id"],
            "internal_ip_address": port["fixed_ips"][0]["ip_address"],
            "internal_port": 22 + i,
            "external_port": 2022 + i,
            "description": f"ssh {i}",
        }
        added = api.demo.post(
            f"/floatingips/{fip['id']}/port_forwardings", json={"port_forwarding": forwarding}
        )
        assert added.status_code == 201, added.text
        helper = {"protocol": "udp", "port": 69 + i, "helper": "tftp"}
        added = api.demo.post(
            f"/routers/{router['id']}/conntrack_helpers", json={"conntrack_helper": helper}
        )
        assert added.status_code == 201, added.text
        api.admin.create(
            "network-segment-ranges",
            name=f"range {i}",
            shared=False,
            project_id=api.demo.project_id,
            network_type="vxlan",
            minimum=5000 + 10 * i,
            maximum=5002 + 10 * i,
        )
        api.admin.create("flavors", name=f"f{i}", service_type="L3_ROUTER_NAT", enabled=i != 1)
        api.admin.create("service_profiles", metainfo=f'{{"n": {i}}}', description=f"p{i}")
        api.admin.create(
            "default-security-group-rules",
            direction="ingress",
            protocol="tcp",
            port_range_min=8000 + i,
            port_range_max=8000 + i,
            used_in_default_sg=i % 2 == 0,
            used_in_non_default_sg=True,
        )
    for project in (None, api.demo.project_id, api.demo2.project_id, "elsewhere"):
        setting = {"project_id": project, "stateful": project is None}
        added = api.admin.post(
            "/security-groups-default-statefulness",
            json={"security_groups_default_statefulness": setting},
        )
        assert added.status_code == 201, added.text
    for project in (api.demo.project_id, api.admin.project_id):
        label = api.admin.post(
            "/metering/metering-labels", json={"metering_label": {"project_id": project}}
        )
        assert label.status_code == 201, label.text
        for i, prefix in enumerate(("10.0.0.0/24", "10.0.1.0/24")):
            rule = {
                "metering_label_id": label.json()["metering_label"]["id"],
                "direction": "ingress" if i else "egress",
                "remote_ip_prefix": prefix,
                "excluded": bool(i),
            }
            added = api.admin.post(
                "/metering/metering-label-rules", json={"metering_label_rule": rule}
            )
            assert added.status_code == 201, added.text
    return {"fip": fip["id"], "router": router["id"]}


def sees_some(client: ApiClient, world: Api, path: str) -> bool:
    """Whether `client` lists something of `path` in `world` (demo2 owns little of it)."""
    return client is world.admin or (client is world.demo and path not in ADMIN_ONLY)


def cut(items: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k in fields} for item in items]


@pytest.mark.parametrize("path", list(STREAMED))
def test_fields_give_the_full_bodies_cut_to_them_byte_for_byte(
    world: Api, parents: dict[str, str], path: str
) -> None:
    name, listing = STREAMED[path]
    url = "/" + path.format(**parents)
    plain = list(listing.plain)
    for client in (world.admin, world.demo, world.demo2):
        full = client.get(url)
        if "{fip}" in path and client is world.demo2:  # another project's floating IP
            expect_error(full, 404, "FloatingIPNotFound")
            continue
        assert full.status_code == 200, full.text
        # Written as it is read: no length known in advance.
        assert "content-length" not in full.headers
        items = full.json()[name]
        assert bool(items) or not sees_some(client, world, path), (path, client.project_id)
        assert full.content == orjson.dumps({name: items})
        rendered = RENDERED[path]
        assert not set(rendered) & set(plain)
        for fields in [
            *([f] for f in plain),
            plain,
            *([f] for f in rendered),
            ["id", *rendered],
            [plain[-1], *rendered[:1]],
            ["no_such_attribute"],
        ]:
            answer = client.get(url, params={"fields": ",".join(fields)})
            assert answer.content == orjson.dumps({name: cut(items, fields)}), (path, fields)


@pytest.mark.parametrize("path", list(STREAMED))
def test_pages_read_by_columns_still_link_on_by_id(
    world: Api, parents: dict[str, str], path: str
) -> None:
    name, listing = STREAMED[path]
    url = "/" + path.format(**parents)
    listed = world.admin.get(url).json()[name]
    assert len(listed) >= 4, path
    ids = [item["id"] for item in listed]
    field = next(f for f in listing.plain if f != "id")
    params = {"fields": field, "limit": 2}
    first = world.admin.get(url, params=params).json()
    assert first[name] == cut(listed[:2], [field])
    links = {link["rel"]: link["href"] for link in first[f"{name}_links"]}
    assert f"marker={ids[1]}" in links["next"] and f"marker={ids[0]}" in links["previous"]
    rest = world.admin.get(url, params={**params, "marker": ids[1]}).json()
    assert rest[name] == cut(listed[2:4], [field])
    # Backwards, read at once (not streamed): the same items.
    back = world.admin.get(url, params={**params, "marker": ids[3], "page_reverse": "True"}).json()
    assert back[name] == cut(listed[1:3], [field])


@pytest.mark.parametrize("path", [*STREAMED, *ALSO_STREAMED])
@pytest.mark.parametrize("fields", [[], ["id"], ["id", "tags"]])
def test_an_empty_list_is_an_empty_array(
    request: pytest.FixtureRequest, api: Api, path: str, fields: list[str]
) -> None:
    name = STREAMED[path][0] if path in STREAMED else ALSO_STREAMED[path]
    url = located(request, path)
    params = {"id": "none-such", "fields": ",".join(fields)}
    empty = api.demo.get(url, params=params)
    assert empty.content == b'{"%s":[]}' % name.encode()
    assert "content-length" not in empty.headers  # streamed
    paged = api.demo.get(url, params={**params, "limit": 2})
    assert paged.json()[name] == [] and paged.content == orjson.dumps(paged.json())
    assert [link["rel"] for link in paged.json()[f"{name}_links"]] == ["previous"]


@pytest.mark.parametrize("path", list(STREAMED))
def test_an_unknown_marker_is_404_before_anything_is_written(
    request: pytest.FixtureRequest, api: Api, path: str
) -> None:
    name, listing = STREAMED[path]
    url = located(request, path)
    response = api.demo.get(url, params={"marker": "nope", "fields": "id"})
    if path == "network-segment-ranges":  # the others list none, whatever the marker
        assert response.content == b'{"%s":[]}' % name.encode()
    elif listing.unseen_marker_ignored:  # Neutron's versioned objects list from the start
        assert response.content == api.demo.get(url, params={"fields": "id"}).content
    else:
        assert expect_error(response, 404, "NotFound") == "Marker nope could not be found."


def located(request: pytest.FixtureRequest, path: str) -> str:
    """The URL of `path`, in `parents` when it lives under one."""
    if "{" not in path:
        return f"/{path}"
    return "/" + path.format(**request.getfixturevalue("parents"))


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
    with behind_the_api(database_url) as conn:
        last = conn.execute(
            select(func.max(rule.c.id)).where(rule.c.security_group_id == group_id)
        ).scalar_one()
        conn.execute(update(rule).where(rule.c.id == last).values(remote_ip_prefix="spoilt"))


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
