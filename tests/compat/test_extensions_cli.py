"""The unchanged `openstack` CLI against a live neutrino: extra DHCP options, IP availability,
ports by part of an address."""

from __future__ import annotations

import pytest

from tests.conftest import LiveServer

pytestmark = [
    pytest.mark.compat,
]


def test_extra_dhcp_options_ip_availability_and_substring_filter(live_server: LiveServer) -> None:
    cli = live_server.cli
    net = cli("network", "create", "cli-ext")
    cli(
        "subnet",
        "create",
        "cli-ext-sub",
        "--network",
        "cli-ext",
        "--subnet-range",
        "10.77.0.0/28",
        "--no-dhcp",
    )
    port = cli(
        "port",
        "create",
        "cli-ext-port",
        "--network",
        "cli-ext",
        "--extra-dhcp-option",
        "name=mtu,value=1400",
        "--extra-dhcp-option",
        "name=tftp-server,value=10.77.0.9,ip-version=4",
    )
    assert sorted(port["extra_dhcp_opts"], key=lambda o: o["opt_name"]) == [
        {"opt_name": "mtu", "opt_value": "1400", "ip_version": 4},
        {"opt_name": "tftp-server", "opt_value": "10.77.0.9", "ip_version": 4},
    ]
    address = port["fixed_ips"][0]["ip_address"]

    shown = cli("ip", "availability", "show", "cli-ext")
    assert (shown["network_id"], shown["used_ips"], shown["total_ips"]) == (net["id"], 1, 13)
    [row] = [
        r
        for r in cli("ip", "availability", "list", "--ip-version", "4")
        if r["Network ID"] == net["id"]
    ]
    assert (row["Network Name"], row["Total IPs"], row["Used IPs"]) == ("cli-ext", 13, 1)

    found = cli(
        "port", "list", "--fixed-ip", f"ip-substring={address[:-1]}", "--network", "cli-ext"
    )
    assert [p["ID"] for p in found] == [port["id"]]


def test_qos_policies_rules_and_ports(live_server: LiveServer) -> None:
    cli = live_server.cli
    policy = cli("network", "qos", "policy", "create", "--share", "cli-limit10")
    cli(
        "network",
        "qos",
        "rule",
        "create",
        "--type",
        "bandwidth-limit",
        "--max-kbps",
        "10000",
        "--egress",
        "cli-limit10",
    )
    cli(
        "network",
        "qos",
        "rule",
        "create",
        "--type",
        "dscp-marking",
        "--dscp-mark",
        "26",
        "cli-limit10",
    )
    rules = cli("network", "qos", "rule", "list", "cli-limit10")
    assert sorted((r["Type"], r["Max Kbps"], r["DSCP mark"]) for r in rules) == [
        ("bandwidth_limit", 10000, ""),
        ("dscp_marking", "", 26),
    ]
    types = cli("network", "qos", "rule", "type", "list")
    assert sorted(t["Type"] for t in types) == ["bandwidth_limit", "dscp_marking"]
    cli("network", "create", "cli-qos-net")
    port = cli("port", "create", "cli-qos-port", "--network", "cli-qos-net")
    cli("port", "set", "--qos-policy", "cli-limit10", port["id"], output=False)
    assert cli("port", "show", port["id"])["qos_policy_id"] == policy["id"]
    busy = live_server.run_cli("network", "qos", "policy", "delete", "cli-limit10")
    assert busy.returncode != 0 and "is used by port" in busy.stderr
    cli("port", "unset", "--qos-policy", port["id"], output=False)
    cli("network", "qos", "policy", "delete", "cli-limit10", output=False)
