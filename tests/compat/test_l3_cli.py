"""The unchanged `openstack` CLI against a live neutrino: routers, floating IPs, security groups,
quotas.

S2-S4 as the tutorial types them. One server for the module;
each CLI call costs ~0.7 s, so the flows are few and long.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import CLI_BACKEND, LiveServer

pytestmark = [pytest.mark.compat, CLI_BACKEND]

DEMO = "neutrino-demo"


@pytest.fixture(scope="module")
def ext_net(live_server: LiveServer) -> dict[str, Any]:
    net = live_server.cli(
        "network",
        "create",
        "ext_net",
        "--external",
        "--provider-network-type",
        "flat",
        "--provider-physical-network",
        "default",
    )
    live_server.cli(
        "subnet",
        "create",
        "ext_sub",
        "--network",
        "ext_net",
        "--subnet-range",
        "10.10.10.0/24",
        "--no-dhcp",
    )
    return net


def test_s2_s3_s4_router_gateway_and_floating_ip(
    live_server: LiveServer, ext_net: dict[str, Any]
) -> None:
    cli = live_server.cli
    for name, cidr in (("vlan100", "172.16.100.0/24"), ("vlan101", "172.16.101.0/24")):
        cli("network", "create", name, cloud=DEMO)
        cli(
            "subnet", "create", f"{name}-sub", "--network", name, "--subnet-range", cidr, cloud=DEMO
        )
    router = cli("router", "create", "router_100_101", cloud=DEMO)
    assert router["status"] == "ACTIVE" and router["admin_state_up"] is True
    for name in ("vlan100-sub", "vlan101-sub"):
        cli("router", "add", "subnet", "router_100_101", name, cloud=DEMO, output=False)
    cli(
        "router", "set", "--external-gateway", "ext_net", "router_100_101", cloud=DEMO, output=False
    )
    shown = cli("router", "show", "router_100_101", cloud=DEMO)
    gateway = shown["external_gateway_info"]
    assert gateway["network_id"] == ext_net["id"] and gateway["enable_snat"] is True
    assert gateway["external_fixed_ips"][0]["ip_address"] == "10.10.10.2"
    routed = cli(
        "router",
        "add",
        "route",
        "--route",
        "destination=192.168.50.0/24,gateway=172.16.101.254",
        "router_100_101",
        cloud=DEMO,
    )
    assert routed["routes"] == [{"destination": "192.168.50.0/24", "nexthop": "172.16.101.254"}]
    interfaces = cli("port", "list", "--router", "router_100_101", cloud=DEMO)
    assert sorted(p["Fixed IP Addresses"][0]["ip_address"] for p in interfaces) == [
        "172.16.100.1",
        "172.16.101.1",
    ]

    vm3 = cli("port", "create", "--network", "vlan101", "cirros-vm3", cloud=DEMO)
    fip = cli("floating", "ip", "create", "ext_net", cloud=DEMO)
    assert fip["status"] == "DOWN" and fip["port_id"] is None
    cli(
        "floating",
        "ip",
        "set",
        "--port",
        "cirros-vm3",
        fip["floating_ip_address"],
        cloud=DEMO,
        output=False,
    )
    bound = cli("floating", "ip", "show", fip["id"], cloud=DEMO)
    assert bound["port_id"] == vm3["id"] and bound["router_id"] == router["id"]
    assert bound["fixed_ip_address"] == vm3["fixed_ips"][0]["ip_address"]
    listed = cli("floating", "ip", "list", cloud=DEMO)
    assert [(f["Floating IP Address"], f["Port"]) for f in listed] == [
        (fip["floating_ip_address"], vm3["id"])
    ]
    assert [r["Name"] for r in cli("router", "list", cloud=DEMO)] == ["router_100_101"]
    cli("floating", "ip", "unset", "--port", fip["id"], cloud=DEMO, output=False)
    assert cli("floating", "ip", "show", fip["id"], cloud=DEMO)["port_id"] is None


def test_floating_ip_address_is_admin_only(
    live_server: LiveServer, ext_net: dict[str, Any]
) -> None:
    result = live_server.run_cli(
        "floating",
        "ip",
        "create",
        "--floating-ip-address",
        "10.10.10.200",
        "ext_net",
        "-f",
        "json",
        cloud=DEMO,
    )
    assert result.returncode != 0 and ("403" in result.stderr or "disallowed" in result.stderr)
    fip = live_server.cli(
        "floating", "ip", "create", "--floating-ip-address", "10.10.10.200", "ext_net"
    )
    assert fip["floating_ip_address"] == "10.10.10.200"


def test_port_forwarding(live_server: LiveServer, ext_net: dict[str, Any]) -> None:
    cli = live_server.cli
    cli("network", "create", "pf-net", cloud=DEMO)
    cli(
        "subnet",
        "create",
        "pf-sub",
        "--network",
        "pf-net",
        "--subnet-range",
        "10.50.0.0/24",
        cloud=DEMO,
    )
    cli("router", "create", "pf-router", "--external-gateway", "ext_net", cloud=DEMO)
    cli("router", "add", "subnet", "pf-router", "pf-sub", cloud=DEMO, output=False)
    port = cli("port", "create", "--network", "pf-net", "pf-vm", cloud=DEMO)
    ip = port["fixed_ips"][0]["ip_address"]
    fip = cli("floating", "ip", "create", "ext_net", cloud=DEMO)
    pf = cli(
        "floating",
        "ip",
        "port",
        "forwarding",
        "create",
        fip["id"],
        "--internal-ip-address",
        ip,
        "--port",
        port["id"],
        "--protocol",
        "tcp",
        "--internal-protocol-port",
        "22",
        "--external-protocol-port",
        "2222",
        "--description",
        "ssh",
        cloud=DEMO,
    )
    assert (pf["internal_port"], pf["external_port"], pf["description"]) == (22, 2222, "ssh")
    ranged = cli(
        "floating",
        "ip",
        "port",
        "forwarding",
        "create",
        fip["id"],
        "--internal-ip-address",
        ip,
        "--port",
        port["id"],
        "--protocol",
        "udp",
        "--internal-protocol-port",
        "5000:5009",
        "--external-protocol-port",
        "6000:6009",
        cloud=DEMO,
    )
    assert (ranged["internal_port_range"], ranged["external_port_range"]) == (
        "5000:5009",
        "6000:6009",
    )
    cli(
        "floating",
        "ip",
        "port",
        "forwarding",
        "set",
        "--internal-protocol-port",
        "2022",
        fip["id"],
        pf["id"],
        cloud=DEMO,
        output=False,
    )
    listed = cli("floating", "ip", "port", "forwarding", "list", fip["id"], cloud=DEMO)
    assert sorted(str(p["Internal Port"]) for p in listed) == ["2022", "None"]
    assert cli("floating", "ip", "show", fip["id"], cloud=DEMO)["router_id"] is not None
    for forwarding in (pf, ranged):
        cli(
            "floating",
            "ip",
            "port",
            "forwarding",
            "delete",
            fip["id"],
            forwarding["id"],
            cloud=DEMO,
            output=False,
        )
    assert cli("floating", "ip", "show", fip["id"], cloud=DEMO)["port_forwardings"] == []


def test_conntrack_helpers(live_server: LiveServer, ext_net: dict[str, Any]) -> None:
    cli = live_server.cli
    cli("router", "create", "cth-router", "--external-gateway", "ext_net", cloud=DEMO)
    helper = ("network", "l3", "conntrack", "helper")
    ftp = cli(
        *helper,
        "create",
        "--helper",
        "ftp",
        "--protocol",
        "tcp",
        "--port",
        "21",
        "cth-router",
        cloud=DEMO,
    )
    assert (ftp["helper"], ftp["protocol"], ftp["port"]) == ("ftp", "tcp", 21)
    cli(
        *helper,
        "create",
        "--helper",
        "tftp",
        "--protocol",
        "udp",
        "--port",
        "69",
        "cth-router",
        cloud=DEMO,
    )
    cli(*helper, "set", "--port", "2121", "cth-router", ftp["id"], cloud=DEMO, output=False)
    assert cli(*helper, "show", "cth-router", ftp["id"], cloud=DEMO)["port"] == 2121
    listed = cli(*helper, "list", "cth-router", cloud=DEMO)
    assert sorted((h["Helper"], h["Port"]) for h in listed) == [("ftp", 2121), ("tftp", 69)]
    refused = live_server.run_cli(
        *helper,
        "create",
        "--helper",
        "nope",
        "--protocol",
        "tcp",
        "--port",
        "1",
        "cth-router",
        cloud=DEMO,
    )
    assert refused.returncode != 0 and "Conntrack Helper nope is not allowed." in refused.stderr
    cli(*helper, "delete", "cth-router", ftp["id"], cloud=DEMO, output=False)
    router = cli("router", "show", "cth-router", cloud=DEMO)
    assert router["conntrack_helpers"] == [{"protocol": "udp", "port": 69, "helper": "tftp"}]


def test_security_group_rules(live_server: LiveServer) -> None:
    cli = live_server.cli
    group = cli("security", "group", "create", "web", cloud=DEMO)
    rule = cli(
        "security",
        "group",
        "rule",
        "create",
        "--protocol",
        "tcp",
        "--dst-port",
        "80",
        "web",
        cloud=DEMO,
    )
    assert rule["protocol"] == "tcp" and rule["port_range_min"] == rule["port_range_max"] == 80
    assert rule["remote_ip_prefix"] == "0.0.0.0/0" and rule["security_group_id"] == group["id"]
    icmp = cli("security", "group", "rule", "create", "--protocol", "icmp", "web", cloud=DEMO)
    assert icmp["protocol"] == "icmp"
    duplicate = live_server.run_cli(
        "security",
        "group",
        "rule",
        "create",
        "--protocol",
        "tcp",
        "--dst-port",
        "80",
        "web",
        cloud=DEMO,
    )
    assert duplicate.returncode != 0 and "already exists" in duplicate.stderr
    assert {g["Name"] for g in cli("security", "group", "list", cloud=DEMO)} == {"default", "web"}
    rules = cli("security", "group", "rule", "list", "web", cloud=DEMO)
    assert len(rules) == 4  # two egress rules of a new group, and the two above


def test_quota_set_and_show(live_server: LiveServer) -> None:
    cli = live_server.cli
    # Room for exactly one more router than the project has (this module's tests made some).
    routers = len(cli("router", "list", cloud=DEMO)) + 1
    cli(
        "quota",
        "set",
        "--networks",
        "7",
        "--routers",
        str(routers),
        "--floating-ips",
        "9",
        "demo",
        output=False,
    )
    limits = {row["Resource"]: row["Limit"] for row in cli("quota", "show", "demo")}
    assert limits["networks"] == 7 and limits["routers"] == routers and limits["floating_ips"] == 9
    assert limits["security_groups"] == 10
    cli("router", "create", "counted", cloud=DEMO)
    usage = {row["Resource"]: row["In Use"] for row in cli("quota", "show", "--usage", "demo")}
    assert usage["routers"] == routers
    over = live_server.run_cli("router", "create", "one-too-many", cloud=DEMO)
    assert over.returncode != 0 and "Quota exceeded for resources: ['router']" in over.stderr
