"""Agents from their heartbeats, the DHCP and L3 schedulers, and availability zones.

Heartbeats arrive as agents send them: their report, POSTed to the internal API,
with the roles the agent's own code (agent.runner.roles) describes.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest

from neutrino.agent.runner import roles
from neutrino.config import Settings
from neutrino.plan import HostConfig, compile_host
from neutrino.services import liveness
from tests.api.test_loadbalancers import created, octavia, realize
from tests.conftest import Api, ApiClient, eventually
from tests.conftest import expect_error as error

DOWN_TIME = 3.0  # seconds: Neutron's agent_down_time, short enough to watch an agent die


# A short agent_down_time is the application's setting: in-process on both backends.
pytestmark = pytest.mark.in_process


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, agent_down_time=DOWN_TIME)


def heartbeat(
    api: Api,
    host: str = "h1",
    zone: str = "nova",
    started: str = "",
    ports: dict[str, str] | None = None,
    revision: int = 0,
    **host_options: Any,
) -> None:
    """One report of a host's agent, as agent.runner sends it after each sync (having applied
    the feed up to `revision`), with the status of the `ports` it plugged; `host_options` of
    HostConfig.isolated (physnets, vtep_ip)."""
    config = HostConfig.isolated(host, **host_options)
    config = dataclasses.replace(config, availability_zone=zone)
    desired = compile_host({"revision": 0}, config)
    body = {
        "revision": revision,
        "ports": ports or {},
        "errors": [],
        "agents": roles(config, desired.outline()),
        "started_at": started or "2026-12-05T10:00:00+00:00",
        "availability_zone": zone,
    }
    response = api.admin.http.post(
        f"/internal/v1/agents/{host}/report",
        headers={"X-Auth-Token": api.admin.token},
        json=body,
    )
    assert response.status_code == 204, response.text


def agents_by_type(api: Api, host: str = "h1") -> dict[str, dict[str, Any]]:
    listed = api.admin.get("/agents", params={"host": host}).json()["agents"]
    return {a["agent_type"]: a for a in listed}


def test_each_role_of_a_reporting_host_is_an_agent(api: Api) -> None:
    assert api.admin.get("/agents").json() == {"agents": []}
    heartbeat(api)
    found = agents_by_type(api)
    assert set(found) == {"DHCP agent", "L3 agent", "Linux bridge agent"}
    dhcp = found["DHCP agent"]
    assert dhcp == {
        "id": dhcp["id"],
        "agent_type": "DHCP agent",
        "binary": "neutron-dhcp-agent",
        "topic": "dhcp_agent",
        "host": "h1",
        "admin_state_up": True,
        "created_at": dhcp["created_at"],
        "started_at": "2026-12-05 10:00:00",
        "heartbeat_timestamp": dhcp["heartbeat_timestamp"],
        "alive": True,
        "configurations": {
            "dhcp_driver": "dnsmasq",
            "networks": 0,
            "subnets": 0,
            "ports": 0,
            "log_agent_heartbeats": False,
        },
        "availability_zone": "nova",
        "resources_synced": None,
        "description": None,
    }
    assert found["L3 agent"]["binary"] == "neutron-l3-agent"
    assert found["L3 agent"]["configurations"]["agent_mode"] == "legacy"
    bridge = found["Linux bridge agent"]
    assert (bridge["binary"], bridge["topic"], bridge["availability_zone"]) == (
        "neutron-linuxbridge-agent",
        "N/A",
        None,
    )
    assert bridge["configurations"]["interface_mappings"] == {"default": "p-default"}
    assert api.admin.get(f"/agents/{dhcp['id']}").json() == {"agent": dhcp | {"alive": True}}
    # Filters, fields, and a second report that changes nothing but the heartbeat.
    listed = api.admin.get("/agents", params={"agent_type": "L3 Agent", "fields": "id"}).json()
    assert listed == {"agents": [{"id": found["L3 agent"]["id"]}]}
    heartbeat(api)
    assert agents_by_type(api)["DHCP agent"]["id"] == dhcp["id"]
    assert len(api.admin.get("/agents").json()["agents"]) == 3


def test_agents_are_for_admins_only(api: Api) -> None:
    heartbeat(api)
    agent = agents_by_type(api)["DHCP agent"]
    assert api.demo.get("/agents").json() == {"agents": []}
    hidden = "The resource could not be found."
    assert error(api.demo.get(f"/agents/{agent['id']}"), 404, "HTTPNotFound") == hidden
    change = {"agent": {"admin_state_up": False}}
    assert error(api.demo.put(f"/agents/{agent['id']}", json=change), 404, "HTTPNotFound") == hidden
    assert error(api.demo.delete(f"/agents/{agent['id']}"), 404, "HTTPNotFound") == hidden
    missing = "0b5a0a6e-94c3-4b63-9b4f-62e6a8b1f2a1"
    assert (
        error(api.admin.get(f"/agents/{missing}"), 404, "AgentNotFound")
        == f"Agent {missing} could not be found."
    )
    assert error(api.demo.get(f"/agents/{missing}"), 404, "AgentNotFound")
    net = api.demo.create("networks", name="n")
    assert (
        error(api.demo.get(f"/networks/{net['id']}/dhcp-agents"), 403, "PolicyNotAuthorized")
        == "rule:get_dhcp-agents is disallowed by policy"
    )
    assert agents_by_type(api)["DHCP agent"]["admin_state_up"] is True


def test_alive_goes_false_when_heartbeats_stop(api: Api) -> None:
    heartbeat(api)
    first = agents_by_type(api)["L3 agent"]
    assert first["alive"] is True
    assert eventually(lambda: not agents_by_type(api)["L3 agent"]["alive"], seconds=DOWN_TIME + 3)
    assert api.admin.get("/agents", params={"alive": "false"}).json()["agents"] != []
    assert api.admin.get("/agents", params={"alive": "true"}).json() == {"agents": []}
    zones = api.admin.get("/availability_zones").json()["availability_zones"]
    assert {z["state"] for z in zones} == {"unavailable"}
    heartbeat(api, started="2026-12-05T11:00:00+00:00")  # the agent came back, restarted
    again = agents_by_type(api)["L3 agent"]
    assert again["alive"] is True and again["id"] == first["id"]
    assert again["heartbeat_timestamp"] > first["heartbeat_timestamp"]
    assert again["started_at"] == "2026-12-05 11:00:00"
    assert again["created_at"] == first["created_at"]


def test_update_and_delete_an_agent(api: Api) -> None:
    heartbeat(api)
    agent = agents_by_type(api)["DHCP agent"]
    url = f"/agents/{agent['id']}"
    changed = api.admin.put(url, json={"agent": {"admin_state_up": False, "description": "d"}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["agent"] | {"heartbeat_timestamp": None} == agent | {
        "admin_state_up": False,
        "description": "d",
        "heartbeat_timestamp": None,
    }
    assert error(api.admin.put(url, json={"agent": {"host": "h9"}}), 400, "BadRequest")
    assert error(
        api.admin.put(url, json={"agent": {"admin_state_up": "maybe"}}), 400, "InvalidInput"
    )
    assert error(api.admin.post("/agents", json={"agent": {}}), 405, "HTTPMethodNotAllowed")
    assert api.admin.delete(url).status_code == 204
    assert error(api.admin.get(url), 404, "AgentNotFound")
    heartbeat(api)  # a live agent registers again, as a new agent
    again = agents_by_type(api)["DHCP agent"]
    assert again["id"] != agent["id"] and again["admin_state_up"] is True


def dhcp_network(api: Api, cidr: str = "10.40.0.0/24", **fields: Any) -> dict[str, Any]:
    net = api.admin.create("networks", name="n", **fields)
    api.admin.create("subnets", network_id=net["id"], cidr=cidr, ip_version=4)
    return net


def dhcp_port_host(api: Api, net: dict[str, Any]) -> str:
    (port,) = api.admin.get(
        "/ports", params={"network_id": net["id"], "device_owner": "network:dhcp"}
    ).json()["ports"]
    host: str = port["binding:host_id"]
    return host


def test_networks_get_a_live_dhcp_agent_which_an_admin_can_change(api: Api) -> None:
    before = dhcp_network(api, "10.41.0.0/24")  # no agent yet: nobody serves it
    assert api.admin.get(f"/networks/{before['id']}/dhcp-agents").json() == {"agents": []}
    assert dhcp_port_host(api, before) == ""
    heartbeat(api)  # the agent starts: it takes what no agent has
    dhcp = agents_by_type(api)["DHCP agent"]
    assert dhcp_port_host(api, before) == "h1"
    net = dhcp_network(api)
    hosting = api.admin.get(f"/networks/{net['id']}/dhcp-agents").json()["agents"]
    assert [a["id"] for a in hosting] == [dhcp["id"]]
    assert dhcp_port_host(api, net) == "h1"
    hosted = api.admin.get(f"/agents/{dhcp['id']}/dhcp-networks").json()["networks"]
    assert sorted(n["id"] for n in hosted) == sorted([before["id"], net["id"]])
    assert api.admin.get(f"/networks/{net['id']}").json()["network"] in hosted

    url = f"/agents/{dhcp['id']}/dhcp-networks"
    assert api.admin.delete(f"{url}/{net['id']}").status_code == 204
    assert api.admin.get(f"/networks/{net['id']}/dhcp-agents").json() == {"agents": []}
    assert dhcp_port_host(api, net) == ""
    assert error(api.admin.delete(f"{url}/{net['id']}"), 409, "NetworkNotHostedByDhcpAgent") == (
        f"The network {net['id']} is not hosted by the DHCP Agent {dhcp['id']}."
    )
    added = api.admin.post(url, json={"network_id": net["id"]})
    assert (added.status_code, added.json()) == (201, None)
    assert dhcp_port_host(api, net) == "h1"
    assert error(
        api.admin.post(url, json={"network_id": net["id"]}), 409, "NetworkHostedByDHCPAgent"
    )
    l3 = agents_by_type(api)["L3 agent"]
    assert (
        error(
            api.admin.post(f"/agents/{l3['id']}/dhcp-networks", json={"network_id": net["id"]}),
            404,
            "InvalidDHCPAgent",
        )
        == f"Agent {l3['id']} is not a valid DHCP Agent or has been disabled."
    )
    missing = "7d3c5f4e-2a1b-4c9d-8e7f-6a5b4c3d2e1f"
    assert error(api.admin.post(url, json={"network_id": missing}), 404, "NetworkNotFound")
    assert error(api.admin.get(f"/networks/{missing}/dhcp-agents"), 404, "NetworkNotFound")
    assert error(api.admin.post(url, json={}), 400, "BadRequest")

    # An agent an admin took down gets no new network, and cannot be given one.
    api.admin.put(f"/agents/{dhcp['id']}", json={"agent": {"admin_state_up": False}})
    later = dhcp_network(api, "10.42.0.0/24")
    assert api.admin.get(f"/networks/{later['id']}/dhcp-agents").json() == {"agents": []}
    assert dhcp_port_host(api, later) == ""
    assert error(api.admin.post(url, json={"network_id": later["id"]}), 404, "InvalidDHCPAgent")
    # What it has stays; deleting the agent unbinds it.
    assert api.admin.delete(f"/agents/{dhcp['id']}").status_code == 204
    assert dhcp_port_host(api, net) == ""


def router_with_interface(api: Api) -> tuple[dict[str, Any], str]:
    router = api.admin.create("routers", name="r")
    net = api.admin.create("networks", name="rn")
    sub = api.admin.create("subnets", network_id=net["id"], cidr="10.43.0.0/24", ip_version=4)
    done = api.admin.put(
        f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}
    )
    assert done.status_code == 200, done.text
    return router, done.json()["port_id"]


def test_routers_get_a_live_l3_agent_which_an_admin_can_change(api: Api) -> None:
    heartbeat(api)
    l3 = agents_by_type(api)["L3 agent"]
    router, port_id = router_with_interface(api)
    hosting = api.admin.get(f"/routers/{router['id']}/l3-agents").json()["agents"]
    assert [a["id"] for a in hosting] == [l3["id"]]
    assert api.admin.get(f"/ports/{port_id}").json()["port"]["binding:host_id"] == "h1"
    hosted = api.admin.get(f"/agents/{l3['id']}/l3-routers").json()["routers"]
    assert hosted == [api.admin.get(f"/routers/{router['id']}").json()["router"]]

    url = f"/agents/{l3['id']}/l3-routers"
    assert api.admin.delete(f"{url}/{router['id']}").status_code == 204
    assert api.admin.get(f"/routers/{router['id']}/l3-agents").json() == {"agents": []}
    assert api.admin.get(f"/ports/{port_id}").json()["port"]["binding:host_id"] == ""
    assert api.admin.delete(f"{url}/{router['id']}").status_code == 204  # not hosted: no error
    missing = "7d3c5f4e-2a1b-4c9d-8e7f-6a5b4c3d2e1f"
    assert error(api.admin.delete(f"{url}/{missing}"), 404, "RouterNotFound")

    heartbeat(api, host="h2")
    other = agents_by_type(api, "h2")["L3 agent"]
    added = api.admin.post(f"/agents/{other['id']}/l3-routers", json={"router_id": router["id"]})
    assert (added.status_code, added.json()) == (201, None)
    assert api.admin.get(f"/ports/{port_id}").json()["port"]["binding:host_id"] == "h2"
    again = api.admin.post(f"/agents/{other['id']}/l3-routers", json={"router_id": router["id"]})
    assert again.status_code == 201  # already there: nothing to do
    assert error(
        api.admin.post(url, json={"router_id": router["id"]}), 409, "RouterHostedByL3Agent"
    ) == (f"The router {router['id']} has been already hosted by the L3 Agent {other['id']}.")
    dhcp = agents_by_type(api)["DHCP agent"]
    assert (
        error(
            api.admin.post(f"/agents/{dhcp['id']}/l3-routers", json={"router_id": router["id"]}),
            404,
            "InvalidL3Agent",
        )
        == f"Agent {dhcp['id']} is not a L3 Agent or has been disabled"
    )
    assert (
        error(api.demo.get(f"/routers/{router['id']}/l3-agents"), 403, "PolicyNotAuthorized")
        == "rule:get_l3-agents is disallowed by policy"
    )
    # The least loaded live agent takes a new router; one taken down takes none.
    api.admin.put(f"/agents/{l3['id']}", json={"agent": {"admin_state_up": False}})
    idle = api.admin.create("routers", name="idle")
    hosting = api.admin.get(f"/routers/{idle['id']}/l3-agents").json()["agents"]
    assert [a["host"] for a in hosting] == ["h2"]


def test_availability_zones_and_hints(api: Api) -> None:
    assert api.demo.get("/availability_zones").json() == {"availability_zones": []}
    heartbeat(api, zone="az1")
    assert api.demo.get("/availability_zones").json() == {
        "availability_zones": [
            {"name": "az1", "resource": "network", "state": "available"},
            {"name": "az1", "resource": "router", "state": "available"},
        ]
    }
    listed = api.demo.get("/availability_zones", params={"resource": "router"}).json()
    assert listed == {
        "availability_zones": [{"name": "az1", "resource": "router", "state": "available"}]
    }
    net = api.demo.create("networks", name="z", availability_zone_hints=["az1"])
    assert net["availability_zone_hints"] == ["az1"] and net["availability_zones"] == []
    api.demo.create("subnets", network_id=net["id"], cidr="10.44.0.0/24", ip_version=4)
    shown = api.demo.get(f"/networks/{net['id']}").json()["network"]
    assert shown["availability_zones"] == ["az1"]
    heartbeat(api, zone="az1")  # alive still, however long the machine took to get here
    router = api.demo.create("routers", name="z", availability_zone_hints=["az1"])
    assert router["availability_zone_hints"] == ["az1"] and router["availability_zones"] == ["az1"]
    assert api.demo.create("routers", name="plain")["availability_zone_hints"] == []

    for collection in ("networks", "routers"):
        member = collection[:-1]
        refused = api.demo.post(
            f"/{collection}", json={member: {"availability_zone_hints": ["nova"]}}
        )
        assert (
            error(refused, 404, "AvailabilityZoneNotFound")
            == "AvailabilityZone nova could not be found."
        )
        refused = api.demo.post(f"/{collection}", json={member: {"availability_zone_hints": "az1"}})
        assert error(refused, 400, "InvalidInput")
        too_many = [f"zone-{i:03}" for i in range(30)]
        refused = api.demo.post(
            f"/{collection}", json={member: {"availability_zone_hints": too_many}}
        )
        assert (
            error(refused, 400, "InvalidInput")
            == "Invalid input for operation: Too many availability_zone_hints specified."
        )
        change = {member: {"availability_zone_hints": ["az1"]}}
        made = {"networks": net, "routers": router}[collection]
        assert error(api.demo.put(f"/{collection}/{made['id']}", json=change), 400, "BadRequest")
    assert [n["name"] for n in api.demo.get("/networks").json()["networks"]] == ["z"]


def test_agents_sort_on_any_attribute_but_configurations(api: Api) -> None:
    heartbeat(api, host="h1", zone="az2")
    heartbeat(api, host="h2", zone="az1")

    def listed(**params: Any) -> list[tuple[str, str]]:
        response = api.admin.get("/agents", params=params)
        assert response.status_code == 200, response.text
        return [(a["host"], a["agent_type"]) for a in response.json()["agents"]]

    by_host = listed(sort_key=["host", "agent_type"], sort_dir=["desc", "asc"])
    assert by_host == [
        ("h2", "DHCP agent"),
        ("h2", "L3 agent"),
        ("h2", "Linux bridge agent"),
        ("h1", "DHCP agent"),
        ("h1", "L3 agent"),
        ("h1", "Linux bridge agent"),
    ]
    # The bridge agents have no zone: a null sorts first.
    by_zone = listed(sort_key=["availability_zone", "binary"], sort_dir=["asc", "desc"])
    assert sorted(by_zone[:2]) == [("h1", "Linux bridge agent"), ("h2", "Linux bridge agent")]
    assert by_zone[2:] == [
        ("h2", "L3 agent"),
        ("h2", "DHCP agent"),
        ("h1", "L3 agent"),
        ("h1", "DHCP agent"),
    ]
    agents = api.admin.get("/agents", params={"sort_key": "host"}).json()["agents"]
    ids = {(a["host"], a["agent_type"]): a["id"] for a in agents}
    marker = ids[("h2", "DHCP agent")]
    page = listed(sort_key=["host", "agent_type"], sort_dir=["desc", "asc"], marker=marker, limit=2)
    assert page == [("h2", "L3 agent"), ("h2", "Linux bridge agent")]
    back = listed(
        sort_key=["host", "agent_type"],
        sort_dir=["desc", "asc"],
        marker=ids[("h1", "DHCP agent")],
        limit=2,
        page_reverse=True,
    )
    assert back == [("h2", "L3 agent"), ("h2", "Linux bridge agent")]
    refused = api.admin.get("/agents", params={"sort_key": "configurations"})
    assert error(refused, 400, "HTTPBadRequest") == (
        "configurations is invalid attribute for sort_keys"
    )


def test_availability_zones_filter_on_name_resource_and_state(api: Api) -> None:
    heartbeat(api, host="h1", zone="az1")
    heartbeat(api, host="h2", zone="az2")
    dhcp = agents_by_type(api, "h2")["DHCP agent"]
    down = api.admin.put(f"/agents/{dhcp['id']}", json={"agent": {"admin_state_up": False}})
    assert down.status_code == 200, down.text

    def zones(**filters: Any) -> list[tuple[str, str, str]]:
        response = api.demo.get("/availability_zones", params=filters)
        assert response.status_code == 200, response.text
        found = response.json()["availability_zones"]
        return [(z["name"], z["resource"], z["state"]) for z in found]

    assert zones(name="az2") == [("az2", "network", "unavailable"), ("az2", "router", "available")]
    assert zones(state="unavailable") == [("az2", "network", "unavailable")]
    assert zones(resource="network", state="available") == [("az1", "network", "available")]
    assert zones(name=["az1", "az2"], resource="router") == [
        ("az1", "router", "available"),
        ("az2", "router", "available"),
    ]
    assert zones(name="az3") == []
    refused = api.demo.get("/availability_zones", params={"agent_type": "L3 agent"})
    assert error(refused, 400, "HTTPBadRequest") == "agent_type is invalid attribute for filtering"


def port_of(api: Api, port_id: str) -> tuple[str, str]:
    port = api.admin.get(f"/ports/{port_id}").json()["port"]
    return port["binding:host_id"], port["status"]


def head(api: Api) -> int:
    response = api.admin.http.get(
        "/internal/v1/changes", params={"since": 0}, headers={"X-Auth-Token": api.admin.token}
    )
    return int(response.json()["revision"])


def dies(api: Api, host: str, survivor: str) -> bool:
    """Whether `host` is dead yet, while `survivor` keeps reporting."""
    heartbeat(api, survivor)
    return not agents_by_type(api, host)["L3 agent"]["alive"]


def test_what_a_dead_host_served_moves_to_a_live_one(api: Api) -> None:
    heartbeat(api, "h1")
    heartbeat(api, "h2")
    net = dhcp_network(api, "10.45.0.0/24")
    router, router_port = router_with_interface(api)
    (dhcp_port,) = api.admin.get(
        "/ports", params={"network_id": net["id"], "device_owner": "network:dhcp"}
    ).json()["ports"]
    vm_port = api.admin.create("ports", network_id=net["id"], **{"binding:host_id": "h1"})
    other = api.admin.create("ports", network_id=net["id"], **{"binding:host_id": "h2"})
    # The least loaded agents, h1 first among equals, serve the network and the router.
    assert port_of(api, dhcp_port["id"])[0] == port_of(api, router_port)[0] == "h1"
    plugged = {p: "ACTIVE" for p in (vm_port["id"], dhcp_port["id"], router_port)}
    heartbeat(api, "h1", ports=plugged, revision=head(api))
    heartbeat(api, "h2", ports={other["id"]: "ACTIVE"}, revision=head(api))
    assert port_of(api, vm_port["id"]) == ("h1", "ACTIVE")

    # h1 falls silent; h2 goes on reporting.
    assert eventually(lambda: dies(api, "h1", "h2"), seconds=DOWN_TIME + 5)
    assert eventually(
        lambda: heartbeat(api, "h2") or port_of(api, vm_port["id"]) == ("h1", "DOWN"), seconds=15
    )
    # Its router and its network's DHCP are on h2's agents, their ports DOWN until h2 plugs them.
    hosting = api.admin.get(f"/routers/{router['id']}/l3-agents").json()["agents"]
    assert [a["host"] for a in hosting] == ["h2"]
    hosting = api.admin.get(f"/networks/{net['id']}/dhcp-agents").json()["agents"]
    assert [a["host"] for a in hosting] == ["h2"]
    assert port_of(api, router_port) == ("h2", "DOWN")
    assert port_of(api, dhcp_port["id"]) == ("h2", "DOWN")
    assert port_of(api, other["id"]) == ("h2", "ACTIVE")  # a live host's ports are left alone
    h1 = agents_by_type(api, "h1")
    assert api.admin.get(f"/agents/{h1['L3 agent']['id']}/l3-routers").json() == {"routers": []}

    # Done once: another pass (as another server's) finds nothing left to do.
    core = api.admin.http.app.state.core  # type: ignore[union-attr]
    before = head(api)
    heartbeat(api, "h2")
    assert liveness.Liveness(started=datetime(2000, 1, 1)).check(core.db) == []
    assert head(api) == before

    # h1 comes back: its ports are ACTIVE again, and what moved stays where it went.
    ports = {vm_port["id"]: "ACTIVE"}
    heartbeat(api, "h1", started="2026-12-05T12:00:00+00:00", ports=ports, revision=head(api))
    assert port_of(api, vm_port["id"]) == ("h1", "ACTIVE")
    assert port_of(api, router_port)[0] == port_of(api, dhcp_port["id"])[0] == "h2"
    # The API's rules are those of any agent, dead or alive.
    hidden = "The resource could not be found."
    url = f"/agents/{h1['L3 agent']['id']}"
    assert error(api.demo.get(url), 404, "HTTPNotFound") == hidden
    assert error(api.demo.get(f"/routers/{router['id']}/l3-agents"), 403, "PolicyNotAuthorized")


def test_what_no_live_agent_may_take_stays(api: Api) -> None:
    heartbeat(api, "h1", zone="az1")
    heartbeat(api, "h2", zone="az2")
    router = api.admin.create("routers", name="z", availability_zone_hints=["az1"])
    assert api.admin.get(f"/routers/{router['id']}").json()["router"]["availability_zones"] == [
        "az1"
    ]
    assert eventually(lambda: dies(api, "h1", "h2"), seconds=DOWN_TIME + 5)
    core = api.admin.http.app.state.core  # type: ignore[union-attr]
    liveness.Liveness(started=datetime(2000, 1, 1)).check(core.db)
    hosting = api.admin.get(f"/routers/{router['id']}/l3-agents").json()["agents"]
    assert [a["host"] for a in hosting] == ["h1"]  # only az1 may take it: it waits there
    heartbeat(api, "h3", zone="az1")  # a live agent of its zone: the next pass moves it
    assert eventually(
        lambda: (
            [
                a["host"]
                for a in api.admin.get(f"/routers/{router['id']}/l3-agents").json()["agents"]
            ]
            == ["h3"]
        ),
        seconds=15,
    )


def test_an_instance_on_a_dead_host_shows_its_host_down(api: Api) -> None:
    net = api.demo.create("networks", name="i")
    api.demo.create("subnets", network_id=net["id"], cidr="10.46.0.0/24", ip_version=4)

    def instance(host: str) -> dict[str, Any]:
        response = api.admin.http.post(
            "/lab/v1/instances",
            headers={"X-Auth-Token": api.admin.token},
            json={
                "instance": {"name": host, "networks": [{"network_id": net["id"]}], "host": host}
            },
        )
        assert response.status_code == 201, response.text
        return dict(response.json()["instance"])

    def shown(vm: dict[str, Any]) -> tuple[str, str]:
        body = api.admin.http.get(
            f"/lab/v1/instances/{vm['id']}", headers={"X-Auth-Token": api.admin.token}
        ).json()["instance"]
        return body["status"], body["host_status"]

    heartbeat(api, "h1")
    heartbeat(api, "h2")
    vm, nowhere = instance("h1"), instance("h9")
    assert shown(vm) == ("BUILD", "UP")
    assert shown(nowhere) == ("BUILD", "UNKNOWN")  # no agent there
    assert eventually(lambda: dies(api, "h1", "h2"), seconds=DOWN_TIME + 5)
    assert shown(vm) == ("BUILD", "DOWN")  # kept as it was, on its host
    heartbeat(api, "h1")
    assert shown(vm) == ("BUILD", "UP")


def test_only_an_admin_sees_an_instances_host_status(api: Api) -> None:
    """As Nova's default policy (os_compute_api:servers:show:host_status): a member gets no
    such key on its own instance, created, shown or listed."""
    heartbeat(api, "h1")
    net = api.demo.create("networks", name="mine")
    api.demo.create("subnets", network_id=net["id"], cidr="10.48.0.0/24", ip_version=4)

    def lab(client: ApiClient, method: str, path: str = "", **kwargs: Any) -> dict[str, Any]:
        response = client.http.request(
            method, f"/lab/v1/instances{path}", headers={"X-Auth-Token": client.token}, **kwargs
        )
        assert response.is_success, response.text
        return dict(response.json())

    body = {"instance": {"name": "mine", "networks": [{"network_id": net["id"]}]}}
    created = lab(api.demo, "POST", json=body)["instance"]
    assert "host_status" not in created
    assert "host_status" not in lab(api.demo, "GET", f"/{created['id']}")["instance"]
    [listed] = lab(api.demo, "GET")["instances"]
    assert listed["id"] == created["id"] and "host_status" not in listed
    assert lab(api.admin, "GET", f"/{created['id']}")["instance"]["host_status"] == "UP"
    [listed] = lab(api.admin, "GET")["instances"]
    assert listed["host_status"] == "UP"


def test_a_dead_hosts_load_balancer_fails_over_to_a_live_host(api: Api) -> None:
    heartbeat(api, "h1")
    heartbeat(api, "h2")
    net = api.demo.create("networks", name="lb")
    sub = api.demo.create("subnets", network_id=net["id"], cidr="10.47.0.0/24", ip_version=4)
    lbs = octavia(api.demo)
    lb = created(
        lbs.post("/loadbalancers", json={"loadbalancer": {"vip_subnet_id": sub["id"]}}),
        "loadbalancer",
    )
    assert port_of(api, lb["vip_port_id"])[0] == "h1"  # the least loaded, h1 first among equals
    realize(api, host="h1")

    def amphorae() -> list[tuple[str, str]]:
        response = api.admin.http.get(
            "/load-balancer/v2/octavia/amphorae", headers={"X-Auth-Token": api.admin.token}
        )
        return [(a["id"], a["status"]) for a in response.json()["amphorae"]]

    def provisioning() -> str:
        shown = lbs.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"]
        return str(shown["provisioning_status"])

    [(old, status)] = amphorae()
    assert status == "ALLOCATED"
    assert provisioning() == "ACTIVE"
    assert eventually(lambda: dies(api, "h1", "h2"), seconds=DOWN_TIME + 5)
    # As Octavia's health manager: a new amphora on a live host, PENDING_UPDATE until it runs.
    assert eventually(
        lambda: heartbeat(api, "h2") or port_of(api, lb["vip_port_id"])[0] == "h2", seconds=15
    )
    assert provisioning() == "PENDING_UPDATE"
    [going, (new, status)] = sorted(amphorae(), key=lambda a: a[0] != old)
    assert going == (old, "PENDING_DELETE") and (new != old, status) == (True, "BOOTING")
    realize(api, host="h2")
    assert provisioning() == "ACTIVE"
    assert amphorae() == [(new, "ALLOCATED")]
    h2 = agents_by_type(api, "h2")["Linux bridge agent"]
    response = api.admin.http.get(
        f"/load-balancer/v2/octavia/amphorae/{new}", headers={"X-Auth-Token": api.admin.token}
    )
    assert response.json()["amphora"]["compute_id"] == h2["id"]
    # h1 comes back: the load balancer stays on h2.
    heartbeat(api, "h1", started="2026-12-05T12:00:00+00:00")
    realize(api, host="h1")
    assert port_of(api, lb["vip_port_id"])[0] == "h2" and provisioning() == "ACTIVE"


def test_passes_that_race_fail_a_host_over_once(api: Api) -> None:
    """As two servers sharing a database: each decides under the write lock, so one does it."""
    heartbeat(api, "h1")
    heartbeat(api, "h2")
    router, router_port = router_with_interface(api)
    assert port_of(api, router_port)[0] == "h1"
    assert eventually(lambda: dies(api, "h1", "h2"), seconds=DOWN_TIME + 5)
    heartbeat(api, "h2")
    core = api.admin.http.app.state.core  # type: ignore[union-attr]
    passes = [liveness.Liveness(started=datetime(2000, 1, 1)) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda chore: chore.check(core.db), passes))
    assert done in ([["h1"], []], [[], ["h1"]], [[], []])  # [[], []]: the server's own did it
    hosting = api.admin.get(f"/routers/{router['id']}/l3-agents").json()["agents"]
    assert [a["host"] for a in hosting] == ["h2"]
    assert port_of(api, router_port) == ("h2", "DOWN")
