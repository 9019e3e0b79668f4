"""An ACTIVE_STANDBY load balancer with real packets: the VIP survives its MASTER.

One live `neutrino serve` with its embedded agent (isolated mode, a unique namespace prefix).
WEB1 is an instance running a web server that answers its name; CLIENT asks the VIP in a loop
(every 20 ms, each request given 0.5 s) while the MASTER fails: first its haproxy is killed while
the server and its agent are stopped (SIGSTOP: the agent would start haproxy again at once, before
VRRP has to act), so keepalived's check fails and the BACKUP takes the VIP and announces it; then
the MASTER amphora is failed over through the API, and a new MASTER takes the VIP. The longest
stretch without an answer is printed and must stay short.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netlab import wait_for
from test_loadbalancer_s6 import WEB_PORT, LbCloud
from test_routers_api import eventually

from neutrino.agent.drivers import netns as ns
from tests.conftest import Databases, dataplane_server

# Asks http://VIP/ every 20 ms; prints "<monotonic time> <1 if answered by WEB1, else 0>".
LOOP = (
    "import sys,time,urllib.request\n"
    "while True:\n"
    "    try:\n"
    "        ok=urllib.request.urlopen(f'http://{sys.argv[1]}/',timeout=0.5).read()==b'WEB1\\n'\n"
    "    except Exception:\n"
    "        ok=False\n"
    "    print(time.monotonic(),int(ok),flush=True)\n"
    "    time.sleep(0.02)\n"
)


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LbCloud]:
    with dataplane_server(databases, tmp_path_factory, "ta", LbCloud, host=LbCloud.host) as server:
        server.www = tmp_path_factory.mktemp("www")
        yield server


def amphorae(cloud: LbCloud) -> dict[str, dict[str, Any]]:
    """The load balancer's amphorae by role."""
    url = cloud.api.endpoint("load-balancer") + "/v2/octavia/amphorae"
    return {a["role"]: a for a in cloud.api.call("GET", url)["amphorae"]}


def namespace(cloud: LbCloud, amphora: dict[str, Any]) -> str:
    return f"{cloud.prefix}{cloud.host}-qlbaas-{amphora['loadbalancer_id']}-{amphora['id'][:11]}"


def holders(cloud: LbCloud, namespaces: dict[str, str], vip: str) -> set[str]:
    """The roles of the amphorae whose namespace holds the VIP now (`namespaces` by role)."""
    return {
        role
        for role, where in namespaces.items()
        if f" {vip}/32 " in cloud.run(where, "ip", "-o", "addr", "show").stdout
    }


def longest_gap(lines: list[str], since: float) -> float:
    """The longest time, after `since`, from a failed request to the next answered one."""
    longest, failing_since = 0.0, None
    for line in lines:
        moment, ok = float(line.split()[0]), line.split()[1] == "1"
        if moment < since:
            continue
        if not ok and failing_since is None:
            failing_since = moment
        elif ok and failing_since is not None:
            longest, failing_since = max(longest, moment - failing_since), None
    assert failing_since is None, "the VIP no longer answers"
    return longest


