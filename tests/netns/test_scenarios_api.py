"""SCENARIOS.md S1 and S5, and network isolation, driven only through the APIs.

A real `neutrino serve` with its embedded agent (isolated mode, a unique
namespace prefix) is driven with the unchanged `openstack` CLI and the
`neutrino instance` commands; packets are real. Everything the server's agent
made is torn down at the end, and the test asserts nothing is left.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import Databases, dataplane_server, eventually
from tests.netns.multihost import Cloud


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with dataplane_server(databases, tmp_path_factory, "ta", Cloud) as server:
        yield server


def test_s1_flat_network_ping_and_tcp(cloud: Cloud) -> None:
    net = cloud.cli(
        "network",
        "create",
        "flat_net",
        "--provider-network-type",
        "flat",
        "--provider-physical-network",
        "default",
    )
    cloud.cli(
        "subnet", "create", "--network", net["id"], "--subnet-range", "172.16.87.0/24", "flat_sub"
    )
    vm1 = cloud.instance("s1-vm1", "--network", "flat_net")
    vm2 = cloud.instance("s1-vm2", "--network", "flat_net")
    ip2 = vm2["addresses"][0].split("/")[0]
    assert ip2.startswith("172.16.87.") and vm1["status"] == "ACTIVE"
    assert cloud.pings("s1-vm1", ip2)
    serve = cloud.run_in(
        "s1-vm2", "sh", "-c", "nohup python3 -m http.server 8080 >/dev/null 2>&1 &"
    )
    assert serve.returncode == 0
    fetched = eventually(
        lambda: (
            cloud.run_in(
                "s1-vm1",
                "curl",
                "-s",
                "-m",
                "1",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                f"http://{ip2}:8080/",
            ).stdout
            == "200"
        )
    )
    assert fetched
    ports = cloud.cli("port", "list", "--network", net["id"], "--long")
    assert {p["Status"] for p in ports} == {"ACTIVE"}
    unknown = cloud.run_cli(
        "network",
        "create",
        "x",
        "--provider-network-type",
        "flat",
        "--provider-physical-network",
        "nowhere",
    )
    assert unknown.returncode != 0 and "nowhere" in unknown.stderr
    cloud.neutrino("instance", "delete", "s1-vm1", "s1-vm2")
    assert eventually(
        lambda: (
            not [
                n
                for n in subprocess.run(
                    ["ip", "netns", "list"], capture_output=True, text=True, check=True
                ).stdout.split()
                if vm1["netns"] in n
            ]
        )
    )


@pytest.mark.parametrize("kind", ["vlan", "vxlan"])
def test_networks_are_isolated(cloud: Cloud, kind: str) -> None:
    """Same addresses on two networks: only the instances of one network reach each other."""
    nets = []
    for i in range(2):
        options = ["--provider-network-type", kind]
        if kind == "vlan":
            options += [
                "--provider-physical-network",
                "default",
                "--provider-segment",
                str(150 + i),
            ]
        net = cloud.cli("network", "create", f"{kind}-iso-{i}", *options)
        cloud.cli(
            "subnet",
            "create",
            "--network",
            net["id"],
            "--subnet-range",
            "10.77.0.0/24",
            f"{kind}-sub-{i}",
        )
        nets.append(net)
    cloud.instance(f"{kind}-a1", "--network", nets[0]["id"], "--fixed-ip", "10.77.0.11")
    cloud.instance(f"{kind}-a2", "--network", nets[0]["id"], "--fixed-ip", "10.77.0.12")
    cloud.instance(f"{kind}-b1", "--network", nets[1]["id"], "--fixed-ip", "10.77.0.21")
    assert cloud.pings(f"{kind}-a1", "10.77.0.12")
    assert not cloud.pings(f"{kind}-a1", "10.77.0.21")
    assert not cloud.pings(f"{kind}-b1", "10.77.0.11")
    cloud.neutrino("instance", "delete", f"{kind}-a1", f"{kind}-a2", f"{kind}-b1")


def test_s5_static_ip_spoofing_and_security_groups(cloud: Cloud) -> None:
    net = cloud.cli("network", "create", "s5-net")
    sub = cloud.cli(
        "subnet", "create", "--network", net["id"], "--subnet-range", "172.16.101.0/24", "s5-sub"
    )
    port = cloud.cli(
        "port",
        "create",
        "--network",
        net["id"],
        "--fixed-ip",
        f"subnet={sub['id']},ip-address=172.16.101.10",
        "static-port",
    )
    vm = cloud.instance("s5-vm", "--port", port["id"])
    assert vm["addresses"] == ["172.16.101.10/24"]
    peer = cloud.instance("s5-peer", "--network", net["id"])
    peer_ip = peer["addresses"][0].split("/")[0]
    assert cloud.pings("s5-vm", peer_ip)

    # Anti-spoofing: another address set by hand inside the instance is dropped.
    cloud.run_in("s5-vm", "ip", "addr", "flush", "dev", "eth0")
    cloud.run_in("s5-vm", "ip", "addr", "add", "172.16.101.99/24", "dev", "eth0")
    assert not cloud.pings("s5-vm", peer_ip)
    cloud.cli(
        "port", "set", port["id"], "--allowed-address", "ip-address=172.16.101.99", output=False
    )
    assert eventually(lambda: cloud.pings("s5-vm", peer_ip))
    # Neutron stores the pair with the port's MAC; the CLI removes exact pairs only.
    cloud.cli(
        "port",
        "unset",
        port["id"],
        "--allowed-address",
        f"ip-address=172.16.101.99,mac-address={port['mac_address']}",
        output=False,
    )
    assert eventually(lambda: not cloud.pings("s5-vm", peer_ip))
    assert not cloud.pings("s5-peer", "172.16.101.99")
    # Without port security the instance answers from any address (the peer's own group
    # lets its replies in: they belong to a connection the peer opened).
    cloud.cli(
        "port", "set", port["id"], "--no-security-group", "--disable-port-security", output=False
    )
    assert eventually(lambda: cloud.pings("s5-peer", "172.16.101.99"))

    # Security groups: another group's instance is denied ingress by default, a rule opens ICMP
    # live.
    other = cloud.cli("security", "group", "create", "s5-other")
    stranger = cloud.instance("s5-stranger", "--network", net["id"])
    stranger_port = stranger["port_ids"][0]
    cloud.cli(
        "port",
        "set",
        stranger_port,
        "--no-security-group",
        "--security-group",
        other["id"],
        output=False,
    )
    assert eventually(lambda: not cloud.pings("s5-stranger", peer_ip))
    groups = cloud.cli("security", "group", "list", "--project", peer["project_id"])
    default = next(g for g in groups if g["Name"] == "default")
    rule = cloud.cli(
        "security",
        "group",
        "rule",
        "create",
        "--protocol",
        "icmp",
        "--ingress",
        "--remote-ip",
        "0.0.0.0/0",
        default["ID"],
    )
    assert eventually(lambda: cloud.pings("s5-stranger", peer_ip), seconds=3)
    cloud.cli("security", "group", "rule", "delete", rule["id"], output=False)
    assert eventually(lambda: not cloud.pings("s5-stranger", peer_ip), seconds=3)
    cloud.neutrino("instance", "delete", "s5-vm", "s5-peer", "s5-stranger")
    assert (
        cloud.cli("port", "show", port["id"])["device_id"] == ""
    )  # an adopted port outlives its instance


def test_address_group_as_a_rules_remote(cloud: Cloud) -> None:
    net = cloud.cli("network", "create", "ag-net")
    cloud.cli("subnet", "create", "--network", net["id"], "--subnet-range", "172.16.102.0/24", "ag")
    trusted, other = (cloud.instance(name, "--network", net["id"]) for name in ("ag-a", "ag-b"))
    trusted_ip, other_ip = (i["addresses"][0].split("/")[0] for i in (trusted, other))
    group = cloud.cli("address", "group", "create", "ag-trusted", "--address", trusted_ip)
    servers = cloud.cli("security", "group", "create", "ag-servers")
    cloud.cli(
        "security",
        "group",
        "rule",
        "create",
        "--protocol",
        "icmp",
        "--ingress",
        "--remote-address-group",
        group["id"],
        servers["id"],
    )
    server = cloud.instance("ag-srv", "--network", net["id"])
    cloud.cli(
        "port",
        "set",
        server["port_ids"][0],
        "--no-security-group",
        "--security-group",
        servers["id"],
        output=False,
    )
    server_ip = server["addresses"][0].split("/")[0]
    assert eventually(lambda: not cloud.pings("ag-b", server_ip))
    assert cloud.pings("ag-a", server_ip)

    cloud.cli("address", "group", "set", "ag-trusted", "--address", other_ip, output=False)
    assert eventually(lambda: cloud.pings("ag-b", server_ip), seconds=3)
    cloud.cli("address", "group", "unset", "ag-trusted", "--address", trusted_ip, output=False)
    assert eventually(lambda: not cloud.pings("ag-a", server_ip), seconds=3)
    assert cloud.pings("ag-b", server_ip)
    cloud.neutrino("instance", "delete", "ag-a", "ag-b", "ag-srv")
