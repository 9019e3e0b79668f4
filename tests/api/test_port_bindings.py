"""Port bindings (binding-extended): an inactive binding on the destination, activation
moves the port there (its agent's plan plugs it), the source's binding goes last."""

from __future__ import annotations

from typing import Any

import pytest

from neutrino.plan import HostConfig, compile_host
from tests.conftest import Api
from tests.conftest import expect_error as error


def binding(port: dict, host: str, status: str = "INACTIVE") -> dict[str, Any]:
    """A binding of `port` as the API shows it: plugged into its network's bridge there."""
    return {
        "host": host,
        "vif_type": "bridge",
        "vnic_type": "normal",
        "status": status,
        "profile": {},
        "vif_details": {
            "bridge_name": f"brq{port['network_id'][:11]}",
            "port_filter": True,
            "connectivity": "l2",
        },
    }


@pytest.fixture
def port(api: Api) -> dict:
    net = api.demo.create("networks", name="n")
    api.demo.create("subnets", network_id=net["id"], cidr="10.9.0.0/24", ip_version=4)
    return api.admin.create(
        "ports",
        network_id=net["id"],
        project_id=api.demo.project_id,
        device_owner="compute:nova",
        device_id="vm-1",
        **{"binding:host_id": "h1"},
    )


def bindings(api: Api, port_id: str, **params: Any) -> list[dict[str, Any]]:
    response = api.admin.get(f"/ports/{port_id}/bindings", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["bindings"])


def plugged_on(api: Api, host: str) -> set[str]:
    """The ports the plan of `host`'s agent plugs, from what the agent is sent."""
    snapshot = api.admin.http.get(
        "/internal/v1/snapshot", headers={"X-Auth-Token": api.admin.token}
    ).json()
    return set(compile_host(snapshot, HostConfig.isolated(host)).ports)


def test_live_migration_moves_the_port_by_its_bindings(api: Api, port: dict) -> None:
    url = f"/ports/{port['id']}/bindings"
    assert bindings(api, port["id"]) == [binding(port, "h1", "ACTIVE")]
    assert port["id"] in plugged_on(api, "h1")

    created = api.admin.post(url, json={"binding": {"host": "h2"}})
    assert created.status_code == 201, created.text
    assert created.json() == {"binding": binding(port, "h2")}
    shown = api.admin.get(f"{url}/h2").json()
    assert shown == {"binding": binding(port, "h2")}
    assert api.admin.get(f"{url}/h2", params={"fields": "host"}).json() == {
        "binding": {"host": "h2"}
    }
    # Still plugged where it was: an inactive binding plugs nothing.
    assert api.admin.get(f"/ports/{port['id']}").json()["port"]["binding:host_id"] == "h1"
    assert port["id"] in plugged_on(api, "h1") and port["id"] not in plugged_on(api, "h2")
    assert [b["host"] for b in bindings(api, port["id"], status="INACTIVE")] == ["h2"]
    assert [b["host"] for b in bindings(api, port["id"], sort_key="host", sort_dir="desc")] == [
        "h2",
        "h1",
    ]

    first = api.admin.get(url, params={"limit": 1}).json()
    assert [b["host"] for b in first["bindings"]] == ["h1"]
    assert "marker=h1" in first["bindings_links"][0]["href"]
    after = bindings(api, port["id"], limit=1, marker="h1")
    assert [b["host"] for b in after] == ["h2"]

    activated = api.admin.put(f"{url}/h2/activate")
    assert activated.status_code == 200, activated.text
    assert activated.json() == binding(port, "h2", "ACTIVE")
    moved = api.admin.get(f"/ports/{port['id']}").json()["port"]
    assert (moved["binding:host_id"], moved["status"]) == ("h2", "DOWN")
    assert moved["revision_number"] == port["revision_number"] + 2
    assert port["id"] in plugged_on(api, "h2") and port["id"] not in plugged_on(api, "h1")
    assert {(b["host"], b["status"]) for b in bindings(api, port["id"])} == {
        ("h2", "ACTIVE"),
        ("h1", "INACTIVE"),
    }
    again = api.admin.put(f"{url}/h2/activate")
    assert error(again, 409, "PortBindingAlreadyActive") == (
        f"Binding for port {port['id']} on host h2 is already active."
    )

    assert api.admin.delete(f"{url}/h1").status_code == 204
    assert bindings(api, port["id"]) == [binding(port, "h2", "ACTIVE")]
    gone = api.admin.get(f"{url}/h1")
    assert error(gone, 404, "PortBindingNotFound") == (
        f"Binding for port {port['id']} for host h1 could not be found."
    )
    # Deleting the active binding unbinds the port.
    assert api.admin.delete(f"{url}/h2").status_code == 204
    assert api.admin.get(f"/ports/{port['id']}").json()["port"]["binding:host_id"] == ""
    assert port["id"] not in plugged_on(api, "h2")


def test_binding_refusals(api: Api, port: dict) -> None:
    url = f"/ports/{port['id']}/bindings"
    assert api.admin.post(url, json={"binding": {"host": "h2"}}).status_code == 201
    taken = api.admin.post(url, json={"binding": {"host": "h2"}})
    assert error(taken, 409, "PortBindingAlreadyExists") == (
        f"Binding for port {port['id']} on host h2 already exists."
    )
    error(api.admin.post(url, json={"binding": {"host": "h1"}}), 409, "PortBindingAlreadyExists")
    # Moving the port by its host_id to where it has an inactive binding: activate that one.
    moved = api.admin.put(f"/ports/{port['id']}", json={"port": {"binding:host_id": "h2"}})
    error(moved, 409, "PortBindingAlreadyExists")
    error(api.admin.put(f"{url}/h3/activate"), 404, "PortBindingNotFound")
    error(api.admin.post(url, json={"binding": {}}), 400, "BadRequest")
    error(
        api.admin.post(url, json={"binding": {"host": "h3", "vnic_type": "direct"}}),
        400,
        "InvalidInput",
    )
    missing = "8d2b1c7e-0000-4000-8000-000000000000"
    error(api.admin.get(f"/ports/{missing}/bindings"), 404, "PortNotFound")

    # Only compute (and shared file system) ports have more than one binding.
    net = port["network_id"]
    plain = api.admin.create("ports", network_id=net, **{"binding:host_id": "h1"})
    refused = api.admin.post(f"/ports/{plain['id']}/bindings", json={"binding": {"host": "h2"}})
    assert error(refused, 400, "BadRequest") == (
        f"Bad port request: Invalid port {plain['id']}. Operation only valid on compute and "
        "shared filesystem ports."
    )

    # The compute service's API: a member sees no binding of its own port and changes none.
    assert api.demo.get(url).json() == {"bindings": []}
    error(api.demo.get(f"{url}/h1"), 404, "PortBindingNotFound")
    error(api.demo.post(url, json={"binding": {"host": "h3"}}), 403, "PolicyNotAuthorized")
    error(api.demo.put(f"{url}/h2/activate"), 403, "PolicyNotAuthorized")
    error(api.demo.delete(f"{url}/h2"), 403, "PolicyNotAuthorized")
    error(api.demo2.get(url), 404, "PortNotFound")
    assert {(b["host"], b["status"]) for b in bindings(api, port["id"])} == {
        ("h1", "ACTIVE"),
        ("h2", "INACTIVE"),
    }
    # A port's bindings go with it.
    assert api.admin.delete(f"/ports/{port['id']}").status_code == 204
    error(api.admin.get(url), 404, "PortNotFound")
