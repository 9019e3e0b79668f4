"""DESIGN's promise under real traffic: a crash and restart of `neutrino serve` (and its embedded
agent) changes nothing in the kernel and drops no flow.

One live server for the module; the outside namespace plays the internet. It holds a TCP
connection to a floating IP (of an instance, then of a load balancer's VIP) and pings it every
50 ms while the server's process group is killed with SIGKILL and the server started again on
the same database and state. The instance also holds one to the outside, whose packets its
security group lets in only as part of that connection (conntrack forgotten, they would be
dropped). After the restarted agent's first full sync the connections still carry bytes both
ways, at most one echo is lost, and every namespace of the data plane (links with their
indexes, addresses, routes, nftables, the processes in it: haproxy, dnsmasq, DHCP clients) is
as it was.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
from netlab import wait_for
from sqlalchemy import delete, select
from test_loadbalancer_s6 import LbCloud

from neutrino.agent.drivers import netns as ns
from neutrino.db import Database, schema
from tests.conftest import Databases, crash, dataplane_server, restart

SERVER_PORT = 7000  # the instance's, open in its security group
OUTSIDE_PORT = 7001  # the outside's: its packets enter the instance only as replies
OUTSIDE_GATEWAY = "10.10.40.1"
PING_INTERVAL = 0.05


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LbCloud]:
    with dataplane_server(databases, tmp_path_factory, "tk", LbCloud, host="rs") as server:
        yield server


@pytest.fixture(scope="module")
def web(cloud: LbCloud) -> dict[str, Any]:
    """A network behind a router with a gateway to the outside, and WEB on it."""
    routed = cloud.routed_network("restart", "10.10.40.0/24", "192.168.70.0/24")
    cloud.allow("icmp")
    cloud.allow("tcp", SERVER_PORT)
    return {**routed, "WEB": cloud.new_instance("WEB", routed["net"]["id"])}


def test_instance_flows_survive_a_crash_and_restart(cloud: LbCloud, web: dict[str, Any]) -> None:
    fip = cloud.create(
        "floatingips",
        "floatingip",
        floating_network_id=web["ext"]["id"],
        port_id=web["WEB"]["port_ids"][0],
    )
    address, vm = fip["floating_ip_address"], web["WEB"]["netns"]
    inbound = wait_for(lambda: hold(cloud.outside, (address, SERVER_PORT), vm), timeout=10)
    # Source-NATed to the floating IP; its group lets the outside's packets in as part of it.
    outbound = wait_for(lambda: hold(vm, (OUTSIDE_GATEWAY, OUTSIDE_PORT), cloud.outside))
    assert_flows_survive_restart(cloud, address, [inbound, outbound[::-1]])


def test_load_balancer_flows_survive_a_crash_and_restart(
    cloud: LbCloud, web: dict[str, Any]
) -> None:
    lb = cloud.api.call(
        "POST",
        f"{cloud.lbaas}/loadbalancers",
        json={
            "loadbalancer": {
                "name": "restart-lb",
                "vip_subnet_id": web["subnet"]["id"],
                "listeners": [
                    {
                        "protocol": "TCP",
                        "protocol_port": SERVER_PORT,
                        "default_pool": {
                            "protocol": "TCP",
                            "lb_algorithm": "ROUND_ROBIN",
                            "members": [
                                {"address": web["WEB"]["ip"], "protocol_port": SERVER_PORT}
                            ],
                        },
                    }
                ],
            }
        },
    )["loadbalancer"]
    wait_for(
        lambda: (
            cloud.lb(f"loadbalancers/{lb['id']}")["loadbalancer"]["provisioning_status"] == "ACTIVE"
        ),
        timeout=20,
    )
    fip = cloud.create(
        "floatingips", "floatingip", floating_network_id=web["ext"]["id"], port_id=lb["vip_port_id"]
    )
    address = fip["floating_ip_address"]
    # haproxy's connection to the member, accepted in WEB, carries the outside's.
    held = wait_for(
        lambda: hold(cloud.outside, (address, SERVER_PORT), web["WEB"]["netns"]), timeout=10
    )
    assert_flows_survive_restart(cloud, address, [held])


Connection = tuple[socket.socket, socket.socket]  # its two ends: the outside's, the other


def assert_flows_survive_restart(
    cloud: LbCloud, address: str, connections: list[Connection]
) -> None:
    """Ping `address` from the outside while the server crashes and restarts; the `connections`
    carry bytes both ways before and after."""
    with contextlib.ExitStack() as stack, tempfile.TemporaryFile("w+") as echoes:
        for end in (end for connection in connections for end in connection):
            stack.enter_context(end)
        assert_carry(connections, b"before")
        pinger = subprocess.Popen(
            ["ip", "netns", "exec", cloud.outside, "ping", "-n", "-i", str(PING_INTERVAL), address],
            stdout=echoes,
            text=True,
        )
        cloud.processes.append(pinger)
        time.sleep(0.5)
        before = kernel_state(cloud.prefix)

        crash(cloud)
        killed = time.monotonic()
        forget_agent(cloud)  # so that its next report is the restarted agent's first
        restart(cloud)
        healthy = time.monotonic()
        first_sync = wait_for(lambda: agent_report(cloud), timeout=20)
        synced = time.monotonic()
        after = kernel_state(cloud.prefix)

        assert_carry(connections, b"after the restart")
        assert pinger.poll() is None  # its echoes span the whole crash and restart
        pinger.send_signal(signal.SIGINT)
        pinger.wait(5)
        echoes.seek(0)
        output = echoes.read()
    sent = int(re.findall(r"(\d+) packets transmitted", output)[0])
    answered = {int(seq) for seq in re.findall(r"bytes from .* icmp_seq=(\d+)", output)}
    lost = set(range(1, sent)) - answered  # the last echo may still have been on its way
    print(
        f"\n{address}: {len(lost)} of {sent} echoes lost; server up again "
        f"{healthy - killed:.2f}s after the kill, agent's first sync done "
        f"{synced - healthy:.2f}s later (it took {first_sync['seconds']:.3f}s); "
        f"kernel changed: {before != after}"
    )
    assert len(lost) <= 1, sorted(lost)
    assert agent_report(cloud)["revision"] == head_revision(cloud)
    assert_same_kernel(before, after)


def hold(client_netns: str, server: tuple[str, int], server_netns: str) -> Connection | None:
    """A TCP connection from `client_netns` to `server`, accepted in `server_netns` (it reaches
    there, maybe through NAT and a load balancer): (client end, server end); None if it does not."""
    listener = ns.run_in_namespace(server_netns, lambda: socket.create_server(("", server[1])))
    with listener:
        listener.settimeout(2)
        try:
            client = ns.run_in_namespace(
                client_netns, lambda: socket.create_connection(server, timeout=1)
            )
        except OSError:
            return None
        try:
            accepted, _ = listener.accept()
        except OSError:
            client.close()
            return None
    accepted.settimeout(2)
    return client, accepted


def assert_carry(connections: list[Connection], data: bytes) -> None:
    """`data` crosses each connection both ways, the outside's end sending first (after a crash,
    its packets must be known to conntrack as part of the connection to pass a security group)."""
    for number, (outside_end, other_end) in enumerate(connections):
        assert carries(outside_end, other_end, data), f"connection {number}: outside -> in lost"
        assert carries(other_end, outside_end, data), f"connection {number}: in -> outside lost"


def carries(sender: socket.socket, receiver: socket.socket, data: bytes) -> bool:
    sender.sendall(data)
    got = b""
    while len(got) < len(data):
        try:
            chunk = receiver.recv(len(data) - len(got))
        except TimeoutError:
            return False
        if not chunk:
            return False
        got += chunk
    return got == data


def forget_agent(cloud: LbCloud) -> None:
    """The server forgets this host's agent and what it last reported."""
    db = Database(cloud.database_url)
    with db.write() as conn:
        conn.execute(delete(schema.agents).where(schema.agents.c.host == cloud.host))
    db.dispose()


