"""Trunks: the resource, its subport actions, trunk_details on the parent, and Neutron's errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from neutrino.app import Neutrino
from neutrino.services import feed
from tests.conftest import Api, ApiClient
from tests.conftest import expect_error as error

Body = dict[str, Any]


def port_on(client: ApiClient, name: str = "net", **network: Any) -> Body:
    net = client.create("networks", name=name, **network)
    return client.create("ports", network_id=net["id"])


def vlan(port: Body, segment: int) -> Body:
    return {"port_id": port["id"], "segmentation_type": "vlan", "segmentation_id": segment}


def put(client: ApiClient, trunk: Body, action: str, subports: Any) -> Any:
    return client.put(f"/trunks/{trunk['id']}/{action}", json={"sub_ports": subports})


def test_create_show_list_update_delete(api: Api) -> None:
    parent, sub = port_on(api.demo), port_on(api.demo, "b")
    trunk = api.demo.create("trunks", port_id=parent["id"], name="t1", sub_ports=[vlan(sub, 101)])
    assert set(trunk) == {
        "id",
        "name",
        "description",
        "project_id",
        "tenant_id",
        "created_at",
        "updated_at",
        "revision_number",
        "tags",
        "admin_state_up",
        "status",
        "port_id",
        "sub_ports",
    }
    assert trunk["port_id"] == parent["id"]
    assert (trunk["status"], trunk["admin_state_up"], trunk["description"]) == ("DOWN", True, "")
    assert trunk["sub_ports"] == [vlan(sub, 101)]
    assert trunk["project_id"] == api.demo.project_id
    assert api.demo.get(f"/trunks/{trunk['id']}").json() == {"trunk": trunk}
    listed = api.demo.get("/trunks", params={"port_id": parent["id"]}).json()["trunks"]
    assert listed == [trunk]
    assert api.demo.get("/trunks", params={"status": "ACTIVE"}).json()["trunks"] == []

    response = api.demo.put(
        f"/trunks/{trunk['id']}", json={"trunk": {"name": "t2", "admin_state_up": False}}
    )
    assert response.status_code == 200, response.text
    updated = response.json()["trunk"]
    assert (updated["name"], updated["admin_state_up"]) == ("t2", False)
    assert updated["revision_number"] > trunk["revision_number"]
    for read_only in ({"port_id": sub["id"]}, {"status": "ACTIVE"}, {"sub_ports": []}):
        response = api.demo.put(f"/trunks/{trunk['id']}", json={"trunk": read_only})
        error(response, 400, "BadRequest")

    api.demo.put(f"/trunks/{trunk['id']}", json={"trunk": {"admin_state_up": True}})
    assert api.demo.delete(f"/trunks/{trunk['id']}").status_code == 204
    message = error(api.demo.get(f"/trunks/{trunk['id']}"), 404, "TrunkNotFound")
    assert message == f"Trunk {trunk['id']} could not be found."
    # The ports stay, and are no trunk's any more.
    assert "trunk_details" not in api.demo.get(f"/ports/{parent['id']}").json()["port"]
    assert api.demo.get(f"/ports/{sub['id']}").json()["port"]["device_owner"] == ""


def test_subport_actions_and_trunk_details(api: Api) -> None:
    parent, first, second = port_on(api.demo), port_on(api.demo, "b"), port_on(api.demo, "c")
    trunk = api.demo.create("trunks", port_id=parent["id"])
    assert trunk["sub_ports"] == []
    shown = api.demo.get(f"/ports/{parent['id']}").json()["port"]
    assert shown["trunk_details"] == {"trunk_id": trunk["id"], "sub_ports": []}
    assert "trunk_details" not in api.demo.get(f"/ports/{first['id']}").json()["port"]

    response = put(api.demo, trunk, "add_subports", [vlan(second, 202), vlan(first, 101)])
    assert response.status_code == 200, response.text
    added = response.json()  # the trunk itself, unwrapped, as Neutron answers
    assert added["id"] == trunk["id"]
    assert added["sub_ports"] == [vlan(first, 101), vlan(second, 202)]
    assert added["status"] == "DOWN"
    assert added["revision_number"] > trunk["revision_number"]
    response = api.demo.get(f"/trunks/{trunk['id']}/get_subports")
    assert response.json() == {"sub_ports": added["sub_ports"]}
    subport = api.demo.get(f"/ports/{first['id']}").json()["port"]
    assert subport["device_owner"] == "trunk:subport"
    details = {
        "trunk_id": trunk["id"],
        "sub_ports": [
            {**vlan(first, 101), "mac_address": first["mac_address"]},
            {**vlan(second, 202), "mac_address": second["mac_address"]},
        ],
    }
    assert api.demo.get(f"/ports/{parent['id']}").json()["port"]["trunk_details"] == details
    listed = api.demo.get("/ports", params={"id": parent["id"], "fields": "trunk_details"})
    assert listed.json()["ports"] == [{"trunk_details": details}]

    response = put(api.demo, trunk, "remove_subports", [{"port_id": second["id"]}])
    assert response.status_code == 200, response.text
    assert response.json()["sub_ports"] == [vlan(first, 101)]
    removed = api.admin.get(f"/ports/{second['id']}").json()["port"]
    assert (removed["device_owner"], removed["binding:host_id"]) == ("", "")
    message = error(
        put(api.demo, trunk, "remove_subports", [vlan(second, 202)]), 404, "SubPortNotFound"
    )
    assert message == f"SubPort {second['id']} on trunk {trunk['id']} could not be found."
    # A removed subport may join again, on a VLAN free again.
    assert put(api.demo, trunk, "add_subports", [vlan(second, 202)]).status_code == 200


@pytest.mark.parametrize(
    ("sub_ports", "message"),
    [
        ("x", "Invalid data format for subports: 'x' is not a list"),
        (["x"], "Invalid data format for subport: 'x' is not a dict"),
        ([{"segmentation_type": "vlan"}], "A valid port UUID must be specified"),
        ([{"port_id": "nope"}], "Invalid UUID for subport: 'nope'"),
        (
            [{"port_id": "SUB", "segmentation_type": "vlan"}],
            (
                "Invalid subport details '{'port_id': 'SUB', 'segmentation_type': 'vlan'}': "
                "missing segmentation information. Must specify both segmentation_id and "
                "segmentation_type"
            ),
        ),
        (
            [
                {"port_id": "SUB", "segmentation_type": "vlan", "segmentation_id": 7},
                {"port_id": "OTHER", "segmentation_type": "vlan", "segmentation_id": 7},
            ],
            "Segmentation ID '7' for 'OTHER' is not unique",
        ),
        ([{"port_id": "SUB"}, {"port_id": "SUB"}], "Non unique UUID for subport: 'SUB'"),
    ],
)
def test_malformed_subports(api: Api, sub_ports: Any, message: str) -> None:
    """Refused before anything is looked up (the parent here does not even exist)."""
    ids = {"SUB": str(uuid.uuid4()), "OTHER": str(uuid.uuid4())}

    def named(value: Any) -> Any:
        if isinstance(value, list):
            return [named(v) for v in value]
        if isinstance(value, dict):
            return {k: ids.get(v, v) if isinstance(v, str) else v for k, v in value.items()}
        return value

    for name, port_id in ids.items():
        message = message.replace(f"'{name}'", f"'{port_id}'")
    response = api.demo.post(
        "/trunks", json={"trunk": {"port_id": str(uuid.uuid4()), "sub_ports": named(sub_ports)}}
    )
    assert error(response, 400, "InvalidInput") == f"Invalid input for operation: {message}."
    assert api.demo.get("/trunks").json()["trunks"] == []


@pytest.mark.parametrize(
    ("subport", "message"),
    [
        (
            {"segmentation_type": "vlan", "segmentation_id": 4095},
            "Segmentation ID '4095' is not in range",
        ),
        (
            {"segmentation_type": "vlan", "segmentation_id": 0},
            "Segmentation ID '0' is not in range",
        ),
        ({"segmentation_type": "qinq", "segmentation_id": 5}, "Unknown segmentation_type 'qinq'"),
        (
            {"segmentation_type": "vlan", "segmentation_id": "five"},
            "Invalid subport details: segmentation_id 'five' is not an integer",
        ),
    ],
)
def test_segments_checked(api: Api, subport: Body, message: str) -> None:
    parent, sub = port_on(api.demo), port_on(api.demo, "b")
    trunk = api.demo.create("trunks", port_id=parent["id"])
    response = put(api.demo, trunk, "add_subports", [{"port_id": sub["id"], **subport}])
    assert error(response, 400, "InvalidInput") == f"Invalid input for operation: {message}."
    assert api.demo.get(f"/trunks/{trunk['id']}").json()["trunk"]["sub_ports"] == []
    # A string that is a number is one, as Neutron's convert_to_int has it.
    response = put(api.demo, trunk, "add_subports", [{**vlan(sub, 9), "segmentation_id": "9"}])
    assert response.json()["sub_ports"] == [vlan(sub, 9)]


def test_ports_in_use(api: Api) -> None:
    parent, sub, other = port_on(api.demo), port_on(api.demo, "b"), port_on(api.demo, "c")
    trunk = api.demo.create("trunks", port_id=parent["id"], sub_ports=[vlan(sub, 101)])

    def refused(response: Any, kind: str, message: str) -> None:
        assert error(response, 409, kind) == message

    in_use = " is currently in use and is not eligible for use as a parent port."
    refused(
        put(api.demo, trunk, "add_subports", [vlan(parent, 5)]),
        "ParentPortInUse",
        f"Port {parent['id']}{in_use}",
    )
    refused(
        api.demo.post("/trunks", json={"trunk": {"port_id": parent["id"]}}),
        "ParentPortInUse",
        f"Port {parent['id']}{in_use}",
    )
    refused(
        api.demo.post("/trunks", json={"trunk": {"port_id": sub["id"]}}),
        "TrunkPortInUse",
        f"Port {sub['id']} is in use by another trunk.",
    )
    second = api.demo.create("trunks", port_id=other["id"])
    refused(
        put(api.demo, second, "add_subports", [vlan(sub, 5)]),
        "TrunkPortInUse",
        f"Port {sub['id']} is in use by another trunk.",
    )
    refused(
        put(api.demo, second, "add_subports", [vlan(parent, 5)]),
        "ParentPortInUse",
        f"Port {parent['id']}{in_use}",
    )
    refused(
        put(api.demo, trunk, "add_subports", [vlan(port_on(api.demo, "d"), 101)]),
        "DuplicateSubPort",
        f"segmentation_type vlan and segmentation_id 101 already in use on trunk {trunk['id']}.",
    )
    plugged = port_on(api.demo, "e")
    api.demo.put(f"/ports/{plugged['id']}", json={"port": {"device_id": "vm-1"}})
    refused(
        put(api.demo, trunk, "add_subports", [vlan(plugged, 7)]),
        "PortInUse",
        f"Unable to complete operation on port {plugged['id']} for network "
        f"{plugged['network_id']}. Port already has an attached device vm-1.",
    )

    refused(
        api.demo.delete(f"/ports/{parent['id']}"),
        "PortInUseAsTrunkParent",
        f"Port {parent['id']} is currently a parent port for trunk {trunk['id']}.",
    )
    refused(
        api.demo.delete(f"/ports/{sub['id']}"),
        "PortInUseAsSubPort",
        f"Port {sub['id']} is currently a subport for trunk {trunk['id']}.",
    )
    missing = str(uuid.uuid4())
    response = put(api.demo, trunk, "add_subports", [vlan({"id": missing}, 8)])
    assert error(response, 404, "PortNotFound") == f"Port {missing} could not be found."
    response = api.demo.post("/trunks", json={"trunk": {"port_id": missing}})
    assert error(response, 404, "PortNotFound") == f"Port {missing} could not be found."
    assert [
        s["port_id"] for s in api.demo.get(f"/trunks/{trunk['id']}").json()["trunk"]["sub_ports"]
    ] == [sub["id"]]


def test_disabled_trunk_is_left_alone(api: Api) -> None:
    parent, sub = port_on(api.demo), port_on(api.demo, "b")
    trunk = api.demo.create(
        "trunks", port_id=parent["id"], admin_state_up=False, sub_ports=[vlan(sub, 101)]
    )
    disabled = f"Trunk {trunk['id']} is currently disabled."
    assert (
        error(
            put(api.demo, trunk, "add_subports", [vlan(port_on(api.demo, "c"), 5)]),
            409,
            "TrunkDisabled",
        )
        == disabled
    )
    assert (
        error(put(api.demo, trunk, "remove_subports", [vlan(sub, 101)]), 409, "TrunkDisabled")
        == disabled
    )
    assert error(api.demo.delete(f"/trunks/{trunk['id']}"), 409, "TrunkDisabled") == disabled
    assert len(api.demo.get(f"/trunks/{trunk['id']}").json()["trunk"]["sub_ports"]) == 1


def test_bound_parent(api: Api) -> None:
    """As with Neutron's Open vSwitch driver: a bound port is neither trunked nor untrunked."""
    parent = port_on(api.demo)
    api.admin.put(f"/ports/{parent['id']}", json={"port": {"binding:host_id": "h1"}})
    response = api.demo.post("/trunks", json={"trunk": {"port_id": parent["id"]}})
    assert error(response, 409, "ParentPortInUse").startswith(f"Port {parent['id']} is")
    api.admin.put(f"/ports/{parent['id']}", json={"port": {"binding:host_id": ""}})
    trunk = api.demo.create("trunks", port_id=parent["id"])
    api.admin.put(f"/ports/{parent['id']}", json={"port": {"binding:host_id": "h1"}})
    message = error(api.demo.delete(f"/trunks/{trunk['id']}"), 409, "TrunkInUse")
    assert message == f"Trunk {trunk['id']} is currently in use."
    # Subports added now go where the parent is.
    sub = port_on(api.demo, "b")
    assert put(api.demo, trunk, "add_subports", [vlan(sub, 5)]).status_code == 200
    assert api.admin.get(f"/ports/{sub['id']}").json()["port"]["binding:host_id"] == "h1"


