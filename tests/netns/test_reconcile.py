"""The reconciler: restarts change nothing, drift is repaired, increments equal a fresh start;
its view of the links keeps up with the kernel."""

from __future__ import annotations

import copy
import gc
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from netlab import (
    PYTHON,
    Lab,
    flat_model,
    kernel_snapshot,
    ping,
    port_of,
    sync,
    tcp_reachable,
    wait_for,
)

from neutrino.agent import Agent
from neutrino.agent.drivers.links import LinkDriver, LinkView
from neutrino.agent.instance import exec_in_instance
from neutrino.agent.reconciler import SyncReport
from neutrino.agent.runner import KINDS
from neutrino.lab import models
from neutrino.plan import HostConfig, names
from neutrino.plan.firewall import groups_chain
from neutrino.plan.keyed import Change, KeyedPlan
from neutrino.plan.loadbalancer import netns as lb_netns
from neutrino.plan.loadbalancer import vip_interface

# Streams for `seconds`, checking every echo; exits non-zero on a reset or a stall.
STREAM = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
end = time.monotonic() + float(sys.argv[3])
sent = 0
while time.monotonic() < end:
    chunk = bytes([sent % 256]) * 1024
    s.sendall(chunk)
    got = b""
    while len(got) < len(chunk):
        got += s.recv(len(chunk) - len(got)) or sys.exit("closed")
    assert got == chunk
    sent += 1
    time.sleep(0.005)
