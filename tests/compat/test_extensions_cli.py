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
