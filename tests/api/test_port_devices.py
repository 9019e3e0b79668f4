"""A port bound to a device that something else made (a VM's tap, a container's veth):
`binding:host_id` names the host, `binding:profile` {"device": NAME} the device there (else
tap + the port id's first 11 characters); that host's plan plugs it and filters it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from neutrino.plan import HostConfig, compile_host
from neutrino.plan.firewall import groups_chain
from neutrino.plan.state import DesiredState
from tests.conftest import Api
from tests.conftest import expect_error as error


@pytest.fixture
def network(api: Api) -> dict[str, Any]:
    net = api.demo.create("networks", name="n")
    api.demo.create("subnets", network_id=net["id"], cidr="10.9.0.0/24", ip_version=4)
    return net


def bound(api: Api, network: dict[str, Any], host: str = "h1", **profile: Any) -> dict[str, Any]:
    return api.admin.create(
        "ports",
        network_id=network["id"],
        project_id=api.demo.project_id,
        **{"binding:host_id": host, "binding:profile": profile},
    )


def snapshot(api: Api) -> dict[str, Any]:
    response = api.admin.http.get(
        "/internal/v1/snapshot", headers={"X-Auth-Token": api.admin.token}
    )
    return dict(response.json())


def plan_of(api: Api, host: str) -> DesiredState:
    """The plan of `host`'s agent, from what the agent is sent."""
    return compile_host(snapshot(api), HostConfig.isolated(host))


def report_up(api: Api, host: str, port_id: str) -> None:
    """What `host`'s agent says once it has plugged the port and its device is up."""
    body = {"revision": snapshot(api)["revision"], "ports": {port_id: "ACTIVE"}}
    response = api.admin.http.post(
        f"/internal/v1/agents/{host}/report", json=body, headers={"X-Auth-Token": api.admin.token}
    )
    assert response.status_code == 204, response.text


def test_a_bound_port_names_its_device_and_the_bridge(api: Api, network: dict) -> None:
    port = bound(api, network, device="vm1-nic0", migrating_to="h2")
    assert port["binding:profile"] == {"device": "vm1-nic0", "migrating_to": "h2"}
    assert port["binding:vif_type"] == "bridge"
    assert port["binding:vif_details"] == {
        "bridge_name": f"brq{network['id'][:11]}",
        "port_filter": True,
        "connectivity": "l2",
    }
    assert port["status"] == "DOWN"
    shown = api.admin.get(f"/ports/{port['id']}").json()["port"]
    assert shown["binding:profile"] == port["binding:profile"]

    plan = plan_of(api, "h1")
    assert plan.ports[port["id"]] == "vm1-nic0"
    (link,) = [link for link in plan.links if link.name == "vm1-nic0"]
    assert (link.kind, link.master) == ("external", f"brq{network['id'][:11]}")
    # Filtered as a lab instance's tap is: its groups' chains are reached by the device's name.
    firewall = json.dumps(plan.firewall.commands)
    chain = groups_chain(tuple(port["security_groups"]), "egress")
    assert f'["vm1-nic0", {{"jump": {{"target": "{chain}"}}}}]' in firewall

    # Without a device: the tap Nova would make for it.
    plain = bound(api, network)
    assert plain["binding:profile"] == {}
    assert plan_of(api, "h1").ports[plain["id"]] == f"tap{plain['id'][:11]}"


def test_moving_a_port_to_another_device_or_host_puts_it_down(api: Api, network: dict) -> None:
    port = bound(api, network, device="vm1-nic0")
    report_up(api, "h1", port["id"])
    url = f"/ports/{port['id']}"
    assert api.admin.get(url).json()["port"]["status"] == "ACTIVE"
    moved = api.admin.put(url, json={"port": {"binding:profile": {"device": "vm1-nic1"}}})
    assert moved.status_code == 200, moved.text
    assert moved.json()["port"]["status"] == "DOWN"
    assert plan_of(api, "h1").ports[port["id"]] == "vm1-nic1"

    unbound = api.admin.put(url, json={"port": {"binding:host_id": "", "binding:profile": None}})
    body = unbound.json()["port"]
    assert (body["binding:vif_type"], body["binding:vif_details"]) == ("unbound", {})
    assert body["binding:profile"] == {}
    assert port["id"] not in plan_of(api, "h1").ports


def test_device_refusals(api: Api, network: dict) -> None:
    first = bound(api, network, device="vm1-nic0")
    taken = api.admin.post(
        "/ports",
        json={
            "port": {
                "network_id": network["id"],
                "binding:host_id": "h1",
                "binding:profile": {"device": "vm1-nic0"},
            }
        },
    )
    assert error(taken, 409, "PortDeviceInUse") == (
        f"Device vm1-nic0 on host h1 is already bound to port {first['id']}."
    )
    elsewhere = bound(api, network, host="h2", device="vm1-nic0")  # another host's device
    plain, other = bound(api, network), bound(api, network)
    tap = f"tap{plain['id'][:11]}"
    stolen = api.admin.put(
        f"/ports/{other['id']}", json={"port": {"binding:profile": {"device": tap}}}
    )
    assert error(stolen, 409, "PortDeviceInUse") == (
        f"Device {tap} on host h1 is already bound to port {plain['id']}."
    )
    onto = api.admin.put(f"/ports/{elsewhere['id']}", json={"port": {"binding:host_id": "h1"}})
    error(onto, 409, "PortDeviceInUse")

    for device, reason in (
        ("a-name-too-long", None),
        ("", "is not an interface name"),
        ("x/y", "is not an interface name"),
        ("a b", "is not an interface name"),
        ("brq0123", "is a name of the agent's own devices (prefixes brq, vxlan-, ifb)"),
        (7, "is not an interface name"),
    ):
        profile = {"device": device}
        response = api.admin.put(
            f"/ports/{plain['id']}", json={"port": {"binding:profile": profile}}
        )
        if reason is None:
            assert response.status_code == 200, response.text  # 15 characters
            continue
        assert error(response, 400, "InvalidInput") == (
            f"Invalid input for operation: '{device}' {reason}"
            + (" (1 to 15 characters, no '/', ':' or space)." if "interface" in reason else ".")
        )
    long = api.admin.put(
        f"/ports/{plain['id']}", json={"port": {"binding:profile": {"device": "a-name-too-long!"}}}
    )
    error(long, 400, "InvalidInput")
    error(
        api.admin.put(f"/ports/{plain['id']}", json={"port": {"binding:profile": "tap0"}}),
        400,
        "InvalidInput",
    )

    # An administrator's (the compute service's) to set, as binding:host_id.
    own = api.demo.create("ports", network_id=network["id"])
    refused = api.demo.put(f"/ports/{own['id']}", json={"port": {"binding:profile": {}}})
    assert error(refused, 403, "PolicyNotAuthorized") == (
        "rule:update_port:binding:profile is disallowed by policy"
    )
    created = api.demo.post(
        "/ports", json={"port": {"network_id": network["id"], "binding:profile": {}}}
    )
    error(created, 403, "PolicyNotAuthorized")
