"""UDP load balancing with real datagrams: nftables in the load balancer's namespace.

vm0 asks the VIP; vm1 and vm2 run a UDP server that answers its own name. Each
question comes from a new socket, so each is a new flow for conntrack (which
keeps a UDP flow 30 s).
SCTP cannot be sent on this kernel (no SCTP sockets): its listener is checked
as the rules the kernel holds.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from typing import Any

from netlab import PYTHON, Lab, flat_model, sync

from neutrino.agent.drivers.l4 import probe_sctp
from neutrino.agent.drivers.netns import NetnsThread
from neutrino.lab import models
from neutrino.plan.loadbalancer import netns as lb_netns
from neutrino.plan.state import L4Member, L4Monitor
from tests.conftest import eventually

VIP, PORT, MEMBER_PORT = "10.10.0.100", 5300, 5353
# Answers every datagram with the name given in argv[2].
SERVER = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',int(sys.argv[1])))\n"
    "while True:\n"
    "  d,a=s.recvfrom(512);s.sendto(sys.argv[2].encode(),a)\n"
)
# Asks VIP:port argv[3] times, each time from a new socket bound to port argv[4] (0: any);
# prints the answers.
ASK = (
    "import socket,sys\n"
    "for _ in range(int(sys.argv[3])):\n"
    "  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(1)\n"
    "  s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('',int(sys.argv[4])))\n"
    "  s.sendto(b'?',(sys.argv[1],int(sys.argv[2])))\n"
    "  try: print(s.recv(64).decode())\n"
    "  except OSError: print('-')\n"
    "  s.close()\n"
)


COUNT_STATES = """table ip count {
    chain prerouting {
        type filter hook prerouting priority 0;
        ct state new counter
        ct state invalid counter
    }
}
"""


def ask(netns: str, times: int = 8, source_port: int = 0) -> Counter[str]:
    out = subprocess.run(
        [
            *("ip", "netns", "exec", netns, PYTHON, "-c", ASK),
            *(VIP, str(PORT), str(times), str(source_port)),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return Counter(out.split())


def serve(lab: Lab, netns: str, name: str) -> None:
    """A member answering on MEMBER_PORT, once it listens (a busy machine starts it slowly)."""
    lab.servers.append(
        subprocess.Popen(
            ["ip", "netns", "exec", netns, PYTHON, "-c", SERVER, str(MEMBER_PORT), name]
        )
    )

    def listening() -> bool:
        argv = ["ip", "netns", "exec", netns, "ss", "-Hnlu", "sport", f"= :{MEMBER_PORT}"]
        return bool(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip())

    assert eventually(listening, seconds=20)


def balanced(lab: Lab) -> tuple[Any, dict[str, Any], str, list[str]]:
    """Three instances (vm0 the client, vm1 and vm2 members) and a UDP load balancer."""
    host = lab.host()
    model, _, *vms = flat_model(host.name, count=3, port_security_enabled=False)
    net, sub = model["networks"][0], model["subnets"][0]
    vip = models.port(
        net, sub, VIP, host=host.name, device_owner="Octavia", port_security_enabled=False
    )
    model["ports"].append(vip)
    lb = {
        "id": models.new_id(),
        "vip_address": VIP,
        "vip_port_id": vip["id"],
        "vip_subnet_id": sub["id"],
        "revision": 1,
        "provisioning_status": "ACTIVE",
        "listeners": [
            {"id": "l1", "protocol": "UDP", "protocol_port": PORT, "default_pool_id": "p1"},
            {"id": "l2", "protocol": "SCTP", "protocol_port": PORT, "default_pool_id": "p2"},
        ],
        "pools": [
            {
                "id": "p1",
                "protocol": "UDP",
                "lb_algorithm": "ROUND_ROBIN",
                "members": [
                    {"id": f"m{i}", "address": f"10.10.0.1{i}", "protocol_port": MEMBER_PORT}
                    for i in (1, 2)
                ],
            },
            {
                "id": "p2",
                "protocol": "SCTP",
                "lb_algorithm": "SOURCE_IP",
                "members": [{"id": "s1", "address": "10.10.0.11", "protocol_port": 3868}],
            },
        ],
    }
    model["loadbalancers"] = [lb]
    agent = lab.agent(host)
    sync(agent, model)
    client = lab.wait_ip(host, vms[0], "10.10.0.10")
    members = [lab.wait_ip(host, vms[i], f"10.10.0.1{i}") for i in (1, 2)]
    for i, member in enumerate(members, 1):
        serve(lab, member, f"vm{i}")
    return agent, model, client, members


def test_udp_flows_are_balanced_kept_by_source_and_leave_a_failed_member(lab: Lab) -> None:
    agent, model, client, members = balanced(lab)
    lb, pool = model["loadbalancers"][0], model["loadbalancers"][0]["pools"][0]
    assert eventually(lambda: ask(client) == Counter({"vm1": 4, "vm2": 4}), seconds=10)

    pool["session_persistence"] = {"type": "SOURCE_IP", "persistence_timeout": 60}
    sync(agent, model)
    answers = ask(client)
    assert len(answers) == 1 and sum(answers.values()) == 8, answers
    # the sources the kernel remembered are no drift: the next sync keeps them, and so does
    # the first sync of an agent started again
    assert not [change for change in sync(agent, model).changes if "nft" in change]
    agent.close()
    agent = lab.agent(lab.host())
    assert not [change for change in sync(agent, model).changes if "nft" in change]
    assert ask(client) == answers

    pool["session_persistence"] = None
    pool["healthmonitor"] = {"type": "UDP-CONNECT", "delay": 1, "timeout": 1, "max_retries": 1}
    sync(agent, model)
    assert eventually(lambda: agent.health()[lb["id"]] == {"m1": "UP", "m2": "UP"}, seconds=5)
    lab.servers[1].kill()  # vm2's server: its port answers with ICMP port unreachable
    assert eventually(lambda: agent.health()[lb["id"]] == {"m1": "UP", "m2": "DOWN"}, seconds=8)
    sync(agent, model)
    lb_space = lb_netns(lab.host(), lb["id"])
    subprocess.run(
        ["ip", "netns", "exec", lb_space, "conntrack", "-F"], check=True, capture_output=True
    )
    assert ask(client) == Counter({"vm1": 8})

    # least connections: vm1 holds every flow now, so new ones go to vm2 once it is back
    serve(lab, members[1], "vm2")
    assert eventually(lambda: agent.health()[lb["id"]] == {"m1": "UP", "m2": "UP"}, seconds=8)
    pool["lb_algorithm"] = "LEAST_CONNECTIONS"
    sync(agent, model)
    assert ask(client, 4) == Counter({"vm2": 4})

    # source IP and port: one client port keeps its member even as a new flow, while the
    # client's many ports spread over both
    pool["lb_algorithm"] = "SOURCE_IP_PORT"
    sync(agent, model)
    flush = ["ip", "netns", "exec", lb_space, "conntrack", "-F"]
    kept = Counter[str]()
    for _ in range(4):
        subprocess.run(flush, check=True, capture_output=True)
        kept += ask(client, 1, source_port=40000)
    assert len(kept) == 1 and sum(kept.values()) == 4, kept
    subprocess.run(flush, check=True, capture_output=True)
    assert set(ask(client, 16)) == {"vm1", "vm2"}

    table = ["nft", "list", "table", "ip", "neutrino-l4"]
    rules = subprocess.run(
        ["ip", "netns", "exec", lb_space, *table], capture_output=True, text=True, check=True
    ).stdout
    assert (
        f"ip daddr {VIP} sctp dport {PORT} ct mark set 0x008414b4 dnat ip to jhash ip saddr"
        in rules
        and "10.10.0.11 . 3868" in rules
    ), rules

    # an agent started again removes the table of listeners deleted while it was away
    agent.close()
    lb["listeners"] = []
    agent = lab.agent(lab.host())
    sync(agent, model)
    gone = subprocess.run(
        ["ip", "netns", "exec", lb_space, *table], capture_output=True, check=False
    )
    assert gone.returncode != 0


def test_connection_limit_drops_new_flows_of_a_full_member_and_keeps_its_own(lab: Lab) -> None:
    agent, model, client, _ = balanced(lab)
    listener, pool = (
        model["loadbalancers"][0]["listeners"][0],
        model["loadbalancers"][0]["pools"][0],
    )
    listener["connection_limit"] = 2
    del pool["members"][1]
    sync(agent, model)
    assert ask(client, 1, source_port=40001) == Counter({"vm1": 1})
    assert ask(client, 1, source_port=40002) == Counter({"vm1": 1})
    # a third flow finds the member full; the two it holds go on
    assert ask(client, 1, source_port=40003) == Counter({"-": 1})
    assert ask(client, 1, source_port=40001) == Counter({"vm1": 1})
    assert ask(client, 1, source_port=40002) == Counter({"vm1": 1})
    listener["connection_limit"] = -1
    sync(agent, model)
    assert ask(client, 3) == Counter({"vm1": 3})


def test_a_full_member_leaves_new_flows_to_one_with_room(lab: Lab) -> None:
    agent, model, client, _ = balanced(lab)
    listener, pool = (
        model["loadbalancers"][0]["listeners"][0],
        model["loadbalancers"][0]["pools"][0],
    )
    listener["connection_limit"] = 1
    pool["members"][0]["weight"] = 3  # turns: vm1 vm1 vm2 vm1
    sync(agent, model)
    assert ask(client, 1) == Counter({"vm1": 1})
    # the sync finds vm1 full: new flows go to vm2, not to vm1's next turn
    sync(agent, model)
    assert ask(client, 1) == Counter({"vm2": 1})
    # both full: the namespace answers port unreachable
    sync(agent, model)
    assert ask(client, 1) == Counter({"-": 1})


def test_udp_listener_statistics_count_flows_and_bytes(lab: Lab) -> None:
    agent, model, client, _ = balanced(lab)
    lb = model["loadbalancers"][0]
    zeros = {"active_connections": 0, "total_connections": 0, "bytes_in": 0, "bytes_out": 0}

    def counted() -> dict[str, dict[str, Any]]:
        reported = sync(agent, model).loadbalancers[lb["id"]]["listeners"]
        return {
            listener_id: {name: value for name, value in counts.items() if name != "worker"}
            for listener_id, counts in reported.items()
        }

    assert counted() == {
        "l1": {**zeros, "request_errors": 0},
        "l2": {**zeros, "request_errors": 0},
    }
    # flows from six source ports of the test's choosing (the kernel might give a closed
    # socket's port again, and conntrack would take the next question for the same flow)
    assert sum(sum(ask(client, 1, port).values()) for port in range(41001, 41007)) == 6
    # each flow: one question in (20 bytes of IP, 8 of UDP, "?") and an answer out ("vm1"
    # or "vm2"); conntrack still holds the six flows
    one = {"active_connections": 6, "total_connections": 6, "bytes_in": 6 * 29, "bytes_out": 6 * 31}
    assert counted()["l1"] == {**one, "request_errors": 0}
    # a new algorithm rewrites the balancing table; the counts go on
    lb["pools"][0]["lb_algorithm"] = "SOURCE_IP"
    sync(agent, model)
    assert sum(sum(ask(client, 1, port).values()) for port in (41007, 41008)) == 2
    assert counted()["l1"]["total_connections"] == 8


def test_sctp_check_sends_an_init_the_kernel_takes_for_one(lab: Lab) -> None:
    """This kernel has no SCTP endpoint, so a member cannot answer the INIT: the check finds it
    down. The member's conntrack takes it for a new SCTP association's INIT: with a bad checksum
    or chunk it would be invalid."""
    here, there = f"{lab.prefix}sctp-a", f"{lab.prefix}sctp-b"
    for name in (here, there):
        subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(
        ["ip", "-n", here, "link", "add", "name", "a", "type", "veth", "peer", "name", "b"]
        + ["netns", there],
        check=True,
    )
    for name, link, address in ((here, "a", "10.99.0.1/24"), (there, "b", "10.99.0.2/24")):
        subprocess.run(["ip", "-n", name, "addr", "add", address, "dev", link], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "dev", link, "up"], check=True)
    # counts what the member's conntrack makes of the packets it gets
    subprocess.run(
        ["ip", "netns", "exec", there, "nft", "-f", "-"],
        input=COUNT_STATES,
        text=True,
        check=True,
    )
    worker = NetnsThread(here)
    try:
        member = L4Member("m", "10.99.0.2", 3868, 1, False, "10.99.0.2", 3868)
        assert not probe_sctp(worker, member, L4Monitor("SCTP", 1, 1, 1, 1))
    finally:
        worker.close()
    counted = subprocess.run(
        ["ip", "netns", "exec", there, "nft", "list", "ruleset"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "ct state new counter packets 1 " in counted, counted
    assert "ct state invalid counter packets 0 " in counted, counted
