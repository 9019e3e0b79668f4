"""A network shared with one project by an RBAC policy carries that project's ports: real DHCP
and packets, driven only through the unchanged `openstack` CLI and `neutrino instance`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Databases, dataplane_server
from tests.netns.test_scenarios_api import Cloud


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with dataplane_server(databases, tmp_path_factory, "tr", Cloud) as server:
        yield server


def test_ports_of_the_project_a_network_is_shared_with_get_dhcp_and_talk(cloud: Cloud) -> None:
    net = cloud.cli("network", "create", "rbac_net")
    cloud.cli("subnet", "create", "--network", net["id"], "--subnet-range", "172.16.93.0/24", "s")
    demo = cloud.cli("project", "show", "demo")["id"]
    cloud.cli(
        "network", "rbac", "create", net["id"], "--type", "network",
        "--action", "access_as_shared", "--target-project", demo,
    )  # fmt: skip
    ports = [
        cloud.cli("port", "create", "--network", net["id"], f"rbac-p{i}", cloud="neutrino-demo")
        for i in (1, 2)
    ]
    assert {port["project_id"] for port in ports} == {demo} != {net["project_id"]}
    for i, port in enumerate(ports, 1):
        cloud.instance(f"rbac-vm{i}", "--port", port["id"])
    address = ports[1]["fixed_ips"][0]["ip_address"]
    leased = cloud.run_in("rbac-vm2", "ip", "-4", "-o", "address", "show", "dev", "eth0")
    assert f" {address}/24 " in leased.stdout  # from the network's dnsmasq: instances ask DHCP
    assert cloud.pings("rbac-vm1", address)
    cloud.neutrino("instance", "delete", "rbac-vm1", "rbac-vm2")