print(sent)
"""


def test_agent_restart_keeps_kernel_and_flows(lab: Lab) -> None:
    host = lab.host()
    model, _, vm0, vm1 = flat_model(host.name)
    first = lab.agent(host)
    sync(first, model)
    ns0 = lab.wait_ip(host, vm0, "10.10.0.10")
    ns1 = lab.wait_ip(host, vm1, "10.10.0.11")
    lab.tcp_echo_server(ns1, 9000)
    dnsmasq = first.dnsmasq.running_pid(model["networks"][0]["id"])
    before = kernel_snapshot(host)
    first.close()

    stream = subprocess.Popen(
        ["ip", "netns", "exec", ns0, PYTHON, "-c", STREAM, "10.10.0.11", "9000", "1.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    restarted = Agent(host, first.state_dir)
    lab.agents.append(restarted)
    report = sync(restarted, model)
    out, err = stream.communicate(timeout=10)

    assert report.changes == []
    assert kernel_snapshot(host) == before
    assert restarted.dnsmasq.running_pid(model["networks"][0]["id"]) == dnsmasq
    assert stream.returncode == 0, err
    assert int(out) > 10


def test_a_restart_after_state_files_cut_short_syncs_again(lab: Lab) -> None:
    """An agent stopped as it wrote what it remembers of the firewall and of a router (the
    files empty or cut short) starts again all the same: what they describe is made again,
    with no error."""
    host = lab.host()
    model = models.tutorial(host.name, vms=1)
    first = lab.agent(host)
    sync(first, model)
    before = kernel_snapshot(host)
    first.close()
    state_files = [first.state_dir / "firewall.json", *(first.state_dir / "routers").glob("*")]
    assert len(state_files) == 2
    for cut in (0, 20):
        for state_file in state_files:
            state_file.write_bytes(state_file.read_bytes()[:cut])
        restarted = Agent(host, first.state_dir)
        lab.agents.append(restarted)
        report = sync(restarted, model)
        assert any(change.startswith("replace firewall") for change in report.changes)
        assert kernel_snapshot(host) == before
        restarted.close()


def test_drift_is_repaired_by_the_next_sync(lab: Lab) -> None:
    host = lab.host()
    model, sg, vm0, vm1 = flat_model(host.name)
    agent = lab.agent(host)
    sync(agent, model)
    ns0 = lab.wait_ip(host, vm0, "10.10.0.10")
    lab.wait_ip(host, vm1, "10.10.0.11")
    assert host.netns is not None
    nft = ["ip", "netns", "exec", host.netns, "nft"]
    bridge = names.bridge(model["networks"][0]["id"])

    subprocess.run([*nft, "delete", "table", "bridge", "neutrino"], check=True)
    assert "replace firewall" in " ".join(sync(agent, model).changes)

    chain = groups_chain((sg["id"],), "ingress")  # vm1's, and vm0's

    def drops() -> list[str]:
        listed = subprocess.run(
            [*nft, "-a", "list", "chain", "bridge", "neutrino", chain],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [line for line in listed.splitlines() if "drop # handle" in line]

    last_rule = drops()[-1]
    last_rule = last_rule.split("# handle ")[1]
    subprocess.run(
        [
            *nft,
            "delete",
            "rule",
            "bridge",
            "neutrino",
            chain,
            "handle",
            last_rule,
        ],
        check=True,
    )
    # Only the chain that moved is made again; the table is not replaced.
    assert not drops()
    assert sync(agent, model).changes == [f"repair chain {chain}"]
    assert drops()
    subprocess.run([*nft, "add", "chain", "bridge", "neutrino", "intruder"], check=True)
    assert sync(agent, model).changes == ["delete chain intruder"]

    # A bridge that no longer hands its packets to conntrack breaks stateful groups: switched back.
    subprocess.run(
        [
            "ip",
            "-n",
            host.netns,
            "link",
            "set",
            "dev",
            bridge,
            "type",
            "bridge",
            "nf_call_iptables",
            "0",
        ],
        check=True,
    )
    assert f"fixed link {bridge}" in sync(agent, model).changes
    details = subprocess.run(
        ["ip", "-n", host.netns, "-d", "link", "show", "dev", bridge],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "nf_call_iptables 1" in details

    subprocess.run(["ip", "-n", host.netns, "link", "del", "dev", bridge], check=True)
    assert not ping(ns0, "10.10.0.11")
    report = sync(agent, model)
    assert f"created link {bridge}" in report.changes
    wait_for(lambda: ping(ns0, "10.10.0.11"))  # the first may wait on a failed ARP entry
    assert sync(agent, model).changes == []


def test_the_hosts_bridges_and_their_ports_take_no_ipv6(lab: Lab) -> None:
    """They only switch: no link-local address, nothing from a tenant's router advertisement;
    set back by hand, IPv6 is turned off again by the next sync."""
    host = lab.host()
    model, _, vm0, vm1 = flat_model(host.name)
    agent = lab.agent(host)
    sync(agent, model)
    lab.wait_ip(host, vm0, "10.10.0.10")
    assert host.netns is not None
    bridge = names.bridge(model["networks"][0]["id"])
    taps = [names.tap(port_of(model, vm)["id"]) for vm in (vm0, vm1)]

    def sysctl(link: str) -> str:
        return f"/proc/sys/net/ipv6/conf/{link}/disable_ipv6"

    def disable_ipv6(link: str) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", str(host.netns), "cat", sysctl(link)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def ipv6_addresses(link: str) -> str:
        return subprocess.run(
            ["ip", "-n", str(host.netns), "-6", "-o", "addr", "show", "dev", link],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    for link in (bridge, *taps):
        assert disable_ipv6(link) == "1", link
        assert ipv6_addresses(link) == "", link
    subprocess.run(
        ["ip", "netns", "exec", host.netns, "sh", "-c", f"echo 0 > {sysctl(bridge)}"], check=True
    )
    wait_for(lambda: "fe80::" in ipv6_addresses(bridge))
    assert sync(agent, model).changes == [f"turned IPv6 off on link {bridge}"]
    assert disable_ipv6(bridge) == "1" and ipv6_addresses(bridge) == ""
    assert sync(agent, model).changes == []


def test_incremental_syncs_equal_a_fresh_start(lab: Lab) -> None:
    host = lab.host()
    model, sg, _, vm1 = flat_model(host.name)
    final = copy.deepcopy(model)
    net, sub = final["networks"][0], final["subnets"][0]
    extra = models.port(net, sub, "10.10.0.30", security_groups=[sg["id"]])
    final["ports"].append(extra)
    final["instances"].append(models.instance("vm2", host.name, extra))
    final["instances"] = [i for i in final["instances"] if i["id"] != vm1["id"]]
    final["ports"] = [p for p in final["ports"] if p["id"] != vm1["port_ids"][0]]
    sg_final = next(s for s in final["security_groups"] if s["id"] == sg["id"])
    sg_final["security_group_rules"].append(models.rule("ingress", "tcp", 22, 22))

    agent = lab.agent(host)
    sync(agent, model)
    sync(agent, final)
    incremental = kernel_snapshot(host)
    agent.teardown()
    lab.agents.remove(agent)

    fresh = lab.agent(host)
    sync(fresh, final)
    from_scratch = kernel_snapshot(host)
    assert incremental[0] == from_scratch[0]
    assert _link_names(incremental[1]) == _link_names(from_scratch[1])


def _link_names(links: str) -> list[str]:
    """`ip -o link` without ifindexes and peers' indexes (new on every creation)."""
    return sorted(" ".join(line.split()[1:3]).split("@")[0] for line in links.splitlines())