def test_mtu_and_inherit(api: Api) -> None:
    small = api.admin.create("networks", name="small", mtu=1400, project_id=api.demo.project_id)
    parent = api.demo.create("ports", network_id=small["id"])
    trunk = api.demo.create("trunks", port_id=parent["id"])
    big = port_on(api.demo, "big", mtu=1401)
    message = error(
        put(api.demo, trunk, "add_subports", [vlan(big, 5)]),
        409,
        "SubPortMtuGreaterThanTrunkPortMtu",
    )
    assert message == (
        f"MTU 1401 of subport {big['id']} cannot be greater than MTU 1400 of trunk {parent['id']}."
    )
    equal = port_on(api.demo, "equal", mtu=1400)
    assert put(api.demo, trunk, "add_subports", [vlan(equal, 5)]).status_code == 200

    on_vlan = port_on(
        api.admin,
        "v",
        **{"provider:network_type": "vlan", "provider:physical_network": "default", "mtu": 1400},
    )
    net = api.admin.get(f"/networks/{on_vlan['network_id']}").json()["network"]
    response = put(
        api.admin,
        trunk,
        "add_subports",
        [{"port_id": on_vlan["id"], "segmentation_type": "inherit"}],
    )
    assert response.status_code == 200, response.text
    assert response.json()["sub_ports"] == [
        vlan(equal, 5),
        vlan(on_vlan, net["provider:segmentation_id"]),
    ]
    on_vxlan = port_on(api.admin, "x", **{"provider:network_type": "vxlan", "mtu": 1400})
    response = put(
        api.admin,
        trunk,
        "add_subports",
        [{"port_id": on_vxlan["id"], "segmentation_type": "inherit"}],
    )
    message = error(response, 400, "InvalidInput")
    assert message == "Invalid input for operation: Unknown segmentation_type 'vxlan'."


