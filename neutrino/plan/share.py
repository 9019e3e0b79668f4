"""share: the part of the model one host needs, so that its agent holds no more than that.

For every configuration of a host named `host`,

    compile_host(share(model, host), config) == compile_host(model, config)

The server knows a host's name, not its physical networks, whether it serves
what no scheduler placed (`serves_dhcp`) nor its zone: the share assumes the
most, so it holds what any host of that name could realize (a DHCP port,
router or load balancer bound to no host is in every host's share).

A share is what a few anchors reach (`anchors`, computed from the whole model):

    networks         realized here: their ports and subnets (L2 population, DHCP hosts, ARP)
    edges            networks whose body and subnets only are needed: external ones (the
                     outside's upstream routers) and those of the share's other ports
    ports            trunk parents of subports in the share (a subport goes where they go)
    routers          living here: their floating IPs and port forwardings
    security_groups  of the ports here; `remote_groups`: their rules' remote groups, whose
                     members (on any network) fill ipsets; `address_groups` likewise
    qos_policies     of the ports and networks here
    loadbalancers    whose VIP port is here, or (ACTIVE_STANDBY) an amphora's VRRP port

Whether a resource is in the share is a function of its own body and the anchors
(`belongs`): that is what lets the change feed tell a host what entered or left its
share without remembering what it sent (services/feed). Instances belong to their
host; VTEPs and metering labels (few) to every host.
"""

from __future__ import annotations

from typing import Any

from neutrino.plan.dhcp import DHCP_AGENT_HOST, DHCP_OWNER
from neutrino.plan.host import HostConfig
from neutrino.plan.routers import ROUTER_OWNERS, local_routers, placed_here
from neutrino.plan.state import Resource

Anchors = dict[str, frozenset[str]]

COLLECTIONS = (
    "networks",
    "subnets",
    "ports",
    "security_groups",
    "address_groups",
    "routers",
    "floatingips",
    "instances",
    "loadbalancers",
    "qos_policies",
    "metering_labels",
    "vxlan_endpoints",
)
ANCHORS = (
    "networks",
    "edges",
    "ports",
    "routers",
    "security_groups",
    "remote_groups",
    "address_groups",
    "qos_policies",
    "loadbalancers",
)


def share(model: dict[str, Any], host: str) -> dict[str, Any]:
    """The sub-model `host` needs (see the module's docstring)."""
    return cut(model, host, anchors(model, host))


def cut(model: dict[str, Any], host: str, found: Anchors) -> dict[str, Any]:
    """The resources of `model` that `found` (the host's anchors) reach."""
    return {
        "revision": model.get("revision", 0),
        **{
            key: [item for item in model.get(key, []) if belongs(key, item, host, found)]
            for key in COLLECTIONS
        },
    }


def belongs(key: str, item: Resource, host: str, found: Anchors) -> bool:
    """Whether `item` of the collection `key` is in the share of `host`, given its anchors."""
    if key == "networks":
        return item["id"] in found["networks"] or item["id"] in found["edges"]
    if key == "subnets":
        return item["network_id"] in found["networks"] or item["network_id"] in found["edges"]
    if key == "ports":
        return _port_belongs(item, found)
    if key == "floatingips":
        return item.get("router_id") in found["routers"]
    if key == "instances":
        return item.get("host") == host
    if key in ("metering_labels", "vxlan_endpoints"):
        return True
    return item["id"] in found[key]


def _port_belongs(port: Resource, found: Anchors) -> bool:
    return (
        port["network_id"] in found["networks"]
        or port["id"] in found["ports"]
        or not found["remote_groups"].isdisjoint(port.get("security_groups") or [])
    )


