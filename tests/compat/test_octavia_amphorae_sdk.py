"""Unchanged openstacksdk's load_balancer proxy and `openstack loadbalancer amphora` against a live
neutrino (without an agent, so a load balancer's amphora stays BOOTING and its load balancer
PENDING_CREATE): the administrator lists and shows amphorae, a member may not."""

from __future__ import annotations

from typing import Any

import pytest
from openstack import exceptions

from tests.conftest import LiveServer

pytestmark = pytest.mark.compat


def test_amphorae_through_sdk_and_cli(admin: Any, demo: Any, live_server: LiveServer) -> None:
    net = demo.network.create_network(name="amp-net")
    subnet = demo.network.create_subnet(network_id=net.id, cidr="10.31.0.0/24", ip_version=4)
    lb = demo.load_balancer.create_load_balancer(name="amp-lb", vip_subnet_id=subnet.id)
    (amphora,) = list(admin.load_balancer.amphorae(loadbalancer_id=lb.id))
    assert (amphora.loadbalancer_id, amphora.role, amphora.status) == (
        lb.id,
        "STANDALONE",
        "BOOTING",
    )
    assert (amphora.ha_ip, amphora.ha_port_id) == (lb.vip_address, lb.vip_port_id)
    shown = admin.load_balancer.get_amphora(amphora.id)
    assert (shown.id, shown.vrrp_port_id, shown.compute_id) == (amphora.id, lb.vip_port_id, None)
    with pytest.raises(exceptions.ForbiddenException):
        list(demo.load_balancer.amphorae())
    # Its load balancer is not ACTIVE yet: Octavia's 409.
    with pytest.raises(exceptions.ConflictException):
        admin.load_balancer.failover_amphora(amphora.id)

    listed = live_server.cli("loadbalancer", "amphora", "list", "--loadbalancer", lb.id)
    assert [(a["id"], a["status"], a["role"]) for a in listed] == [
        (amphora.id, "BOOTING", "STANDALONE")
    ]
    shown_cli = live_server.cli("loadbalancer", "amphora", "show", amphora.id)
    assert (shown_cli["loadbalancer_id"], shown_cli["ha_ip"]) == (lb.id, lb.vip_address)
    refused = live_server.run_cli("loadbalancer", "amphora", "failover", amphora.id)
    assert refused.returncode != 0 and "is immutable and cannot be updated" in refused.stderr
