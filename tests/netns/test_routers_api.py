"""SCENARIOS.md S2-S4 with real packets, the tutorial lab, inspect and trace, through the APIs.

One live `neutrino serve` with its embedded agent (isolated mode, a unique
namespace prefix) for the module. `neutrino lab up` builds the tutorial's
topology (ext_net, vlan100/vlan101, router_100_101, cirros-vm1..3, a
floating IP on cirros-vm3); S2 and S3 add a router of their own. The outside
namespace plays the internet. The last test runs `lab down` and checks that
the kernel holds nothing of the lab any more.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from netlab import ping, tcp_reachable, wait_for

from neutrino.client import Cloud, Session
from tests.conftest import Databases, LiveServer, dataplane_server, eventually

WHOAMI = (
    "import socket,sys\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind(('0.0.0.0',int(sys.argv[1])));s.listen()\n"
    "while True:\n c,a=s.accept();c.sendall(a[0].encode());c.close()\n"
)
ASK = (
    "import socket,sys\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2)\n"
    "print(s.recv(64).decode())\n"
)
ECHO = (
    "import socket,sys,threading\n"
    "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind(('0.0.0.0',int(sys.argv[1])));s.listen()\n"
    "def echo(c):\n while (d:=c.recv(64)): c.sendall(d)\n"
    "while True:\n c,_=s.accept();threading.Thread(target=echo,args=(c,),daemon=True).start()\n"
)
# Sends a byte every 20 ms on one connection; prints "<time> ok|lost" for each.
PROBE = (
    "import socket,sys,time\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2)\n"
    "s.settimeout(0.15)\nend=time.time()+float(sys.argv[3])\n"
    "while time.time()<end:\n"
    " try:\n  s.sendall(b'x');ok=s.recv(1)==b'x'\n except OSError:\n  ok=False\n"
    ' print(f\'{time.time():.3f} {"ok" if ok else "lost"}\',flush=True);time.sleep(0.02)\n'
)


class RoutedCloud(LiveServer):
    """The live server, its API over HTTP, and the namespaces of its data plane."""

    host = "rt"

    @property
    def api(self) -> Session:
        if not hasattr(self, "_session"):
            self._session = Session(Cloud.load("neutrino-admin", self.clouds_yaml))
        return self._session

    @property
    def net(self) -> str:
        return self.api.endpoint("network") + "/v2.0"

    @property
    def outside(self) -> str:
        return f"{self.prefix}nout-default"

    def create(self, collection: str, member: str, **body: Any) -> dict[str, Any]:
        item: dict[str, Any] = self.api.call(
            "POST", f"{self.net}/{collection}", json={member: body}
        )[member]
        return item

    def get(self, path: str) -> Any:
        return self.api.call("GET", f"{self.net}/{path}")

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self.api.call("PUT", f"{self.net}/{path}", json=body)

    def delete(self, path: str) -> None:
        self.api.call("DELETE", f"{self.net}/{path}")

    def allow(
        self,
        protocol: str,
        ports: int | tuple[int, int] | None = None,
        source: str | None = None,
        group: str = "default",
    ) -> None:
        """Opens a security group (the instances' default one) to `protocol` on `ports` (one,
        or a range), from `source` (a prefix; anywhere when None)."""
        first, last = (ports, ports) if isinstance(ports, int) else (ports or (None, None))
        rule = {"port_range_min": first, "port_range_max": last, "remote_ip_prefix": source}
        found = self.get(f"security-groups?name={group}")["security_groups"][0]
        self.create(
            "security-group-rules",
            "security_group_rule",
            security_group_id=found["id"],
            direction="ingress",
            ethertype="IPv6" if source and ":" in source else "IPv4",
            protocol=protocol,
            **{key: value for key, value in rule.items() if value is not None},
        )

    def routed_network(self, name: str, ext_cidr: str, cidr: str) -> dict[str, Any]:
        """ext_net (flat on `default`, its gateway .1 the outside), and a network `name` with
        subnet `cidr` behind a router whose gateway is on ext_net."""
        ext = self.create(
            "networks",
            "network",
            name="ext_net",
            **{
                "router:external": True,
                "provider:network_type": "flat",
                "provider:physical_network": "default",
            },
        )
        gateway = str(ipaddress.ip_network(ext_cidr)[1])
        self.create(
            "subnets",
            "subnet",
            network_id=ext["id"],
            ip_version=4,
            cidr=ext_cidr,
            gateway_ip=gateway,
            enable_dhcp=False,
        )
        net = self.create("networks", "network", name=name)
        subnet = self.create(
            "subnets", "subnet", network_id=net["id"], ip_version=4, cidr=cidr, name=f"{name}-sub"
        )
        router = self.create(
            "routers",
            "router",
            name=f"{name}-router",
            external_gateway_info={"network_id": ext["id"]},
        )
        self.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
        return {"ext": ext, "net": net, "subnet": subnet, "router": router}

    def instance(self, name: str) -> dict[str, Any]:
        item: dict[str, Any] = self.api.call(
            "GET", self.api.endpoint("lab") + f"/v1/instances/{name}"
        )["instance"]
        return item

    def new_instance(self, name: str, network_id: str) -> dict[str, Any]:
        lab = self.api.endpoint("lab") + "/v1/instances"
        item = self.api.call(
            "POST", lab, json={"instance": {"name": name, "networks": [{"network_id": network_id}]}}
        )
        wait_for(lambda: self.instance(name)["status"] == "ACTIVE", timeout=30)
        return {
            **self.instance(name),
            "ip": self.instance(name)["addresses"][0].split("/")[0],
            "id": item["instance"]["id"],
        }

    def delete_instance(self, name: str) -> None:
        self.api.call("DELETE", self.api.endpoint("lab") + f"/v1/instances/{name}")

    def run(self, netns: str, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", netns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def background(self, netns: str, code: str, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-u", "-c", code, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.processes.append(process)
        return process

    def ask(self, netns: str, address: str, port: int = 8080) -> str:
        """What a whoami server at address:port saw as our address ('' when unreachable)."""
        return self.run(netns, sys.executable, "-c", ASK, address, str(port)).stdout.strip()

    def http(self, netns: str, address: str) -> str:
        return self.run(netns, "curl", "-s", "-m", "2", f"http://{address}/").stdout.strip()


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutedCloud]:
    with dataplane_server(
        databases, tmp_path_factory, "tr", RoutedCloud, host=RoutedCloud.host
    ) as server:
        server.neutrino("lab", "up")
        yield server


@pytest.fixture(scope="module")
def lab(cloud: RoutedCloud) -> dict[str, Any]:
    """The lab's resources, by name, and its floating IP."""
    fip = next(f for f in cloud.get("floatingips")["floatingips"])
    ext = next(n for n in cloud.get("networks?name=ext_net")["networks"])
    router = next(r for r in cloud.get("routers?name=router_100_101")["routers"])
    cloud.background(cloud.outside, WHOAMI, "8080")
    wait_for(lambda: cloud.ask(cloud.outside, "127.0.0.1"))
    vms = {name: cloud.instance(name) for name in ("cirros-vm1", "cirros-vm2", "cirros-vm3")}
    for vm in vms.values():
        vm["ip"] = vm["addresses"][0].split("/")[0]
    return {"fip": fip, "ext": ext, "router": router, **vms}