def test_another_projects_trunk_is_missing(api: Api) -> None:
    parent, sub = port_on(api.demo), port_on(api.demo, "b")
    trunk = api.demo.create("trunks", port_id=parent["id"], sub_ports=[vlan(sub, 101)])
    missing = f"Trunk {trunk['id']} could not be found."
    other = api.demo2
    assert error(other.get(f"/trunks/{trunk['id']}"), 404, "TrunkNotFound") == missing
    assert (
        error(
            other.put(f"/trunks/{trunk['id']}", json={"trunk": {"name": "x"}}), 404, "TrunkNotFound"
        )
        == missing
    )
    assert error(other.delete(f"/trunks/{trunk['id']}"), 404, "TrunkNotFound") == missing
    for action in ("add_subports", "remove_subports"):
        assert error(put(other, trunk, action, [vlan(sub, 101)]), 404, "TrunkNotFound") == missing
    assert error(other.get(f"/trunks/{trunk['id']}/get_subports"), 404, "TrunkNotFound") == missing
    assert other.get("/trunks").json()["trunks"] == []
    # Nor are its ports another project's to trunk.
    response = other.post("/trunks", json={"trunk": {"port_id": sub["id"]}})
    assert error(response, 404, "PortNotFound") == f"Port {sub['id']} could not be found."
    assert len(api.admin.get("/trunks").json()["trunks"]) == 1