def anchors(model: dict[str, Any], host: str) -> Anchors:
    """The anchors of the share of `host` in `model`."""
    anywhere = HostConfig(name=host, serves_dhcp=True)  # the most a host of this name may do
    networks = {n["id"]: n for n in model.get("networks", [])}
    subnets = {s["id"]: s for s in model.get("subnets", [])}
    ports = {p["id"]: p for p in model.get("ports", [])}

    subports = {
        sub["port_id"]
        for parent in ports.values()
        for sub in (parent.get("trunk_details") or {}).get("sub_ports", [])
    }

    def bound(port: Resource) -> set[str]:
        return {port.get("binding:host_id") or ""} - {""}

    def may_be_here(port: Resource) -> bool:
        """As compile_host places a port (its instance, trunk and load balancer aside)."""
        owner = port.get("device_owner")
        if owner == DHCP_OWNER:
            scheduled = networks.get(port["network_id"], {}).get(DHCP_AGENT_HOST)
            return placed_here(scheduled, bound(port), anywhere)
        return (
            owner not in ROUTER_OWNERS
            and port["id"] not in subports  # they go where their parents go (below)
            and port.get("binding:host_id") == host
        )

    here = {p["id"] for p in ports.values() if may_be_here(p)}
    here |= {
        port_id
        for instance in model.get("instances", [])
        if instance.get("host") == host
        for port_id in instance.get("port_ids", [])
        if port_id in ports
    }
    routers = set(local_routers(model.get("routers", []), ports.values(), anywhere))
    here |= {
        p["id"]
        for p in ports.values()
        if p.get("device_owner") in ROUTER_OWNERS and p.get("device_id") in routers
    }
    balancers, vip_networks = set(), set()
    for lb in model.get("loadbalancers", []):
        # ACTIVE_STANDBY: the amphorae's VRRP ports carry the VIP, its own port is plugged
        # nowhere.
        amphorae = lb.get("amphorae") or []
        port_ids = [a.get("vrrp_port_id") for a in amphorae] or [lb.get("vip_port_id")]
        mine = [
            i for i in port_ids if i in ports and (ports[i].get("binding:host_id") or host) == host
        ]
        if mine:
            balancers.add(lb["id"])
            here |= set(mine)
            vip_networks.add(subnets.get(lb.get("vip_subnet_id"), {}).get("network_id"))
    here |= {  # a subport goes where its parent does
        sub["port_id"]
        for parent_id in list(here)
        for sub in (ports[parent_id].get("trunk_details") or {}).get("sub_ports", [])
        if sub["port_id"] in ports
    }

    local = [ports[i] for i in here]
    groups = {g for p in local for g in p.get("security_groups") or []}
    rules = [
        rule
        for sg in model.get("security_groups", [])
        if sg["id"] in groups
        for rule in sg.get("security_group_rules", [])
    ]
    found: Anchors = {
        "networks": frozenset({p["network_id"] for p in local} | vip_networks - {None}),
        "routers": frozenset(routers),
        "security_groups": frozenset(groups),
        "remote_groups": frozenset(r["remote_group_id"] for r in rules if r.get("remote_group_id")),
        "address_groups": frozenset(
            r["remote_address_group_id"] for r in rules if r.get("remote_address_group_id")
        ),
        "loadbalancers": frozenset(balancers),
        "edges": frozenset(),
        "ports": frozenset(),
    }
    found["qos_policies"] = frozenset(
        {p.get("qos_policy_id") for p in local}
        | {networks.get(n, {}).get("qos_policy_id") for n in found["networks"]}
    ) - {None}
    found["ports"] = frozenset(  # trunk parents of the share's subports
        parent["id"]
        for parent in ports.values()
        for sub in (parent.get("trunk_details") or {}).get("sub_ports", [])
        if sub["port_id"] in ports and _port_belongs(ports[sub["port_id"]], found)
    )
    found["edges"] = (
        frozenset(
            {n["id"] for n in networks.values() if n.get("router:external")}
            | {p["network_id"] for p in ports.values() if _port_belongs(p, found)}
        )
        - found["networks"]
    )
    return found
