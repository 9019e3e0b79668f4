"""Trunk ports: an instance plugged with a trunk's parent reaches the parent's network on eth0
and each subport's on eth0.<VLAN>, which come and go with the subports.

A real `neutrino serve` with its agent; the trunk is made with the unchanged
`openstack network trunk` commands, the instances with `neutrino instance`. The
agent's host is isolated, where subports have veths of their own (HostConfig.trunk_mode:
this test runs on kernels without 8021q too); tests/unit/test_plan.py has the tagged wiring.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Databases, dataplane_server, eventually
from tests.netns.multihost import Cloud


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with dataplane_server(databases, tmp_path_factory, "tt", Cloud) as server:
        yield server


def address_of(instance: dict) -> str:
    return str(instance["addresses"][0].split("/")[0])


def test_subport_traffic_rides_a_vlan_of_the_parent(cloud: Cloud) -> None:
    for name, cidr in (("trunk_a", "172.16.93.0/24"), ("trunk_b", "172.16.94.0/24")):
        cloud.cli("network", "create", name)
        cloud.cli("subnet", "create", "--network", name, "--subnet-range", cidr, f"{name}_sub")
    parent = cloud.cli("port", "create", "--network", "trunk_a", "parent")
    sub = cloud.cli("port", "create", "--network", "trunk_b", "sub")
    trunk = cloud.cli(
        "network",
        "trunk",
        "create",
        "--parent-port",
        parent["id"],
        "--subport",
        f"port={sub['id']},segmentation-type=vlan,segmentation-id=101",
        "trunk1",
    )
    on_a = address_of(cloud.instance("tr-a", "--network", "trunk_a"))
    on_b = address_of(cloud.instance("tr-b", "--network", "trunk_b"))
    vm = cloud.instance("tr-vm", "--port", parent["id"])
    assert address_of(vm) == parent["fixed_ips"][0]["ip_address"]

    # In the instance, eth0.101 has the subport's MAC and, by DHCP over the VLAN, its address.
    sub_ip = sub["fixed_ips"][0]["ip_address"]
    assert eventually(
        lambda: (
            f"{sub_ip}/24" in cloud.run_in("tr-vm", "ip", "-o", "addr", "show", "eth0.101").stdout
        ),
        seconds=30,
    )
    assert sub["mac_address"] in cloud.run_in("tr-vm", "ip", "link", "show", "eth0.101").stdout
    assert cloud.pings("tr-vm", on_b)  # tagged, through the subport
    assert cloud.pings("tr-vm", on_a)  # untagged, through the parent
    assert eventually(
        lambda: cloud.cli("network", "trunk", "show", trunk["id"])["status"] == "ACTIVE"
    )
    shown = cloud.cli("port", "show", sub["id"])
    assert (shown["device_owner"], shown["status"]) == ("trunk:subport", "ACTIVE")

    cloud.cli("network", "trunk", "unset", "--subport", sub["id"], trunk["id"], output=False)
    assert eventually(lambda: not cloud.pings("tr-vm", on_b))
    assert eventually(
        lambda: cloud.run_in("tr-vm", "ip", "link", "show", "eth0.101").returncode != 0
    )
    assert cloud.pings("tr-vm", on_a)
    cloud.neutrino("instance", "delete", "tr-vm", "tr-a", "tr-b")
    cloud.cli("network", "trunk", "delete", trunk["id"], output=False)