@pytest.fixture
def two_vlans(cloud: RoutedCloud, lab: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Two VLAN networks with an instance each, and a router not attached yet (S2, S3): each
    test's own, as pytest-xdist may run S2 and S3 in different processes."""
    made: dict[str, Any] = {"nets": [], "subnets": [], "vms": []}
    made["router"] = cloud.create("routers", "router", name="s2-router")
    try:
        for i, vlan in enumerate((110, 111)):
            made["nets"].append(
                cloud.create(
                    "networks",
                    "network",
                    name=f"s2-{vlan}",
                    **{
                        "provider:network_type": "vlan",
                        "provider:physical_network": "default",
                        "provider:segmentation_id": vlan,
                    },
                )
            )
            made["subnets"].append(
                cloud.create(
                    "subnets",
                    "subnet",
                    network_id=made["nets"][i]["id"],
                    ip_version=4,
                    cidr=f"172.17.{vlan}.0/24",
                )
            )
            made["vms"].append(cloud.new_instance(f"s2-vm{i}", made["nets"][i]["id"]))
        yield made
    finally:
        router_id = made["router"]["id"]
        cloud.put(f"routers/{router_id}", {"router": {"external_gateway_info": {}}})
        for port in cloud.get(f"ports?device_id={router_id}")["ports"]:
            cloud.put(f"routers/{router_id}/remove_router_interface", {"port_id": port["id"]})
        cloud.delete(f"routers/{router_id}")
        for i, net in enumerate(made["nets"]):
            cloud.delete_instance(f"s2-vm{i}")
            cloud.delete(f"networks/{net['id']}")


def test_s2_router_connects_two_vlans(cloud: RoutedCloud, two_vlans: dict[str, Any]) -> None:
    router, subnets, (vm0, vm1) = two_vlans["router"], two_vlans["subnets"], two_vlans["vms"]
    assert not ping(vm0["netns"], vm1["ip"])
    for subnet in subnets:
        cloud.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    assert eventually(lambda: ping(vm0["netns"], vm1["ip"]))
    cloud.background(vm1["netns"], ECHO, "7000")
    assert eventually(lambda: tcp_reachable(vm0["netns"], vm1["ip"], 7000))
    addresses = cloud.run(
        f"{cloud.prefix}{cloud.host}-qrouter-{router['id']}", "ip", "-4", "addr"
    ).stdout
    assert "172.17.110.1/24" in addresses and "172.17.111.1/24" in addresses
    cloud.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnets[1]["id"]})
    assert eventually(lambda: not ping(vm0["netns"], vm1["ip"]))
    cloud.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnets[1]["id"]})
    assert eventually(lambda: ping(vm0["netns"], vm1["ip"]))


