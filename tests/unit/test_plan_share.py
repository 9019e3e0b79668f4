"""plan.share: a host's share of the model compiles, for every configuration of that host, to
exactly what the whole model compiles to, and holds no ports of networks the host has nothing
on."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from neutrino.lab import models
from neutrino.plan import HostConfig, compile_host, names
from neutrino.plan.share import anchors, share
from neutrino.plan.state import Resource

HOSTS = ("h1", "h2", "h3")
VTEPS = {"h1": "192.0.2.1", "h2": "192.0.2.2", "h3": "192.0.2.3"}
PHYSNETS = ("default", "other")


def configs(name: str) -> list[HostConfig]:
    """The configurations a host of this name may have: the server knows none of them."""
    full = HostConfig.isolated(name, prefix="s-", physnets=PHYSNETS, vtep_ip=VTEPS[name])
    return [
        full,
        dataclasses.replace(full, serves_dhcp=False),
        dataclasses.replace(full, availability_zone="az2", trunk_mode="8021q"),
        HostConfig.isolated(name, prefix="s-", vtep_ip=VTEPS[name]),
    ]


def multihost(rng: random.Random) -> dict[str, Any]:
    """Networks of every kind with ports on three hosts or none, DHCP and routers scheduled or
    not, instances, trunks, floating IPs and port forwardings, groups with remote groups and
    address groups, QoS policies and load balancers."""
    hosts = ["", "", *HOSTS, "h1"]  # h1 busier; "" unbound

    def scheduled() -> dict[str, str]:
        return rng.choice([{}, {"_": ""}, *({"_": h} for h in HOSTS)])

    address_groups = [
        {"id": f"ag{i}", "addresses": [f"198.51.100.{i}/32", f"2001:db8::{i}/128"]}
        for i in range(2)
    ]
    qos_policies = [
        {"id": f"qos{i}", "rules": [{"type": "dscp_marking", "dscp_mark": 8 * (i + 1)}]}
        for i in range(2)
    ]
    groups = [models.security_group(stateful=rng.random() < 0.8) for _ in range(4)]
    for sg in groups:
        for _ in range(rng.randint(0, 3)):
            remote = rng.choice([None, None, rng.choice(groups)["id"]])
            rule = {**models.rule("ingress", "tcp", 22, 22, remote_group_id=remote)}
            if remote is None and rng.random() < 0.4:
                rule["remote_address_group_id"] = rng.choice(address_groups)["id"]
            sg["security_group_rules"].append({**rule, "security_group_id": sg["id"]})

    networks: list[Resource] = []
    subnets: list[Resource] = []
    ports: list[Resource] = []
    instances: list[Resource] = []
    for index in range(rng.randint(2, 6)):
        kind = rng.choice(["flat", "vlan", "vxlan", "vxlan"])
        net = models.network(
            kind,
            None if kind == "flat" else 100 + index,
            physnet=rng.choice(PHYSNETS),
            qos_policy_id=rng.choice([None, "qos0", "qos1"]),
            dhcp_domain="openstacklocal",
        )
        if at := scheduled():
            net["dhcp_agent_host"] = at["_"]
        sub = models.subnet(net, f"10.{index}.0.0/24")
        networks.append(net)
        subnets.append(sub)
        if rng.random() < 0.7:
            ports.append(models.dhcp_port(net, sub, f"10.{index}.0.2", host=rng.choice(hosts)))
        for number in range(rng.randint(0, 6)):
            port = models.port(
                net,
                sub,
                f"10.{index}.0.{10 + number}",
                host=rng.choice(hosts),
                security_groups=[g["id"] for g in rng.sample(groups, rng.randint(0, 2))],
                port_security_enabled=rng.random() < 0.9,
                qos_policy_id=rng.choice([None, None, "qos1"]),
            )
            if rng.random() < 0.2:
                port["allowed_address_pairs"] = [{"ip_address": f"10.{index}.9.0/24"}]
            ports.append(port)
            if port["binding:host_id"] and rng.random() < 0.5:
                instances.append(
                    models.instance(f"vm{len(instances)}", port["binding:host_id"], port)
                )
    vm_ports = [p for p in ports if p["device_owner"] == "compute:nova"]
    for parent in rng.sample(vm_ports, min(len(vm_ports), 2)):
        net_index = rng.randrange(len(networks))
        subport = models.port(
            networks[net_index],
            subnets[net_index],
            f"10.{net_index}.0.{200 + len(ports) % 50}",
            host=rng.choice([parent["binding:host_id"], *hosts]),  # as bound, or not yet
            device_owner="trunk:subport",
            security_groups=[groups[0]["id"]],
        )
        parent["trunk_details"] = {
            "trunk_id": f"trunk-{parent['id']}",
            "sub_ports": [
                {
                    "port_id": subport["id"],
                    "segmentation_type": "vlan",
                    "segmentation_id": 300 + len(ports),
                    "mac_address": subport["mac_address"],
                }
            ],
        }
        ports.append(subport)

    ext = models.network("flat", physnet="default", **{"router:external": True})
    ext_sub = models.subnet(ext, "203.0.113.0/24")
    networks.append(ext)
    subnets.append(ext_sub)
    routers: list[Resource] = []
    floatingips: list[Resource] = []
    for index in range(rng.randint(0, 3)):
        router = models.router(project_id=rng.choice(["p1", "p2"]))
        if at := scheduled():
            router["l3_agent_host"] = at["_"]
        routers.append(router)
        bound = rng.choice(hosts)
        for net_index in rng.sample(range(len(networks) - 1), rng.randint(0, 2)):
            interface = models.router_interface(router, networks[net_index], subnets[net_index])
            interface["binding:host_id"] = bound
            ports.append(interface)
            targets = [p for p in ports if p["network_id"] == networks[net_index]["id"]]
            if rng.random() < 0.7:
                gateway = models.router_gateway(router, ext, ext_sub, f"203.0.113.{10 + index}")
                gateway["binding:host_id"] = bound
                ports.append(gateway)
                for target in rng.sample(targets, min(len(targets), 2)):
                    floatingips.append(
                        models.floatingip(
                            f"203.0.113.{100 + len(floatingips)}", ext, router, target
                        )
                    )
                forward = models.floatingip(f"203.0.113.{200 + len(floatingips)}", ext)
                forward["router_id"] = router["id"]
                forward["port_forwardings"] = [
                    {
                        "protocol": "tcp",
                        "external_port_range": "2222:2222",
                        "internal_port_range": "22:22",
                        "internal_ip_address": targets[0]["fixed_ips"][0]["ip_address"],
                    }
                ]
                floatingips.append(forward)

    def octavia_port(net_index: int, last_byte: int) -> Resource:
        made = models.port(
            networks[net_index],
            subnets[net_index],
            f"10.{net_index}.0.{last_byte}",
            host=rng.choice(hosts),
            device_owner="Octavia",
        )
        ports.append(made)
        return made

    loadbalancers = []
    for index in range(rng.randint(0, 2)):
        net_index = rng.randrange(len(networks) - 1)
        vip = octavia_port(net_index, 150 + index)
        amphorae = []
        if rng.random() < 0.5:  # ACTIVE_STANDBY: a VRRP port for each of two amphorae
            for role in ("MASTER", "BACKUP"):
                vrrp = octavia_port(net_index, 160 + 2 * index + len(amphorae))
                amphorae.append(
                    {
                        "id": f"amphora-{index}-{role}",
                        "role": role,
                        "vrrp_port_id": vrrp["id"],
                        "vrrp_ip": vrrp["fixed_ips"][0]["ip_address"],
                    }
                )
        loadbalancers.append(
            {
                "id": f"lb{index}",
                "amphorae": amphorae,
                "vip_address": vip["fixed_ips"][0]["ip_address"],
                "vip_port_id": vip["id"],
                "vip_subnet_id": subnets[net_index]["id"],
                "revision": 1,
                "provisioning_status": "ACTIVE",
                "availability_zone_data": rng.choice([{}, {"compute_zone": "az2"}]),
                "listeners": [],
                "pools": [],
            }
        )
    return models.snapshot(
        networks=networks,
        subnets=subnets,
        ports=ports,
        security_groups=groups,
        address_groups=address_groups,
        routers=routers,
        floatingips=floatingips,
        instances=instances,
        loadbalancers=loadbalancers,
        qos_policies=qos_policies,
        metering_labels=[{"id": "label", "shared": True, "project_id": "p1", "rules": []}],
        vxlan_endpoints=[{"host": h, "ip_address": ip} for h, ip in VTEPS.items()],
    )


@settings(max_examples=30, deadline=None)
@given(st.randoms(use_true_random=False))
def test_a_share_compiles_as_the_whole_model_for_every_configuration(rng: random.Random) -> None:
    model = multihost(rng)
    for name in HOSTS:
        own = share(model, name)
        for config in configs(name):
            assert compile_host(own, config) == compile_host(model, config)


@settings(max_examples=15, deadline=None)
@given(st.randoms(use_true_random=False))
def test_a_share_has_no_ports_of_networks_the_host_has_nothing_on(rng: random.Random) -> None:
    """Beside the networks it realizes, a share holds only the ports that fill its remote
    groups and the parents of its subports."""
    model = multihost(rng)
    for name in HOSTS:
        realized = {
            network["id"]
            for network in model["networks"]
            for config in configs(name)
            if names.bridge(network["id"])
            in {link.name for link in compile_host(model, config).links}
        }
        found = anchors(model, name)
        for port in share(model, name)["ports"]:
            assert (
                port["network_id"] in realized
                or not found["remote_groups"].isdisjoint(port["security_groups"])
                or port["id"] in found["ports"]
            ), port


def test_a_host_with_nothing_on_a_network_gets_none_of_it() -> None:
    mine, theirs = models.network("vxlan", 10), models.network("vxlan", 11)
    mine_sub, theirs_sub = models.subnet(mine, "10.0.0.0/24"), models.subnet(theirs, "10.1.0.0/24")
    sg = models.security_group(models.rule("ingress"))
    model = models.snapshot(
        networks=[mine, theirs],
        subnets=[mine_sub, theirs_sub],
        ports=[
            models.port(mine, mine_sub, "10.0.0.5", host="h1", security_groups=[sg["id"]]),
            models.port(mine, mine_sub, "10.0.0.6", host="h2"),
            models.port(theirs, theirs_sub, "10.1.0.5", host="h2"),
            models.dhcp_port(theirs, theirs_sub, "10.1.0.2", host="h2"),
        ],
        security_groups=[sg],
    )
    theirs["dhcp_agent_host"] = "h2"
    own = share(model, "h1")
    assert [p["fixed_ips"][0]["ip_address"] for p in own["ports"]] == ["10.0.0.5", "10.0.0.6"]
    assert [n["id"] for n in own["networks"]] == [mine["id"]]
    assert [s["id"] for s in own["subnets"]] == [mine_sub["id"]]
    assert own["security_groups"] == [sg]
