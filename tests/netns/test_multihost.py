"""Three simulated hosts, each with its own agent process: instances placed over them, traffic
between instances on different hosts over VXLAN (with L2 population) and over VLAN, floating
IPs of a router on another host than the instance's, a trace across them, and a host that dies
and comes back (tests/netns/multihost.py builds the hosts)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from neutrino.plan import names
from neutrino.plan.overlay import FLOOD
from tests.conftest import VENV_BIN, Databases, eventually
from tests.netns.multihost import Hosts, simulated_hosts

SERVE_HTTP = "nohup python3 -m http.server 8080 >/dev/null 2>&1 &"
DOWN_TIME = 4.0  # seconds: the server's --agent-down-time where a host dies


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    with simulated_hosts(databases, tmp_path_factory, "tm") as hosts:
        yield hosts


def agent_id(cloud: Hosts, host: str, kind: str) -> str:
    listed = cloud.cli("network", "agent", "list", "--host", host, "--agent-type", kind)
    return str(listed[0]["ID"])


def serve_dhcp_on(cloud: Hosts, network_id: str, host: str) -> None:
    """Move the network's DHCP server to `host`, as an administrator does."""
    for agent in cloud.cli("network", "agent", "list", "--network", network_id):
        cloud.cli(
            "network", "agent", "remove", "network", "--dhcp", agent["ID"], network_id, output=False
        )
    cloud.cli(
        "network",
        "agent",
        "add",
        "network",
        "--dhcp",
        agent_id(cloud, host, "dhcp"),
        network_id,
        output=False,
    )


def place_router(cloud: Hosts, router_id: str, host: str) -> None:
    """Move the router to the L3 agent of `host`, as an administrator does."""
    for agent in cloud.cli("network", "agent", "list", "--router", router_id):
        cloud.cli(
            "network", "agent", "remove", "router", "--l3", agent["ID"], router_id, output=False
        )
    l3 = agent_id(cloud, host, "l3")
    cloud.cli("network", "agent", "add", "router", "--l3", l3, router_id, output=False)


def network(cloud: Hosts, name: str, cidr: str, *options: str) -> dict:
    net = cloud.cli("network", "create", name, *options)
    cloud.cli("subnet", "create", "--network", name, "--subnet-range", cidr, f"{name}-sub")
    return net


def address(instance: dict) -> str:
    return str(instance["addresses"][0].split("/")[0])


def pair(cloud: Hosts, name: str, cidr: str) -> tuple[dict, dict, dict]:
    """A VXLAN network `name-net` served by DHCP on h1, and its instances `name-a` on h1 and
    `name-b` on h2."""
    net = network(cloud, f"{name}-net", cidr)
    serve_dhcp_on(cloud, net["id"], "h1")
    a = cloud.instance(f"{name}-a", "--network", f"{name}-net", "--host", "h1")
    b = cloud.instance(f"{name}-b", "--network", f"{name}-net", "--host", "h2")
    assert (a["host"], b["host"]) == ("h1", "h2")
    return net, a, b


def fetches(cloud: Hosts, source: str, ip: str) -> bool:
    """An HTTP GET over TCP from `source` to the server on `ip`:8080."""
    got = cloud.run_in(
        source,
        "curl",
        "-s",
        "-m",
        "2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        f"http://{ip}:8080/",
    )
    return got.stdout == "200"


def test_instances_without_a_host_spread_over_the_hosts(cloud: Hosts) -> None:
    """First of the module: every host runs as many instances (none)."""
    network(cloud, "sp-net", "10.60.0.0/24")
    spread = [cloud.instance(f"sp-{i}", "--network", "sp-net") for i in range(3)]
    assert sorted(vm["host"] for vm in spread) == ["h1", "h2", "h3"]
    for source in spread:
        for target in spread:
            if target is not source:
                assert cloud.pings(source["name"], address(target)), (source, target)
    cloud.neutrino("instance", "delete", *(vm["name"] for vm in spread))
    cloud.cli("network", "delete", "sp-net", output=False)


