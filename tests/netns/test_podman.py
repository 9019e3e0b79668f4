"""Podman's containers on a neutrino network through neutrino-cni: they talk, one is reached
from outside through a floating IP once its security group lets it, and their ports go with
them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from netlab import wait_for
from podman import INDEX, Podman
from test_routers_api import RoutedCloud

from tests.conftest import Databases, dataplane_server


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutedCloud]:
    if shutil.which("podman") is None or shutil.which("runc") is None:
        pytest.skip("podman and runc are not installed: run scripts/install")
    with dataplane_server(databases, tmp_path_factory, "tq", RoutedCloud, host="pq") as server:
        yield server


@pytest.fixture
def podman(cloud: RoutedCloud) -> Iterator[Podman]:
    sandbox = Podman()
    yield sandbox
    sandbox.close()


def test_containers_talk_and_are_reached_through_a_floating_ip(
    cloud: RoutedCloud, podman: Podman
) -> None:
    made = cloud.routed_network("pod_net", "198.51.100.0/24", "172.16.96.0/24")
    podman.network(
        "pod_net",
        {
            "network": "pod_net",
            "clouds_yaml": str(cloud.clouds_yaml),
            "host": cloud.host,
            "host_netns": f"{cloud.prefix}nhost-{cloud.host}",
        },
    )
    web = podman.start("web", "pod_net", "/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www")
    client = podman.start("client", "pod_net", "/bin/busybox", "sleep", "3600")
    (port,) = cloud.get(f"ports?device_id={web}")["ports"]
    assert port["status"] == "ACTIVE" and port["network_id"] == made["net"]["id"]
    assert len(cloud.get(f"ports?device_id={client}")["ports"]) == 1
    mac = podman("exec", "web", "/bin/busybox", "cat", "/sys/class/net/eth0/address").stdout
    assert mac.strip() == port["mac_address"]

    address = port["fixed_ips"][0]["ip_address"]
    fetch = ["/bin/busybox", "wget", "-q", "-O", "-", f"http://{address}:8080/"]
    assert podman("exec", "client", *fetch).stdout == INDEX  # the same (default) group

    fip = cloud.create(
        "floatingips",
        "floatingip",
        floating_network_id=made["ext"]["id"],
        port_id=port["id"],
    )
    url = f"http://{fip['floating_ip_address']}:8080/"
    outside = ["curl", "-s", "-m", "2", url]
    wait_for(lambda: cloud.get(f"floatingips/{fip['id']}")["floatingip"]["status"] == "ACTIVE")
    assert cloud.run(cloud.outside, *outside).stdout == ""  # the default group keeps it out
    cloud.allow("tcp", 8080)
    wait_for(lambda: cloud.run(cloud.outside, *outside).stdout == INDEX, timeout=10)

    podman("rm", "--force", "--time", "0", "web", "client")  # their network's DEL
    assert cloud.get(f"ports?device_id={web}")["ports"] == []
    assert cloud.get(f"ports?device_id={client}")["ports"] == []
