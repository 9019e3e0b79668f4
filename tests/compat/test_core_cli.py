"""The unchanged `openstack` CLI against a live neutrino: identity, networks, subnets, ports.

Black-box, as a user would type it. The server is shared by the module (on PostgreSQL, see
CLI_BACKEND), so every test uses its own names, addresses and VLAN IDs. Each CLI call
costs ~0.7 s: keep the whole module near 35 calls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import CLI_BACKEND, LiveServer

pytestmark = [pytest.mark.compat, CLI_BACKEND]

DEMO = "neutrino-demo"


def failed(server: LiveServer, *args: str, cloud: str = "neutrino-admin") -> str:
    """Run a CLI command that must fail; its stderr."""
    result = server.run_cli(*args, cloud=cloud)
    assert result.returncode != 0, (
        f"openstack {' '.join(args)} unexpectedly succeeded:\n{result.stdout}"
    )
    return result.stderr


def names(rows: list[dict[str, Any]]) -> set[str]:
    return {row["Name"] for row in rows}


@pytest.fixture(scope="module")
def shared_network(live_server: LiveServer) -> dict[str, Any]:
    """An admin-owned shared network, for the cross-project tests."""
    return live_server.cli("network", "create", "cli-shared", "--share")


# -- identity ------------------------------------------------------------------------
def test_token_issue_and_catalog(live_server: LiveServer) -> None:
    token = live_server.cli("token", "issue")
    assert len(token["id"]) > 20 and token["project_id"] and token["user_id"]
    expires = datetime.strptime(token["expires"], "%Y-%m-%dT%H:%M:%S%z")
    assert expires > datetime.now(UTC)

    catalog = {entry["Type"]: entry for entry in live_server.cli("catalog", "list")}
    assert "identity" in catalog and "network" in catalog
    endpoints = catalog["network"]["Endpoints"]
    assert {e["interface"] for e in endpoints} >= {"public"}
    for endpoint in endpoints:
        assert endpoint["region"] == "RegionOne"
        assert endpoint["url"].rstrip("/") == live_server.url + "/networking"


# -- networks ------------------------------------------------------------------------
def test_provider_networks_as_admin(live_server: LiveServer) -> None:
    flat = live_server.cli(
        "network",
        "create",
        "cli-flat",
        "--provider-network-type",
        "flat",
        "--provider-physical-network",
        "default",
    )
    assert flat["provider:network_type"] == "flat"
    assert flat["provider:physical_network"] == "default"
    assert flat["provider:segmentation_id"] is None
    assert flat["status"] == "ACTIVE" and flat["shared"] is False

    vlan = live_server.cli(
        "network",
        "create",
        "cli-vlan",
        "--provider-network-type",
        "vlan",
        "--provider-physical-network",
        "default",
        "--provider-segment",
        "150",
    )
    assert vlan["provider:network_type"] == "vlan"
    assert vlan["provider:physical_network"] == "default"
    assert vlan["provider:segmentation_id"] == 150

    stderr = failed(
        live_server,
        "network",
        "create",
        "cli-nowhere",
        "--provider-network-type",
        "flat",
        "--provider-physical-network",
        "nowhere",
    )
    assert "400" in stderr and "nowhere" in stderr and "physical_network" in stderr, stderr

    live_server.cli("network", "delete", "cli-flat", "cli-vlan", output=False)


def test_network_share_external_set_tags_delete(live_server: LiveServer) -> None:
    net = live_server.cli(
        "network", "create", "cli-net", "--share", "--external", "--description", "first"
    )
    assert net["shared"] is True and net["router:external"] is True
    assert net["description"] == "first" and net["tags"] == []

    live_server.cli(
        "network",
        "set",
        "cli-net",
        "--name",
        "cli-net2",
        "--no-share",
        "--internal",
        "--description",
        "second",
        "--tag",
        "blue",
        "--tag",
        "green",
        output=False,
    )
    shown = live_server.cli("network", "show", "cli-net2")
    assert shown["id"] == net["id"] and shown["name"] == "cli-net2"
    assert shown["shared"] is False and shown["router:external"] is False
    assert shown["description"] == "second"
    assert sorted(shown["tags"]) == ["blue", "green"]
    assert shown["revision_number"] > net["revision_number"]

    assert names(live_server.cli("network", "list", "--tags", "blue,green")) == {"cli-net2"}

    live_server.cli("network", "delete", "cli-net2", output=False)
    assert "No Network found for cli-net2" in failed(live_server, "network", "show", "cli-net2")


# -- subnets -------------------------------------------------------------------------
def test_subnets_create_set_unset_show_list(live_server: LiveServer) -> None:
    live_server.cli("network", "create", "cli-subnets")
    v4 = live_server.cli(
        "subnet",
        "create",
        "cli-v4",
        "--network",
        "cli-subnets",
        "--subnet-range",
        "10.81.0.0/24",
        "--allocation-pool",
        "start=10.81.0.10,end=10.81.0.20",
        "--dns-nameserver",
        "8.8.8.8",
    )
    assert v4["cidr"] == "10.81.0.0/24" and v4["ip_version"] == 4
    assert v4["gateway_ip"] == "10.81.0.1"
    assert v4["allocation_pools"] == [{"start": "10.81.0.10", "end": "10.81.0.20"}]
    assert v4["dns_nameservers"] == ["8.8.8.8"] and v4["enable_dhcp"] is True

    nogw = live_server.cli(
        "subnet",
        "create",
        "cli-nogw",
        "--network",
        "cli-subnets",
        "--subnet-range",
        "10.82.0.0/24",
        "--gateway",
        "none",
    )
    assert nogw["gateway_ip"] is None
    assert nogw["allocation_pools"] == [{"start": "10.82.0.1", "end": "10.82.0.254"}]

    v6 = live_server.cli(
        "subnet",
        "create",
        "cli-v6",
        "--network",
        "cli-subnets",
        "--ip-version",
        "6",
        "--subnet-range",
        "fd00:81::/64",
    )
    assert v6["ip_version"] == 6 and v6["gateway_ip"] == "fd00:81::"

    live_server.cli(
        "subnet", "set", "cli-v4", "--name", "cli-v4b", "--dns-nameserver", "1.1.1.1", output=False
    )
    live_server.cli("subnet", "unset", "cli-v4b", "--dns-nameserver", "8.8.8.8", output=False)
    shown = live_server.cli("subnet", "show", "cli-v4b")
    assert shown["id"] == v4["id"] and shown["name"] == "cli-v4b"
    assert shown["dns_nameservers"] == ["1.1.1.1"]
    assert shown["allocation_pools"] == v4["allocation_pools"]

    listed = live_server.cli("subnet", "list", "--network", "cli-subnets")
    assert {(s["Name"], s["Subnet"]) for s in listed} == {
        ("cli-v4b", "10.81.0.0/24"),
        ("cli-nogw", "10.82.0.0/24"),
        ("cli-v6", "fd00:81::/64"),
    }
    assert {s["Network"] for s in listed} == {v4["network_id"]}


# -- ports ---------------------------------------------------------------------------
def test_ports_create_list_set_delete_and_taken_ip(live_server: LiveServer) -> None:
    live_server.cli("network", "create", "cli-ports")
    subnet = live_server.cli(
        "subnet",
        "create",
        "cli-ports-v4",
        "--network",
        "cli-ports",
        "--subnet-range",
        "10.83.0.0/24",
        "--no-dhcp",
    )

    port = live_server.cli(
        "port",
        "create",
        "cli-p1",
        "--network",
        "cli-ports",
        "--fixed-ip",
        "subnet=cli-ports-v4,ip-address=10.83.0.50",
        "--mac-address",
        "fa:16:3e:83:00:50",
        "--disable-port-security",
    )
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.83.0.50"}]
    assert port["mac_address"] == "fa:16:3e:83:00:50"
    assert port["port_security_enabled"] is False and port["security_group_ids"] == []
    assert port["status"] == "DOWN" and port["network_id"] == subnet["network_id"]

    pair = live_server.cli(
        "port",
        "create",
        "cli-p2",
        "--network",
        "cli-ports",
        "--allowed-address",
        "ip-address=10.83.0.99",
    )
    assert [p["ip_address"] for p in pair["allowed_address_pairs"]] == ["10.83.0.99"]
    # Neutron fills the pair's MAC with the port's own
    assert pair["allowed_address_pairs"][0]["mac_address"] == pair["mac_address"]
    assert pair["port_security_enabled"] is True and len(pair["security_group_ids"]) == 1

    stderr = failed(
        live_server,
        "port",
        "create",
        "cli-p3",
        "--network",
        "cli-ports",
        "--fixed-ip",
        "subnet=cli-ports-v4,ip-address=10.83.0.50",
    )
    assert "409" in stderr, stderr
    assert f"IP address 10.83.0.50 already allocated in subnet {subnet['id']}" in stderr, stderr

    live_server.cli("port", "set", "cli-p1", "--name", "cli-p1-renamed", output=False)
    live_server.cli("port", "delete", "cli-p2", output=False)
    after = live_server.cli("port", "list", "--network", "cli-ports")
    assert {(p["ID"], p["Name"]) for p in after} == {(port["id"], "cli-p1-renamed")}
    by_ip = live_server.cli("port", "list", "--fixed-ip", "ip-address=10.83.0.50")
    assert [(p["ID"], p["Name"], p["MAC Address"]) for p in by_ip] == [
        (port["id"], "cli-p1-renamed", "fa:16:3e:83:00:50")
    ]


# -- as demo, and across projects -------------------------------------------------------
def test_demo_cannot_see_admins_private_network(
    live_server: LiveServer, shared_network: dict[str, Any]
) -> None:
    private = live_server.cli("network", "create", "cli-admin-private")
    stderr = failed(live_server, "network", "show", private["id"], cloud=DEMO)
    assert f"No Network found for {private['id']}" in stderr, stderr

    seen = live_server.cli("network", "list", cloud=DEMO)
    assert "cli-admin-private" not in names(seen)
    assert shared_network["id"] in {n["ID"] for n in seen}


def test_demo_sees_shared_network_but_cannot_delete_it(
    live_server: LiveServer, shared_network: dict[str, Any]
) -> None:
    shown = live_server.cli("network", "show", "cli-shared", cloud=DEMO)
    assert shown["id"] == shared_network["id"] and shown["shared"] is True
    assert shown["project_id"] == shared_network["project_id"]

    stderr = failed(live_server, "network", "delete", "cli-shared", cloud=DEMO)
    assert "403" in stderr or "404" in stderr, stderr
    assert "1 of 1 networks failed to delete" in stderr, stderr


def test_demo_delete_of_shared_network_names_delete_policy(
    live_server: LiveServer, shared_network: dict[str, Any]
) -> None:
    stderr = failed(live_server, "network", "delete", shared_network["id"], cloud=DEMO)
    assert "rule:delete_network is disallowed by policy" in stderr, stderr


def test_demo_taken_ip_on_own_network(
    live_server: LiveServer, shared_network: dict[str, Any]
) -> None:
    own = live_server.cli("network", "create", "cli-demo-net", cloud=DEMO)
    assert own["project_id"] != shared_network["project_id"]
    subnet = live_server.cli(
        "subnet",
        "create",
        "cli-demo-v4",
        "--network",
        "cli-demo-net",
        "--subnet-range",
        "10.85.0.0/24",
        "--no-dhcp",
        cloud=DEMO,
    )
    port = live_server.cli(
        "port",
        "create",
        "cli-demo-p1",
        "--network",
        "cli-demo-net",
        "--fixed-ip",
        "ip-address=10.85.0.5",
        cloud=DEMO,
    )
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.85.0.5"}]
    stderr = failed(
        live_server,
        "port",
        "create",
        "cli-demo-p2",
        "--network",
        "cli-demo-net",
        "--fixed-ip",
        "ip-address=10.85.0.5",
        cloud=DEMO,
    )
    assert f"IP address 10.85.0.5 already allocated in subnet {subnet['id']}" in stderr, stderr