def test_s3_source_nat(cloud: RoutedCloud, lab: dict[str, Any], two_vlans: dict[str, Any]) -> None:
    router, vm = two_vlans["router"], two_vlans["vms"][0]
    cloud.put(
        f"routers/{router['id']}/add_router_interface", {"subnet_id": two_vlans["subnets"][0]["id"]}
    )
    assert eventually(lambda: ping(vm["netns"], "172.17.110.1"))
    assert cloud.ask(vm["netns"], "10.10.10.1") == ""
    cloud.put(
        f"routers/{router['id']}",
        {"router": {"external_gateway_info": {"network_id": lab["ext"]["id"]}}},
    )
    gateway_ip = cloud.get(f"routers/{router['id']}")["router"]["external_gateway_info"][
        "external_fixed_ips"
    ][0]["ip_address"]
    assert eventually(lambda: cloud.ask(vm["netns"], "10.10.10.1") == gateway_ip)
    assert ping(vm["netns"], "10.10.10.1")
    # The outside, even with a route to the fixed IPs, cannot open connections to them.
    cloud.run(cloud.outside, "ip", "route", "add", "172.17.110.0/24", "via", gateway_ip)
    try:
        cloud.background(vm["netns"], ECHO, "7000")
        assert eventually(lambda: tcp_reachable(vm["netns"], "127.0.0.1", 7000))
        assert not tcp_reachable(cloud.outside, vm["ip"], 7000)
        # Without SNAT the instance's packets leave with its fixed IP (the outside routes back to
        # it).
        cloud.put(
            f"routers/{router['id']}",
            {
                "router": {
                    "external_gateway_info": {"network_id": lab["ext"]["id"], "enable_snat": False}
                }
            },
        )
        assert eventually(lambda: cloud.ask(vm["netns"], "10.10.10.1") == vm["ip"])
    finally:
        cloud.run(cloud.outside, "ip", "route", "del", "172.17.110.0/24")
    # Without a gateway the outside is out of reach again (and ext_net is free for `lab down`).
    cloud.put(f"routers/{router['id']}", {"router": {"external_gateway_info": {}}})
    assert eventually(lambda: not ping(vm["netns"], "10.10.10.1"))