def test_status_follows_the_parents_host(api: Api, core: Neutrino) -> None:
    """DOWN until the parent is up, BUILD while subports are being wired, then ACTIVE; the
    subports follow the parent to its host."""
    parent, sub = port_on(api.demo), port_on(api.demo, "b")
    trunk = api.demo.create("trunks", port_id=parent["id"], sub_ports=[vlan(sub, 101)])

    def status() -> str:
        return str(api.demo.get(f"/trunks/{trunk['id']}").json()["trunk"]["status"])

    feed.record_report(core.db, "h1", {"revision": 1, "ports": {parent["id"]: "ACTIVE"}})
    assert status() == "BUILD"
    assert api.admin.get(f"/ports/{sub['id']}").json()["port"]["binding:host_id"] == "h1"
    ports = {parent["id"]: "ACTIVE", sub["id"]: "ACTIVE"}
    feed.record_report(core.db, "h1", {"revision": 2, "ports": ports})
    assert status() == "ACTIVE"
    assert (
        put(api.demo, trunk, "add_subports", [vlan(port_on(api.demo, "c"), 7)]).json()["status"]
        == "DOWN"
    )
    feed.record_report(core.db, "h1", {"revision": 3, "ports": ports})
    assert status() == "BUILD"
    feed.record_report(core.db, "h1", {"revision": 4, "ports": {**ports, parent["id"]: "DOWN"}})
    assert status() == "DOWN"
    feed.record_report(core.db, "h1", {"revision": 5, "ports": ports})
    assert status() == "BUILD"
    # Unplugged (as an instance's deletion leaves it), the parent is reported by no host.
    api.admin.put(f"/ports/{parent['id']}", json={"port": {"binding:host_id": ""}})
    feed.record_report(core.db, "h2", {"revision": 6, "ports": {}})
    assert status() == "DOWN"
