"""The `neutrino` command against a live server with its data plane, as a user types and reads it.

Every option that names a resource takes its name or its ID (an ambiguous name
is an error listing the matches, a missing one "not found"), and data is
printed as it is, never read as Rich markup or emoji codes. The server runs
its embedded agent under a unique namespace prefix; everything it made is torn
down at the end, and the test asserts nothing is left.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Databases, LiveServer, dataplane_server

MEMBER = "neutrino-demo"


class Cloud(LiveServer):
    def json(self, *args: str, cloud: str = "neutrino-admin") -> Any:
        """`neutrino ARGS -f json`, parsed."""
        return json.loads(self.neutrino(*args, "-f", "json", cloud=cloud).stdout)

    def error(self, *args: str) -> str:
        """`neutrino ARGS`, which must fail; what it says on stderr."""
        result = self.neutrino(*args, check=False)
        assert result.returncode == 1, f"neutrino {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stderr


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with dataplane_server(databases, tmp_path_factory, "tc", Cloud) as server:
        yield server


@pytest.fixture(scope="module")
def network(cloud: Cloud) -> dict[str, Any]:
    net = cloud.cli("network", "create", "cli-net")
    cloud.cli(
        "subnet", "create", "--network", net["id"], "--subnet-range", "10.93.0.0/24", "cli-sub"
    )
    return dict(net)


def test_options_naming_a_resource_take_its_name(cloud: Cloud, network: dict[str, Any]) -> None:
    port = cloud.cli("port", "create", "--network", "cli-net", "cli-port")
    vm = cloud.json("instance", "create", "cli-vm", "--port", "cli-port")
    assert vm["status"] == "ACTIVE" and vm["port_ids"] == [port["id"]]
    peer = cloud.json("instance", "create", "cli-peer", "--network", "cli-net")
    assert cloud.json("instance", "show", "cli-vm")["id"] == vm["id"]
    assert "eth0" in cloud.neutrino("instance", "exec", "cli-vm", "--", "ip", "-br", "link").stdout
    address = peer["addresses"][0].split("/")[0]
    traced = cloud.json("trace", "--from", "cli-vm", "--to", address)
    assert traced["from"]["instance_id"] == vm["id"]
    assert cloud.json("inspect", "port", "cli-port")["port"]["id"] == port["id"]
    cloud.neutrino("instance", "delete", "cli-vm", "cli-peer")
    assert cloud.json("instance", "list") == []


def test_ambiguous_and_missing_names_are_clear_errors(
    cloud: Cloud, network: dict[str, Any]
) -> None:
    twins = sorted(cloud.cli("network", "create", "cli-twin")["id"] for _ in range(2))
    said = cloud.error("instance", "create", "cli-x", "--network", "cli-twin")
    assert (
        f"error: More than one network matches 'cli-twin': {twins[0]}, {twins[1]}. Give its ID."
        in said
    )
    said = cloud.error(
        "instance", "create", "cli-x", "--network", "cli-net", "--port", "cli-nosuch"
    )
    assert "error: No port found for 'cli-nosuch'." in said
    assert cloud.json("instance", "list") == []  # nothing was made
    routers = sorted(cloud.cli("router", "create", "cli-twin")["id"] for _ in range(2))
    said = cloud.error("inspect", "router", "cli-twin")
    assert f"More than one router matches 'cli-twin': {routers[0]}, {routers[1]}." in said
    for kind, noun in (
        ("router", "router"),
        ("floatingip", "floating IP"),
        ("port", "port"),
        ("loadbalancer", "load balancer"),
    ):
        assert f"No {noun} found for 'cli-nosuch'." in cloud.error("inspect", kind, "cli-nosuch")
    for command in (
        ["instance", "show", "cli-nosuch"],
        ["instance", "delete", "cli-nosuch"],
        ["instance", "exec", "cli-nosuch", "--", "true"],
        ["trace", "--from", "cli-nosuch", "--to", "10.93.0.1"],
    ):
        assert "No instance found for 'cli-nosuch'." in cloud.error(*command)


def test_data_is_printed_verbatim(cloud: Cloud, network: dict[str, Any]) -> None:
    name = "[bold]web[/] :ab:"
    # An address no deleted port had: dnsmasq keeps a lease for the old MAC and would not hand it
    # out.
    port = cloud.cli(
        "port",
        "create",
        "--network",
        "cli-net",
        "--mac-address",
        "fa:16:3e:ab:e9:72",
        "--fixed-ip",
        "ip-address=10.93.0.50",
        name,
    )
    tree = cloud.neutrino("inspect", "port", port["id"]).stdout
    assert f"name: {name}\n" in tree and "mac_address: fa:16:3e:ab:e9:72\n" in tree
    vm = cloud.json("instance", "create", f"vm {name}", "--port", port["id"])
    assert f"vm {name}" in cloud.neutrino("instance", "show", vm["id"]).stdout
    assert "[red]:ab:" in cloud.error("instance", "show", "[red]:ab:")
    cloud.neutrino("instance", "delete", vm["id"])


def test_only_an_administrator_is_shown_the_hosts_status(cloud: Cloud) -> None:
    """As Nova shows a server's `host_status`: a member's own instance shows without it."""
    net = cloud.cli("network", "create", "cli-own", cloud=MEMBER)
    cloud.cli(
        "subnet",
        "create",
        "--network",
        net["id"],
        "--subnet-range",
        "10.94.0.0/24",
        "cli-own-sub",
        cloud=MEMBER,
    )
    vm = cloud.json("instance", "create", "cli-own-vm", "--network", "cli-own", cloud=MEMBER)
    assert "host_status" not in vm
    assert "host_status" not in cloud.json("instance", "show", "cli-own-vm", cloud=MEMBER)
    table = cloud.neutrino("instance", "show", "cli-own-vm", cloud=MEMBER).stdout
    assert "cli-own-vm" in table and "host_status" not in table
    assert cloud.json("instance", "show", vm["id"])["host_status"] == "UP"
    assert "host_status" in cloud.neutrino("instance", "show", vm["id"]).stdout
    cloud.neutrino("instance", "delete", vm["id"])
    cloud.cli("network", "delete", net["id"], cloud=MEMBER, output=False)
