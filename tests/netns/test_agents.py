"""The agents API tells what this host's agent really does, and moving work moves namespaces.

The unchanged openstack CLI lists the embedded agent's roles, takes a network off its DHCP
agent and a router off its L3 agent (the qdhcp-/qrouter- namespaces go), gives them back
(they return), and an agent taken down gets no new network.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.plan import HostConfig, names
from tests.conftest import Databases, LiveServer, dataplane_server, eventually


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dataplane_server(databases, tmp_path_factory, "tg", LiveServer) as server:
        yield server


def namespace_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def agent_of(cloud: LiveServer, agent_type: str) -> dict[str, str]:
    listed = cloud.cli("network", "agent", "list", "--host", cloud.host)
    found = [a for a in listed if a["Agent Type"] == agent_type]
    assert len(found) == 1, listed
    return found[0]


def test_the_agents_roles_and_their_schedules(cloud: LiveServer) -> None:
    host = HostConfig.isolated(cloud.host, prefix=cloud.prefix)
    assert eventually(lambda: len(cloud.cli("network", "agent", "list")) == 3, seconds=20)
    agents = {a["Agent Type"]: a for a in cloud.cli("network", "agent", "list")}
    assert set(agents) == {"DHCP agent", "L3 agent", "Linux bridge agent"}
    assert {(a["Host"], a["Alive"], a["State"]) for a in agents.values()} == {
        (cloud.host, True, True)
    }
    dhcp, l3 = agents["DHCP agent"], agents["L3 agent"]

    net = cloud.cli("network", "create", "ag-net")
    cloud.cli("subnet", "create", "--network", "ag-net", "--subnet-range", "10.77.0.0/24", "ag-sub")
    qdhcp = names.dhcp_netns(host, net["id"])
    assert eventually(lambda: namespace_exists(qdhcp))
    hosting = cloud.cli("network", "agent", "list", "--network", net["id"])
    assert [a["ID"] for a in hosting] == [dhcp["ID"]]

    cloud.cli(
        "network", "agent", "remove", "network", "--dhcp", dhcp["ID"], net["id"], output=False
    )
    assert eventually(lambda: not namespace_exists(qdhcp))
    assert cloud.cli("network", "agent", "list", "--network", net["id"]) == []
    cloud.cli("network", "agent", "add", "network", "--dhcp", dhcp["ID"], net["id"], output=False)
    assert eventually(lambda: namespace_exists(qdhcp))

    router = cloud.cli("router", "create", "ag-router")
    qrouter = names.router_netns(host, router["id"])
    assert eventually(lambda: namespace_exists(qrouter))
    assert [a["ID"] for a in cloud.cli("network", "agent", "list", "--router", router["id"])] == [
        l3["ID"]
    ]
    cloud.cli("network", "agent", "remove", "router", "--l3", l3["ID"], router["id"], output=False)
    assert eventually(lambda: not namespace_exists(qrouter))
    cloud.cli("network", "agent", "add", "router", "--l3", l3["ID"], router["id"], output=False)
    assert eventually(lambda: namespace_exists(qrouter))

    # Taken down, the DHCP agent gets no new network: nothing serves it here.
    cloud.cli("network", "agent", "set", "--disable", dhcp["ID"], output=False)
    assert agent_of(cloud, "DHCP agent")["State"] is False
    later = cloud.cli("network", "create", "ag-later")
    cloud.cli(
        "subnet", "create", "--network", "ag-later", "--subnet-range", "10.78.0.0/24", "ag-sub2"
    )
    assert cloud.cli("network", "agent", "list", "--network", later["id"]) == []
    assert not eventually(lambda: namespace_exists(names.dhcp_netns(host, later["id"])), 3)
    assert namespace_exists(qdhcp)  # what it had stays
    cloud.cli("network", "agent", "set", "--enable", dhcp["ID"], output=False)
    cloud.cli("router", "delete", "ag-router", output=False)
    cloud.cli("network", "delete", "ag-net", "ag-later", output=False)
