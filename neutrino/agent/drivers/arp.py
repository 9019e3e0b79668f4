"""The ARP responder of VXLAN devices (plan.overlay), through netlink.

Its entries are the permanent IPv4 neighbours of the VXLAN devices; whatever
else their neighbour tables hold is the kernel's. An entry is replaced in
place when its port's MAC changes, added and deleted one by one otherwise.
"""

from __future__ import annotations

import socket

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import ndmsg

from neutrino.plan.state import ProxyNeighbour

PERMANENT = ndmsg.states["permanent"]


def observe(sock: IPRoute, netns: str | None, devices: dict[int, str]) -> set[ProxyNeighbour]:
    """The permanent IPv4 neighbours of `devices` (ifindex -> name)."""
    found = set()
    for msg in sock.get_neighbours(family=socket.AF_INET):
        device = devices.get(msg["ifindex"])
        if device is not None and msg["state"] & PERMANENT:
            found.add(ProxyNeighbour(netns, device, msg.get("NDA_DST"), msg.get("NDA_LLADDR")))
    return found


def apply(
    sock: IPRoute,
    wanted: set[ProxyNeighbour],
    present: set[ProxyNeighbour],
    index: dict[str, int],
) -> list[str]:
    """Make `present` `wanted`; what it changed."""
    done = []
    kept = {(e.device, e.ip) for e in wanted}
    for entry in sorted(present - wanted, key=str):
        if (entry.device, entry.ip) in kept:
            continue  # its MAC changed: replaced below
        sock.neigh("del", ifindex=index[entry.device], dst=entry.ip, lladdr=entry.mac)
        done.append(f"delete neighbour {entry.device} {entry.ip}")
    for entry in sorted(wanted - present, key=str):
        sock.neigh(
            "replace",
            ifindex=index[entry.device],
            dst=entry.ip,
            lladdr=entry.mac,
            state=PERMANENT,
            family=socket.AF_INET,
        )
        done.append(f"replace neighbour {entry.device} {entry.ip} {entry.mac}")
    return done
