"""The reconciler: restarts change nothing, drift is repaired, increments equal a fresh start;
its view of the links keeps up with the kernel."""

from __future__ import annotations

import copy
import subprocess

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
from neutrino.lab import models
from neutrino.plan import names

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

    stream = subprocess.Popen(["ip", "netns", "exec", ns0, PYTHON, "-c", STREAM, "10.10.0.11",
                               "9000", "1.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    restarted = Agent(host, first.state_dir)
    lab.agents.append(restarted)
    report = sync(restarted, model)
    out, err = stream.communicate(timeout=10)

    assert report.changes == []
    assert kernel_snapshot(host) == before
    assert restarted.dnsmasq.running_pid(model["networks"][0]["id"]) == dnsmasq
    assert stream.returncode == 0, err
    assert int(out) > 10


def test_drift_is_repaired_by_the_next_sync(lab: Lab) -> None:
    host = lab.host()
    model, _, vm0, vm1 = flat_model(host.name)
    agent = lab.agent(host)
    sync(agent, model)
    ns0 = lab.wait_ip(host, vm0, "10.10.0.10")
    lab.wait_ip(host, vm1, "10.10.0.11")
    assert host.netns is not None
    nft = ["ip", "netns", "exec", host.netns, "nft"]
    bridge = names.bridge(model["networks"][0]["id"])

    subprocess.run([*nft, "delete", "table", "bridge", "neutrino"], check=True)
    assert "replace firewall" in " ".join(sync(agent, model).changes)

    handle = subprocess.run([*nft, "-a", "list", "chain", "bridge", "neutrino",
                             f"ingress-{port_of(model, vm1)['id']}"],
                            capture_output=True, text=True, check=True).stdout
    last_rule = [line for line in handle.splitlines() if "drop # handle" in line][-1]
    last_rule = last_rule.split("# handle ")[1]
    subprocess.run([*nft, "delete", "rule", "bridge", "neutrino",
                    f"ingress-{port_of(model, vm1)['id']}", "handle", last_rule], check=True)
    assert "replace firewall" in " ".join(sync(agent, model).changes)

    # A bridge that no longer hands its packets to conntrack breaks stateful groups: switched back.
    subprocess.run(["ip", "-n", host.netns, "link", "set", "dev", bridge, "type", "bridge",
                    "nf_call_iptables", "0"], check=True)
    assert f"fixed link {bridge}" in sync(agent, model).changes
    details = subprocess.run(["ip", "-n", host.netns, "-d", "link", "show", "dev", bridge],
                             capture_output=True, text=True, check=True).stdout
    assert "nf_call_iptables 1" in details

    subprocess.run(["ip", "-n", host.netns, "link", "del", "dev", bridge], check=True)
    assert not ping(ns0, "10.10.0.11")
    report = sync(agent, model)
    assert f"created link {bridge}" in report.changes
    wait_for(lambda: ping(ns0, "10.10.0.11"))  # the first may wait on a failed ARP entry
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


def test_port_added_reloads_dnsmasq_without_restart(lab: Lab) -> None:
    host = lab.host()
    model, sg, vm0 = flat_model(host.name, count=1)
    agent = lab.agent(host)
    sync(agent, model)
    ns0 = lab.wait_ip(host, vm0, "10.10.0.10")
    network_id = model["networks"][0]["id"]
    pid = agent.dnsmasq.running_pid(network_id)

    net, sub = model["networks"][0], model["subnets"][0]
    added = models.port(net, sub, "10.10.0.40", security_groups=[sg["id"]])
    vm_added = models.instance("added", host.name, added)
    model["ports"].append(added)
    model["instances"].append(vm_added)
    report = sync(agent, model)

    assert f"reloaded dnsmasq {network_id}" in report.changes
    assert agent.dnsmasq.running_pid(network_id) == pid
    ns_added = lab.wait_ip(host, vm_added, "10.10.0.40")
    assert ping(ns_added, "10.10.0.10")
    lab.tcp_echo_server(ns0, 7000)
    assert tcp_reachable(ns_added, "10.10.0.10", 7000)


def test_link_views_follow_hand_edits_even_when_notifications_are_lost(lab: Lab) -> None:
    host = lab.host()
    agent = lab.agent(host)
    sync(agent, models.snapshot())  # makes the host namespace
    assert host.netns is not None
    following = LinkView(host.netns, agent.links.socket(host.netns))
    overflowing = LinkView(host.netns, agent.links.socket(host.netns), buffer=1024)
    ip = ["ip", "-n", host.netns]
    script = "".join(f"link add va{i} type veth peer name vb{i}\n" for i in range(60)) + \
        "link add br-test type bridge\nlink set va1 master br-test\nlink set va1 up\nlink del vb7\n" \
        "link set vb9 name vc9\nlink set va2 address 02:00:00:00:00:02\n"
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