def test_vxlan_between_hosts_with_l2_population(cloud: Hosts) -> None:
    h1, h2, h3 = cloud.hosts["h1"], cloud.hosts["h2"], cloud.hosts["h3"]
    net, a, b = pair(cloud, "ov", "10.61.0.0/24")
    assert net["provider:network_type"] == "vxlan" and net["mtu"] == 1450
    assert cloud.pings("ov-a", address(b))
    assert cloud.run_in("ov-b", "sh", "-c", SERVE_HTTP).returncode == 0
    assert eventually(lambda: fetches(cloud, "ov-a", address(b)))
    # The instances take the network's MTU, for the 50 bytes VXLAN adds on the underlay.
    shown = cloud.run_in("ov-b", "cat", "/sys/class/net/eth0/mtu").stdout
    assert shown.strip() == "1450"

    device = f"vxlan-{net['provider:segmentation_id']}"
    [b_port] = cloud.cli("port", "list", "--device-id", b["id"])
    [a_port] = cloud.cli("port", "list", "--device-id", a["id"])
    assert h1.fdb(device) == sorted([(FLOOD, h2.vtep), (b_port["MAC Address"], h2.vtep)])
    dhcp = cloud.cli("port", "list", "--network", "ov-net", "--device-owner", "network:dhcp")
    assert h2.fdb(device) == sorted(
        [(FLOOD, h1.vtep), (a_port["MAC Address"], h1.vtep), (dhcp[0]["MAC Address"], h1.vtep)]
    )
    assert h3.fdb(device) == []  # no port of the network there: no tunnel either way
    assert all(h3.vtep not in {dst for _, dst in h.fdb(device)} for h in (h1, h2))

    # The port goes: so do the entries toward its host, where the network has nothing left.
    cloud.neutrino("instance", "delete", "ov-b")
    assert eventually(lambda: h1.fdb(device) == [])
    b = cloud.instance("ov-b2", "--network", "ov-net", "--host", "h3")
    # ov-b2 may have ov-b's address, which ov-a still maps to ov-b's MAC until its ARP entry
    # times out: forgotten at once, ov-a asks by broadcast, which must now reach h3.
    cloud.run_in("ov-a", "ip", "neigh", "flush", "to", address(b))
    assert eventually(lambda: cloud.pings("ov-a", address(b)), seconds=15)
    assert h1.fdb(device) == sorted(
        [
            (FLOOD, h3.vtep),
            (cloud.cli("port", "list", "--device-id", b["id"])[0]["MAC Address"], h3.vtep),
        ]
    )
    assert h2.fdb(device) == []
    cloud.neutrino("instance", "delete", "ov-a", "ov-b2")
    cloud.cli("network", "delete", "ov-net", output=False)


def share_ports(cloud: Hosts, host: str, network_id: str) -> set[str]:
    """The ports of the network in the share of the model the host's agent receives."""
    share = cloud.sdk().session.get(f"{cloud.url}/internal/v1/snapshot", params={"host": host})
    return {p["id"] for p in share.json()["ports"] if p["network_id"] == network_id}


def test_a_host_receives_a_network_with_its_first_port_there(cloud: Hosts) -> None:
    """An agent holds only its host's share: a network comes with its first port there (its
    instance gets its address and pings) and goes with its last, FDB entries along."""
    h1, h2, h3 = cloud.hosts["h1"], cloud.hosts["h2"], cloud.hosts["h3"]
    net = network(cloud, "sh-net", "10.66.0.0/24")
    serve_dhcp_on(cloud, net["id"], "h1")
    a = cloud.instance("sh-a", "--network", "sh-net", "--host", "h1")
    cloud.instance("sh-b", "--network", "sh-net", "--host", "h2")
    device = f"vxlan-{net['provider:segmentation_id']}"
    everything = {p["ID"] for p in cloud.cli("port", "list", "--network", "sh-net")}
    assert share_ports(cloud, "h1", net["id"]) == share_ports(cloud, "h2", net["id"]) == everything
    assert share_ports(cloud, "h3", net["id"]) == set()

    c = cloud.instance("sh-c", "--network", "sh-net", "--host", "h3")
    assert cloud.pings("sh-c", address(a))
    assert share_ports(cloud, "h3", net["id"]) == everything | set(c["port_ids"])
    assert {dst for _, dst in h3.fdb(device)} == {h1.vtep, h2.vtep}

    cloud.neutrino("instance", "delete", "sh-c")
    assert share_ports(cloud, "h3", net["id"]) == set()
    assert eventually(lambda: h3.fdb(device) == [] and h3.vtep not in dict(h1.fdb(device)).values())
    cloud.neutrino("instance", "delete", "sh-a", "sh-b")
    cloud.cli("network", "delete", "sh-net", output=False)


