"""Netfilter's netlink, spoken directly for the requests whose cost grows with a router's
floating IPs: reading an IPv4 map's elements back, describing a table without them,
deleting a mapping's connections; and the ruleset's generation, which tells whether any of it
may have moved at all.

nft lists a map of 50,000 elements in seconds (and fetches them to list the rules too), and
pyroute2 decodes them about as slowly; the kernel sends the same elements in about a
megabyte that one unpack per element reads in a fraction of a second. Deleting connections
by a filter is one request that the kernel carries out over its table (where it takes
CTA_FILTER on a flush: newer than Linux 6.8), where the conntrack tool is a process and
pyroute2 a millisecond of its own.

Each thread keeps one socket, made in its namespace on its first call: after a commit that
deleted something, the kernel answers a new socket's first request about 10 ms late (a kept
one at once), and deleting a floating IP's connections follows deleting its mapping.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Iterator

NETLINK_NETFILTER = 12
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_TYPE_MASK = 0x3FFF  # without the nested and byte-order flags
HEADER = struct.Struct("=IHHII")  # nlmsghdr
ATTR = struct.Struct("=HH")  # nlattr: length, type
GENMSG = struct.Struct("=BBH")  # nfgenmsg: family, version, resource id

NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_NFTABLES = 1, 10
IPCTNL_MSG_CT_DELETE = 2
NFT_MSG_GETCHAIN, NFT_MSG_GETRULE, NFT_MSG_GETSET, NFT_MSG_GETSETELEM = 4, 7, 10, 13
NFT_MSG_GETGEN, NFTA_GEN_ID = 16, 1
NFTA_TABLE = 1  # of a chain, a rule, a set: the table it is in
NFTA_SET_COUNT = 20  # how many elements a set holds (newer kernels)
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS = 1, 2, 3
NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_DATA, NFTA_DATA_VALUE = 1, 2, 1
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_FILTER = 1, 2, 25
CTA_TUPLE_IP, CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 1, 2
CTA_FILTER_ORIG_FLAGS, CTA_FILTER_REPLY_FLAGS = 1, 2
FILTER_IP_SRC, FILTER_IP_DST = 1 << 0, 1 << 1  # CTA_FILTER_FLAG(CTA_IP_SRC), (CTA_IP_DST)


def attribute(kind: int, payload: bytes) -> bytes:
    length = ATTR.size + len(payload)
    return ATTR.pack(length, kind) + payload + bytes(-length % 4)


def nested(kind: int, *attributes: bytes) -> bytes:
    return attribute(kind | 0x8000, b"".join(attributes))


def attributes(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, start, end) of the payload of each attribute in data[start:end]."""
    while start + ATTR.size <= end:
        length, kind = ATTR.unpack_from(data, start)
        if length < ATTR.size:
            return
        yield kind & NLA_TYPE_MASK, start + ATTR.size, start + length
        start += (length + 3) & ~3


def _messages(message_type: int, flags: int, body: bytes) -> Iterator[bytes]:
    """Send one request; each answer's payload after its nfgenmsg, until the kernel is done.
    An error raises OSError with the kernel's errno. What is left of an earlier request's
    answers (one its caller stopped reading) is passed over by its sequence number."""
    kept = _kept()
    kept.sequence = sequence = kept.sequence % 0xFFFFFFFF + 1
    sock = kept.socket
    sock.send(
        HEADER.pack(HEADER.size + len(body), message_type, NLM_F_REQUEST | flags, sequence, 0)
        + body
    )
    while True:
        data = sock.recv(1 << 20)
        offset = 0
        while offset + HEADER.size <= len(data):
            length, kind, _, answers, _ = HEADER.unpack_from(data, offset)
            if answers != sequence:
                offset += (length + 3) & ~3
                continue
            if kind == NLMSG_DONE:
                return
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", data, offset + HEADER.size)[0]
                if code:
                    raise OSError(code, os.strerror(code))
                return  # the acknowledgement
            yield data[offset + HEADER.size + GENMSG.size : offset + length]
            offset += (length + 3) & ~3