def agent_report(cloud: LbCloud) -> Any:
    """The last sync the server heard of from this host's agent (None: none yet)."""
    db = Database(cloud.database_url)
    with db.read() as conn:
        report = conn.execute(
            select(schema.agents.c.report).where(schema.agents.c.host == cloud.host)
        ).scalar()
    db.dispose()
    return report


def head_revision(cloud: LbCloud) -> int:
    db = Database(cloud.database_url)
    with db.read() as conn:
        head = Database.head_revision(conn)
    db.dispose()
    return head


def kernel_state(prefix: str) -> dict[str, dict[str, Any]]:
    """Every namespace of the data plane: links (with ifindexes: a re-created one shows),
    addresses, routes, nftables (with handles: a replaced table shows) and the processes in it
    (a restarted haproxy, dnsmasq or DHCP client shows). Without what the kernel moves on its
    own: links' operational state and IPv6 link-local addresses (with their routes), tentative
    until duplicate address detection ends."""

    def show(netns: str, *argv: str) -> str:
        out = subprocess.run(
            ["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, check=True
        ).stdout
        return "\n".join(line for line in out.splitlines() if " fe80:" not in line)

    return {
        netns: {
            "links": re.sub(
                r" state \S+|NO-CARRIER,|,LOWER_UP", "", show(netns, "ip", "-o", "link")
            ),
            "addresses": show(netns, "ip", "-o", "addr"),
            "routes": show(netns, "ip", "route", "show", "table", "all"),
            "nftables": show(netns, "nft", "-a", "list", "ruleset"),
            "processes": sorted(ns.processes_in(netns)),
        }
        for netns in sorted(ns.list_namespaces())
        if netns.startswith(prefix)
    }


def assert_same_kernel(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> None:
    assert sorted(after) == sorted(before)
    changed = [
        f"{netns} {part}:\n"
        + "\n".join(
            difflib.unified_diff(
                str(was).splitlines(), str(after[netns][part]).splitlines(), lineterm="", n=0
            )
        )
        for netns, parts in before.items()
        for part, was in parts.items()
        if after[netns][part] != was
    ]
    assert not changed, "\n".join(changed)