def test_vlan_between_hosts(cloud: Hosts) -> None:
    options = ["--provider-network-type", "vlan", "--provider-physical-network", "default"]
    net = network(cloud, "vl-net", "10.62.0.0/24", *options, "--provider-segment", "160")
    assert net["mtu"] == 1500
    a = cloud.instance("vl-a", "--network", "vl-net", "--host", "h1")
    b = cloud.instance("vl-b", "--network", "vl-net", "--host", "h2")
    assert cloud.pings("vl-a", address(b))
    assert cloud.run_in("vl-b", "sh", "-c", SERVE_HTTP).returncode == 0
    assert eventually(lambda: fetches(cloud, "vl-a", address(b)))
    assert cloud.pings("vl-b", address(a))
    cloud.neutrino("instance", "delete", "vl-a", "vl-b")
    cloud.cli("network", "delete", "vl-net", output=False)


def test_floating_ip_of_a_router_on_another_host(cloud: Hosts) -> None:
    cloud.cli(
        "network",
        "create",
        "fx-ext",
        "--external",
        "--provider-network-type",
        "flat",
        "--provider-physical-network",
        "default",
    )
    cloud.cli(
        "subnet",
        "create",
        "--network",
        "fx-ext",
        "--subnet-range",
        "203.0.113.0/24",
        "--gateway",
        "203.0.113.1",
        "--no-dhcp",
        "fx-ext-sub",
    )
    network(cloud, "fx-net", "10.63.0.0/24")
    router = cloud.cli("router", "create", "fx-router")
    place_router(cloud, router["id"], "h1")
    cloud.cli("router", "set", "fx-router", "--external-gateway", "fx-ext", output=False)
    cloud.cli("router", "add", "subnet", "fx-router", "fx-net-sub", output=False)
    vm = cloud.instance("fx-vm", "--network", "fx-net", "--host", "h2")
    [group] = cloud.cli("port", "show", vm["port_ids"][0])["security_group_ids"]
    cloud.cli("security", "group", "rule", "create", "--protocol", "icmp", group)
    revision = cloud.cli("router", "show", "fx-router")["revision_number"]
    fip = cloud.cli("floating", "ip", "create", "fx-ext", "--port", vm["port_ids"][0])
    assert fip["status"] == "DOWN"
    outside = f"{cloud.prefix}nout-default"
    qrouter = f"{cloud.hosts['h1'].config.ns_prefix}qrouter-{router['id']}"

    def reached() -> bool:
        argv = ["ip", "netns", "exec", outside, "ping", "-c1", "-W1", fip["floating_ip_address"]]
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0

    def status() -> str:
        return str(cloud.cli("floating", "ip", "show", fip["id"])["status"])

    assert eventually(lambda: status() == "ACTIVE", seconds=15)
    # ACTIVE once the router's host has applied it: its NAT is there at that moment.
    nat = ["ip", "netns", "exec", qrouter, "nft", "list", "ruleset"]
    listed = subprocess.run(nat, capture_output=True, text=True, check=True).stdout
    assert fip["floating_ip_address"] in listed
    assert eventually(reached, seconds=15)
    # A floating IP's change is not its router's.
    assert cloud.cli("router", "show", "fx-router")["revision_number"] == revision
    cloud.cli("floating", "ip", "delete", fip["id"], output=False)
    cloud.neutrino("instance", "delete", "fx-vm")
    cloud.cli("router", "remove", "subnet", "fx-router", "fx-net-sub", output=False)
    cloud.cli("router", "delete", "fx-router", output=False)
    cloud.cli("network", "delete", "fx-net", "fx-ext", output=False)


def serve_who(cloud: Hosts, instance: str, root: Path, who: str) -> None:
    """An HTTP server in `instance` whose /who answers `who`."""
    served = root / who
    served.mkdir()
    (served / "who").write_text(who)
    command = f"nohup python3 -m http.server 8080 -d {served} >/dev/null 2>&1 &"
    assert cloud.run_in(instance, "sh", "-c", command).returncode == 0


def http_load_balancer(cloud: Hosts, vip_port_id: str, members: list[str]) -> dict:
    """A load balancer on the VIP port, listening on HTTP 80, balancing over `members` (their
    port 8080); ACTIVE."""
    lb = cloud.cli("loadbalancer", "create", "--vip-port-id", vip_port_id, "--wait")
    listener = cloud.cli(
        "loadbalancer", "listener", "create", "--protocol", "HTTP", "--protocol-port", "80",
        "--wait", lb["id"],
    )  # fmt: skip
    pool = cloud.cli(
        "loadbalancer", "pool", "create", "--lb-algorithm", "ROUND_ROBIN", "--listener",
        listener["id"], "--protocol", "HTTP", "--wait",
    )  # fmt: skip
    for ip in members:
        cloud.cli(
            "loadbalancer", "member", "create", "--address", ip, "--protocol-port", "8080",
            "--wait", pool["id"],
        )  # fmt: skip
    return lb


