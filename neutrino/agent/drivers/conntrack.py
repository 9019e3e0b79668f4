"""Connection tracking entries in a namespace: deleted through netlink, listed by the conntrack tool.

NAT decides once per connection: later packets follow the conntrack entry,
so when a floating IP goes or moves its entries must go too, or traffic keeps
flowing on the old mapping. An entry involves a floating IP when it is the
original destination (inbound connections to it, hairpin included) or the
reply destination (outbound connections source-NATed to it): `conntrack -D
-d FIP` and `-D -q FIP`, without a process per call.
"""

from __future__ import annotations

import subprocess

from pyroute2 import Conntrack

from neutrino.agent.drivers.netns import NETNS_DIR


class ConntrackTable:
    """The entries of the namespace this is made in (a netlink socket: use it from one thread)."""

    def __init__(self) -> None:
        self._socket = Conntrack()

    def forget_address(self, address: str) -> int:
        """Delete every entry to `address` or NATed to it; how many there were."""
        doomed = [entry.tuple_orig for entry in self._socket.dump_entries()
                  if address in (entry.tuple_orig.daddr, entry.tuple_reply.daddr)]
        for tuple_orig in doomed:
            self._socket.entry("del", tuple_orig=tuple_orig)
        return len(doomed)

    def close(self) -> None:
        self._socket.close()


def _conntrack(netns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net={NETNS_DIR / netns}", "conntrack", *args],
                          capture_output=True, text=True, timeout=10)


def entries(netns: str, address: str | None = None) -> list[str]:
    """The entries of `netns` (those involving `address`, when given), as conntrack prints them."""
    if address is None:
        return _lines(_conntrack(netns, "-L", "-f", "ipv4").stdout)
    found: dict[str, None] = {}
    for selector in ("-s", "-d", "-r", "-q"):
        found.update(dict.fromkeys(_lines(_conntrack(netns, "-L", "-f", "ipv4", selector, address).stdout)))
    return list(found)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]
