"""Ports bound to devices that something else made, as a VM's tap or a container's veth: the
test makes them itself (`neutrino port plug PORT --device NAME`), and the host's agent puts them
on the network with DHCP, anti-spoofing and security groups, as it does lab instances."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from netlab import ping, wait_for
from test_routers_api import RoutedCloud

from neutrino.agent.drivers import netns as ns
from tests.conftest import Databases, dataplane_server


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutedCloud]:
    with dataplane_server(databases, tmp_path_factory, "td", RoutedCloud, host="pd") as server:
        yield server


def ip(*argv: str) -> str:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=True).stdout


def host_netns(cloud: RoutedCloud) -> str:
    """The agent's host namespace, once its first sync has made it."""
    name = f"{cloud.prefix}nhost-{cloud.host}"
    wait_for(lambda: (ns.NETNS_DIR / name).exists(), timeout=30)
    return name


def master_of(cloud: RoutedCloud, device: str) -> str | None:
    (link,) = json.loads(ip("-n", host_netns(cloud), "-j", "link", "show", "dev", device))
    return link.get("master")


def status(cloud: RoutedCloud, port: dict[str, Any]) -> str:
    return str(cloud.get(f"ports/{port['id']}")["port"]["status"])


def veth(cloud: RoutedCloud, device: str, guest: str, port: dict[str, Any]) -> None:
    """A veth from the host (`device`, left down: the agent brings it up) to eth0 of `guest`,
    with the port's MAC, as a container runtime makes one."""
    ip(
        "-n",
        host_netns(cloud),
        "link",
        "add",
        device,
        "type",
        "veth",
        "peer",
        "eth0",
        "netns",
        guest,
    )
    ip("-n", guest, "link", "set", "dev", "eth0", "address", port["mac_address"], "up")


def lease(guest: str) -> str:
    """What DHCP offers eth0 of `guest` (busybox udhcpc, its address left unset)."""
    done = subprocess.run(
        ["ip", "netns", "exec", guest, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f"]
        + ["-t", "5", "-T", "1", "-s", "/bin/true"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout + done.stderr


def test_a_veth_made_elsewhere_is_plugged_filtered_and_followed(
    cloud: RoutedCloud, guests: Callable[[str], str]
) -> None:
    net = cloud.create("networks", "network", name="dev_net")
    cloud.create("subnets", "subnet", network_id=net["id"], ip_version=4, cidr="172.16.92.0/24")
    closed = cloud.create("security-groups", "security_group", name="closed")
    port_a = cloud.create("ports", "port", network_id=net["id"], name="dev_a")
    port_b = cloud.create(
        "ports", "port", network_id=net["id"], name="dev_b", security_groups=[closed["id"]]
    )
    ip_a, ip_b = (p["fixed_ips"][0]["ip_address"] for p in (port_a, port_b))
    ns_a, ns_b = guests("a"), guests("b")
    veth(cloud, "dev-a", ns_a, port_a)
    veth(cloud, "dev-b", ns_b, port_b)
    assert status(cloud, port_a) == "DOWN"

    plugged = json.loads(
        cloud.neutrino(
            "port", "plug", "dev_a", "--device", "dev-a", "--host", cloud.host, "-f", "json"
        ).stdout
    )
    assert plugged["device"] == "dev-a" and plugged["host"] == cloud.host
    assert plugged["bridge"] == f"brq{net['id'][:11]}"
    cloud.neutrino("port", "plug", "dev_b", "--device", "dev-b", "--host", cloud.host)
    wait_for(lambda: status(cloud, port_a) == status(cloud, port_b) == "ACTIVE", timeout=15)
    assert master_of(cloud, "dev-a") == f"brq{net['id'][:11]}"

    assert f"lease of {ip_a} obtained" in lease(ns_a)
    ip("-n", ns_a, "addr", "add", f"{ip_a}/24", "dev", "eth0")
    ip("-n", ns_b, "addr", "add", f"{ip_b}/24", "dev", "eth0")
    # b's group lets nothing in, and a's only its own members.
    assert not ping(ns_a, ip_b) and not ping(ns_b, ip_a)
    cloud.create(
        "security-group-rules",
        "security_group_rule",
        security_group_id=closed["id"],
        direction="ingress",
        ethertype="IPv4",
        protocol="icmp",
    )
    wait_for(lambda: ping(ns_a, ip_b), timeout=10)
    # a may send only from its own address.
    ip("-n", ns_a, "addr", "replace", "172.16.92.250/24", "dev", "eth0")
    ip("-n", ns_a, "addr", "del", f"{ip_a}/24", "dev", "eth0")
    assert not ping(ns_a, ip_b)

    ip("-n", ns_a, "link", "del", "eth0")  # the container is gone, and its veth with it
    wait_for(lambda: status(cloud, port_a) == "DOWN", timeout=10)

    cloud.delete(f"ports/{port_b['id']}")  # unplugged: off the bridge, the device left as it is
    wait_for(lambda: master_of(cloud, "dev-b") is None, timeout=10)
    assert not ping(ns_b, ip_a)


def test_a_tap_named_after_its_port_is_plugged_until_unplugged(cloud: RoutedCloud) -> None:
    net = cloud.create("networks", "network", name="tap_net")
    cloud.create("subnets", "subnet", network_id=net["id"], ip_version=4, cidr="172.16.93.0/24")
    port = cloud.create("ports", "port", network_id=net["id"], name="tap_port")
    tap = f"tap{port['id'][:11]}"  # what Nova names a VM's tap
    ip("-n", host_netns(cloud), "tuntap", "add", "dev", tap, "mode", "tap")

    cloud.neutrino("port", "plug", port["id"], "--host", cloud.host)
    wait_for(lambda: status(cloud, port) == "ACTIVE", timeout=15)
    assert master_of(cloud, tap) == f"brq{net['id'][:11]}"

    shown = json.loads(cloud.neutrino("port", "unplug", "tap_port", "-f", "json").stdout)
    assert (shown["host"], shown["status"]) == ("", "DOWN")
    wait_for(lambda: master_of(cloud, tap) is None, timeout=10)
    ip("-n", host_netns(cloud), "link", "del", tap)
