"""Port lists as clients read them: streamed, and the same bytes whichever columns `fields`
lets the server read."""

from __future__ import annotations

import orjson

from neutrino.services.ports import LISTING
from tests.conftest import Api, expect_error


def ports_on_a_new_network(api: Api, count: int) -> str:
    net = api.demo.create("networks")
    api.demo.create(
        "subnets", network_id=net["id"], cidr="10.50.0.0/24", ip_version=4, enable_dhcp=False
    )
    for i in range(count):
        api.demo.create("ports", network_id=net["id"], name=f"p{i}", device_id=f"d{i}")
    return net["id"]


def test_fields_give_the_full_bodies_cut_to_them_byte_for_byte(api: Api) -> None:
    network_id = ports_on_a_new_network(api, 3)
    params = {"network_id": network_id}
    full = api.demo.get("/ports", params=params)
    assert full.status_code == 200
    # Written as it is read: no length known in advance.
    assert "content-length" not in full.headers
    ports = full.json()["ports"]
    assert full.content == orjson.dumps({"ports": ports})
    plain = list(LISTING.plain)
    for fields in [[name] for name in plain] + [plain, ["name", "fixed_ips"], ["tags", "id"]]:
        answer = api.demo.get("/ports", params={**params, "fields": ",".join(fields)})
        cut = [{k: v for k, v in port.items() if k in fields} for port in ports]
        assert answer.content == orjson.dumps({"ports": cut}), fields


def test_pages_read_by_columns_still_link_on_by_id(api: Api) -> None:
    network_id = ports_on_a_new_network(api, 3)
    listed = api.demo.get("/ports", params={"network_id": network_id}).json()["ports"]
    ids = [p["id"] for p in listed]
    params = {"network_id": network_id, "fields": "name", "limit": 2}
    first = api.demo.get("/ports", params=params).json()
    assert first["ports"] == [{"name": p["name"]} for p in listed[:2]]
    links = {link["rel"]: link["href"] for link in first["ports_links"]}
    assert f"marker={ids[1]}" in links["next"] and f"marker={ids[0]}" in links["previous"]
    rest = api.demo.get("/ports", params={**params, "marker": ids[1]}).json()
    assert rest["ports"] == [{"name": listed[2]["name"]}]
    assert [link["rel"] for link in rest["ports_links"]] == ["previous"]


def test_an_unknown_marker_is_404_before_anything_is_written(api: Api) -> None:
    response = api.demo.get("/ports", params={"marker": "nope", "fields": "id"})
    assert expect_error(response, 404, "NotFound") == "Marker nope could not be found."
