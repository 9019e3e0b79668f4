"""Conntrack helpers with real packets: an instance behind a router's source NAT fetches a file
from an FTP server outside in active mode, which takes the router's FTP helper: it rewrites the
PORT command to the router's address and lets the server's data connection back in."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_routers_api import RoutedCloud, eventually

from neutrino.plan.routers import CONNTRACK_HELPERS
from tests.conftest import Databases, dataplane_server

# pyftpdlib refuses a PORT naming an address other than the control connection's peer, as FTP
# servers do: without the helper, the instance's private address reaches it unrewritten.
SERVE = (
    "import sys\nfrom pyftpdlib.authorizers import DummyAuthorizer\n"
    "from pyftpdlib.handlers import FTPHandler\nfrom pyftpdlib.servers import FTPServer\n"
    "users=DummyAuthorizer();users.add_user('u','p',sys.argv[1])\n"
    "FTPHandler.authorizer=users\nFTPServer(('0.0.0.0',21),FTPHandler).serve_forever()\n"
)
FETCH_ACTIVE = (
    "import ftplib,io,sys\n"
    "ftp=ftplib.FTP(sys.argv[1],timeout=3);ftp.login('u','p');ftp.set_pasv(False)\n"
    "data=io.BytesIO();ftp.retrbinary('RETR file.txt',data.write);print(data.getvalue().decode())\n"
)
CONTENT = "fetched through the router's FTP helper"


class HelperCloud(RoutedCloud):
    host = "ct"

    def fetch(self, netns: str, address: str) -> str:
        """The file, fetched by active FTP from `address` ('' when the transfer fails)."""
        return self.run(netns, sys.executable, "-c", FETCH_ACTIVE, address).stdout.strip()


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelperCloud]:
    with dataplane_server(
        databases, tmp_path_factory, "tc", HelperCloud, host=HelperCloud.host
    ) as server:
        yield server


def test_active_ftp_through_source_nat_takes_the_ftp_helper(
    cloud: HelperCloud, tmp_path: Path
) -> None:
    routed = cloud.routed_network("ct", "10.10.60.0/24", "192.168.90.0/24")
    router_id = routed["router"]["id"]
    router_ns = f"{cloud.prefix}{cloud.host}-qrouter-{router_id}"
    cloud.allow("tcp", source="10.10.60.1/32")  # the server's data connection comes to the instance
    vm = cloud.new_instance("ct-vm", routed["net"]["id"])
    (tmp_path / "file.txt").write_text(CONTENT)
    cloud.background(cloud.outside, SERVE, str(tmp_path))
    # The control connection works either way; only the data connection needs the helper.
    assert eventually(lambda: cloud.ask(vm["netns"], "10.10.60.1", 21).startswith("220"))
    assert cloud.fetch(vm["netns"], "10.10.60.1") == ""

    helper = cloud.create(
        f"routers/{router_id}/conntrack_helpers",
        "conntrack_helper",
        protocol="tcp",
        port=21,
        helper="ftp",
    )
    assert eventually(lambda: cloud.fetch(vm["netns"], "10.10.60.1") == CONTENT)
    tracked = cloud.run(router_ns, "conntrack", "-L", "-p", "tcp", "--dport", "21").stdout
    assert "helper=ftp" in tracked and vm["ip"] in tracked

    # Without it, a new control connection gets no helper: the transfer fails again.
    cloud.delete(f"routers/{router_id}/conntrack_helpers/{helper['id']}")
    assert eventually(lambda: cloud.fetch(vm["netns"], "10.10.60.1") == "")
    rules = cloud.run(router_ns, "nft", "list", "table", "ip", "neutrino").stdout
    assert "ct helper" not in rules


def test_every_helper_the_api_allows_is_one_the_kernel_has(cloud: HelperCloud) -> None:
    """The router's table takes all of them at once (one that the kernel lacked would fail
    the table's transaction)."""
    router = cloud.create("routers", "router", name="all-helpers")
    router_ns = f"{cloud.prefix}{cloud.host}-qrouter-{router['id']}"
    wanted = [(h, p) for h, protocols in CONNTRACK_HELPERS.items() for p in protocols]
    for port, (helper, protocol) in enumerate(wanted, start=10000):
        cloud.create(
            f"routers/{router['id']}/conntrack_helpers",
            "conntrack_helper",
            protocol=protocol,
            port=port,
            helper=helper,
        )

    def objects() -> set[str]:
        listing = cloud.run(router_ns, "nft", "-j", "list", "table", "ip", "neutrino").stdout
        items = json.loads(listing or '{"nftables": []}')["nftables"]
        return {item["ct helper"]["name"] for item in items if "ct helper" in item}

    assert eventually(lambda: objects() == {f"{h}-{p}" for h, p in wanted})