def test_load_balancer_with_members_on_other_hosts(cloud: Hosts, tmp_path: Path) -> None:
    network(cloud, "lb-net", "10.65.0.0/24")
    vip = cloud.cli("port", "create", "--network", "lb-net", "--host", "h1", "lb-vip")
    members = []
    for host in ("h2", "h3"):
        name = f"lb-{host}"
        members.append(address(cloud.instance(name, "--network", "lb-net", "--host", host)))
        serve_who(cloud, name, tmp_path, host)
    lb = http_load_balancer(cloud, vip["id"], members)
    # It runs where its VIP port is bound, away from its members.
    assert Path("/run/netns", f"{cloud.hosts['h1'].config.ns_prefix}qlbaas-{lb['id']}").exists()
    client = cloud.instance("lb-client", "--network", "lb-net", "--host", "h3")
    assert address(client)
    url = f"http://{lb['vip_address']}/who"

    def answers() -> set[str]:
        got = [cloud.run_in("lb-client", "curl", "-s", "-m", "2", url).stdout for _ in range(4)]
        return set(got)

    assert eventually(lambda: answers() == {"h2", "h3"}, seconds=20)
    cloud.cli("loadbalancer", "delete", "--cascade", "--wait", lb["id"], output=False)
    cloud.neutrino("instance", "delete", "lb-h2", "lb-h3", "lb-client")