def test_the_vip_survives_its_master(cloud: LbCloud) -> None:
    routed = cloud.routed_network("ha", "10.10.50.0/24", "192.168.80.0/24")
    cloud.allow("tcp", WEB_PORT, "192.168.80.0/24")
    web = {**cloud.new_instance("WEB1", routed["net"]["id"]), "name": "WEB1"}
    client = cloud.new_instance("CLIENT", routed["net"]["id"])
    cloud.start_web(web)
    lbaas = cloud.lbaas
    profile = cloud.api.call(
        "POST",
        f"{lbaas}/flavorprofiles",
        json={
            "flavorprofile": {
                "name": "ha",
                "provider_name": "amphora",
                "flavor_data": json.dumps({"loadbalancer_topology": "ACTIVE_STANDBY"}),
            }
        },
    )["flavorprofile"]
    flavor = cloud.api.call(
        "POST",
        f"{lbaas}/flavors",
        json={"flavor": {"name": "ha", "flavor_profile_id": profile["id"]}},
    )["flavor"]
    lb = cloud.api.call(
        "POST",
        f"{lbaas}/loadbalancers",
        json={"loadbalancer": {"vip_subnet_id": routed["subnet"]["id"], "flavor_id": flavor["id"]}},
    )["loadbalancer"]
    wait_for(
        lambda: (
            cloud.lb(f"loadbalancers/{lb['id']}")["loadbalancer"]["provisioning_status"] == "ACTIVE"
        ),
        timeout=30,
    )
    listener = cloud.lb_change(
        "POST",
        "listeners",
        lb["id"],
        {"listener": {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}},
    )
    pool = cloud.lb_change(
        "POST",
        "pools",
        lb["id"],
        {
            "pool": {
                "listener_id": listener["id"],
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
            }
        },
    )
    cloud.lb_change(
        "POST",
        f"pools/{pool['id']}/members",
        lb["id"],
        {"member": {"address": web["ip"], "protocol_port": WEB_PORT}},
    )
    vip = lb["vip_address"]
    assert eventually(lambda: cloud.answers(client["netns"], vip, 1) == ["WEB1"])
    first = amphorae(cloud)
    assert sorted(first) == ["BACKUP", "MASTER"]
    assert {a["status"] for a in first.values()} == {"ALLOCATED"}
    # haproxy runs in both; the VIP is the MASTER's only.
    for amphora in first.values():
        where = namespace(cloud, amphora)
        programs = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in ns.processes_in(where)}
        assert {"haproxy", "keepalived"} <= programs, (where, programs)
    spaces = {role: namespace(cloud, amphora) for role, amphora in first.items()}
    assert wait_for(lambda: holders(cloud, spaces, vip) == {"MASTER"})

    loop = cloud.background(client["netns"], LOOP, vip)
    assert loop.stdout is not None
    lines: list[str] = []
    stdout = loop.stdout

    def read_until(moment: float) -> None:
        while (line := stdout.readline()) and float(line.split()[0]) < moment:
            lines.append(line)

    read_until(time.monotonic() + 1)
    # The MASTER's haproxy dies, and no agent starts it again: the BACKUP takes the VIP.
    os.kill(cloud.process.pid, signal.SIGSTOP)
    try:
        killed = time.monotonic()
        for pid in ns.processes_in(spaces["MASTER"]):
            if Path(f"/proc/{pid}/comm").read_text().strip() == "haproxy":
                os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: holders(cloud, spaces, vip) == {"BACKUP"}, timeout=10)
        read_until(time.monotonic() + 2)
    finally:
        os.kill(cloud.process.pid, signal.SIGCONT)
    after_kill = longest_gap(lines, killed)

    # The agent starts the MASTER's haproxy again; the MASTER amphora then fails over: a new
    # MASTER replaces it and the VIP keeps answering.
    wait_for(lambda: holders(cloud, spaces, vip) == {"MASTER"}, timeout=30)
    failed_over = time.monotonic()
    url = cloud.api.endpoint("load-balancer") + "/v2/octavia/amphorae"
    cloud.api.call("PUT", f"{url}/{first['MASTER']['id']}/failover")
    wait_for(
        lambda: (
            cloud.lb(f"loadbalancers/{lb['id']}")["loadbalancer"]["provisioning_status"] == "ACTIVE"
        ),
        timeout=30,
    )
    read_until(time.monotonic() + 2)
    after_failover = longest_gap(lines, failed_over)
    now = amphorae(cloud)
    assert now["MASTER"]["id"] != first["MASTER"]["id"]
    assert now["BACKUP"]["id"] == first["BACKUP"]["id"]
    assert {a["status"] for a in now.values()} == {"ALLOCATED"}
    assert not os.path.exists(f"/run/netns/{spaces['MASTER']}")
    spaces["MASTER"] = namespace(cloud, now["MASTER"])
    assert wait_for(lambda: holders(cloud, spaces, vip) == {"MASTER"}, timeout=10)
    print(f"\nlongest gap: {after_kill:.2f} s (haproxy killed), {after_failover:.2f} s (failover)")
    assert after_kill < 5 and after_failover < 2
