"""List semantics on every collection: filters, fields, sorting, pagination, tags."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from tests.conftest import Api
from tests.conftest import expect_error as error


def names(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [n["name"] for n in response.json()["networks"]]


def make(api: Api, *names_: str) -> list[dict]:
    return [api.demo.create("networks", name=n) for n in names_]


def test_filters_or_and_booleans(api: Api) -> None:
    _a, b, c = make(api, "a", "b", "c")
    api.demo.put(f"/networks/{c['id']}", json={"network": {"admin_state_up": False}})
    assert sorted(names(api.demo.get("/networks", params=[("name", "a"), ("name", "c")]))) == [
        "a",
        "c",
    ]
    assert names(api.demo.get("/networks", params={"admin_state_up": "false"})) == ["c"]
    assert names(api.demo.get("/networks", params={"id": b["id"]})) == ["b"]
    assert names(api.demo.get("/networks", params={"name": "zzz"})) == []
    error(api.demo.get("/networks", params={"colour": "red"}), 400, "HTTPBadRequest")
    error(api.demo.get("/networks", params={"admin_state_up": "maybe"}), 400, "InvalidInput")


def test_fields(api: Api) -> None:
    make(api, "a")
    items = api.demo.get("/networks", params=[("fields", "id"), ("fields", "name")]).json()[
        "networks"
    ]
    assert set(items[0]) == {"id", "name"}
    port_ids = api.demo.get("/ports", params={"fields": "id"}).json()["ports"]
    assert port_ids == []


def test_sorting_several_keys_and_invalid_keys(api: Api) -> None:
    make(api, "b", "a", "c", "a")
    asc = api.demo.get("/networks", params=[("sort_key", "name"), ("sort_dir", "asc")])
    assert names(asc) == ["a", "a", "b", "c"]
    desc = api.demo.get(
        "/networks",
        params=[
            ("sort_key", "name"),
            ("sort_dir", "desc"),
            ("sort_key", "id"),
            ("sort_dir", "asc"),
        ],
    )
    got = desc.json()["networks"]
    assert [n["name"] for n in got] == ["c", "b", "a", "a"] and got[2]["id"] < got[3]["id"]
    message = error(
        api.demo.get("/ports", params={"sort_key": "description"}), 400, "HTTPBadRequest"
    )
    assert "is invalid attribute for sort_keys" in message
    error(api.demo.get("/ports", params={"sort_key": "created_at"}), 400, "HTTPBadRequest")
    error(
        api.demo.get("/networks", params=[("sort_key", "name"), ("sort_dir", "up")]),
        400,
        "HTTPBadRequest",
    )


def test_pagination_forward_and_reverse(api: Api) -> None:
    make(api, *"abcde")
    params = [("sort_key", "name"), ("sort_dir", "asc"), ("limit", "2")]
    first = api.demo.get("/networks", params=params).json()
    assert [n["name"] for n in first["networks"]] == ["a", "b"]
    next_link = {link["rel"]: link["href"] for link in first["networks_links"]}["next"]
    query = parse_qs(urlparse(next_link).query)
    assert query["limit"] == ["2"] and query["marker"] == [first["networks"][1]["id"]]
    second = api.demo.get("/networks", params={k: v for k, v in query.items()}).json()
    assert [n["name"] for n in second["networks"]] == ["c", "d"]
    assert {link["rel"] for link in second["networks_links"]} == {"next", "previous"}
    last = api.demo.get("/networks", params=[*params, ("page_reverse", "True")]).json()
    assert [n["name"] for n in last["networks"]] == ["d", "e"]
    assert "previous" in {link["rel"] for link in last["networks_links"]}
    everything = api.demo.get("/networks", params=[("limit", "10")]).json()
    assert len(everything["networks"]) == 5
    assert [link["rel"] for link in everything["networks_links"]] == ["previous"]
    error(api.demo.get("/networks", params={"limit": "-1"}), 400, "HTTPBadRequest")


def test_a_full_page_links_onwards_to_an_empty_one(api: Api) -> None:
    make(api, *"abcd")
    params = [("sort_key", "name"), ("sort_dir", "asc"), ("limit", "2")]
    second = api.demo.get(
        "/networks",
        params=[
            *params,
            ("marker", api.demo.get("/networks", params=params).json()["networks"][1]["id"]),
        ],
    ).json()
    assert names_of(second) == ["c", "d"]
    links = {link["rel"]: link["href"] for link in second["networks_links"]}
    beyond = api.demo.get(links["next"].split("/v2.0", 1)[1]).json()
    assert beyond["networks"] == []
    assert [link["rel"] for link in beyond["networks_links"]] == ["previous"]
    first_reversed = api.demo.get("/networks", params=[*params, ("page_reverse", "True")]).json()
    assert names_of(first_reversed) == ["c", "d"]
    assert {link["rel"] for link in first_reversed["networks_links"]} == {"next", "previous"}


def names_of(page: dict) -> list[str]:
    return [n["name"] for n in page["networks"]]


def test_tags_subresource_and_filters(api: Api) -> None:
    a, b, c = make(api, "a", "b", "c")
    assert api.demo.put(f"/networks/{a['id']}/tags", json={"tags": ["red", "blue"]}).json() == {
        "tags": ["blue", "red"]
    }
    assert api.demo.put(f"/networks/{b['id']}/tags/red").status_code == 201
    assert api.demo.get(f"/networks/{b['id']}/tags/red").status_code == 204
    error(api.demo.get(f"/networks/{b['id']}/tags/blue"), 404, "TagNotFound")
    assert api.demo.get(f"/networks/{a['id']}").json()["network"]["revision_number"] == 2
    assert sorted(names(api.demo.get("/networks", params={"tags": "red"}))) == ["a", "b"]
    assert names(api.demo.get("/networks", params={"tags": "red,blue"})) == ["a"]
    assert sorted(names(api.demo.get("/networks", params={"tags-any": "blue,red"}))) == ["a", "b"]
    assert sorted(names(api.demo.get("/networks", params={"not-tags": "red"}))) == ["c"]
    assert sorted(names(api.demo.get("/networks", params={"not-tags-any": "blue"}))) == ["b", "c"]
    assert api.demo.delete(f"/networks/{a['id']}/tags/red").status_code == 204
    assert api.demo.delete(f"/networks/{b['id']}/tags").status_code == 204
    assert api.demo.get(f"/networks/{b['id']}/tags").json() == {"tags": []}
    error(api.demo.put(f"/networks/{c['id']}/tags", json={"tags": ["a,b"]}), 400, "InvalidInput")
    error(api.demo2.put(f"/networks/{c['id']}/tags/x"), 404, "NetworkNotFound")


def test_tag_filters_with_thousands_of_tags(api: Api) -> None:
    """Each tag filter is one subquery, however many tags it names (SQLite's expression depth)."""
    a, _ = make(api, "a", "b")
    api.demo.put(f"/networks/{a['id']}/tags", json={"tags": ["t0", "t1"]})
    many = ",".join(f"t{i}" for i in range(3000))
    assert names(api.demo.get("/networks", params={"tags": many})) == []
    assert names(api.demo.get("/networks", params={"tags": "t1,t0"})) == ["a"]
    assert names(api.demo.get("/networks", params={"tags-any": many})) == ["a"]
    assert sorted(names(api.demo.get("/networks", params={"not-tags": many}))) == ["a", "b"]
    assert names(api.demo.get("/networks", params={"not-tags-any": many})) == ["b"]


def test_bulk_create_is_all_or_nothing(api: Api) -> None:
    net = api.demo.create("networks")
    api.demo.create(
        "subnets", network_id=net["id"], cidr="10.20.0.0/24", ip_version=4, enable_dhcp=False
    )
    ok = api.demo.post(
        "/ports", json={"ports": [{"network_id": net["id"]}, {"network_id": net["id"]}]}
    )
    assert ok.status_code == 201 and len(ok.json()["ports"]) == 2
    revision = feed_revision(api)
    bad = api.demo.post(
        "/ports",
        json={
            "ports": [
                {"network_id": net["id"]},
                {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.20.0.2"}]},
            ]
        },
    )
    error(bad, 409, "IpAddressAlreadyAllocated")
    assert len(api.demo.get("/ports", params={"network_id": net["id"]}).json()["ports"]) == 2
    assert feed_revision(api) == revision  # nothing was written: agents saw no port come and go


def feed_revision(api: Api) -> int:
    headers = {"X-Auth-Token": api.admin.token}
    snapshot = api.admin.http.get("/internal/v1/snapshot", headers=headers)
    return int(snapshot.json()["revision"])


def test_integer_filters_beyond_the_columns_are_400(api: Api) -> None:
    """PostgreSQL's INTEGER holds 32 bits and SQLite's 64: a larger filter is the client's error."""
    net = api.demo.create("networks", mtu=1450)
    found = api.demo.get("/networks", params={"mtu": "1450"}).json()["networks"]
    assert [n["id"] for n in found] == [net["id"]]
    for collection, attribute in [
        ("networks", "revision_number"),
        ("networks", "mtu"),
        ("networks", "provider:segmentation_id"),
        ("subnets", "ip_version"),
        ("security-group-rules", "port_range_min"),
    ]:
        for value in ("2147483648", "-2147483649", "99999999999999999999"):
            response = api.admin.get(f"/{collection}", params={attribute: value})
            assert "is not in range" in error(response, 400, "InvalidInput"), (attribute, value)


def test_bulk_create_takes_items_bare_or_wrapped(api: Api) -> None:
    created = api.demo.post(
        "/security-groups",
        json={"security_groups": [{"security_group": {"name": "wrapped"}}, {"name": "bare"}]},
    )
    assert created.status_code == 201, created.text
    assert [g["name"] for g in created.json()["security_groups"]] == ["wrapped", "bare"]


def test_tags_posted_are_added_to_those_there(api: Api) -> None:
    (a,) = make(api, "a")
    api.demo.put(f"/networks/{a['id']}/tags", json={"tags": ["red"]})
    added = api.demo.post(f"/networks/{a['id']}/tags", json={"tags": ["red", "green", "blue"]})
    assert added.status_code == 201 and added.json() == {"tags": ["red", "green", "blue"]}
    assert api.demo.get(f"/networks/{a['id']}/tags").json() == {"tags": ["blue", "green", "red"]}
    again = api.demo.post(f"/networks/{a['id']}/tags", json={"tags": ["red"]})
    assert again.status_code == 201
    assert api.demo.get(f"/networks/{a['id']}").json()["network"]["revision_number"] == 3
    # Checked as Neutron checks them, changing nothing.
    for body, status, kind, message in [
        ({"tag": ["x"]}, 400, "InvalidInput", "Invalid input for operation: Invalid tags body."),
        (
            {"tags": ["x", "x"]},
            400,
            "InvalidInput",
            "Invalid input for operation: Duplicate items in the list: 'x'.",
        ),
        (
            {"tags": [f"t{i}" for i in range(51)]},
            400,
            "BadRequest",
            "Bad network request: The number of tags exceed the per-resource limit of 50.",
        ),
    ]:
        assert error(api.demo.post(f"/networks/{a['id']}/tags", json=body), status, kind) == message
    assert api.demo.get(f"/networks/{a['id']}/tags").json() == {"tags": ["blue", "green", "red"]}
    refused = api.demo2.post(f"/networks/{a['id']}/tags", json={"tags": ["x"]})
    error(refused, 404, "NetworkNotFound")


def test_ports_are_tagged_on_creation_one_or_many(api: Api) -> None:
    (net,) = make(api, "n")
    port = api.demo.create("ports", network_id=net["id"], tags=["b", "a"])
    assert port["tags"] == ["a", "b"] and port["revision_number"] == 1
    assert api.demo.get(f"/ports/{port['id']}/tags").json() == {"tags": ["a", "b"]}
    bulk = api.demo.post(
        "/ports",
        json={
            "ports": [
                {"port": {"network_id": net["id"], "tags": ["t1", "t2"]}},
                {"port": {"network_id": net["id"]}},
            ]
        },
    )
    assert [p["tags"] for p in bulk.json()["ports"]] == [["t1", "t2"], []]
    listed = api.demo.get("/ports", params={"tags": "t1"}).json()["ports"]
    assert [p["id"] for p in listed] == [bulk.json()["ports"][0]["id"]]
    bad = api.demo.post("/ports", json={"port": {"network_id": net["id"], "tags": "t1"}})
    assert error(bad, 400, "InvalidInput") == "Invalid input for operation: 't1' is not a list."
    update = api.demo.put(f"/ports/{port['id']}", json={"port": {"tags": ["c"]}})
    error(update, 400, "BadRequest")
    # Other resources take tags through /tags only, as in Neutron.
    network = api.demo.post("/networks", json={"network": {"name": "x", "tags": ["a"]}})
    error(network, 400, "BadRequest")


def test_a_collection_answers_with_dashes_or_underscores(api: Api) -> None:
    # Neutron finds /security_groups as /security-groups (openstacksdk asks for
    # /network_segment_ranges, tempest for /network-segment-ranges).
    group = api.demo.create("security-groups", name="web")
    for path in ("/security-groups", "/security_groups"):
        listed = api.demo.get(path, params={"name": "web"}).json()["security_groups"]
        assert [g["id"] for g in listed] == [group["id"]]
        shown = api.demo.get(f"{path}/{group['id']}").json()["security_group"]
        assert shown["id"] == group["id"]
        assert api.demo.put(f"{path}/{group['id']}/tags/blue").status_code == 201
    ranges = [
        api.admin.get(path).json()["network_segment_ranges"]
        for path in ("/network-segment-ranges", "/network_segment_ranges")
    ]
    assert ranges[0] == ranges[1] != []
