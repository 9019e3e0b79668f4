"""Connection tracking entries in a namespace: deleted and listed.

NAT decides once per connection: later packets follow the conntrack entry,
so when a floating IP goes or moves, the connections of its old mapping
(floating, fixed) must go too, or traffic keeps flowing on it. They are the
entries whose original destination is the floating IP and whose replies come
from the fixed IP (inbound, hairpin included), and those from the fixed IP
whose replies go to the floating IP (outbound, source-NATed to it):
`conntrack -D -d FIP -r FIXED` and `-D -s FIXED -q FIP`. Connections that the
new mapping took meanwhile stay. For a few mappings (the usual change: one)
the kernel deletes them itself, given the same selectors as a filter on a
flush (nfnetlink.forget_connections: a fraction of a millisecond); a kernel
that refuses a filter there (EOPNOTSUPP: Linux 6.8 and older) leaves it to
the tool, which finds and deletes them in C for a constant ~10 ms, where
decoding each entry through pyroute2 costs ~0.5 ms and a busy floating IP has
hundreds (closed connections linger in TIME_WAIT). For many at once (a
gateway removed) one pass over the whole table costs less than two requests
each.
"""

from __future__ import annotations

import errno
import re
import subprocess

from pyroute2 import Conntrack

from neutrino.agent.drivers.netns import NETNS_DIR
from neutrino.agent.drivers.nfnetlink import forget_connections

DELETED = re.compile(r"(\d+) flow entries have been deleted")
REPLY_SOURCE = re.compile(r"src=(\S+) dst=\S+ sport=(\d+)")
MARK = re.compile(r" mark=(\d+)")
FEW = 8  # mappings forgotten one by one; more, by one pass over the table


def forget_mappings(mappings: list[tuple[str, str]]) -> None:
    """Delete the connections of these (floating, fixed) NAT mappings.

    In the calling thread's namespace (where a process forked from it lives too).
    """
    if len(mappings) > FEW:
        _forget_in_one_pass(set(mappings))
        return
    try:
        forget_connections(mappings)
    except OSError as error:
        if error.errno != errno.EOPNOTSUPP:
            raise
        forget_by_tool(mappings)


def forget_by_tool(mappings: list[tuple[str, str]]) -> int:
    """What forget_mappings does, by the conntrack tool; how many connections there were."""
    deletions = [
        subprocess.Popen(
            ["conntrack", "-D", "-f", "ipv4", *selectors],
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for floating, fixed in mappings
        for selectors in (("-d", floating, "-r", fixed), ("-s", fixed, "-q", floating))
    ]
    return sum(_deleted(deletion.communicate(timeout=10)[1]) for deletion in deletions)


def _forget_in_one_pass(mappings: set[tuple[str, str]]) -> int:
    with Conntrack() as table:
        doomed = [
            entry.tuple_orig
            for entry in table.dump_entries()
            if (entry.tuple_orig.daddr, entry.tuple_reply.saddr) in mappings
            or (entry.tuple_reply.daddr, entry.tuple_orig.saddr) in mappings
        ]
        for tuple_orig in doomed:
            table.entry("del", tuple_orig=tuple_orig)
    return len(doomed)


def _deleted(message: str) -> int:
    found = DELETED.search(message)
    if found is None:
        raise RuntimeError(f"conntrack -D: {message.strip()}")
    return int(found[1])


def _conntrack(netns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", f"--net={NETNS_DIR / netns}", "conntrack", *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def entries(netns: str, address: str | None = None) -> list[str]:
    """The entries of `netns` (those involving `address`, when given), as conntrack prints them."""
    if address is None:
        return _lines(_conntrack(netns, "-L", "-f", "ipv4").stdout)
    found: dict[str, None] = {}
    for selector in ("-s", "-d", "-r", "-q"):
        found.update(
            dict.fromkeys(_lines(_conntrack(netns, "-L", "-f", "ipv4", selector, address).stdout))
        )
    return list(found)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def flows_to_members(netns: str, ipv6: bool = False) -> dict[int, dict[tuple[str, int], int]]:
    """Per connection mark, how many flows each (address, port) answers: the reply tuple's
    source, which for a DNATed flow is the member's. Flows without a mark are left out."""
    family = "ipv6" if ipv6 else "ipv4"
    counts: dict[int, dict[tuple[str, int], int]] = {}
    for line in _lines(_conntrack(netns, "-L", "-f", family).stdout):
        sources, mark = REPLY_SOURCE.findall(line), MARK.search(line)
        if len(sources) == 2 and mark is not None and mark[1] != "0":
            address, port = sources[1]  # the original tuple's, then the reply's
            member = counts.setdefault(int(mark[1]), {})
            member[(address, int(port))] = member.get((address, int(port)), 0) + 1
    return counts