def test_an_auto_allocated_network_reaches_the_outside(
    cloud: RoutedCloud, lab: dict[str, Any]
) -> None:
    """Get me a network: an instance on the project's auto-allocated network reaches the outside
    through the auto-allocated router's source NAT."""
    ext_url = f"networks/{lab['ext']['id']}"
    cloud.put(ext_url, {"network": {"is_default": True}})
    pool = cloud.create(
        "subnetpools",
        "subnetpool",
        name="default-v4",
        prefixes=["172.19.0.0/16"],
        default_prefixlen=24,
        is_default=True,
    )
    try:
        topology = cloud.get("auto-allocated-topology/None")["auto_allocated_topology"]
        try:
            vm = cloud.new_instance("auto-vm", topology["id"])
            [router] = cloud.get("routers?name=auto_allocated_router")["routers"]
            gateway_ip = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
            assert eventually(lambda: cloud.ask(vm["netns"], "10.10.10.1") == gateway_ip)
        finally:
            cloud.delete_instance("auto-vm")
        cloud.delete("auto-allocated-topology/None")
        assert cloud.get("routers?name=auto_allocated_router")["routers"] == []
    finally:
        cloud.delete(f"subnetpools/{pool['id']}")
        cloud.put(ext_url, {"network": {"is_default": False}})


def _probe_lines(
    process: subprocess.Popen[str], until: Callable[[list[str]], bool], seconds: float = 5
) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    assert process.stdout is not None
    while time.monotonic() < deadline and not until(lines):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
    return lines


