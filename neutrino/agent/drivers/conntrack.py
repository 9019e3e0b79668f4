"""Connection tracking entries in a namespace, through the conntrack tool.

NAT decides once per connection: later packets follow the conntrack entry,
so when a floating IP goes or moves its entries must go too, or traffic keeps
flowing on the old mapping. `-d` matches the original destination (inbound
connections to the floating IP, hairpin included), `-q` the reply destination
(outbound connections that were source-NATed to it).
"""

from __future__ import annotations

import subprocess

from neutrino.agent.drivers.netns import NETNS_DIR


def _conntrack(netns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net={NETNS_DIR / netns}", "conntrack", *args],
                          capture_output=True, text=True, timeout=10)


def forget_address(netns: str, address: str) -> None:
    """Delete every entry to `address` or NATed to it (none found is not an error)."""
    for selector in ("-d", "-q"):
        _conntrack(netns, "-D", "-f", "ipv4", selector, address)


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
