"""The forwarding databases of VXLAN devices (L2 population, plan.overlay), through netlink.

Only entries with a remote (`dst`) are the VXLAN device's own; the others a
dump shows are the bridge's (learned MACs, its ports' own addresses), which
are left alone. A unicast entry is replaced in place when its port moves; the
flood entries (the all-zero MAC, one per VTEP) are appended and deleted one by
one, so the frames of other hosts keep flowing meanwhile.
"""

from __future__ import annotations

import socket

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import ndmsg

from neutrino.plan.overlay import FLOOD
from neutrino.plan.state import FdbEntry

STATIC = ndmsg.states["noarp"] | ndmsg.states["permanent"]
SELF = ndmsg.flags["self"]


def observe(sock: IPRoute, netns: str | None, devices: dict[int, str]) -> set[FdbEntry]:
    """The remote entries of `devices` (ifindex -> name)."""
    found = set()
    for msg in sock.get_neighbours(family=socket.AF_BRIDGE):
        device, dst = devices.get(msg["ifindex"]), msg.get("NDA_DST")
        if device is not None and dst is not None:
            found.add(FdbEntry(netns, device, msg.get("NDA_LLADDR"), dst))
    return found


def apply(
    sock: IPRoute, wanted: set[FdbEntry], present: set[FdbEntry], index: dict[str, int]
) -> list[str]:
    """Make `present` `wanted`; what it changed."""
    done = []
    unicast = {(e.device, e.mac) for e in wanted if e.mac != FLOOD}
    for entry in sorted(present - wanted, key=str):
        if entry.mac != FLOOD and (entry.device, entry.mac) in unicast:
            continue  # moved: replaced below
        sock.fdb("del", ifindex=index[entry.device], lladdr=entry.mac, dst=entry.dst)
        done.append(f"delete fdb {entry.device} {entry.mac} {entry.dst}")
    for entry in sorted(wanted - present, key=str):
        command = "append" if entry.mac == FLOOD else "replace"
        sock.fdb(
            command,
            ifindex=index[entry.device],
            lladdr=entry.mac,
            dst=entry.dst,
            state=STATIC,
            flags=SELF,
        )
        done.append(f"{command} fdb {entry.device} {entry.mac} {entry.dst}")
    return done
