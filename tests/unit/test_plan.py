"""plan.compile_host: golden desired states, names, and incremental == full."""

from __future__ import annotations

import copy
import itertools
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from neutrino.lab import models
from neutrino.plan import HostConfig, Link, PhysnetConfig, VethPeer, compile_host, names
from neutrino.plan.state import Resource

HOST = HostConfig.isolated("h1", prefix="t-")


@pytest.fixture(autouse=True)
def predictable_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    counter = itertools.count(1)
    monkeypatch.setattr(
        models, "new_id", lambda: f"{next(counter):08x}-0000-4000-8000-000000000000"
    )
    yield


def flat_lab() -> dict[str, Any]:
    net = models.network("flat")
    sub = models.subnet(
        net,
        "10.0.0.0/24",
        dns_nameservers=["10.0.0.53"],
        host_routes=[{"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}],
    )
    sg = models.default_security_group()
    vm_port = models.port(net, sub, "10.0.0.5", security_groups=[sg["id"]])
    elsewhere = models.port(net, sub, "10.0.0.6", security_groups=[sg["id"]])
    return models.snapshot(
        revision=7,
        networks=[net],
        subnets=[sub],
        security_groups=[sg],
        ports=[models.dhcp_port(net, sub, "10.0.0.2", host="h1"), vm_port, elsewhere],
        instances=[models.instance("vm", "h1", vm_port), models.instance("far", "h2", elsewhere)],
    )


def test_flat_network_golden() -> None:
    model = flat_lab()
    net, dhcp, vm_port = model["networks"][0], model["ports"][0], model["ports"][1]
    state = compile_host(model, HOST)

    bridge = names.bridge(net["id"])
    vm_ns = names.instance_netns(HOST, model["instances"][0]["id"])
    dhcp_ns = f"t-h1-qdhcp-{net['id']}"
    assert state.revision == 7
    assert state.namespaces == tuple(sorted(("t-nhost-h1", "t-nout-default", dhcp_ns, vm_ns)))
    assert state.links == (
        Link("t-nhost-h1", bridge, "bridge", netfilter=True, mtu=1500, ipv6_off=True),
        Link("t-nout-default", "phys", "bridge"),
        Link(
            "t-nhost-h1",
            "p-default",
            "veth",
            master=bridge,
            peer=VethPeer("t-nout-default", names.outside_end(HOST, None), master="phys", mtu=1500),
            mtu=1500,
            ipv6_off=True,
        ),
        *sorted(
            [  # then by name
                Link(
                    "t-nhost-h1",
                    names.tap(dhcp["id"]),
                    "veth",
                    master=bridge,
                    peer=VethPeer(
                        dhcp_ns, names.dhcp_interface(dhcp["id"]), mac=dhcp["mac_address"], mtu=1500
                    ),
                    mtu=1500,
                    ipv6_off=True,
                ),
                Link(
                    "t-nhost-h1",
                    names.tap(vm_port["id"]),
                    "veth",
                    master=bridge,
                    peer=VethPeer(vm_ns, "eth0", mac=vm_port["mac_address"], mtu=1500),
                    mtu=1500,
                    ipv6_off=True,
                ),
            ],
            key=lambda link: link.name,
        ),
    )
    assert [a.cidr for a in state.addresses] == ["10.0.0.2/24"]
    [server] = state.dhcp
    tag = f"subnet-{model['subnets'][0]['id'][:8]}"
    assert server.ranges == (f"set:{tag},10.0.0.0,static,255.255.255.0,86400s",)
    assert server.hosts == "".join(
        f"{p['mac_address']},host-{p['fixed_ips'][0]['ip_address'].replace('.', '-')},"
        f"{p['fixed_ips'][0]['ip_address']}\n"
        for p in model["ports"][1:]
    )
    assert server.opts == (
        f"tag:{tag},option:router,10.0.0.1\n"
        f"tag:{tag},option:dns-server,10.0.0.53\n"
        f"tag:{tag},option:classless-static-route,192.168.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1\n"
        f"tag:{tag},option:mtu,1500\n"
    )
    assert [(i.netns, i.ifname) for i in state.instances] == [(vm_ns, "eth0")]
    assert state.ports == {
        dhcp["id"]: names.tap(dhcp["id"]),
        vm_port["id"]: names.tap(vm_port["id"]),
    }
    assert state.problems == ()
    json.loads(state.to_json())  # plain data all the way down


def test_extra_dhcp_opts_are_the_port_s_own() -> None:
    model = flat_lab()
    vm_port, elsewhere = model["ports"][1], model["ports"][2]
    vm_port["extra_dhcp_opts"] = [
        {"opt_name": "mtu", "opt_value": "1400", "ip_version": 4},
        {"opt_name": "domain-search", "opt_value": "a.example,b.example", "ip_version": 4},
        {"opt_name": "252", "opt_value": "http://wpad/\nexta-line", "ip_version": 4},
        {"opt_name": "tag:ipxe,bootfile-name", "opt_value": "boot.ipxe", "ip_version": 4},
        {"opt_name": "router", "opt_value": "", "ip_version": 4},
        {"opt_name": "dns-server", "opt_value": "[fd00::53]", "ip_version": 6},  # no DHCPv6 here
    ]
    elsewhere["extra_dhcp_opts"] = [
        {"opt_name": "client-id", "opt_value": "far-1", "ip_version": 4}
    ]
    [server] = compile_host(model, HOST).dhcp
    vm_tag = f"port-{vm_port['id']}"
    assert server.hosts == (
        f"{vm_port['mac_address']},host-10-0-0-5,10.0.0.5,set:{vm_tag}\n"
        f"{elsewhere['mac_address']},host-10-0-0-6,10.0.0.6,id:far-1\n"
    )
    assert server.opts.splitlines()[4:] == [
        f"tag:{vm_tag},option:mtu,1400",
        f"tag:{vm_tag},option:domain-search,a.example,b.example",
        f"tag:{vm_tag},252,http://wpad/",
        f"tag:{vm_tag},tag:ipxe,option:bootfile-name,boot.ipxe",
        f"tag:{vm_tag},option:router,",
    ]


def test_dnsmasq_names_the_ports_and_hands_out_the_domain() -> None:
    """The names of each address as dns_assignment gives them, host-<address> without one,
    and the hostname in the network's own domain; DHCP entries name the served addresses."""
    model = flat_lab()
    net, sub = model["networks"][0], model["subnets"][0]
    vm_port, elsewhere = model["ports"][1], model["ports"][2]
    v6 = models.subnet(net, "fd00::/120", ip_version=6, enable_dhcp=False)
    model["subnets"].append(v6)
    net.update(dhcp_domain="example.org", dns_domain="corp.test.")
    vm_port["fixed_ips"].append({"subnet_id": v6["id"], "ip_address": "fd00::5"})
    vm_port["dns_assignment"] = [
        {"hostname": "vm", "ip_address": ip, "fqdn": "vm.example.org."}
        for ip in ("10.0.0.5", "fd00::5")
    ]
    [server] = compile_host(model, HOST).dhcp
    assert server.domain == "example.org"
    assert server.names == (
        "10.0.0.5\tvm.example.org vm vm.corp.test\n"
        "fd00::5\tvm.example.org vm vm.corp.test\n"
        "10.0.0.6\thost-10-0-0-6.example.org host-10-0-0-6 host-10-0-0-6.corp.test\n"
    )
    assert server.hosts == (
        f"{vm_port['mac_address']},vm.example.org,10.0.0.5\n"
        f"{elsewhere['mac_address']},host-10-0-0-6.example.org,10.0.0.6\n"
    )
    assert server.ranges == (f"set:subnet-{sub['id'][:8]},10.0.0.0,static,255.255.255.0,86400s",)

    # A fully qualified dns_name is the one name of its address.
    vm_port["dns_assignment"] = [
        {"hostname": "vm.example.org.", "ip_address": "10.0.0.5", "fqdn": "vm.example.org."}
    ]
    del net["dns_domain"]
    [server] = compile_host(model, HOST).dhcp
    assert server.names.splitlines()[:2] == [
        "10.0.0.5\tvm.example.org",
        "fd00::5\thost-fd00--5.example.org host-fd00--5",
    ]


def test_only_bridges_with_a_protected_port_pass_packets_to_netfilter() -> None:
    def netfilter(model: dict[str, Any]) -> set[str]:
        return {
            link.name
            for link in compile_host(model, HOST).links
            if link.kind == "bridge" and link.netfilter
        }

    model = models.tutorial(HOST.name, vms=1)
    [instance] = model["instances"]
    [vm_port] = [p for p in model["ports"] if p["id"] in instance["port_ids"]]
    # Not the external network's (router gateways), nor a network with only a router interface.
    assert netfilter(model) == {names.bridge(vm_port["network_id"])}
    vm_port["port_security_enabled"] = False
    assert netfilter(model) == set()


def test_vlan_and_vxlan_segments() -> None:
    vlan = models.network("vlan", segment=4094)
    vxlan = models.network("vxlan", segment=16777215)
    model = models.snapshot(networks=[vlan, vxlan])
    for net in (vlan, vxlan):
        sub = models.subnet(net, "10.1.0.0/24")
        model["subnets"].append(sub)
        model["ports"].append(models.port(net, sub, "10.1.0.9", host="h1"))

    veth_mode = {link.name: link for link in compile_host(model, HOST).links}
    assert veth_mode["p-default.4094"].kind == "veth"
    assert veth_mode["p-default.4094"].peer == VethPeer(
        "t-nout-default", names.outside_end(HOST, 4094), master="vlan4094", mtu=1500
    )
    assert veth_mode["vxlan-16777215"].vni == 16777215
    # The NIC's veth, which no flat network takes here, has IPv6 off from the start all the same.
    assert veth_mode["p-default"].master is None and veth_mode["p-default"].ipv6_off
    assert all(len(name) <= names.IFNAMSIZ for name in veth_mode)

    production = HostConfig("h1", physnets={"default": PhysnetConfig("eth1")}, vtep_ip="192.0.2.1")
    links = {link.name: link for link in compile_host(model, production).links}
    assert links["eth1.4094"] == Link(
        None,
        "eth1.4094",
        "vlan",
        master=names.bridge(vlan["id"]),
        parent="eth1",
        vlan_id=4094,
        ipv6_off=True,
    )
    assert links["vxlan-16777215"].local_ip == "192.0.2.1"
    # The host's bridges and their ports only switch: no IPv6 on them.
    assert all(links[name].ipv6_off for name in ("eth1.4094", "vxlan-16777215"))
    assert all(links[names.bridge(net["id"])].ipv6_off for net in (vlan, vxlan))
    assert "eth1" not in links  # a real NIC is only bound, for flat networks


def test_ports_of_other_hosts_and_unknown_physnets_are_not_realized() -> None:
    model = flat_lab()
    model["networks"][0]["provider:physical_network"] = "nowhere"
    state = compile_host(model, HOST)
    assert state.ports == {}
    assert state.dhcp == ()
    assert "physical network 'nowhere' is not configured" in state.problems[0]
    assert compile_host(flat_lab(), HostConfig.isolated("h3", prefix="t-")).ports == {}


def test_unbound_vm_port_is_bound_as_an_external_tap() -> None:
    model = flat_lab()
    model["instances"] = []
    vm_port = model["ports"][1]
    links = {link.name: link for link in compile_host(model, HOST).links}
    assert links[names.tap(vm_port["id"])].kind == "external"
    assert not links[names.tap(vm_port["id"])].ipv6_off  # a VM's tap is not ours to change


def trunk_lab() -> tuple[dict[str, Any], Resource, Resource]:
    """flat_lab's instance port as a trunk's parent, carrying a port of a vxlan network."""
    model = flat_lab()
    net = models.network("vxlan", segment=77)
    sub = models.subnet(net, "10.2.0.0/24")
    subport = models.port(net, sub, "10.2.0.9", device_owner="trunk:subport")
    parent = model["ports"][1]
    parent["trunk_details"] = {
        "trunk_id": "trunk-1",
        "sub_ports": [
            {
                "port_id": subport["id"],
                "segmentation_type": "vlan",
                "segmentation_id": 101,
                "mac_address": subport["mac_address"],
            }
        ],
    }
    model["networks"].append(net)
    model["subnets"].append(sub)
    model["ports"].append(subport)
    return model, parent, subport


def test_a_subport_is_a_vlan_of_its_parents_tap_and_of_the_instance_nic() -> None:
    model, parent, subport = trunk_lab()
    production = HostConfig("h1", physnets={"default": PhysnetConfig("eth1")}, vtep_ip="192.0.2.1")
    state = compile_host(model, production)
    links = {(link.netns, link.name): link for link in state.links}
    tap = names.tap(subport["id"])
    assert links[(None, tap)] == Link(
        None,
        tap,
        "vlan",
        master=names.bridge(subport["network_id"]),
        parent=names.tap(parent["id"]),
        vlan_id=101,
        ipv6_off=True,
    )
    vm = names.instance_netns(production, model["instances"][0]["id"])
    assert links[(vm, "eth0.101")] == Link(
        vm, "eth0.101", "vlan", parent="eth0", vlan_id=101, mac=subport["mac_address"]
    )
    assert state.ports[subport["id"]] == tap
    assert {(i.port_id, i.ifname) for i in state.instances} == {
        (parent["id"], "eth0"),
        (subport["id"], "eth0.101"),
    }
    # A VM's tap (not plugged by the agent) carries it too.
    model["instances"] = model["instances"][1:]
    links = {(link.netns, link.name): link for link in compile_host(model, production).links}
    assert links[(None, tap)].parent == names.tap(parent["id"])
    assert [name for netns, name in links if netns is not None and name.startswith("eth0")] == []


def test_without_8021q_a_subport_has_a_veth_of_its_own() -> None:
    model, parent, subport = trunk_lab()
    state = compile_host(model, HOST)
    links = {(link.netns, link.name): link for link in state.links}
    tap = names.tap(subport["id"])
    vm = names.instance_netns(HOST, model["instances"][0]["id"])
    assert links[(HOST.netns, tap)] == Link(
        HOST.netns,
        tap,
        "veth",
        master=names.bridge(subport["network_id"]),
        peer=VethPeer(vm, "eth0.101", mac=subport["mac_address"], mtu=1500),
        mtu=1500,
        ipv6_off=True,
    )
    assert (subport["id"], "eth0.101") in {(i.port_id, i.ifname) for i in state.instances}
    # Where the parent is not, neither is the subport, whatever its binding says.
    subport["binding:host_id"] = "h1"
    assert subport["id"] not in compile_host(model, HostConfig.isolated("h2", prefix="t-")).ports
    model["instances"] = model["instances"][1:]
    unplugged = compile_host(model, HOST)
    assert subport["id"] in unplugged.problems[0] and "8021q" in unplugged.problems[0]
    model["ports"].remove(parent)
    assert compile_host(model, HOST).ports[subport["id"]] == tap  # no trunk: a port bound here


def test_compile_is_independent_of_listing_order() -> None:
    model = flat_lab()
    shuffled = copy.deepcopy(model)
    rng = random.Random(4)
    for key in ("networks", "subnets", "ports", "security_groups", "instances"):
        rng.shuffle(shuffled[key])
    for sg in shuffled["security_groups"]:
        rng.shuffle(sg["security_group_rules"])
    assert compile_host(shuffled, HOST) == compile_host(model, HOST)


def test_incremental_compile_equals_full_compile() -> None:
    """Changes applied one by one to a model copy, as an agent following the change
    feed would, compile to exactly what a fresh snapshot of the end state compiles to."""
    model = flat_lab()
    net, sub = model["networks"][0], model["subnets"][0]
    sg = model["security_groups"][0]
    added = models.port(net, sub, "10.0.0.7", security_groups=[sg["id"]])
    vm = models.instance("new", "h1", added)
    rule = models.rule("ingress", "tcp", 22, 22)

    changes = [
        ("ports", "upsert", added),
        ("instances", "upsert", vm),
        (
            "security_groups",
            "upsert",
            {**sg, "security_group_rules": [*sg["security_group_rules"], rule]},
        ),
        ("ports", "delete", model["ports"][2]),
    ]
    incremental = copy.deepcopy(model)
    for collection, verb, resource in changes:
        rows = [r for r in incremental[collection] if r["id"] != resource["id"]]
        incremental[collection] = rows + ([copy.deepcopy(resource)] if verb == "upsert" else [])
        compile_host(incremental, HOST)  # every intermediate state compiles

    fresh = copy.deepcopy(model)
    fresh["ports"] = [model["ports"][0], model["ports"][1], added]
    fresh["instances"] = [*model["instances"], vm]
    fresh["security_groups"] = [{**sg, "security_group_rules": [*sg["security_group_rules"], rule]}]
    assert compile_host(incremental, HOST) == compile_host(fresh, HOST)


def test_the_dhcp_agent_host_decides_where_dhcp_is_served() -> None:
    """The feed says which host's DHCP agent serves a network; an administratively down DHCP
    port has its device down (its status turns DOWN)."""
    model = flat_lab()
    net, dhcp = model["networks"][0], model["ports"][0]
    dhcp["binding:host_id"] = ""
    assert len(compile_host(model, HOST).dhcp) == 1  # no schedule: a network node serves it
    net["dhcp_agent_host"] = "h2"
    assert compile_host(model, HOST).dhcp == ()
    net["dhcp_agent_host"] = ""  # scheduled nowhere
    assert compile_host(model, HOST).dhcp == ()
    net["dhcp_agent_host"] = "h1"
    dhcp["admin_state_up"] = False
    state = compile_host(model, HOST)
    assert len(state.dhcp) == 1
    [link] = [link for link in state.links if link.name == names.tap(dhcp["id"])]
    assert link.up is False and state.ports[dhcp["id"]] == link.name