def test_port_plugged_and_unplugged_by_key_reload_dnsmasq_and_equal_a_full_sync(
    lab: Lab,
) -> None:
    """A port plugged goes the runner's way, compiled and applied by key: its tap, its
    instance, its network's hosts file (dnsmasq told by SIGHUP, not restarted); unplugged, its
    links and namespace go. The host is then what a full sync makes it."""
    host = lab.host()
    model, sg, vm0 = flat_model(host.name, count=1)
    agent = lab.agent(host)
    items = {name: {r["id"]: r for r in model[name]} for name in KINDS.values() if name in model}
    plan = KeyedPlan(host, items)
    assert agent.apply(plan.desired()).errors == []
    ns0 = lab.wait_ip(host, vm0, "10.10.0.10")
    network_id = model["networks"][0]["id"]
    pid = agent.dnsmasq.running_pid(network_id)

    def feed(*changes: tuple[str, str, dict[str, Any] | None]) -> SyncReport:
        done = []
        for collection, body_id, body in changes:
            before = items[collection].pop(body_id, None)
            if body is not None:
                items[collection][body_id] = body
            done.append(Change(collection, body_id, before, body))
        changed = plan.update(done)
        assert changed.ports and not changed.base
        report = agent.apply_changed(plan, changed, 0)
        assert report is not None and report.errors == []
        return report

    net, sub = model["networks"][0], model["subnets"][0]
    added = models.port(net, sub, "10.10.0.40", security_groups=[sg["id"]])
    vm_added = models.instance("added", host.name, added)
    report = feed(("ports", added["id"], added), ("instances", vm_added["id"], vm_added))
    assert f"reloaded dnsmasq {network_id}" in report.changes
    assert agent.dnsmasq.running_pid(network_id) == pid
    assert report.ports[added["id"]] == "ACTIVE"
    ns_added = lab.wait_ip(host, vm_added, "10.10.0.40")
    assert ping(ns_added, "10.10.0.10")
    lab.tcp_echo_server(ns0, 7000)
    assert tcp_reachable(ns_added, "10.10.0.10", 7000)

    report = feed(("instances", vm_added["id"], None), ("ports", added["id"], None))
    # dnsmasq forgets a host entry only when it starts again (DnsmasqDriver).
    assert f"restarted dnsmasq {network_id}" in report.changes, report.changes
    assert added["id"] not in report.ports
    assert (
        ns_added
        not in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert agent.apply(plan.desired()).changes == []


# Asks the DNS server argv[1] for the AAAA record of argv[2]; prints the addresses answered.
AAAA_QUERY = """
import socket, struct, sys
name = b"".join(bytes([len(label)]) + label.encode() for label in sys.argv[2].split("."))
query = struct.pack("!HHHHHH", 7, 0x100, 1, 0, 0, 0) + name + b"\\0" + struct.pack("!HH", 28, 1)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(query, (sys.argv[1], 53))
answer = s.recv(512)
# An answer: type AAAA, class IN, a TTL, 16 bytes of address.
print(" ".join(socket.inet_ntop(socket.AF_INET6, answer[i + 10 : i + 26])
      for i in range(len(answer) - 25) if answer[i : i + 4] == b"\\0\\x1c\\0\\x01"
      and answer[i + 8 : i + 10] == b"\\0\\x10"))
"""


def test_a_dhcpv6_host_renamed_reloads_dnsmasq(lab: Lab) -> None:
    """A DHCPv6 host entry whose name changes is re-read on SIGHUP, as any other: the same
    dnsmasq answers the new name and leases the address to a DHCPv6 client."""
    host = lab.host()
    model, _, vm = flat_model(host.name, count=1)
    net, dhcp, port = model["networks"][0], model["ports"][0], port_of(model, vm)
    v6 = {
        "id": models.new_id(),
        "network_id": net["id"],
        "ip_version": 6,
        "cidr": "2001:db8:5::/64",
        "gateway_ip": "2001:db8:5::1",
        "enable_dhcp": True,
        "ipv6_ra_mode": "dhcpv6-stateful",
        "ipv6_address_mode": "dhcpv6-stateful",
        "dns_nameservers": [],
        "host_routes": [],
        "allocation_pools": [{"start": "2001:db8:5::2", "end": "2001:db8:5::ff"}],
    }
    model["subnets"].append(v6)
    net["subnets"].append(v6["id"])
    dhcp["fixed_ips"].append({"subnet_id": v6["id"], "ip_address": "2001:db8:5::2"})
    port["fixed_ips"].append({"subnet_id": v6["id"], "ip_address": "2001:db8:5::10"})
    agent = lab.agent(host)
    sync(agent, model)
    netns = lab.wait_ip(host, vm, "10.10.0.10")

    def answered(name: str) -> str:
        rc, out, err = exec_in_instance(netns, [PYTHON, "-c", AAAA_QUERY, "2001:db8:5::2", name])
        return out.strip() if rc == 0 else err

    wait_for(lambda: answered("host-2001-db8-5--10") == "2001:db8:5::10", timeout=10)
    pid = agent.dnsmasq.running_pid(net["id"])
    port["dns_assignment"] = [
        {"hostname": "renamed", "ip_address": "2001:db8:5::10", "fqdn": "renamed.openstacklocal."}
    ]
    assert f"reloaded dnsmasq {net['id']}" in sync(agent, model).changes
    assert agent.dnsmasq.running_pid(net["id"]) == pid
    assert answered("renamed.openstacklocal") == "2001:db8:5::10"

    def leased() -> bool:  # by the instance's DHCPv6 client
        rc, out, _ = exec_in_instance(netns, ["ip", "-6", "-o", "addr", "show", "dev", "eth0"])
        return rc == 0 and "2001:db8:5::10/" in out

    wait_for(leased, timeout=30)
    assert agent.dnsmasq.running_pid(net["id"]) == pid


def test_link_views_follow_hand_edits_even_when_notifications_are_lost(lab: Lab) -> None:
    host = lab.host()
    agent = lab.agent(host)
    sync(agent, models.snapshot())  # makes the host namespace
    assert host.netns is not None
    netns = host.netns
    following = LinkView(netns, lambda: agent.links.socket(netns))
    overflowing = LinkView(netns, lambda: agent.links.socket(netns), buffer=1024)
    ip = ["ip", "-n", host.netns]
    script = (
        "".join(f"link add va{i} type veth peer name vb{i}\n" for i in range(60))
        + "link add br-test type bridge\nlink set va1 master br-test\nlink set va1 up\n"
        "link del vb7\n"
        "link set vb9 name vc9\nlink set va2 address 02:00:00:00:00:02\n"
    )
    subprocess.run([*ip, "-batch", "-"], input=script, text=True, check=True)
    fresh = LinkDriver()
    try:
        truth = fresh.observe(host.netns)
        assert {"va1", "vc9", "br-test"} <= set(truth) and "vb7" not in truth and "vb9" not in truth
        assert truth["va1"].master == truth["br-test"].index and truth["va1"].up
        assert following.links() == truth
        assert overflowing.links() == truth
    finally:
        fresh.close()
        following.close()
        overflowing.close()


def test_a_namespace_forgotten_closes_the_sockets_every_thread_had_there(lab: Lab) -> None:
    """Each thread that works in a namespace has a socket of its own there; forgetting the
    namespace closes them all, whichever thread forgets it: an agent makes and deletes
    namespaces all its life, and must not run out of descriptors."""
    host = lab.host()
    sync(lab.agent(host), models.snapshot())  # makes the host namespace
    netns = host.netns
    links = LinkDriver()
    descriptors = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        elsewhere = threading.Thread(target=lambda: links.socket(netns).get_links())
        elsewhere.start()
        elsewhere.join()
        links.socket(netns).get_links()
        links.forget(netns)
    gc.collect()  # what a thread that is gone left
    assert len(os.listdir("/proc/self/fd")) == descriptors


def test_a_sync_forks_no_copy_of_the_agent(lab: Lab) -> None:
    """Its sockets in the namespaces it makes are made there by a thread of its own: after a
    fork, each page of the agent's memory would cost a page fault when next written, the
    change that follows a sync of a large host paying for thousands."""
    forks: list[int] = []
    os.register_at_fork(after_in_parent=lambda: forks.append(1))  # os.fork(), not spawns
    host = lab.host()
    model, *_ = flat_model(host.name)
    agent = lab.agent(host)
    sync(agent, model)
    assert agent.links.observe(host.netns)  # a socket in the host's namespace made and used
    assert forks == []


# --- every object the agent owns, removed or altered by hand, is back after the next sync ----


@dataclass
class Drifted:
    """A host running the tutorial (two instances on vlan101 behind router_100_101), an idle
    router and a load balancer on vlan101 whose VIP forwards TCP and UDP 7000 to vm1."""

    lab: Lab
    host: HostConfig
    agent: Agent
    model: dict[str, Any]
    vm0: str  # instance namespaces
    vm1: str

    @property
    def router(self) -> str:
        return names.router_netns(self.host, self.model["routers"][0]["id"])

    @property
    def idle_router(self) -> str:
        return names.router_netns(self.host, self.model["routers"][1]["id"])

    @property
    def dhcp(self) -> str:
        return names.dhcp_netns(self.host, self.model["networks"][2]["id"])

    @property
    def loadbalancer(self) -> str:
        return lb_netns(self.host, self.model["loadbalancers"][0]["id"])

    @property
    def outside(self) -> str:
        return f"{self.lab.prefix}nout-default"

    @property
    def host_netns(self) -> str:
        assert self.host.netns is not None
        return self.host.netns

    def port(self, index: int) -> dict[str, Any]:
        return dict(self.model["ports"][index])

    def ip(self, netns: str, *args: str) -> None:
        subprocess.run(["ip", "-n", netns, *args], check=True)

    def nft(self, netns: str, *args: str) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", netns, "nft", *args], capture_output=True, text=True, check=True
        ).stdout

    def sysctl(self, netns: str, name: str, value: str | None = None) -> str:
        path = f"/proc/sys/{name.replace('.', '/')}"
        if value is not None:
            subprocess.run(
                ["ip", "netns", "exec", netns, "sh", "-c", f"echo {value} > {path}"], check=True
            )
        return subprocess.run(
            ["ip", "netns", "exec", netns, "cat", path], capture_output=True, text=True, check=True
        ).stdout.strip()


