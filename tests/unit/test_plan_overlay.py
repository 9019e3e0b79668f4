"""L2 population in the plan: a VXLAN device's FDB from the ports' bindings and the VTEPs."""

from __future__ import annotations

import random
from typing import Any

from neutrino.lab import models
from neutrino.plan import HostConfig, compile_host
from neutrino.plan.overlay import FLOOD
from neutrino.plan.state import FdbEntry

VTEPS = {"h1": "192.0.2.1", "h2": "192.0.2.2", "h3": "192.0.2.3"}
H1 = HostConfig.isolated("h1", prefix="t-", vtep_ip=VTEPS["h1"])


def endpoints(hosts: dict[str, str] = VTEPS) -> list[dict[str, Any]]:
    return [{"id": f"agent-{h}", "host": h, "ip_address": ip} for h, ip in hosts.items()]


def overlay_model() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """VXLAN network A with ports on h1 and h2; B with ports on h1 and h3; C only on h3."""
    nets = [models.network("vxlan", segment=vni) for vni in (100, 200, 300)]
    subs = [models.subnet(net, f"10.{i}.0.0/24") for i, net in enumerate(nets)]
    a1 = models.port(nets[0], subs[0], "10.0.0.10", host="h1")
    a2 = models.port(nets[0], subs[0], "10.0.0.11", host="h2")
    a2_dhcp = models.dhcp_port(nets[0], subs[0], "10.0.0.2", host="h2")
    b1 = models.port(nets[1], subs[1], "10.1.0.10", host="h1")
    b3 = models.port(nets[1], subs[1], "10.1.0.11", host="h3")
    c3 = models.port(nets[2], subs[2], "10.2.0.10", host="h3")
    model = models.snapshot(
        networks=nets,
        subnets=subs,
        ports=[a1, a2, a2_dhcp, b1, b3, c3],
        vxlan_endpoints=endpoints(),
    )
    return model, a2, a2_dhcp, b3


def entries(model: dict[str, Any], host: HostConfig = H1) -> set[tuple[str, str, str]]:
    return {(e.device, e.mac, e.dst) for e in compile_host(model, host).fdb}


def test_each_network_floods_to_the_hosts_with_its_ports_and_knows_their_macs() -> None:
    model, a2, a2_dhcp, b3 = overlay_model()
    assert entries(model) == {
        ("vxlan-100", FLOOD, "192.0.2.2"),
        ("vxlan-100", a2["mac_address"], "192.0.2.2"),
        ("vxlan-100", a2_dhcp["mac_address"], "192.0.2.2"),
        ("vxlan-200", FLOOD, "192.0.2.3"),
        ("vxlan-200", b3["mac_address"], "192.0.2.3"),
    }
    assert all(e.netns == H1.netns for e in compile_host(model, H1).fdb)
    # h2 has no port of network B: no entry toward it; h3's network C is not here at all.
    h2 = HostConfig.isolated("h2", prefix="t-", vtep_ip=VTEPS["h2"])
    assert {dst for _, _, dst in entries(model, h2)} == {"192.0.2.1"}
    assert {device for device, _, _ in entries(model, h2)} == {"vxlan-100"}


def test_entries_follow_a_port_that_moves_or_goes() -> None:
    model, a2, a2_dhcp, b3 = overlay_model()
    a2["binding:host_id"] = "h3"
    assert ("vxlan-100", a2["mac_address"], "192.0.2.3") in entries(model)
    assert ("vxlan-100", FLOOD, "192.0.2.3") in entries(model)
    assert ("vxlan-100", FLOOD, "192.0.2.2") in entries(model)  # its DHCP port is still there
    model["ports"].remove(a2_dhcp)
    assert ("vxlan-100", FLOOD, "192.0.2.2") not in entries(model)
    a2["binding:host_id"] = "h1"  # now local: known by the bridge, not the tunnel
    assert {e for e in entries(model) if e[0] == "vxlan-100"} == set()
    model["ports"].remove(b3)
    assert entries(model) == set()


def test_hosts_without_a_vtep_and_unbound_ports_are_no_peers() -> None:
    model, *_ = overlay_model()
    model["vxlan_endpoints"] = endpoints({"h1": VTEPS["h1"], "h2": VTEPS["h2"]})
    assert {dst for _, _, dst in entries(model)} == {"192.0.2.2"}
    for port in model["ports"]:
        if port["binding:host_id"] != "h1":
            port["binding:host_id"] = ""
    assert entries(model) == set()


def test_the_fdb_is_a_function_of_the_model_alone() -> None:
    model, *_ = overlay_model()
    expected = compile_host(model, H1).fdb
    for seed in range(5):
        ports = random.Random(seed).sample(model["ports"], len(model["ports"]))
        shuffled = {**model, "ports": ports}
        shuffled["vxlan_endpoints"] = list(reversed(model["vxlan_endpoints"]))
        assert compile_host(shuffled, H1).fdb == expected
    assert expected == tuple(sorted(expected, key=lambda e: (e.device, e.mac, e.dst)))
    assert isinstance(expected[0], FdbEntry)


def responder(model: dict[str, Any], host: HostConfig = H1) -> set[tuple[str, str, str]]:
    return {(e.device, e.ip, e.mac) for e in compile_host(model, host).arp}


def test_the_arp_responder_knows_the_fixed_ips_of_the_other_hosts_ports() -> None:
    model, a2, a2_dhcp, b3 = overlay_model()
    assert responder(model) == {
        ("vxlan-100", "10.0.0.11", a2["mac_address"]),
        ("vxlan-100", "10.0.0.2", a2_dhcp["mac_address"]),
        ("vxlan-200", "10.1.0.11", b3["mac_address"]),
    }
    vxlans = [link for link in compile_host(model, H1).links if link.kind == "vxlan"]
    assert vxlans and all(link.proxy for link in vxlans)
    # A new address, a new MAC; a move here (the bridge knows it) or away; a deleted port.
    a2["fixed_ips"].append({**a2["fixed_ips"][0], "ip_address": "10.0.0.12"})
    a2["mac_address"] = "fa:16:3e:00:00:02"
    assert {e for e in responder(model) if e[0] == "vxlan-100"} == {
        ("vxlan-100", "10.0.0.11", "fa:16:3e:00:00:02"),
        ("vxlan-100", "10.0.0.12", "fa:16:3e:00:00:02"),
        ("vxlan-100", "10.0.0.2", a2_dhcp["mac_address"]),
    }
    a2["binding:host_id"] = "h1"
    model["ports"].remove(a2_dhcp)
    assert responder(model) == {("vxlan-200", "10.1.0.11", b3["mac_address"])}
    b3["binding:host_id"] = "h2"  # h2 has no port of network B: its device is not made here
    assert responder(model) == {("vxlan-200", "10.1.0.11", b3["mac_address"])}
    # An allowed address pair is not answered, as in Neutron: only fixed IPs are.
    b3["allowed_address_pairs"] = [{"ip_address": "10.1.0.99", "mac_address": b3["mac_address"]}]
    assert {ip for _, ip, _ in responder(model)} == {"10.1.0.11"}


def test_a_vxlan_networks_devices_carry_its_mtu() -> None:
    model, *_ = overlay_model()
    model["networks"][0]["mtu"] = 1400
    bridge = f"brq{model['networks'][0]['id'][:11]}"
    links = compile_host(model, H1).links
    fitted = [link for link in links if bridge in (link.name, link.master)]
    assert {link.kind for link in fitted} == {"bridge", "vxlan", "external"}  # a VM's tap
    assert {link.mtu for link in fitted} == {1400}
    assert {link.mtu for link in links if link not in fitted and link.master} == {1500}