def test_s4_floating_ip(cloud: RoutedCloud, lab: dict[str, Any]) -> None:
    fip, vm1, vm2, vm3 = lab["fip"], lab["cirros-vm1"], lab["cirros-vm2"], lab["cirros-vm3"]
    address, router_ns = (
        fip["floating_ip_address"],
        f"{cloud.prefix}{cloud.host}-qrouter-{lab['router']['id']}",
    )
    gateway_ip = lab["router"]["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    assert cloud.get(f"floatingips/{fip['id']}")["floatingip"]["status"] == "ACTIVE"
    assert ping(cloud.outside, address)
    assert cloud.http(cloud.outside, address) == "cirros-vm3"
    assert cloud.ask(vm3["netns"], "10.10.10.1") == address  # outbound: SNAT to the floating IP
    assert cloud.ask(vm1["netns"], "10.10.10.1") == gateway_ip  # others: the router's address
    assert cloud.http(vm1["netns"], address) == "cirros-vm3"  # hairpin
    answering = cloud.run(router_ns, "ip", "route", "show", "table", "local", address).stdout
    assert answering.startswith(f"local {address} dev qg-")  # the router answers for it

    # Disassociate: an established inbound connection stops at once; outbound falls back to SNAT.
    cloud.allow("tcp", 7001, group="lab-web")
    cloud.background(vm3["netns"], ECHO, "7001")
    assert eventually(lambda: tcp_reachable(cloud.outside, address, 7001))
    probe = cloud.background(cloud.outside, PROBE, address, "7001", "4")
    assert "ok" in _probe_lines(probe, lambda lines: any(line.endswith("ok") for line in lines))[-1]
    cloud.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
    returned = time.time()
    lines = _probe_lines(probe, lambda lines: bool(lines) and lines[-1].endswith("lost"))
    assert lines and lines[-1].endswith("lost")
    lost_at = float(lines[-1].split()[0])
    assert lost_at - returned < 2.0  # the benchmark measures it: tens of ms
    later = _probe_lines(probe, lambda _lines: False, seconds=1)
    assert not [line for line in later if line.endswith("ok")]
    assert cloud.ask(vm3["netns"], "10.10.10.1") == gateway_ip
    assert not ping(cloud.outside, address)
    assert not [
        e
        for e in cloud.run(router_ns, "conntrack", "-L", "-d", address).stdout.splitlines()
        if "dport=7001" in e
    ]
    assert eventually(
        lambda: cloud.get(f"floatingips/{fip['id']}")["floatingip"]["status"] == "DOWN"
    )

    # Associate, then move to another instance: traffic follows at once, no stale entry remains.
    cloud.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": vm3["port_ids"][0]}})
    assert eventually(lambda: cloud.http(cloud.outside, address) == "cirros-vm3")
    assert eventually(
        lambda: cloud.get(f"floatingips/{fip['id']}")["floatingip"]["status"] == "ACTIVE"
    )
    pinger = subprocess.Popen(
        ["ip", "netns", "exec", cloud.outside, "ping", "-i", "0.05", "-w", "3", address],
        stdout=subprocess.DEVNULL,
    )
    cloud.processes.append(pinger)
    time.sleep(0.3)
    cloud.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": vm2["port_ids"][0]}})
    assert eventually(lambda: cloud.http(cloud.outside, address) == "cirros-vm2", seconds=2)

    def ping_moved() -> bool:  # its old mapping's entry is gone, the next echo made one to vm2
        entries = cloud.run(router_ns, "conntrack", "-L", "-d", address).stdout
        return vm3["ip"] not in entries and vm2["ip"] in entries

    assert eventually(ping_moved, seconds=1)
    assert cloud.ask(vm2["netns"], "10.10.10.1") == address
    assert cloud.http(vm1["netns"], address) == "cirros-vm2"
    pinger.wait()
    cloud.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": vm3["port_ids"][0]}})
    assert eventually(lambda: cloud.http(cloud.outside, address) == "cirros-vm3")


def test_a_floating_ip_on_a_router_that_reaches_the_instance_by_an_extra_route(
    cloud: RoutedCloud, lab: dict[str, Any]
) -> None:
    """floating-ip-router-writable: the floating IP is on an outer router with its gateway on
    ext_net, whose extra route leads to the instance's subnet through an inner router."""
    nets = {
        name: cloud.create("networks", "network", name=f"fipr-{name}")
        for name in ("transit", "inner")
    }
    subnets = {
        name: cloud.create(
            "subnets", "subnet", network_id=net["id"], ip_version=4, cidr=f"172.17.{i}.0/24"
        )
        for name, net, i in (("transit", nets["transit"], 120), ("inner", nets["inner"], 121))
    }
    outer = cloud.create(
        "routers",
        "router",
        name="fipr-outer",
        external_gateway_info={"network_id": lab["ext"]["id"]},
    )
    inner = cloud.create("routers", "router", name="fipr-inner")
    fip = None
    try:
        cloud.put(
            f"routers/{outer['id']}/add_router_interface", {"subnet_id": subnets["transit"]["id"]}
        )
        cloud.put(
            f"routers/{inner['id']}/add_router_interface", {"subnet_id": subnets["inner"]["id"]}
        )
        hop = cloud.create("ports", "port", network_id=nets["transit"]["id"], name="fipr-hop")
        cloud.put(f"routers/{inner['id']}/add_router_interface", {"port_id": hop["id"]})
        hop_ip = hop["fixed_ips"][0]["ip_address"]
        outer_ip = subnets["transit"]["gateway_ip"]
        route = {"destination": subnets["inner"]["cidr"], "nexthop": hop_ip}
        cloud.put(f"routers/{outer['id']}", {"router": {"routes": [route]}})
        default = {"destination": "0.0.0.0/0", "nexthop": outer_ip}
        cloud.put(f"routers/{inner['id']}", {"router": {"routes": [default]}})
        port = cloud.create(
            "ports", "port", network_id=nets["inner"]["id"], port_security_enabled=False
        )
        cloud.api.call(
            "POST",
            cloud.api.endpoint("lab") + "/v1/instances",
            json={"instance": {"name": "fipr-vm", "ports": [port["id"]]}},
        )
        wait_for(lambda: cloud.instance("fipr-vm")["status"] == "ACTIVE", timeout=30)
        vm = cloud.instance("fipr-vm")
        fip = cloud.create(
            "floatingips",
            "floatingip",
            floating_network_id=lab["ext"]["id"],
            port_id=port["id"],
            router_id=outer["id"],
        )
        address = fip["floating_ip_address"]
        cloud.background(vm["netns"], WHOAMI, "8080")
        assert eventually(lambda: ping(cloud.outside, address))
        # Inbound keeps the outside's own address; outbound leaves as the floating IP.
        assert eventually(lambda: cloud.ask(cloud.outside, address) == "10.10.10.1")
        assert cloud.ask(vm["netns"], "10.10.10.1") == address
        assert eventually(
            lambda: cloud.get(f"floatingips/{fip['id']}")["floatingip"]["status"] == "ACTIVE"
        )
    finally:
        if fip is not None:
            cloud.delete(f"floatingips/{fip['id']}")
        cloud.delete_instance("fipr-vm")
        for router in (outer, inner):
            cloud.put(
                f"routers/{router['id']}", {"router": {"routes": [], "external_gateway_info": {}}}
            )
            for used in cloud.get(f"ports?device_id={router['id']}")["ports"]:
                if used["device_owner"] == "network:router_interface":
                    cloud.put(
                        f"routers/{router['id']}/remove_router_interface", {"port_id": used["id"]}
                    )
            cloud.delete(f"routers/{router['id']}")
        for net in nets.values():
            for left in cloud.get(f"ports?network_id={net['id']}")["ports"]:
                if not left["device_owner"].startswith("network:"):
                    cloud.delete(f"ports/{left['id']}")
            cloud.delete(f"networks/{net['id']}")


def test_inspect_and_trace_read_the_kernel(cloud: RoutedCloud, lab: dict[str, Any]) -> None:
    fip, router = lab["fip"], lab["router"]
    address = fip["floating_ip_address"]
    seen = json.loads(cloud.neutrino("inspect", "router", "router_100_101", "-f", "json").stdout)
    netns = seen["namespace"]
    assert (
        netns == f"{cloud.prefix}{cloud.host}-qrouter-{router['id']}" and seen["forwarding"] is True
    )
    kernel = json.loads(cloud.run(netns, "ip", "-j", "addr", "show").stdout)
    kernel_addresses = {
        f"{a['local']}/{a['prefixlen']}"
        for link in kernel
        for a in link["addr_info"]
        if a["scope"] == "global"
    }
    shown = {a for interface in seen["interfaces"] for a in interface["link"]["addresses"]}
    gateway = next(i["link"] for i in seen["interfaces"] if i["role"] == "gateway")
    gateway_ip = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    assert shown == kernel_addresses and gateway_ip in {a.split("/")[0] for a in shown}
    assert {i["role"] for i in seen["interfaces"]} == {"gateway", "interface"}
    assert all(
        i["host_side"]["link"]["master"] == i["host_side"]["bridge"] for i in seen["interfaces"]
    )
    assert seen["nat"]["floatingips"] == [
        {
            "floating_ip_address": address,
            "fixed_ip_address": lab["cirros-vm3"]["ip"],
            "snat_address": address,
            "local_route": gateway["name"],
            "floatingip_id": fip["id"],
        }
    ]
    assert (
        seen["nat"]["table"]
        == cloud.run(netns, "nft", "-t", "list", "table", "ip", "neutrino").stdout
    )
    assert {"destination": "default", "via": "10.10.10.1"}.items() <= next(
        r for r in seen["routes"] if r["destination"] == "default"
    ).items()

    assert cloud.http(cloud.outside, address) == "cirros-vm3"  # leaves a conntrack entry
    shown_fip = json.loads(cloud.neutrino("inspect", "floatingip", address, "-f", "json").stdout)
    assert shown_fip["local_route"] == shown_fip["gateway_interface"]["name"] == gateway["name"]
    assert shown_fip["nat"]["fip_dnat"] == lab["cirros-vm3"]["ip"]
    assert any(address in entry for entry in shown_fip["conntrack"])
    shown_port = json.loads(
        cloud.neutrino("inspect", "port", lab["cirros-vm3"]["port_ids"][0], "-f", "json").stdout
    )
    assert shown_port["far_end"]["links"][0]["addresses"] == lab["cirros-vm3"]["addresses"]
    assert shown_port["firewall"] and shown_port["floatingips"][0]["id"] == fip["id"]

    traced = json.loads(
        cloud.neutrino(
            "trace",
            "--from",
            "cirros-vm1",
            "--to",
            "10.10.10.1",
            "--proto",
            "tcp",
            "--port",
            "8080",
            "-f",
            "json",
        ).stdout
    )
    assert [hop["hop"] for hop in traced["hops"]] == [
        "instance",
        "tap",
        "bridge",
        "router interface",
        "nat",
        "router gateway",
        "bridge",
        "outside",
    ]
    assert traced["confirmed"] and traced["probe"]["reached"]
    assert any(
        "snat to" in rule and "@internal" in rule for rule in traced["probe"]["matched_rules"]
    )
    hairpin = json.loads(
        cloud.neutrino("trace", "--from", "cirros-vm1", "--to", address, "-f", "json").stdout
    )
    assert hairpin["probe"]["reached"] and any(
        "@fip_dnat" in r for r in hairpin["probe"]["matched_rules"]
    )
    assert (
        "cirros-vm3" in cloud.neutrino("outside", "--", "curl", "-s", f"http://{address}/").stdout
    )


def test_a_project_user_checks_their_floating_ip_from_outside(
    cloud: RoutedCloud, lab: dict[str, Any]
) -> None:
    """`POST /lab/v1/probes` and `neutrino probe` as demo (a member): ping, TCP and HTTP from the
    outside to its own floating IP, the security group that drops them named with the rule
    that lets them in, a port nobody listens on, and another project's floating IP not found."""
    demo = Session(Cloud.load("neutrino-demo", cloud.clouds_yaml))
    net_url, lab_url = demo.endpoint("network") + "/v2.0", demo.endpoint("lab") + "/v1"

    def create(collection: str, **body: Any) -> dict[str, Any]:
        member = collection.rstrip("s").replace("-", "_")
        made: dict[str, Any] = demo.call("POST", f"{net_url}/{collection}", json={member: body})[
            member
        ]
        return made

    net = create("networks", name="probe-net")
    subnet = create("subnets", network_id=net["id"], ip_version=4, cidr="172.17.130.0/24")
    router = create(
        "routers", name="probe-router", external_gateway_info={"network_id": lab["ext"]["id"]}
    )
    fip = None
    try:
        demo.call(
            "PUT",
            f"{net_url}/routers/{router['id']}/add_router_interface",
            json={"subnet_id": subnet["id"]},
        )
        demo.call(
            "POST",
            f"{lab_url}/instances",
            json={"instance": {"name": "probe-vm", "networks": [{"network_id": net["id"]}]}},
        )
        vm_url = f"{lab_url}/instances/probe-vm"
        wait_for(lambda: demo.call("GET", vm_url)["instance"]["status"] == "ACTIVE", timeout=30)
        vm = demo.call("GET", vm_url)["instance"]
        fixed = vm["addresses"][0].split("/")[0]
        fip = create("floatingips", floating_network_id=lab["ext"]["id"], port_id=vm["port_ids"][0])
        address = fip["floating_ip_address"]
        served = cloud.run(
            vm["netns"],
            "sh",
            "-c",
            "mkdir -p /tmp/probe-www && echo probe-vm > /tmp/probe-www/index.html && "
            "busybox httpd -p 80 -h /tmp/probe-www",
        )
        assert served.returncode == 0, served.stderr
        default = demo.call("GET", f"{net_url}/security-groups?name=default")["security_groups"][0]

        def probe(**wanted: Any) -> dict[str, Any]:
            body = {"probe": {"floating_ip_address": address, **wanted}}
            found: dict[str, Any] = demo.call("POST", f"{lab_url}/probes", json=body)["probe"]
            return found

        # Dropped by the default group until its suggested rule, POSTed as it is, lets it in.
        for wanted, what, label in (
            ({}, "ICMP", "ICMP"),
            ({"kind": "tcp", "port": 80}, "TCP port 80", "TCP 80"),
        ):
            refused = probe(**wanted)
            assert not refused["reachable"]
            assert refused["why"] == f"dropped by security group default (no rule allows {what} in)"
            suggested = refused["suggested_rule"]
            assert suggested["label"] == f"Allow {label} in security group default"
            rule = suggested["security_group_rule"]
            assert rule == {
                "security_group_id": default["id"],
                "direction": "ingress",
                "ethertype": "IPv4",
                "protocol": "icmp" if what == "ICMP" else "tcp",
                **({"port_range_min": 80, "port_range_max": 80} if what != "ICMP" else {}),
            }
            demo.call("POST", f"{net_url}/security-group-rules", json={"security_group_rule": rule})
            passed = probe(**wanted)  # at once: the probe waits for the hosts to apply the rule
            assert passed["reachable"] and passed["why"] is None and passed["elapsed_ms"] > 0
            assert passed["sent"] == (
                f"ping {address} from 10.10.10.1"
                if what == "ICMP"
                else f"TCP connect to {address}:80 from 10.10.10.1"
            )
        fetched = probe(kind="http")
        assert fetched["reachable"] and fetched["http_status"] == 200
        assert fetched["first_bytes"] == "probe-vm\n"
        assert fetched["sent"] == f"HTTP GET http://{address}:80/ from 10.10.10.1"

        # A port the group lets in but where nothing listens, from `neutrino probe` with demo's
        # own credentials: said in words, and the command fails.
        opened = {**rule, "port_range_min": 8081, "port_range_max": 8081}
        demo.call("POST", f"{net_url}/security-group-rules", json={"security_group_rule": opened})
        shown = subprocess.run(
            [str(Path(sys.executable).parent / "neutrino"), "probe", address, "--tcp", "8081"],
            env=cloud.env("neutrino-demo"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shown.returncode == 1, shown.stderr
        assert shown.stdout.startswith(
            f"{address} does not answer: nothing listens on TCP port 8081 on {fixed}: "
            f"connection refused (TCP connect to {address}:8081 from 10.10.10.1)"
        )

        # The lab's floating IP is the admin project's: not found, as an unknown one.
        for ref in (lab["fip"]["floating_ip_address"], lab["fip"]["id"]):
            key = "floating_ip_id" if ref == lab["fip"]["id"] else "floating_ip_address"
            answer = demo.request("POST", f"{lab_url}/probes", json={"probe": {key: ref}})
            assert answer.status_code == 404 and answer.json() == {
                "NeutronError": {
                    "type": "FloatingIPNotFound",
                    "message": f"Floating IP {ref} could not be found",
                    "detail": "",
                }
            }
    finally:
        if fip is not None:
            demo.call("DELETE", f"{net_url}/floatingips/{fip['id']}")
        demo.call("DELETE", f"{lab_url}/instances/probe-vm")
        demo.call(
            "PUT",
            f"{net_url}/routers/{router['id']}",
            json={"router": {"external_gateway_info": {}}},
        )
        demo.call(
            "PUT",
            f"{net_url}/routers/{router['id']}/remove_router_interface",
            json={"subnet_id": subnet["id"]},
        )
        demo.call("DELETE", f"{net_url}/routers/{router['id']}")
        demo.call("DELETE", f"{net_url}/networks/{net['id']}")
        demo.close()


def test_the_lab_is_dual_stack_and_its_router_routes_ipv6(
    cloud: RoutedCloud, lab: dict[str, Any]
) -> None:
    """Each VLAN network has an IPv6 prefix too: cirros-vm1 reaches cirros-vm3's web server on
    its IPv6 address (SLAAC), across the router."""
    vm1, vm3 = lab["cirros-vm1"], lab["cirros-vm3"]
    port = cloud.get(f"ports/{vm3['port_ids'][0]}")["port"]
    (address,) = (ip["ip_address"] for ip in port["fixed_ips"] if ":" in ip["ip_address"])
    assert ipaddress.ip_address(address) in ipaddress.ip_network("2001:db8:101::/64")
    assert eventually(lambda: cloud.http(vm1["netns"], f"[{address}]") == "cirros-vm3", seconds=20)
    assert cloud.run(vm1["netns"], "ping", "-6", "-c1", "-W1", address).returncode == 0


def test_lab_down_leaves_nothing(cloud: RoutedCloud, lab: dict[str, Any]) -> None:
    networks = {n["id"] for n in cloud.get("networks?tags=neutrino-lab")["networks"]}
    ports = [p["id"] for p in cloud.get("ports")["ports"] if p["network_id"] in networks]
    hostns = f"{cloud.prefix}nhost-{cloud.host}"
    namespaces = {lab["router"]["id"]} | {
        lab[n]["netns"] for n in ("cirros-vm1", "cirros-vm2", "cirros-vm3")
    }
    cloud.neutrino("lab", "down")
    assert not [p for p in cloud.get("ports")["ports"] if p["network_id"] in networks]

    def remaining() -> list[str]:
        present = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True
        ).stdout
        links = cloud.run(hostns, "ip", "-o", "link").stdout
        ruleset = cloud.run(hostns, "nft", "list", "ruleset").stdout
        return (
            [f"namespace {n}" for n in namespaces if n in present]
            + [f"port {p}" for p in ports if p[:11] in links or p in ruleset]
            + [f"bridge of {n}" for n in networks if n[:11] in links]
            + ["the outside's gateway"]
            * ("10.10.10.1/24" in cloud.run(cloud.outside, "ip", "addr").stdout)
        )

    assert eventually(lambda: not remaining(), seconds=10), remaining()
    assert Path("/run/netns", hostns).exists()  # the host itself stays