def drifted(lab: Lab) -> Drifted:
    host = lab.host()
    model = models.tutorial(host.name, vms=2)
    model["routers"].append(models.router(name="idle"))
    n101, s101 = model["networks"][2], model["subnets"][2]
    vip = models.port(
        n101, s101, "172.16.101.100", device_owner="Octavia", port_security_enabled=False
    )
    model["ports"].append(vip)
    model["loadbalancers"] = [
        {
            "id": models.new_id(),
            "vip_address": "172.16.101.100",
            "vip_port_id": vip["id"],
            "vip_subnet_id": s101["id"],
            "revision": 1,
            "provisioning_status": "ACTIVE",
            "listeners": [
                {"id": "l1", "protocol": "TCP", "protocol_port": 7000, "default_pool_id": "p1"},
                {"id": "l2", "protocol": "UDP", "protocol_port": 7000, "default_pool_id": "p2"},
            ],
            "pools": [
                {
                    "id": "p1",
                    "protocol": "TCP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [
                        {"id": "m1", "address": "172.16.101.4", "protocol_port": 7000, "weight": 1}
                    ],
                },
                {
                    "id": "p2",
                    "protocol": "UDP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [{"id": "m2", "address": "172.16.101.4", "protocol_port": 7000}],
                },
            ],
        }
    ]
    agent = lab.agent(host)
    sync(agent, model)
    vm0 = lab.wait_ip(host, model["instances"][0], "172.16.101.3")
    vm1 = lab.wait_ip(host, model["instances"][1], "172.16.101.4")
    lab.tcp_echo_server(vm1, 7000)
    return Drifted(lab, host, agent, model, vm0, vm1)


