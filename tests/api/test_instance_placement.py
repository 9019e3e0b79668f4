"""Where lab instances run: the host an administrator names, or the one Nova's scheduler would
pick among the hosts whose agents report (through the real report endpoint, as agents do)."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from neutrino.config import Settings
from tests.api.test_agents import agents_by_type, heartbeat
from tests.conftest import Api, eventually
from tests.conftest import expect_error as error

# seconds: Neutron's agent_down_time, short enough to watch an agent die, long enough for the
# others to live through a test on a busy machine
DOWN_TIME = 10.0
NO_HOST = (
    "No valid host was found. No host with a live Linux bridge agent that is up can realize "
    "the instance's networks."
)


# A short agent_down_time is the application's setting: in-process on both backends.
pytestmark = pytest.mark.in_process


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, agent_down_time=DOWN_TIME)


def create(api: Api, who: str = "demo", **instance: Any) -> httpx.Response:
    client = getattr(api, who)
    return client.http.post(
        "/lab/v1/instances", headers={"X-Auth-Token": client.token}, json={"instance": instance}
    )


def placed(api: Api, network_id: str, name: str = "vm", **options: Any) -> dict[str, Any]:
    response = create(api, name=name, networks=[{"network_id": network_id}], **options)
    assert response.status_code == 201, response.text
    instance: dict[str, Any] = response.json()["instance"]
    return instance


def test_instances_spread_over_live_hosts_that_are_up_fewest_first(api: Api) -> None:
    for host in ("h3", "h1", "h2"):
        heartbeat(api, host, vtep_ip=f"192.0.2.{host[1]}")
    net = api.demo.create("networks", name="n")  # VXLAN, a project's default
    first = [placed(api, net["id"], f"vm{i}") for i in range(4)]
    # Equally loaded hosts are taken in their names' order.
    assert [vm["host"] for vm in first] == ["h1", "h2", "h3", "h1"]
    assert {vm["availability_zone"] for vm in first} == {"nova"}
    ports = api.admin.get("/ports", params={"device_id": first[1]["id"]}).json()["ports"]
    assert [p["binding:host_id"] for p in ports] == ["h2"]

    # An agent an administrator disabled takes nothing new.
    h2 = agents_by_type(api, "h2")["Linux bridge agent"]
    disabled = api.admin.put(f"/agents/{h2['id']}", json={"agent": {"admin_state_up": False}})
    assert disabled.status_code == 200, disabled.text
    assert [placed(api, net["id"], f"vm{i}")["host"] for i in (4, 5)] == ["h3", "h1"]

    # Nor does a dead one: h1 and h3 stop reporting, h2 comes back up.
    api.admin.put(f"/agents/{h2['id']}", json={"agent": {"admin_state_up": True}})
    assert eventually(lambda: not agents_by_type(api, "h1")["L3 agent"]["alive"], DOWN_TIME + 3)
    heartbeat(api, "h2", vtep_ip="192.0.2.2")
    assert placed(api, net["id"], "vm6")["host"] == "h2"
    api.admin.put(f"/agents/{h2['id']}", json={"agent": {"admin_state_up": False}})
    refused = create(api, name="vm7", networks=[{"network_id": net["id"]}])
    assert error(refused, 409, "Conflict") == NO_HOST
    # Nothing was made for it.
    assert len(api.demo.get("/ports", params={"network_id": net["id"]}).json()["ports"]) == 7


def test_a_host_takes_an_instance_only_where_it_reaches_every_network(api: Api) -> None:
    heartbeat(api, "h1")  # physical network default, no VTEP
    heartbeat(api, "h2", physnets=("default", "physnet2"))
    heartbeat(api, "h3", physnets=(), vtep_ip="192.0.2.3")
    flat = api.admin.create(
        "networks",
        name="flat2",
        shared=True,
        **{"provider:network_type": "flat", "provider:physical_network": "physnet2"},
    )
    vlan = api.admin.create(
        "networks",
        name="vlan",
        shared=True,
        **{"provider:network_type": "vlan", "provider:physical_network": "default"},
    )
    overlay = api.demo.create("networks", name="overlay")
    # Only h2 maps physnet2; h1 and h2 map default, h1 has fewer instances.
    assert placed(api, flat["id"], "on-flat")["host"] == "h2"
    assert placed(api, vlan["id"], "on-vlan")["host"] == "h1"
    both = create(
        api, name="both", networks=[{"network_id": flat["id"]}, {"network_id": vlan["id"]}]
    )
    assert both.status_code == 201 and both.json()["instance"]["host"] == "h2"
    # A VXLAN network reaches a host without a VTEP only while nothing of it is elsewhere.
    assert placed(api, overlay["id"], "ov1")["host"] == "h3"  # the least loaded
    assert placed(api, overlay["id"], "ov2")["host"] == "h3"  # h1 and h2 have no VTEP
    port = api.demo.create("ports", network_id=flat["id"])
    adopted = create(
        api, name="adopting", ports=[port["id"]], networks=[{"network_id": vlan["id"]}]
    )
    assert adopted.status_code == 201 and adopted.json()["instance"]["host"] == "h2"
    refused = create(
        api, name="nowhere", networks=[{"network_id": flat["id"]}, {"network_id": overlay["id"]}]
    )
    assert error(refused, 409, "Conflict") == NO_HOST


def test_availability_zones_confine_the_choice(api: Api) -> None:
    heartbeat(api, "h1", zone="az1")
    heartbeat(api, "h2", zone="az2")
    heartbeat(api, "h3", zone="az2", physnets=("physnet2",))
    net = api.admin.create(
        "networks",
        name="vlan",
        shared=True,
        **{"provider:network_type": "vlan", "provider:physical_network": "default"},
    )
    vm = placed(api, net["id"], availability_zone="az2")
    assert (vm["host"], vm["availability_zone"]) == ("h2", "az2")
    assert placed(api, net["id"])["availability_zone"] == "az1"  # h1 has none yet
    listed = api.demo.http.get(
        "/lab/v1/instances",
        headers={"X-Auth-Token": api.demo.token},
        params={"availability_zone": "az2"},
    ).json()["instances"]
    assert [i["id"] for i in listed] == [vm["id"]]
    unknown = create(api, name="vm", networks=[{"network_id": net["id"]}], availability_zone="az9")
    assert error(unknown, 400, "BadRequest") == (
        "Bad instance request: the availability zone az9 is not available."
    )
    agent = agents_by_type(api, "h2")["Linux bridge agent"]
    api.admin.put(f"/agents/{agent['id']}", json={"agent": {"admin_state_up": False}})
    refused = create(api, name="vm", networks=[{"network_id": net["id"]}], availability_zone="az2")
    assert error(refused, 409, "Conflict") == (
        "No valid host was found. No host with a live Linux bridge agent that is up in "
        "availability zone az2 can realize the instance's networks."
    )


def test_an_administrator_forces_a_host_past_the_filters(api: Api) -> None:
    heartbeat(api, "h1", zone="az1")
    heartbeat(api, "h2", zone="az2", physnets=())
    net = api.demo.create("networks", name="n")
    forced = placed(api, net["id"], who="admin", host="h2")
    assert (forced["host"], forced["availability_zone"]) == ("h2", "az2")
    elsewhere = placed(api, net["id"], who="admin", host="h9")  # as Nova's forced host: trusted
    assert (elsewhere["host"], elsewhere["availability_zone"]) == ("h9", "nova")
    refused = create(api, name="vm", networks=[{"network_id": net["id"]}], host="h1")
    assert error(refused, 403, "PolicyNotAuthorized") == (
        "rule:create_instance:host is disallowed by policy"
    )


def test_before_any_agent_reports_instances_go_to_the_servers_host(
    api: Api, settings: Settings
) -> None:
    net = api.demo.create("networks", name="n")
    vm = placed(api, net["id"])
    assert (vm["host"], vm["availability_zone"]) == (settings.host, "nova")
    unknown = create(api, name="vm", networks=[{"network_id": net["id"]}], availability_zone="az1")
    error(unknown, 400, "BadRequest")


def test_an_instances_ports_are_owned_by_compute_in_its_zone(api: Api) -> None:
    """As Nova owns a server's ports: `compute:<its availability zone>`, `compute:nova` in the
    default zone; the ports it adopts too. They remain the instance's, and go with it."""
    heartbeat(api, "h1", zone="az1")
    heartbeat(api, "h2")  # in the default zone
    net = api.admin.create(
        "networks",
        name="vlan",
        shared=True,
        **{"provider:network_type": "vlan", "provider:physical_network": "default"},
    )
    given = api.demo.create("ports", network_id=net["id"])
    in_az1 = placed(api, net["id"], "in-az1", availability_zone="az1", ports=[given["id"]])
    in_nova = placed(api, net["id"], "in-nova")  # asking for no zone
    assert in_nova["availability_zone"] == "nova"  # h2's, the least loaded

    def owners(instance: dict[str, Any]) -> dict[str, str]:
        found = api.demo.get("/ports", params={"device_id": instance["id"]}).json()["ports"]
        return {p["id"]: p["device_owner"] for p in found}

    az1_owners = owners(in_az1)
    assert sorted(az1_owners.values()) == ["compute:az1", "compute:az1"]
    assert given["id"] in az1_owners
    assert set(owners(in_nova).values()) == {"compute:nova"}
    assert sorted(in_az1["port_ids"]) == sorted(az1_owners)

    deleted = api.demo.http.delete(
        f"/lab/v1/instances/{in_az1['id']}", headers={"X-Auth-Token": api.demo.token}
    )
    assert deleted.status_code == 204, deleted.text
    kept = api.demo.get(f"/ports/{given['id']}").json()["port"]
    assert (kept["device_owner"], kept["device_id"]) == ("", "")
    assert owners(in_az1) == {}
