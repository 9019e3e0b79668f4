"""S1 and segments: instances get addresses by DHCP; networks talk inside, never across."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from netlab import Lab, flat_model, ping, tcp_reachable

from neutrino.agent import instance
from neutrino.agent.instance import exec_in_instance
from neutrino.lab import models


@pytest.mark.parametrize("client", ["dhclient", "udhcpc"])
def test_flat_network_instances_get_dhcp_addresses_and_talk(
    lab: Lab, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        instance, "dhcp_client", lambda: client
    )  # udhcpc: where AppArmor confines dhclient
    host = lab.host()
    model, _, vm0, vm1 = flat_model(host.name)
    agent = lab.agent(host)
    report = agent.sync(model)

    assert report.errors == []
    assert set(report.ports.values()) == {"ACTIVE"}
    ns0 = lab.wait_ip(host, vm0, "10.10.0.10")
    ns1 = lab.wait_ip(host, vm1, "10.10.0.11")
    assert ping(ns0, "10.10.0.11")
    lab.tcp_echo_server(ns1, 8080)
    assert tcp_reachable(ns0, "10.10.0.11", 8080)
    _, out, _ = exec_in_instance(ns0, ["ip", "route", "show", "default"])
    assert "via 10.10.0.1" in out
    pid = instance.dhcp_client_pid(agent.state_dir, ns0, "eth0")
    assert pid is not None and client.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()


def _segmented_model(kind: str, hosts: tuple[str, str]) -> tuple[dict[str, Any], ...]:
    """Two networks of `kind` with the same CIDR: a0 (host 0) and a1 (host 1) on A, b1 on B."""
    sg = models.default_security_group()
    nets, subs, ports = [], [], []
    for segment in (100, 101):
        net = models.network(kind, segment=segment)
        sub = models.subnet(net, "10.20.0.0/24")
        nets.append(net)
        subs.append(sub)
        ports.append(models.dhcp_port(net, sub, "10.20.0.2", host=hosts[0]))
    a0 = models.port(nets[0], subs[0], "10.20.0.10", security_groups=[sg["id"]])
    a1 = models.port(nets[0], subs[0], "10.20.0.11", security_groups=[sg["id"]])
    b1 = models.port(nets[1], subs[1], "10.20.0.12", security_groups=[sg["id"]])
    instances = [
        models.instance("a0", hosts[0], a0),
        models.instance("a1", hosts[1], a1),
        models.instance("b1", hosts[1], b1),
    ]
    model = models.snapshot(
        networks=nets,
        subnets=subs,
        security_groups=[sg],
        ports=[*ports, a0, a1, b1],
        instances=instances,
    )
    return (model, *instances)


def test_vlan_networks_span_hosts_and_stay_isolated(lab: Lab) -> None:
    h1, h2 = lab.host("h1"), lab.host("h2")
    model, a0, a1, b1 = _segmented_model("vlan", (h1.name, h2.name))
    assert lab.agent(h1).sync(model).errors == []
    assert lab.agent(h2).sync(model).errors == []

    ns_a0 = lab.wait_ip(h1, a0, "10.20.0.10")
    lab.wait_ip(h2, a1, "10.20.0.11")
    lab.wait_ip(h2, b1, "10.20.0.12")
    assert ping(ns_a0, "10.20.0.11")
    assert not ping(ns_a0, "10.20.0.12")


def test_vxlan_networks_talk_inside_and_stay_isolated(lab: Lab) -> None:
    host = lab.host()
    model, a0, a1, b1 = _segmented_model("vxlan", (host.name, host.name))
    assert lab.agent(host).sync(model).errors == []

    ns_a0 = lab.wait_ip(host, a0, "10.20.0.10")
    lab.wait_ip(host, a1, "10.20.0.11")
    lab.wait_ip(host, b1, "10.20.0.12")
    assert ping(ns_a0, "10.20.0.11")
    assert not ping(ns_a0, "10.20.0.12")