def routes_out(d: Drifted) -> bool:
    """vm0 reaches the outside through the router's source NAT (the outside has no route back)."""
    return ping(d.vm0, "10.10.10.1")


def serves_dhcp(d: Drifted) -> bool:
    """dnsmasq answers vm0 (the lease is not applied: -s /bin/true)."""
    rc, _, _ = exec_in_instance(
        d.vm0,
        [
            "busybox",
            "udhcpc",
            "-n",
            "-q",
            "-f",
            "-i",
            "eth0",
            "-s",
            "/bin/true",
            "-t",
            "3",
            "-T",
            "1",
        ],
        timeout=10,
    )
    return rc == 0


def balances(d: Drifted) -> bool:
    return tcp_reachable(d.vm0, "172.16.101.100", 7000)


def balances_udp(d: Drifted) -> bool:
    """The UDP listener's table DNATs to vm1."""
    listing = subprocess.run(
        ["ip", "netns", "exec", d.loadbalancer, "nft", "list", "table", "ip", "neutrino-l4"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return "udp dport 7000" in listing and "172.16.101.4 . 7000" in listing


def counts_udp(d: Drifted) -> bool:
    """The UDP listener's flows are counted."""
    listing = subprocess.run(
        ["ip", "netns", "exec", d.loadbalancer, "nft", "list", "table", "ip", "neutrino-l4-count"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return 'counter name "in-l2"' in listing


def idle_router_ready(d: Drifted) -> bool:
    """Forwarding on, the NAT table in place: what a router without ports has."""
    return d.sysctl(d.idle_router, "net.ipv4.ip_forward") == "1" and "table ip neutrino" in d.nft(
        d.idle_router, "list", "tables"
    )


def kill(pid: int | None) -> None:
    assert pid is not None
    os.kill(pid, signal.SIGKILL)


def dnsmasq_hosts(d: Drifted) -> Path:
    return d.agent.dnsmasq.root / d.model["networks"][2]["id"] / "hosts"


def haproxy_config(d: Drifted) -> Path:
    return d.agent.haproxy.root / d.model["loadbalancers"][0]["id"] / "haproxy.cfg"


Drift = Callable[[Drifted], object]
DRIFTS: dict[str, tuple[Drift, Callable[[Drifted], bool]]] = {
    "host namespace": (
        lambda d: subprocess.run(["ip", "netns", "del", d.host_netns], check=True),
        routes_out,
    ),
    "router namespace": (
        lambda d: subprocess.run(["ip", "netns", "del", d.router], check=True),
        routes_out,
    ),
    "idle router namespace": (
        lambda d: subprocess.run(["ip", "netns", "del", d.idle_router], check=True),
        idle_router_ready,
    ),
    "idle router namespace unmounted": (
        lambda d: subprocess.run(["umount", f"/run/netns/{d.idle_router}"], check=True),
        idle_router_ready,
    ),
    "dhcp namespace": (
        lambda d: subprocess.run(["ip", "netns", "del", d.dhcp], check=True),
        serves_dhcp,
    ),
    "load balancer namespace": (
        lambda d: subprocess.run(["ip", "netns", "del", d.loadbalancer], check=True),
        balances,
    ),
    "outside namespace": (
        lambda d: subprocess.run(["ip", "netns", "del", d.outside], check=True),
        routes_out,
    ),
    "outside gateway address": (
        lambda d: d.ip(d.outside, "addr", "flush", "dev", "phys"),
        routes_out,
    ),
    "instance namespace": (
        lambda d: subprocess.run(["ip", "netns", "del", d.vm0], check=True),
        routes_out,
    ),
    "bridge": (
        lambda d: d.ip(
            d.host_netns, "link", "del", "dev", names.bridge(d.model["networks"][2]["id"])
        ),
        routes_out,
    ),
    "bridge port": (
        lambda d: d.ip(d.host_netns, "link", "set", "dev", names.tap(d.port(3)["id"]), "nomaster"),
        routes_out,
    ),
    "vlan link": (lambda d: d.ip(d.host_netns, "link", "del", "dev", "p-default.101"), routes_out),
    "instance tap": (
        lambda d: d.ip(d.host_netns, "link", "del", "dev", names.tap(d.port(3)["id"])),
        routes_out,
    ),
    "router interface down": (
        lambda d: d.ip(
            d.router, "link", "set", "dev", names.router_interface(d.port(1)["id"]), "down"
        ),
        routes_out,
    ),
    "router gateway address": (
        lambda d: d.ip(d.router, "addr", "flush", "dev", names.router_gateway(d.port(2)["id"])),
        routes_out,
    ),
    "router default route": (lambda d: d.ip(d.router, "route", "del", "default"), routes_out),
    "router forwarding": (lambda d: d.sysctl(d.router, "net.ipv4.ip_forward", "0"), routes_out),
    "router NAT table": (
        lambda d: d.nft(d.router, "delete", "table", "ip", "neutrino"),
        routes_out,
    ),
    "router internal networks": (
        lambda d: d.nft(d.router, "flush", "set", "ip", "neutrino", "internal"),
        routes_out,
    ),
    "host firewall table": (
        lambda d: d.nft(d.host_netns, "delete", "table", "bridge", "neutrino"),
        routes_out,
    ),
    "bridge netfilter sysctl": (
        lambda d: d.sysctl(d.host_netns, "net.bridge.bridge-nf-call-iptables", "1"),
        lambda d: d.sysctl(d.host_netns, "net.bridge.bridge-nf-call-iptables") == "0",
    ),
    "dhcp interface down": (
        lambda d: d.ip(d.dhcp, "link", "set", "dev", names.dhcp_interface(d.port(6)["id"]), "down"),
        serves_dhcp,
    ),
    "dhcp address": (
        lambda d: d.ip(d.dhcp, "addr", "flush", "dev", names.dhcp_interface(d.port(6)["id"])),
        serves_dhcp,
    ),
    "dnsmasq": (
        lambda d: kill(d.agent.dnsmasq.running_pid(d.model["networks"][2]["id"])),
        serves_dhcp,
    ),
    "dnsmasq hosts file": (lambda d: dnsmasq_hosts(d).write_text(""), serves_dhcp),
    "load balancer interface down": (
        lambda d: d.ip(
            d.loadbalancer, "link", "set", "dev", vip_interface(d.port(7)["id"]), "down"
        ),
        balances,
    ),
    "load balancer default route": (
        lambda d: d.ip(d.loadbalancer, "route", "del", "default"),
        lambda d: (
            "via 172.16.101.1"
            in subprocess.run(
                ["ip", "-n", d.loadbalancer, "route", "show", "default"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        ),
    ),
    "haproxy": (
        lambda d: kill(d.agent.haproxy.running_pid(d.model["loadbalancers"][0]["id"])),
        balances,
    ),
    "UDP balancing table": (
        lambda d: d.nft(d.loadbalancer, "delete", "table", "ip", "neutrino-l4"),
        balances_udp,
    ),
    "UDP counting table": (
        lambda d: d.nft(d.loadbalancer, "delete", "table", "ip", "neutrino-l4-count"),
        counts_udp,
    ),
    "haproxy configuration": (
        lambda d: haproxy_config(d).write_text(
            haproxy_config(d).read_text().replace("172.16.101.4:7000", "172.16.101.9:7000")
        ),
        balances,
    ),
}


@pytest.mark.parametrize("kind", DRIFTS)
def test_each_owned_object_is_repaired_by_the_next_sync(lab: Lab, kind: str) -> None:
    d = drifted(lab)
    drift, works = DRIFTS[kind]
    assert wait_for(lambda: works(d), timeout=10)
    before = kernel_snapshot(d.host)
    drift(d)
    sync(d.agent, d.model)
    assert wait_for(lambda: works(d), timeout=10)
    assert kernel_snapshot(d.host)[0] == before[0]  # the host's firewall as it was
    assert sync(d.agent, d.model).changes == []
