"""USERS.md promise 5: nothing is left PENDING_* after a crash.

`neutrino serve` (with its embedded agent) is killed with SIGKILL right after
accepting a listener, while its load balancer is PENDING_UPDATE; started
again on the same database and state, it finishes the job: the load balancer
turns ACTIVE and haproxy serves the listener, well within 30 s.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from netlab import leftovers, wait_for

from neutrino.agent.drivers import netns as ns
from neutrino.agent.reconciler import Agent
from neutrino.client import Cloud, Session
from neutrino.plan import HostConfig
from tests.conftest import Databases, crash, restart, start_server, stop_server

HOST = "lr"


def test_pending_load_balancer_is_finished_after_a_crash(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    prefix = f"tk{secrets.token_hex(3)}-"
    state, url = tmp_path_factory.mktemp("crash") / "state", databases.new("sqlite")
    extra = ["--host", HOST, "--netns-prefix", prefix]
    server = start_server(state, url, extra)
    try:
        api = Session(Cloud.load("neutrino-admin", server.clouds_yaml))
        net = api.endpoint("network") + "/v2.0"
        network = api.call("POST", f"{net}/networks", json={"network": {"name": "crash"}})[
            "network"
        ]
        subnet = api.call(
            "POST",
            f"{net}/subnets",
            json={
                "subnet": {"network_id": network["id"], "cidr": "10.126.0.0/24", "ip_version": 4}
            },
        )["subnet"]
        lbaas = api.endpoint("load-balancer") + "/v2/lbaas"
        lb = api.call(
            "POST", f"{lbaas}/loadbalancers", json={"loadbalancer": {"vip_subnet_id": subnet["id"]}}
        )["loadbalancer"]
        wait_for(
            lambda: (
                api.call("GET", f"{lbaas}/loadbalancers/{lb['id']}")["loadbalancer"][
                    "provisioning_status"
                ]
                == "ACTIVE"
            )
        )
        api.call(
            "POST",
            f"{lbaas}/listeners",
            json={
                "listener": {"loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 7000}
            },
        )
        crash(server)
        api.close()

        crashed = time.monotonic()
        restart(server)
        api = Session(Cloud.load("neutrino-admin", server.clouds_yaml))

        def settled() -> dict[str, Any] | None:
            item = api.call("GET", f"{lbaas}/loadbalancers/{lb['id']}")["loadbalancer"]
            return item if item["provisioning_status"] != "PENDING_UPDATE" else None

        seen = wait_for(settled, timeout=30)
        assert seen["provisioning_status"] == "ACTIVE" and time.monotonic() - crashed < 30
        netns = f"{prefix}{HOST}-qlbaas-{lb['id']}"
        assert [
            pid
            for pid in ns.processes_in(netns)
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"haproxy")
        ]
        api.close()
    finally:
        stop_server(server)
        Agent(HostConfig.isolated(HOST, prefix=prefix), state / "agent").teardown()
        assert leftovers(prefix, state / "agent") == []
