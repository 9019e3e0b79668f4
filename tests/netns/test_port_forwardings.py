"""Port forwardings with real packets: the outside reaches an instance's ports through a floating
IP's ports, TCP and UDP, single and ranges; the instance's own traffic is left alone."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from test_routers_api import WHOAMI, RoutedCloud, eventually

from tests.conftest import Databases, dataplane_server

# Answers every TCP connection and UDP datagram on the ports in argv with that port's number.
PORTS = (
    "import socket,sys,threading\n"
    "def tcp(p):\n s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    " s.bind(('0.0.0.0',p));s.listen()\n"
    " while True:\n  c,_=s.accept();c.sendall(str(p).encode());c.close()\n"
    "def udp(p):\n s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',p))\n"
    " while True:\n  _,a=s.recvfrom(64);s.sendto(str(p).encode(),a)\n"
    "for p in map(int,sys.argv[1:]):\n"
    " for f in (tcp,udp): threading.Thread(target=f,args=(p,)).start()\n"
)
ASK_UDP = (
    "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(1)\n"
    "s.sendto(b'?',(sys.argv[1],int(sys.argv[2])))\n"
    "try:\n print(s.recv(64).decode())\nexcept OSError:\n pass\n"
)


class ForwardingCloud(RoutedCloud):
    host = "pf"

    def ask_tcp(self, address: str, port: int) -> str:
        """The port the instance's server says it listens on, asked from the outside at the
        floating IP's `port` ('' when unreachable)."""
        return self.ask(self.outside, address, port)

    def ask_udp(self, address: str, port: int) -> str:
        asked = self.run(self.outside, sys.executable, "-c", ASK_UDP, address, str(port))
        return asked.stdout.strip()

    def forward(self, fip_id: str, vm: dict[str, Any], protocol: str, **ports: Any) -> str:
        pf = self.create(
            f"floatingips/{fip_id}/port_forwardings",
            "port_forwarding",
            protocol=protocol,
            internal_port_id=vm["port_ids"][0],
            internal_ip_address=vm["ip"],
            **ports,
        )
        return str(pf["id"])


@pytest.fixture(scope="module")
def cloud(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ForwardingCloud]:
    with dataplane_server(
        databases, tmp_path_factory, "tp", ForwardingCloud, host=ForwardingCloud.host
    ) as server:
        yield server


def test_forwarded_ports_reach_the_instance(cloud: ForwardingCloud) -> None:
    routed = cloud.routed_network("pf", "10.10.50.0/24", "192.168.80.0/24")
    for protocol in ("tcp", "udp"):
        cloud.allow(protocol, (7000, 7002))
    vm = cloud.new_instance("pf-vm", routed["net"]["id"])
    cloud.background(vm["netns"], PORTS, "7000", "7001", "7002")
    cloud.background(cloud.outside, WHOAMI, "8080")
    fip = cloud.create("floatingips", "floatingip", floating_network_id=routed["ext"]["id"])
    address = fip["floating_ip_address"]
    assert cloud.ask_tcp(address, 2222) == ""

    tcp = cloud.forward(fip["id"], vm, "tcp", external_port=2222, internal_port=7000)
    udp = cloud.forward(fip["id"], vm, "udp", external_port=5353, internal_port=7001)
    cloud.forward(
        fip["id"], vm, "tcp", external_port_range="3001:3002", internal_port_range="7001:7002"
    )
    cloud.forward(fip["id"], vm, "udp", external_port_range="4000:4009", internal_port=7002)
    assert eventually(lambda: cloud.ask_tcp(address, 2222) == "7000")
    assert cloud.ask_udp(address, 5353) == "7001"
    assert cloud.ask_tcp(address, 3001) == "7001" and cloud.ask_tcp(address, 3002) == "7002"
    assert cloud.ask_udp(address, 4000) == "7002" and cloud.ask_udp(address, 4009) == "7002"
    assert cloud.ask_tcp(address, 3003) == "" and cloud.ask_udp(address, 2222) == ""
    assert eventually(
        lambda: cloud.get(f"floatingips/{fip['id']}")["floatingip"]["status"] == "ACTIVE"
    )
    # The instance's own connections leave with the router's address, as before.
    gateway_ip = cloud.get(f"routers/{routed['router']['id']}")["router"]["external_gateway_info"][
        "external_fixed_ips"
    ][0]["ip_address"]
    assert cloud.ask(vm["netns"], "10.10.50.1") == gateway_ip

    # Removing one forwarding stops it alone; the others' elements stay in the map.
    router_ns = f"{cloud.prefix}{cloud.host}-qrouter-{routed['router']['id']}"
    cloud.delete(f"floatingips/{fip['id']}/port_forwardings/{tcp}")
    assert eventually(lambda: cloud.ask_tcp(address, 2222) == "")
    assert cloud.ask_udp(address, 5353) == "7001" and cloud.ask_tcp(address, 3002) == "7002"
    elements = cloud.run(router_ns, "nft", "list", "map", "ip", "neutrino", "pf_port").stdout
    assert "2222" not in elements and "5353" in elements
    cloud.delete(f"floatingips/{fip['id']}/port_forwardings/{udp}")
    assert eventually(lambda: cloud.ask_udp(address, 5353) == "")
    assert cloud.ask_tcp(address, 3001) == "7001"
