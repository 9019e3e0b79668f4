"""Connection tracking entries in a namespace: deleted and listed by the conntrack tool.

NAT decides once per connection: later packets follow the conntrack entry,
so when a floating IP goes or moves its entries must go too, or traffic keeps
flowing on the old mapping. An entry involves a floating IP when it is the
original destination (inbound connections to it, hairpin included) or the
reply destination (outbound connections source-NATed to it): `conntrack -D
-d FIP` and `-D -q FIP`. For a few addresses (the usual change: one) the
tool finds and deletes them in C for a constant ~10 ms, where decoding each
entry through pyroute2 costs ~0.5 ms and a busy floating IP has hundreds
(closed connections linger in TIME_WAIT). For many at once (a gateway
removed) one pass over the whole table costs less than two processes each.
"""

from __future__ import annotations

import re
import subprocess

from pyroute2 import Conntrack

from neutrino.agent.drivers.netns import NETNS_DIR

DELETED = re.compile(r"(\d+) flow entries have been deleted")
FEW = 8  # addresses forgotten by the tool, in parallel; more, by one pass over the table


def forget_addresses(addresses: list[str]) -> int:
    """Delete every entry to one of `addresses` or NATed to it; how many there were.

    In the calling thread's namespace (where a process forked from it lives too).
    """
    if len(addresses) > FEW:
        return _forget_in_one_pass(set(addresses))
    deletions = [subprocess.Popen(["conntrack", "-D", "-f", "ipv4", selector, address], text=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for address in addresses for selector in ("-d", "-q")]
    return sum(_deleted(deletion.communicate(timeout=10)[1]) for deletion in deletions)


def _forget_in_one_pass(addresses: set[str]) -> int:
    with Conntrack() as table:
        doomed = [entry.tuple_orig for entry in table.dump_entries()
                  if entry.tuple_orig.daddr in addresses or entry.tuple_reply.daddr in addresses]
        for tuple_orig in doomed:
            table.entry("del", tuple_orig=tuple_orig)
    return len(doomed)


def _deleted(message: str) -> int:
    found = DELETED.search(message)
    if found is None:
        raise RuntimeError(f"conntrack -D: {message.strip()}")
    return int(found[1])


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
