"""A port's regenerated MAC is the one its next instance has, gets its lease with and talks from."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest

from tests.conftest import Databases, LiveServer, dataplane_server, eventually


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dataplane_server(databases, tmp_path_factory, "tm", LiveServer) as server:
        yield server


def test_an_unbound_port_regenerates_its_mac_and_the_next_instance_uses_it(
    cloud: LiveServer,
) -> None:
    def in_instance(name: str, *argv: str) -> str:
        return cloud.neutrino("instance", "exec", name, "--", *argv, check=False).stdout.strip()

    def shows(name: str, text: str, *argv: str) -> bool:
        return text in in_instance(name, *argv)

    net = cloud.cli("network", "create", "mac_net")
    cloud.cli("subnet", "create", "--network", net["id"], "--subnet-range", "172.16.91.0/24", "s")
    port = cloud.cli("port", "create", "--network", net["id"], "mac_port")
    address = port["fixed_ips"][0]["ip_address"]
    peer = cloud.cli("port", "create", "--network", net["id"], "peer_port")
    cloud.neutrino("instance", "create", "mac-peer", "--port", peer["id"])
    sdk = cloud.sdk()
    ping = ["ping", "-c1", "-W1", peer["fixed_ips"][0]["ip_address"]]
    for instance in ("mac-vm1", "mac-vm2"):
        mac = sdk.network.update_port(port["id"], mac_address=None).mac_address
        assert mac != port["mac_address"]
        port["mac_address"] = mac
        cloud.neutrino("instance", "create", instance, "--port", port["id"])
        assert in_instance(instance, "cat", "/sys/class/net/eth0/address") == mac
        # DHCP answers the new MAC with the port's address, and the port may send from it.
        assert eventually(partial(shows, instance, f"inet {address}/24", "ip", "-4", "addr"))
        assert eventually(partial(shows, instance, " 0% packet loss", *ping))
        cloud.neutrino("instance", "delete", instance)
    cloud.neutrino("instance", "delete", "mac-peer")
