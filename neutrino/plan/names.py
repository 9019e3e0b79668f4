"""Deterministic kernel object names, derived from resource IDs (links: at most 15 chars)."""

from __future__ import annotations

from typing import Any

from neutrino.plan.host import HostConfig

IFNAMSIZ = 15
# The device owner of the ports neutrino-cni makes for containers: they go with their device.
CNI_OWNER = "compute:neutrino-cni"
# Namespaces this agent creates are named <ns_prefix><kind><id>; it owns all of them.
NAMESPACE_KINDS = ("qdhcp-", "ninst-", "qrouter-", "qlbaas-")


def bridge(network_id: str) -> str:
    return f"brq{network_id[:11]}"


def tap(port_id: str) -> str:
    return f"tap{port_id[:11]}"


def device(port: dict[str, Any]) -> str:
    """The host's device a plain port is plugged as: its binding profile's "device" (a VM's
    tap, a container's veth, made by someone else), else its tap (Nova's and os-vif's name)."""
    return str((port.get("binding:profile") or {}).get("device") or tap(port["id"]))


def guest_vlan(nic: str, vlan_id: int) -> str:
    """A VLAN of an instance's NIC, named as `ip link add link eth0 name eth0.101` names it."""
    return f"{nic}.{vlan_id}"


def ifb(port_id: str) -> str:
    """Where a port's tap sends what the instance sends, to be shaped (plan.qos)."""
    return f"ifb{port_id[:11]}"


def dhcp_interface(port_id: str) -> str:
    return f"ns-{port_id[:11]}"


def vxlan(vni: int) -> str:
    return f"vxlan-{vni}"


def vlan(interface: str, vlan_id: int) -> str:
    return f"{interface[:10]}.{vlan_id}"


def router_interface(port_id: str) -> str:
    return f"qr-{port_id[:11]}"


def router_gateway(port_id: str) -> str:
    return f"qg-{port_id[:11]}"


def router_netns(host: HostConfig, router_id: str) -> str:
    return f"{host.ns_prefix}qrouter-{router_id}"


def dhcp_netns(host: HostConfig, network_id: str) -> str:
    return f"{host.ns_prefix}qdhcp-{network_id}"


def instance_netns(host: HostConfig, instance_id: str) -> str:
    return f"{host.ns_prefix}ninst-{instance_id[:8]}"


def outside_bridge(vlan_id: int | None) -> str:
    return "phys" if vlan_id is None else f"vlan{vlan_id}"


def outside_end(host: HostConfig, vlan_id: int | None) -> str:
    """The far end of a host's NIC, in the outside namespace shared by all hosts."""
    return f"x{host.tag}" if vlan_id is None else f"x{host.tag}.{vlan_id}"
