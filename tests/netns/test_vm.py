"""A virtual machine on a neutrino port: QEMU with Debian's kernel and a busybox initramfs
(scripts/vm-image, built for the test), its NIC the tap that `neutrino port plug` names, with
the port's MAC. The VM takes its address by DHCP, is reached from the outside through a
floating IP, and its security group drops what it does not allow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from netlab import wait_for
from test_routers_api import WHOAMI, RoutedCloud, eventually
from vm import build_image, qemu_vm

from tests.conftest import Databases, dataplane_server


class VmCloud(RoutedCloud):
    host = "vm"

    @property
    def host_netns(self) -> str:
        """Where the agent's host is, and so where QEMU makes the VM's tap."""
        return f"{self.prefix}nhost-{self.host}"

    def port_status(self, port_id: str) -> str:
        return str(self.get(f"ports/{port_id}")["port"]["status"])


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmCloud]:
    with dataplane_server(databases, tmp_path_factory, "tv", VmCloud, host=VmCloud.host) as server:
        yield server


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_image(tmp_path_factory.mktemp("vm-image"))


def test_vm_on_a_port_dhcp_floating_ip_and_security_group(
    cloud: VmCloud, image: Path, tmp_path: Path
) -> None:
    routed = cloud.routed_network("vmnet", "10.10.70.0/24", "192.168.70.0/24")
    cloud.allow("tcp", 80)  # and nothing else from outside: 8080 stays closed
    port = cloud.create("ports", "port", network_id=routed["net"]["id"], name="vm1-port")
    address = port["fixed_ips"][0]["ip_address"]
    plugged = json.loads(
        cloud.neutrino("port", "plug", "vm1-port", "--host", cloud.host, "-f", "json").stdout
    )
    assert plugged["status"] == "DOWN"  # until QEMU makes its tap
    fip = cloud.create(
        "floatingips",
        "floatingip",
        floating_network_id=routed["ext"]["id"],
        port_id=port["id"],
    )["floating_ip_address"]
    cloud.background(cloud.outside, WHOAMI, "8080")

    with qemu_vm(
        image, "vm1", cloud.host_netns, plugged["device"], port["mac_address"], tmp_path
    ) as vm:
        wait_for(lambda: cloud.port_status(port["id"]) == "ACTIVE", timeout=30)
        # DHCP, as the VM sees it: the port's address, the router as its gateway.
        wait_for(lambda: vm.ipv4() == address, timeout=60)
        assert f"dhcp: {address}/24 via 192.168.70.1" in vm.boot_log()
        assert vm.run("ip route show default").startswith("default via 192.168.70.1 dev eth0")

        # From the outside, through the floating IP: port 80 answers, from the VM itself.
        assert eventually(lambda: cloud.http(cloud.outside, fip) == f"vm1 {address}", 30)
        # 8080 is served too, but the security group drops it (no refusal, nothing at all)...
        assert vm.run("wget -qO- http://127.0.0.1:8080/").strip() == f"vm1 {address}"
        url = f"http://{fip}:8080/"
        dropped = cloud.run(cloud.outside, "curl", "-s", "-m", "2", url)
        assert dropped.returncode == 28, dropped  # curl: timed out
        # ...until a rule lets it in.
        cloud.allow("tcp", 8080)
        assert eventually(
            lambda: (
                cloud.run(cloud.outside, "curl", "-s", "-m", "2", url).stdout.strip()
                == f"vm1 {address}"
            ),
            30,
        )
        # The VM's own connections leave through the router with its floating IP.
        assert vm.run("nc 10.10.70.1 8080 </dev/null").strip() == fip

    # The VM is gone and its tap with it: the port is DOWN, still bound.
    wait_for(lambda: cloud.port_status(port["id"]) == "DOWN", timeout=30)
