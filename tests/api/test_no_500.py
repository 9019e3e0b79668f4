"""No request may produce a 500: every attribute of every collection, fed values of every JSON
type."""

from __future__ import annotations

import pytest

from neutrino.api.v2.networks import NETWORK, PORT, SUBNET
from neutrino.api.v2.trunks import TRUNK
from tests.conftest import Api

ODD_VALUES = [
    None,
    True,
    -1,
    0,
    70000,
    1.5,
    "",
    "x" * 300,
    "not-a-uuid",
    "10.0.0.0/33",
    "::1",
    [],
    [1],
    [{"x": 1}],
    {},
    {"a": None},
]


@pytest.mark.parametrize(
    "collection, member, shape",
    [
        ("networks", "network", NETWORK),
        ("subnets", "subnet", SUBNET),
        ("ports", "port", PORT),
        ("trunks", "trunk", TRUNK),
    ],
)
def test_odd_values_are_4xx_never_5xx(api: Api, collection: str, member: str, shape: dict) -> None:
    net = api.demo.create("networks")
    sub = api.demo.create("subnets", network_id=net["id"], cidr="10.70.0.0/24", ip_version=4)
    valid = {
        "networks": {},
        "subnets": {"network_id": net["id"], "cidr": "10.71.0.0/24", "ip_version": 4},
        "ports": {"network_id": net["id"]},
        "trunks": {"port_id": api.demo.create("ports", network_id=net["id"])["id"]},
    }[collection]
    existing = {
        "networks": net["id"],
        "subnets": sub["id"],
        "ports": api.demo.create("ports", network_id=net["id"])["id"],
        "trunks": api.demo.create(
            "trunks", port_id=api.demo.create("ports", network_id=net["id"])["id"]
        )["id"],
    }[collection]
    for attribute in shape:
        for value in ODD_VALUES:
            created = api.demo.post(f"/{collection}", json={member: {**valid, attribute: value}})
            assert created.status_code < 500, (attribute, value, created.text)
            if created.status_code == 201:
                api.admin.delete(f"/{collection}/{created.json()[member]['id']}")
            updated = api.demo.put(f"/{collection}/{existing}", json={member: {attribute: value}})
            assert updated.status_code < 500, (attribute, value, updated.text)
            listed = api.demo.get(f"/{collection}", params={attribute: str(value)})
            assert listed.status_code < 500, (attribute, value, listed.text)


def test_odd_subports_are_4xx_never_5xx(api: Api) -> None:
    net = api.demo.create("networks")
    port = api.demo.create("ports", network_id=net["id"])
    trunk = api.demo.create("trunks", port_id=api.demo.create("ports", network_id=net["id"])["id"])
    valid = {"port_id": port["id"], "segmentation_type": "vlan", "segmentation_id": 5}
    bodies: list[object] = list(ODD_VALUES)
    bodies += [[value] for value in ODD_VALUES]
    bodies += [[{**valid, key: value}] for key in valid for value in ODD_VALUES]
    bodies += [[{**valid, key: value}] * 2 for key in valid for value in ODD_VALUES]
    for sub_ports in bodies:
        for action in ("add_subports", "remove_subports"):
            response = api.demo.put(
                f"/trunks/{trunk['id']}/{action}", json={"sub_ports": sub_ports}
            )
            assert response.status_code < 500, (action, sub_ports, response.text)
            if action == "add_subports" and response.status_code == 200:
                remove = {"sub_ports": [{"port_id": port["id"]}]}
                api.demo.put(f"/trunks/{trunk['id']}/remove_subports", json=remove)
        created = api.demo.post(
            "/trunks", json={"trunk": {"port_id": trunk["port_id"], "sub_ports": sub_ports}}
        )
        assert created.status_code in (400, 404, 409), (sub_ports, created.text)
