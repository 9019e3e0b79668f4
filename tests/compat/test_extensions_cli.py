"""The unchanged `openstack` CLI against a live neutrino: extra DHCP options, IP availability,
ports by part of an address, address groups, stateless security groups, default rules, QoS,
flavors, metering."""

from __future__ import annotations

import pytest

from tests.conftest import CLI_BACKEND, LiveServer

pytestmark = [pytest.mark.compat, CLI_BACKEND]


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


def test_address_groups_stateless_groups_and_default_rules(live_server: LiveServer) -> None:
    cli = live_server.cli
    group = cli("address", "group", "create", "cli-ag", "--address", "192.168.0.10/24")
    assert group["addresses"] == ["192.168.0.0/24"]
    cli("address", "group", "set", "cli-ag", "--address", "10.0.0.1", output=False)
    cli("address", "group", "unset", "cli-ag", "--address", "192.168.0.0/24", output=False)
    assert cli("address", "group", "show", "cli-ag")["addresses"] == ["10.0.0.1/32"]

    stateless = cli("security", "group", "create", "cli-stateless", "--stateless")
    assert stateless["stateful"] is False
    rule = cli(
        "security",
        "group",
        "rule",
        "create",
        "cli-stateless",
        "--protocol",
        "tcp",
        "--dst-port",
        "22",
        "--remote-address-group",
        "cli-ag",
    )
    assert rule["remote_address_group_id"] == group["id"]

    templates = cli("default", "security", "group", "rule", "list")
    assert len(templates) == 4
    web = cli(
        "default",
        "security",
        "group",
        "rule",
        "create",
        "--protocol",
        "tcp",
        "--dst-port",
        "80",
        "--for-custom-sg",
    )
    assert (web["used_in_non_default_sg"], web["used_in_default_sg"]) == (True, False)
    cli("security", "group", "create", "cli-web")
    rules = cli("security", "group", "rule", "list", "cli-web")
    assert sorted((r["Direction"], r["Port Range"]) for r in rules) == [
        ("egress", ""),
        ("egress", ""),
        ("ingress", "80:80"),
    ]


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


def test_router_flavors(live_server: LiveServer) -> None:
    cli = live_server.cli
    flavor = cli("network", "flavor", "create", "--service-type", "L3_ROUTER_NAT", "cli-economy")
    driver = "neutron.services.l3_router.service_providers.single_node.SingleNodeDriver"
    profile = cli("network", "flavor", "profile", "create", "--driver", driver)
    cli("network", "flavor", "add", "profile", "cli-economy", profile["id"], output=False)
    shown = cli("network", "flavor", "show", "cli-economy", cloud="neutrino-demo")
    assert shown["service_profile_ids"] == [profile["id"]]
    router = cli(
        "router", "create", "--flavor", "cli-economy", "cli-flavored", cloud="neutrino-demo"
    )
    assert router["flavor_id"] == flavor["id"]
    busy = live_server.run_cli("network", "flavor", "delete", "cli-economy")
    assert busy.returncode != 0 and "is used by some service instance" in busy.stderr
    cli("router", "delete", "cli-flavored", cloud="neutrino-demo", output=False)
    cli("network", "flavor", "remove", "profile", "cli-economy", profile["id"], output=False)
    cli("network", "flavor", "profile", "delete", profile["id"], output=False)
    cli("network", "flavor", "delete", "cli-economy", output=False)


def test_metering_labels_and_rules(live_server: LiveServer) -> None:
    cli = live_server.cli
    label = cli("network", "meter", "create", "cli-meter", "--description", "web", "--share")
    assert (label["name"], label["description"], label["shared"]) == ("cli-meter", "web", True)
    counted = cli(
        "network",
        "meter",
        "rule",
        "create",
        "--egress",
        "--source-ip-prefix",
        "172.16.0.0/16",
        "cli-meter",
    )
    excluded = cli(
        "network",
        "meter",
        "rule",
        "create",
        "--ingress",
        "--exclude",
        "--remote-ip-prefix",
        "172.16.5.0/24",
        "cli-meter",
    )
    assert (counted["direction"], counted["source_ip_prefix"]) == ("egress", "172.16.0.0/16")
    assert (excluded["is_excluded"], excluded["remote_ip_prefix"]) == (True, "172.16.5.0/24")
    rules = cli("network", "meter", "rule", "list")
    assert {r["ID"] for r in rules} >= {counted["id"], excluded["id"]}
    assert cli("network", "meter", "show", "cli-meter")["id"] == label["id"]
    cli("network", "meter", "rule", "delete", excluded["id"], output=False)
    cli("network", "meter", "delete", "cli-meter", output=False)
    assert label["id"] not in {m["ID"] for m in cli("network", "meter", "list")}
