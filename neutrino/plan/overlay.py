"""L2 population: where a VXLAN network's frames go, from the ports' bindings.

As Neutron's l2population driver programs the Linux bridge agent, a VXLAN
device learns nothing (no multicast group, no learning); its forwarding
database is written from the model. For each other host that has ports of the
network, one `00:00:00:00:00:00 dst VTEP` entry: broadcast and unknown frames
are flooded to those hosts, and to no other. For each port bound to another
host, its MAC `dst` that host's VTEP. A host's VTEP is the `tunneling_ip` its
agent reports (the feed's `vxlan_endpoints`); a host that reported none is no
peer. When a port moves or goes, only its entries change.
"""

from __future__ import annotations

from collections.abc import Iterable

from neutrino.plan import names
from neutrino.plan.host import HostConfig
from neutrino.plan.state import FdbEntry, Resource

FLOOD = "00:00:00:00:00:00"


def compile_fdb(
    host: HostConfig,
    networks: Iterable[Resource],
    ports: Iterable[Resource],
    endpoints: Iterable[Resource],
) -> list[FdbEntry]:
    """The FDB entries of this host's VXLAN devices (`networks`: the VXLAN networks realized
    here) toward the VTEPs of the other hosts with ports on them."""
    vteps = {e["host"]: e["ip_address"] for e in endpoints if e.get("ip_address")}
    devices = {n["id"]: names.vxlan(int(n["provider:segmentation_id"])) for n in networks}
    entries: set[FdbEntry] = set()
    unicast: dict[tuple[str, str], str] = {}  # (device, MAC) -> VTEP
    for port in sorted(ports, key=lambda p: p["id"]):
        device = devices.get(port["network_id"])
        bound = port.get("binding:host_id") or ""
        vtep = vteps.get(bound)
        if device is None or bound == host.name or vtep is None or vtep == host.vtep_ip:
            continue
        entries.add(FdbEntry(host.netns, device, FLOOD, vtep))
        unicast.setdefault((device, port["mac_address"]), vtep)
    entries |= {FdbEntry(host.netns, d, mac, vtep) for (d, mac), vtep in unicast.items()}
    return sorted(entries, key=lambda e: (e.device, e.mac, e.dst))