def test_a_vtep_taken_from_an_interface_follows_its_address(cloud: Hosts) -> None:
    h1, h3 = cloud.hosts["h1"], cloud.hosts["h3"]
    for options, refusal in (
        (["--vtep-ip", "192.0.2.3", "--vtep-interface", "ul0"], "exclude each other"),
        (["--vtep-interface", "p-default"], "p-default has no IPv4 address"),
    ):
        refused = subprocess.run(
            [str(VENV_BIN / "neutrino"), "agent", "--server", cloud.url, "--host", "h3"]
            + ["--netns-prefix", cloud.prefix, *options],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert refused.returncode == 2 and refusal in " ".join(refused.stderr.split())
    net = network(cloud, "vt-net", "10.66.0.0/24")
    serve_dhcp_on(cloud, net["id"], "h1")
    cloud.instance("vt-a", "--network", "vt-net", "--host", "h1")
    c = cloud.instance("vt-c", "--network", "vt-net", "--host", "h3")
    [c_port] = cloud.cli("port", "list", "--device-id", c["id"])
    device = f"vxlan-{net['provider:segmentation_id']}"
    [agent] = cloud.sdk().network.agents(host="h3", agent_type="Linux bridge agent")
    sdk = cloud.sdk()

    def tunneling_ip() -> str:
        return str(sdk.network.get_agent(agent.id).configuration["tunneling_ip"])

    assert tunneling_ip() == h3.vtep
    renumber = ["ip", "-n", str(h3.config.netns), "addr"]
    try:
        # (deleting a primary address deletes its secondaries: the old one goes first)
        subprocess.run([*renumber, "del", f"{h3.vtep}/24", "dev", "ul0"], check=True)
        subprocess.run([*renumber, "add", "192.0.2.33/24", "dev", "ul0"], check=True)
        assert eventually(lambda: tunneling_ip() == "192.0.2.33", seconds=20)
        wanted = sorted([(FLOOD, "192.0.2.33"), (c_port["MAC Address"], "192.0.2.33")])
        assert eventually(lambda: h1.fdb(device) == wanted)
        assert eventually(lambda: cloud.pings("vt-a", address(c)), seconds=15)
    finally:
        subprocess.run([*renumber, "flush", "dev", "ul0"], check=False)
        subprocess.run([*renumber, "add", f"{h3.vtep}/24", "dev", "ul0"], check=False)
    assert eventually(lambda: tunneling_ip() == h3.vtep, seconds=20)
    cloud.neutrino("instance", "delete", "vt-a", "vt-c")
    cloud.cli("network", "delete", "vt-net", output=False)


# VXLAN frames crossing the underlay's bridge, by the ethertype of the frame they carry: the
# inner Ethernet header begins after the outer IPv4 (20 bytes), UDP (8) and VXLAN (8) headers.
UNDERLAY_COUNTERS = """table bridge overlay {
 counter carried_arp {}
 counter carried_ipv4 {}
 chain forward {
  type filter hook forward priority 0; policy accept;
  udp dport 4789 @nh,384,16 0x0806 counter name carried_arp
  udp dport 4789 @nh,384,16 0x0800 counter name carried_ipv4
 }
}
"""


@contextmanager
def underlay_frames(cloud: Hosts) -> Iterator[Callable[[], dict[str, int]]]:
    """Counters of the frames the overlay carries between hosts, from now on."""
    nft = ["ip", "netns", "exec", f"{cloud.prefix}underlay", "nft"]
    subprocess.run([*nft, "-f", "-"], input=UNDERLAY_COUNTERS, text=True, check=True)

    def counted() -> dict[str, int]:
        listed = subprocess.run(
            [*nft, "-j", "list", "counters", "table", "bridge", "overlay"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found = [item["counter"] for item in json.loads(listed)["nftables"] if "counter" in item]
        return {counter["name"]: counter["packets"] for counter in found}

    try:
        yield counted
    finally:
        subprocess.run([*nft, "delete", "table", "bridge", "overlay"], check=False)


def test_arp_is_answered_on_the_asking_host_and_never_crosses_the_overlay(cloud: Hosts) -> None:
    h1, h2 = cloud.hosts["h1"], cloud.hosts["h2"]
    net, a, b = pair(cloud, "ar", "10.67.0.0/24")
    [a_port] = cloud.cli("port", "list", "--device-id", a["id"])
    [b_port] = cloud.cli("port", "list", "--device-id", b["id"])
    device = f"vxlan-{net['provider:segmentation_id']}"
    assert (address(b), b_port["MAC Address"]) in h1.neighbours(device)
    assert (address(a), a_port["MAC Address"]) in h2.neighbours(device)
    assert cloud.pings("ar-a", address(b))
    with underlay_frames(cloud) as counted:
        for name in ("ar-a", "ar-b"):
            assert cloud.run_in(name, "ip", "neigh", "flush", "dev", "eth0").returncode == 0
        assert cloud.pings("ar-a", address(b))
        learned = cloud.run_in("ar-a", "ip", "neigh", "show", address(b)).stdout
        assert b_port["MAC Address"] in learned
        frames = counted()
    # The echo and its reply crossed; no ARP did.
    assert frames["carried_arp"] == 0 and frames["carried_ipv4"] >= 2, frames
    # A port that goes takes its entry with it.
    cloud.neutrino("instance", "delete", "ar-b")
    assert eventually(lambda: h1.neighbours(device) == [])
    cloud.neutrino("instance", "delete", "ar-a")
    cloud.cli("network", "delete", "ar-net", output=False)


def test_a_vxlan_networks_devices_carry_its_mtu(cloud: Hosts) -> None:
    h1, h2 = cloud.hosts["h1"], cloud.hosts["h2"]
    net, a, b = pair(cloud, "mt", "10.68.0.0/24")
    vxlan, bridge = f"vxlan-{net['provider:segmentation_id']}", names.bridge(net["id"])
    taps = {h.name: names.tap(i["port_ids"][0]) for h, i in ((h1, a), (h2, b))}

    def carried(source: str, mtu: int) -> bool:
        shown = {h.mtu(name) for h in (h1, h2) for name in (vxlan, bridge, taps[h.name])}
        inside = cloud.run_in(source, "cat", "/sys/class/net/eth0/mtu").stdout.strip()
        return shown == {mtu} and inside == str(mtu)

    def ping(source: str, size: int) -> subprocess.CompletedProcess[str]:
        return cloud.run_in(source, "ping", "-c1", "-W1", "-M", "do", "-s", str(size), address(b))

    def check(source: str, mtu: int) -> None:
        assert cloud.cli("network", "show", "mt-net")["mtu"] == mtu
        assert eventually(lambda: carried(source, mtu)), mtu
        assert eventually(lambda: ping(source, mtu - 28).returncode == 0), mtu
        too_big = ping(source, mtu - 27)
        assert too_big.returncode != 0
        assert "message too long" in too_big.stdout + too_big.stderr

    check("mt-a", 1450)  # 1500 on the underlay, less VXLAN's 50 bytes
    # What an administrator sets: the host's devices follow; an instance made now has it too
    # (one made before keeps its NIC's, as a VM would until it asks DHCP again).
    cloud.cli("network", "set", "--mtu", "1400", "mt-net", output=False)
    cloud.instance("mt-c", "--network", "mt-net", "--host", "h1")
    check("mt-c", 1400)
    cloud.neutrino("instance", "delete", "mt-a", "mt-b", "mt-c")
    cloud.cli("network", "delete", "mt-net", output=False)


def test_trace_follows_the_packet_across_hosts(cloud: Hosts) -> None:
    for name, cidr, host in (("tr-a", "10.69.0.0/24", "h1"), ("tr-b", "10.70.0.0/24", "h2")):
        serve_dhcp_on(cloud, network(cloud, name, cidr)["id"], host)
    router = cloud.cli("router", "create", "tr-router")
    place_router(cloud, router["id"], "h3")
    for subnet in ("tr-a-sub", "tr-b-sub"):
        cloud.cli("router", "add", "subnet", "tr-router", subnet, output=False)
    cloud.instance("tr-src", "--network", "tr-a", "--host", "h1")
    dst = cloud.instance("tr-dst", "--network", "tr-b", "--host", "h2")
    assert eventually(lambda: cloud.pings("tr-src", address(dst)), seconds=15)

    def trace() -> dict:
        argv = ["trace", "--from", "tr-src", "--to", address(dst), "-f", "json"]
        return dict(json.loads(cloud.neutrino(*argv).stdout))

    traced = trace()
    assert [(hop["hop"], hop["host"]) for hop in traced["hops"]] == [
        ("instance", "h1"),
        ("tap", "h1"),
        ("bridge", "h1"),
        ("vxlan", "h1"),
        ("bridge", "h3"),
        ("router interface", "h3"),
        ("router interface", "h3"),
        ("bridge", "h3"),
        ("vxlan", "h3"),
        ("bridge", "h2"),
        ("tap", "h2"),
    ]
    overlay = [hop for hop in traced["hops"] if hop["hop"] == "vxlan"]
    assert [(hop["to_host"], hop["underlay"]) for hop in overlay] == [
        ("h3", "192.0.2.1 -> 192.0.2.3"),
        ("h2", "192.0.2.3 -> 192.0.2.2"),
    ]
    # Each host saw the probe cross each port of the path, its VXLAN devices included.
    assert [hop.get("seen") for hop in traced["hops"]] == [
        None, True, None, True, None, True, True, None, True, None, True,
    ]  # fmt: skip
    assert traced["hosts"] == ["h1", "h3", "h2"]
    assert traced["confirmed"] and traced["probe"]["reached"]
    assert {line.split(":")[0] for line in traced["probe"]["trace"]} == {"h1", "h2", "h3"}

    # A security group that admits nothing: dropped on h2, where the destination's port is.
    closed = cloud.cli("security", "group", "create", "tr-closed")
    for rule in cloud.cli("security", "group", "rule", "list", closed["id"]):
        cloud.cli("security", "group", "rule", "delete", rule["ID"], output=False)
    port = dst["port_ids"][0]
    cloud.cli(
        "port", "set", "--no-security-group", "--security-group", closed["id"], port, output=False
    )
    assert eventually(lambda: not cloud.pings("tr-src", address(dst)))
    dropped = trace()
    assert not dropped["probe"]["reached"]
    assert [(hop["hop"], hop["host"]) for hop in dropped["hops"][-3:]] == [
        ("vxlan", "h3"),
        ("bridge", "h2"),
        ("drop", "h2"),
    ]
    refused = dropped["hops"][-1]
    assert "drop" in refused["note"]
    assert (refused["port_id"], refused["direction"], refused["instance"]["name"]) == (
        port,
        "ingress",
        "tr-dst",
    )
    assert refused["security_groups"] == [{"id": closed["id"], "name": "tr-closed"}]
    cloud.neutrino("instance", "delete", "tr-src", "tr-dst")
    for subnet in ("tr-a-sub", "tr-b-sub"):
        cloud.cli("router", "remove", "subnet", "tr-router", subnet, output=False)
    cloud.cli("router", "delete", "tr-router", output=False)
    cloud.cli("security", "group", "delete", "tr-closed", output=False)
    cloud.cli("network", "delete", "tr-a", "tr-b", output=False)


def test_a_killed_agent_leaves_traffic_between_the_others_alone(cloud: Hosts) -> None:
    """Last of the module: h3's agent stays dead."""
    net = network(cloud, "sk-net", "10.64.0.0/24")
    serve_dhcp_on(cloud, net["id"], "h1")
    cloud.instance("sk-a", "--network", "sk-net", "--host", "h1")
    b = cloud.instance("sk-b", "--network", "sk-net", "--host", "h2")
    c = cloud.instance("sk-c", "--network", "sk-net", "--host", "h3")
    assert cloud.pings("sk-a", address(b)) and cloud.pings("sk-a", address(c))
    assert cloud.run_in("sk-b", "sh", "-c", SERVE_HTTP).returncode == 0
    assert eventually(lambda: fetches(cloud, "sk-a", address(b)))

    cloud.kill_agent(cloud.hosts["h3"])
    assert cloud.pings("sk-a", address(b)) and fetches(cloud, "sk-a", address(b))
    assert cloud.pings("sk-a", address(c))  # h3's kernel keeps what its agent programmed
    # The other agents go on converging: a new instance on h2 is reached from h1.
    d = cloud.instance("sk-d", "--network", "sk-net", "--host", "h2")
    assert eventually(lambda: cloud.pings("sk-a", address(d)), seconds=15)
    assert cloud.pings("sk-d", address(b))
    cloud.neutrino("instance", "delete", "sk-a", "sk-b", "sk-d")


class Pinger:
    """`ping` every INTERVAL seconds from namespace `netns` to `address`, until `stop`."""

    INTERVAL = 0.2

    def __init__(self, netns: str, address: str) -> None:
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", netns, "ping", "-n", "-i", str(self.INTERVAL), address],
            stdout=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> tuple[int, list[int]]:
        """(sent, the sequence numbers left unanswered), not counting the last second's, whose
        answers may still be on their way."""
        self.process.send_signal(signal.SIGINT)
        out = self.process.communicate(timeout=10)[0]
        found = re.search(r"(\d+) packets transmitted", out)
        assert found, out
        sent = int(found[1])
        answered = {int(seq) for seq in re.findall(r"icmp_seq=(\d+) ttl", out)}
        return sent, sorted(set(range(1, sent - 5)) - answered)


@pytest.fixture
def dying(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    with simulated_hosts(databases, tmp_path_factory, "td", down_time=DOWN_TIME) as hosts:
        yield hosts


def test_a_dead_hosts_router_dhcp_and_load_balancer_move_and_it_comes_back(
    dying: Hosts, tmp_path: Path
) -> None:
    """h1 serves a router with a floating IP, a network's DHCP and a load balancer; h2 and h3
    run instances that ping each other throughout. h1 dies: its agent is killed, and the host
    is cut from the physical network and the underlay, since a killed agent leaves its kernel
    state running (its router would answer for the gateway and floating IP beside the one
    that takes over). Then it comes back: its agent first, so that it removes what moved
    away, and then its cables."""
    cloud, h1 = dying, dying.hosts["h1"]
    cloud.cli(
        "network", "create", "lv-ext", "--external", "--provider-network-type", "flat",
        "--provider-physical-network", "default",
    )  # fmt: skip
    cloud.cli(
        "subnet", "create", "--network", "lv-ext", "--subnet-range", "203.0.113.0/24",
        "--gateway", "203.0.113.1", "--no-dhcp", "lv-ext-sub",
    )  # fmt: skip
    net = network(cloud, "lv-net", "10.66.0.0/24")
    serve_dhcp_on(cloud, net["id"], "h1")
    router = cloud.cli("router", "create", "lv-router")
    for agent in cloud.cli("network", "agent", "list", "--router", router["id"]):
        cloud.cli(
            "network", "agent", "remove", "router", "--l3", agent["ID"], router["id"], output=False
        )
    cloud.cli(
        "network", "agent", "add", "router", "--l3", agent_id(cloud, "h1", "l3"), router["id"],
        output=False,
    )  # fmt: skip
    cloud.cli("router", "set", "lv-router", "--external-gateway", "lv-ext", output=False)
    cloud.cli("router", "add", "subnet", "lv-router", "lv-net-sub", output=False)
    a = cloud.instance("lv-a", "--network", "lv-net", "--host", "h1")
    b = cloud.instance("lv-b", "--network", "lv-net", "--host", "h2")
    c = cloud.instance("lv-c", "--network", "lv-net", "--host", "h3")
    [group] = cloud.cli("port", "show", b["port_ids"][0])["security_group_ids"]
    cloud.cli("security", "group", "rule", "create", "--protocol", "icmp", group)
    fip = cloud.cli("floating", "ip", "create", "lv-ext", "--port", b["port_ids"][0])
    floating = fip["floating_ip_address"]

    def reached() -> bool:
        argv = ["ip", "netns", "exec", cloud.outside, "ping", "-c1", "-W1", floating]
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0

    assert eventually(reached, seconds=30)
    # A load balancer on h1 whose member is an HTTP server on h2.
    serve_who(cloud, "lv-b", tmp_path, "lv-b")
    vip = cloud.cli("port", "create", "--network", "lv-net", "--host", "h1", "lv-vip")
    lb = http_load_balancer(cloud, vip["id"], [address(b)])
    url = f"http://{lb['vip_address']}/who"

    def balanced() -> bool:
        return cloud.run_in("lv-c", "curl", "-s", "-m", "2", url).stdout == "lv-b"

    assert eventually(balanced, seconds=30)
    between = [Pinger(b["netns"], address(c)), Pinger(c["netns"], address(b))]
    assert eventually(lambda: cloud.pings("lv-b", address(c)), seconds=10)

    cloud.kill_agent(h1)
    cloud.cut(h1)
    killed = time.monotonic()

    # Its ports go DOWN once it has been silent for the down time.
    def h1_ports() -> set[str]:
        return {p["Status"] for p in cloud.cli("port", "list", "--host", "h1")}

    assert eventually(lambda: h1_ports() == {"DOWN"}, seconds=DOWN_TIME + 60, interval=0.5)
    assert cloud.cli("port", "show", a["port_ids"][0])["binding_host_id"] == "h1"
    # Its router moved, and the floating IP answers the outside again.
    assert eventually(reached, seconds=90, interval=0.2)
    recovered = time.monotonic() - killed
    load = os.getloadavg()
    print(
        f"\nfloating IP answers {recovered:.1f}s after h1 died (agent down time {DOWN_TIME}s, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"
    )
    [l3] = cloud.cli("network", "agent", "list", "--router", router["id"])
    assert l3["Host"] in ("h2", "h3")
    # Another host serves the network's DHCP: a new instance gets its address.
    [dhcp] = cloud.cli("network", "agent", "list", "--network", net["id"])
    assert dhcp["Host"] in ("h2", "h3")
    d = cloud.instance("lv-d", "--network", "lv-net", "--host", "h3")
    assert address(d) and cloud.pings("lv-d", address(b))
    # The load balancer was failed over to a live host, and serves again.
    assert cloud.cli("port", "show", vip["id"])["binding_host_id"] in ("h2", "h3")
    assert eventually(
        lambda: cloud.cli("loadbalancer", "show", lb["id"])["provisioning_status"] == "ACTIVE",
        seconds=60,
        interval=0.5,
    )
    assert eventually(balanced, seconds=30)
    shown = cloud.neutrino("instance", "show", "lv-a", "-f", "json").stdout
    assert json.loads(shown)["host_status"] == "DOWN"  # as Nova shows a server's dead host

    # h1 comes back: its agent first, which removes what moved away, then its cables.
    to_floating = Pinger(cloud.outside, floating)
    cloud.start_agent(h1)
    assert eventually(lambda: "h1" in cloud.alive(), seconds=60, interval=0.5)
    gone = [
        Path("/run/netns", f"{h1.config.ns_prefix}{kind}-{ident}")
        for kind, ident in (("qrouter", router["id"]), ("qdhcp", net["id"]), ("qlbaas", lb["id"]))
    ]
    assert eventually(lambda: not any(path.exists() for path in gone), seconds=60), gone
    cloud.reconnect(h1)
    assert eventually(
        lambda: cloud.cli("port", "show", a["port_ids"][0])["status"] == "ACTIVE", seconds=60
    )
    assert eventually(lambda: cloud.pings("lv-a", address(c)), seconds=30)
    time.sleep(3)  # pings go on a while with h1 back
    sent, lost = to_floating.stop()
    assert lost == [], f"{len(lost)} of {sent} pings to the floating IP unanswered: {lost}"
    for pinger in between:
        sent, lost = pinger.stop()
        # They went on through the whole outage: longer than the down time, twice over.
        assert sent * Pinger.INTERVAL > 2 * DOWN_TIME, sent
        assert lost == [], f"{len(lost)} of {sent} pings lost between h2 and h3"
    # Nothing moved back.
    assert cloud.cli("network", "agent", "list", "--router", router["id"])[0]["Host"] != "h1"
    assert cloud.cli("port", "show", vip["id"])["binding_host_id"] != "h1"