class _Kept:
    """A thread's socket, in the thread's namespace, and the sequence number of its last
    request; closed when the thread ends (with the thread's local data)."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        self.sequence = 0

    def __del__(self) -> None:
        self.socket.close()


_local = threading.local()


def _kept() -> _Kept:
    kept: _Kept | None = getattr(_local, "kept", None)
    if kept is None:
        kept = _local.kept = _Kept()
    return kept


# An element of an ipv4_addr : ipv4_addr map, as the kernel sends it: its header, its key
# (nested: a value of 4 bytes), its data (the same).
ELEMENT = struct.Struct("=HH HHHH4s HHHH4s")
USUAL = (12, NFTA_SET_ELEM_KEY, 8, NFTA_DATA_VALUE, 12, NFTA_SET_ELEM_DATA, 8, NFTA_DATA_VALUE)


def _pairs(data: bytes, start: int, end: int) -> Iterator[tuple[str, str]]:
    """Each element's key and value, from the list in data[start:end]: one unpack per
    element of the usual shape (a map holds tens of thousands), attribute by attribute for
    any other."""
    unpack, ntoa = ELEMENT.unpack_from, socket.inet_ntoa
    while start + ATTR.size <= end:
        length = ATTR.unpack_from(data, start)[0]
        if length == ELEMENT.size:
            _, _, a, b, c, d, key, e, f, g, h, value = unpack(data, start)
            if (a, b & NLA_TYPE_MASK, c, d, e, f & NLA_TYPE_MASK, g, h) == USUAL:
                yield ntoa(key), ntoa(value)
                start += length
                continue
        parts = {
            kind: data[at + ATTR.size : at + ATTR.size + 4]  # its one NFTA_DATA_VALUE
            for kind, at, _ in attributes(data, start + ATTR.size, start + length)
        }
        yield ntoa(parts[NFTA_SET_ELEM_KEY]), ntoa(parts[NFTA_SET_ELEM_DATA])
        start += (length + 3) & ~3


def ipv4_map(table: str, name: str) -> dict[str, str] | None:
    """The elements of an `ipv4_addr : ipv4_addr` map of the `ip` table `table` (None: no such
    map), in the calling thread's namespace."""
    body = GENMSG.pack(socket.AF_INET, 0, 0)
    body += attribute(NFTA_SET_ELEM_LIST_TABLE, table.encode() + b"\0")
    body += attribute(NFTA_SET_ELEM_LIST_SET, name.encode() + b"\0")
    found: dict[str, str] = {}
    try:
        for data in _messages(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETSETELEM, NLM_F_DUMP, body):
            for kind, start, end in attributes(data, 0, len(data)):
                if kind == NFTA_SET_ELEM_LIST_ELEMENTS:
                    found.update(_pairs(data, start, end))
    except FileNotFoundError:
        return None
    return found


def generation() -> int:
    """The nftables ruleset generation of the calling thread's namespace: every commit bumps
    it, ours and anyone else's."""
    for data in _messages(
        NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN, NLM_F_ACK, GENMSG.pack(0, 0, 0)
    ):
        for kind, start, _ in attributes(data, 0, len(data)):
            if kind == NFTA_GEN_ID:
                return int(struct.unpack_from("!I", data, start)[0])
    raise OSError("no nftables generation in the kernel's answer")


def table_description(table: str, sets: tuple[str, ...]) -> bytes | None:
    """The kernel's description of the `ip` table `table`: its chains, rules and sets (without
    their counts of elements), and the elements of `sets` only (None: no such table). Any
    change of a rule moves it; elements of other sets (a map of 50,000 that nft would fetch
    whole to list the rules) do not."""
    described = []
    request = GENMSG.pack(socket.AF_INET, 0, 0) + attribute(NFTA_TABLE, table.encode() + b"\0")
    try:
        for message in (NFT_MSG_GETCHAIN, NFT_MSG_GETRULE, NFT_MSG_GETSET):
            message |= NFNL_SUBSYS_NFTABLES << 8
            for data in _messages(message, NLM_F_DUMP, request):
                if _string(data, NFTA_TABLE) == table:  # a chain dump has every table's
                    described += [
                        ATTR.pack(end - start, kind) + data[start:end]
                        for kind, start, end in attributes(data, 0, len(data))
                        if (message & 0xFF, kind) != (NFT_MSG_GETSET, NFTA_SET_COUNT)
                    ]
        for name in sets:
            body = request + attribute(NFTA_SET_ELEM_LIST_SET, name.encode() + b"\0")
            message = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETSETELEM
            described += _messages(message, NLM_F_DUMP, body)
    except FileNotFoundError:
        return None
    return b"".join(described) or None


def _string(data: bytes, wanted: int) -> str | None:
    for kind, start, end in attributes(data, 0, len(data)):
        if kind == wanted:
            return data[start:end].rstrip(b"\0").decode()
    return None


def _tuple(kind: int, field: int, address: str) -> bytes:
    return nested(kind, nested(CTA_TUPLE_IP, attribute(field, socket.inet_aton(address))))


def forget_connections(mappings: list[tuple[str, str]]) -> None:
    """Delete the connections of these (floating, fixed) NAT mappings, in the calling thread's
    namespace: inbound (to the floating IP, answered from the fixed one) and outbound (from
    the fixed IP, answered to the floating one). OSError EOPNOTSUPP: this kernel cannot."""
    flags = {CTA_IP_V4_SRC: FILTER_IP_SRC, CTA_IP_V4_DST: FILTER_IP_DST}
    for floating, fixed in mappings:
        for orig, reply in (
            ((CTA_IP_V4_DST, floating), (CTA_IP_V4_SRC, fixed)),
            ((CTA_IP_V4_SRC, fixed), (CTA_IP_V4_DST, floating)),
        ):
            body = GENMSG.pack(socket.AF_INET, 1, 0)  # version 1: this family only
            body += _tuple(CTA_TUPLE_ORIG, *orig) + _tuple(CTA_TUPLE_REPLY, *reply)
            body += nested(
                CTA_FILTER,
                attribute(CTA_FILTER_ORIG_FLAGS, struct.pack("=I", flags[orig[0]])),
                attribute(CTA_FILTER_REPLY_FLAGS, struct.pack("=I", flags[reply[0]])),
            )
            message = NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE
            for _ in _messages(message, NLM_F_ACK, body):
                pass
