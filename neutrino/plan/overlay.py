"""L2 population: where a VXLAN network's frames go, from the ports' bindings.

As Neutron's l2population driver programs the Linux bridge agent, a VXLAN
device learns nothing (no multicast group, no learning); its forwarding
database is written from the model. For each other host that has ports of the
network, one `00:00:00:00:00:00 dst VTEP` entry: broadcast and unknown frames
are flooded to those hosts, and to no other. For each port bound to another
host, its MAC `dst` that host's VTEP. A host's VTEP is the `tunneling_ip` its
agent reports (the feed's `vxlan_endpoints`); a host that reported none is no
peer. When a port moves or goes, only its entries change.

The ARP responder (Neutron's `arp_responder`): each VXLAN device has `proxy`
set, and one permanent neighbour per IPv4 fixed IP of each port bound to
another host, to the port's MAC; the device answers ARP requests for them
itself, and drops every other ARP frame sent to it, so no ARP crosses the
overlay. As in Neutron, only fixed IPs have entries: an address that lives only
in a port's allowed address pairs (a VIP moved by VRRP) is not answered from
another host.
"""

from __future__ import annotations

from collections.abc import Iterable

from neutrino.plan import names
from neutrino.plan.host import HostConfig
from neutrino.plan.state import FdbEntry, ProxyNeighbour, Resource

FLOOD = "00:00:00:00:00:00"


def _remote_ports(
    host: HostConfig,
    networks: Iterable[Resource],
    ports: Iterable[Resource],
    endpoints: Iterable[Resource],
) -> Iterable[tuple[str, str, Resource]]:
    """(VXLAN device, VTEP, port) of each port of `networks` bound to another known VTEP."""
    vteps = {e["host"]: e["ip_address"] for e in endpoints if e.get("ip_address")}
    devices = {n["id"]: names.vxlan(int(n["provider:segmentation_id"])) for n in networks}
    for port in sorted(ports, key=lambda p: p["id"]):
        device = devices.get(port["network_id"])
        bound = port.get("binding:host_id") or ""
        vtep = vteps.get(bound)
        if device is None or bound == host.name or vtep is None or vtep == host.vtep_ip:
            continue
        yield device, vtep, port


def compile_fdb(
    host: HostConfig,
    networks: Iterable[Resource],
    ports: Iterable[Resource],
    endpoints: Iterable[Resource],
) -> list[FdbEntry]:
    """The FDB entries of this host's VXLAN devices (`networks`: the VXLAN networks realized
    here) toward the VTEPs of the other hosts with ports on them."""
    entries: set[FdbEntry] = set()
    unicast: dict[tuple[str, str], str] = {}  # (device, MAC) -> VTEP
    for device, vtep, port in _remote_ports(host, networks, ports, endpoints):
        entries.add(FdbEntry(host.netns, device, FLOOD, vtep))
        unicast.setdefault((device, port["mac_address"]), vtep)
    entries |= {FdbEntry(host.netns, d, mac, vtep) for (d, mac), vtep in unicast.items()}
    return sorted(entries, key=lambda e: (e.device, e.mac, e.dst))


def compile_arp(
    host: HostConfig,
    networks: Iterable[Resource],
    ports: Iterable[Resource],
    endpoints: Iterable[Resource],
) -> list[ProxyNeighbour]:
    """The ARP responder's entries of this host's VXLAN devices: the IPv4 fixed IPs of the
    ports bound to other hosts (the first port by id, should two claim one address)."""
    entries: dict[tuple[str, str], str] = {}  # (device, IP) -> MAC
    for device, _, port in _remote_ports(host, networks, ports, endpoints):
        for ip in port.get("fixed_ips", []):
            if ":" not in ip["ip_address"]:
                entries.setdefault((device, ip["ip_address"]), port["mac_address"])
    return [
        ProxyNeighbour(host.netns, device, ip, mac) for (device, ip), mac in sorted(entries.items())
    ]
