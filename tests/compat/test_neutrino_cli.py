"""The `neutrino` command against a live server with its data plane, as a user types and reads it.

Data is printed as it is, never read as Rich markup or emoji codes. The server runs
its embedded agent under a unique namespace prefix; everything it made is torn
down at the end, and the test asserts nothing is left.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Databases, LiveServer, dataplane_server


class Cloud(LiveServer):
    def json(self, *args: str) -> Any:
        """`neutrino ARGS -f json`, parsed."""
        return json.loads(self.neutrino(*args, "-f", "json").stdout)

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
    cloud.cli("subnet", "create", "--network", net["id"], "--subnet-range", "10.93.0.0/24", "cli-sub")
    return dict(net)


def test_data_is_printed_verbatim(cloud: Cloud, network: dict[str, Any]) -> None:
    name = "[bold]web[/] :ab:"
    # An address no deleted port had: dnsmasq keeps a lease for the old MAC and would not hand it out.
    port = cloud.cli("port", "create", "--network", "cli-net", "--mac-address", "fa:16:3e:ab:e9:72",
                     "--fixed-ip", "ip-address=10.93.0.50", name)
    tree = cloud.neutrino("inspect", "port", port["id"]).stdout
    assert f"name: {name}\n" in tree and "mac_address: fa:16:3e:ab:e9:72\n" in tree
    vm = cloud.json("instance", "create", f"vm {name}", "--port", port["id"])
    assert f"vm {name}" in cloud.neutrino("instance", "show", vm["id"]).stdout
    assert "[red]:ab:" in cloud.error("instance", "show", "[red]:ab:")
    cloud.neutrino("instance", "delete", vm["id"])
