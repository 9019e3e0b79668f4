"""Instances find each other by name: the network's dnsmasq answers the ports' DNS names, and
DHCP gives instances that server and the domain to search."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from netlab import Lab, flat_model, port_of, sync

from neutrino.agent.instance import exec_in_instance
from tests.conftest import Databases, LiveServer, dataplane_server, eventually

DOMAIN = "example.org"


def resolve(netns: str, name: str) -> str | None:
    """The address `name` has for the instance's resolver (what DHCP configured), if any."""
    rc, out, _ = exec_in_instance(netns, ["getent", "hosts", name])
    return out.split()[0] if rc == 0 else None


def named(port: dict[str, Any], hostname: str) -> None:
    """Give `port` the dns_assignment the server gives a port of that dns_name."""
    port["dns_assignment"] = [
        {"hostname": hostname, "ip_address": ip["ip_address"], "fqdn": f"{hostname}.{DOMAIN}."}
        for ip in port["fixed_ips"]
    ]


def test_a_rename_is_answered_without_restarting_dnsmasq(lab: Lab) -> None:
    host = lab.host()
    model, _, vm0, vm1 = flat_model(host.name)
    network = model["networks"][0]
    network["dhcp_domain"] = DOMAIN
    named(port_of(model, vm0), "vm0")
    named(port_of(model, vm1), "vm1")
    agent = lab.agent(host)
    sync(agent, model)
    ns0 = lab.wait_ip(host, vm0, "10.10.0.10")

    # Its resolver comes before its address: a lookup between the two would have asked the
    # host's resolver, out of the instance's reach, for over 10 s.
    assert resolve(ns0, "vm1") == "10.10.0.11"
    assert resolve(ns0, f"vm1.{DOMAIN}") == "10.10.0.11"
    assert resolve(ns0, f"host-10-10-0-11.{DOMAIN}") is None

    named(port_of(model, vm1), "db")
    model["revision"] += 1
    assert sync(agent, model).changes == [f"reloaded dnsmasq {network['id']}"]
    assert resolve(ns0, "db") == "10.10.0.11"
    assert resolve(ns0, "vm1") is None


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    options = ("--dns-domain", DOMAIN)
    with dataplane_server(databases, tmp_path_factory, "td", LiveServer, options=options) as server:
        yield server


def test_instances_reach_each_other_by_name(cloud: LiveServer) -> None:
    """The unchanged CLI names a port; an instance on the network pings it by that name, short
    and qualified, and finds it by its new name once it is renamed. An instance's own port is
    named after it."""
    net = cloud.cli("network", "create", "dns_net")
    cloud.cli(
        "subnet", "create", "--network", net["id"], "--subnet-range", "172.16.77.0/24", "dns_sub"
    )
    port = cloud.cli("port", "create", "--network", net["id"], "--dns-name", "vm2", "vm2_port")
    assert port["dns_assignment"][0]["fqdn"] == f"vm2.{DOMAIN}."
    address = port["fixed_ips"][0]["ip_address"]
    cloud.neutrino("instance", "create", "dns-vm1", "--network", net["id"])
    cloud.neutrino("instance", "create", "dns-vm2", "--port", port["id"])

    def resolved(name: str, on: str = "dns-vm1") -> str | None:
        found = cloud.neutrino("instance", "exec", on, "--", "getent", "hosts", name, check=False)
        return found.stdout.split()[0] if found.returncode == 0 else None

    assert eventually(lambda: resolved("vm2") == address, seconds=20)
    [vm1_port] = cloud.cli("port", "list", "--network", net["id"], "--name", "dns-vm1-eth0")
    assert cloud.cli("port", "show", vm1_port["ID"])["dns_name"] == "dns-vm1"
    vm1_address = vm1_port["Fixed IP Addresses"][0]["ip_address"]
    assert eventually(lambda: resolved("dns-vm1", on="dns-vm2") == vm1_address)
    for name in ("vm2", f"vm2.{DOMAIN}"):
        cloud.neutrino("instance", "exec", "dns-vm1", "--", "ping", "-c1", "-W2", name)

    cloud.cli("port", "set", port["id"], "--dns-name", "db", output=False)
    assert eventually(lambda: resolved("db") == address)
    assert resolved("vm2") is None
    cloud.neutrino("instance", "exec", "dns-vm1", "--", "ping", "-c1", "-W2", f"db.{DOMAIN}")
    cloud.neutrino("instance", "delete", "dns-vm1", "dns-vm2")
