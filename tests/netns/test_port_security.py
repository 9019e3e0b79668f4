"""S5: a port's MAC and IPs are all an instance may send from; pairs and opt-out widen that."""

from __future__ import annotations

from netlab import Lab, flat_model, ipv4_of, ping, port_of, set_address, sync, wait_for


def test_instance_gets_exactly_the_chosen_ip(lab: Lab) -> None:
    host = lab.host()
    model, _, vm0 = flat_model(host.name, count=1)
    port_of(model, vm0)["fixed_ips"][0]["ip_address"] = "10.10.0.157"
    sync(lab.agent(host), model)

    netns = lab.wait_ip(host, vm0, "10.10.0.157")
    assert ipv4_of(netns) == "10.10.0.157"


def test_spoofed_ip_is_dropped_until_allowed_as_address_pair(lab: Lab) -> None:
    host = lab.host()
    model, _, vm0, vm1 = flat_model(host.name)
    agent = lab.agent(host)
    sync(agent, model)
    ns0 = lab.wait_ip(host, vm0, "10.10.0.10")
    lab.wait_ip(host, vm1, "10.10.0.11")
    assert ping(ns0, "10.10.0.11")

    set_address(ns0, "10.10.0.50/24")
    assert not ping(ns0, "10.10.0.11")

    port_of(model, vm0)["allowed_address_pairs"] = [{"ip_address": "10.10.0.48/29"}]
    sync(agent, model)
    wait_for(lambda: ping(ns0, "10.10.0.11"))  # the first may wait on a failed ARP entry


def test_port_security_disabled_lets_any_address_through(lab: Lab) -> None:
    host = lab.host()
    model, _, vm0, vm1 = flat_model(host.name)
    agent = lab.agent(host)
    sync(agent, model)
    ns0 = lab.wait_ip(host, vm0, "10.10.0.10")
    ns1 = lab.wait_ip(host, vm1, "10.10.0.11")

    set_address(ns0, "10.10.0.60/24")
    assert not ping(ns1, "10.10.0.60")

    port_of(model, vm0).update(port_security_enabled=False, security_groups=[])
    sync(agent, model)
    wait_for(lambda: ping(ns1, "10.10.0.60"))  # the first may wait on a failed ARP entry
