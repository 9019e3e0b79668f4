"""Router namespaces: forwarding, static routes, the NAT table and its floating IPs, and the
metering table.

The NAT table's rules change rarely (an interface, the gateway, enable_snat);
floating IPs change often and may number tens of thousands. So the rules are
replaced whole, in one transaction, only when the plan's digest or the
kernel's listing of them differs from what was applied, while floating IPs
are diffed element by element and changed in one transaction that touches
nothing else; so are their local routes, and the router's addresses and
routes.

A floating IP is answered on the gateway interface by a local route
(`local FIP dev qg-... table local proto static`): the kernel then takes it
as its own, answers ARP for it and accepts its packets, which is all the
/32 address the tutorial shows would do (that address is a local route the
kernel makes, plus an entry in the interface's address list, which every
new address walks whole: 50,000 took minutes, the routes take a fraction of
a second). A local route of scope host outlives its interface going down,
as the address would.

Reading 50,000 map elements and local routes back costs tens of
milliseconds through netlink and iproute2's JSON (seconds through nft's
listing or pyroute2's parser), so the kernel is re-read (which repairs
drift) only when asked to `verify` (the agent's periodic full sync), when
the router is new to this agent and when its gateway changes; in between,
what was last applied is the observed state. A namespace made in this very
sync holds nothing, so it is not read at all. Even a `verify` reads the
tables back only when the namespace's nftables generation moved since our
last commit or reading (every commit bumps it, a hand edit too), and the
floating IPs' local routes only when the kernel told of a change of a link
or of a static local route (rtnetlink's notifications, which the router's
thread reads after each of its own changes: what is left is someone else's;
IPv4 routes that go with their interface are not notified, but the link's
change is). The addresses and other routes, few, are read every time. What
a router wants of the kernel (its floating IPs' local routes and elements)
is worked out once per plan of it, so a resync that finds it as applied
compares collections whole, at C speed.

A mapping that goes or changes loses its conntrack entries at once; a new one
is announced by a gratuitous ARP from the gateway interface, so the upstream
stops sending to a MAC that no longer holds the address.

The metering table (plan/metering.py) holds counters, which a replaced table
would zero: it is changed in place instead, and compared with what was
applied by a listing without the counts, which move with every packet.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import ipaddress
import json
import os
import socket
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nftables
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from neutrino.agent.drivers import netns as ns
from neutrino.agent.drivers import nfnetlink
from neutrino.agent.drivers.conntrack import forget_mappings
from neutrino.agent.drivers.links import (
    NLMSG_HEADER,
    RTM_DELLINK,
    RTM_NEWLINK,
    RTMGRP_LINK,
    LinkDriver,
    notifications,
    send_garp,
)
from neutrino.agent.drivers.nfnetlink import ipv4_map, table_description
from neutrino.agent.drivers.state import remembered
from neutrino.plan import metering
from neutrino.plan.routers import (
    FIP_DNAT,
    FIP_SNAT,
    INTERNAL,
    PF_ADDR,
    PF_PORT,
    ROUTED,
    TABLE,
    ForwardKey,
    fip_elements,
    forward_element_key,
    forward_elements,
    forward_key,
    map_elements,
    parse_forward_element,
)
from neutrino.plan.state import Address, Route, Router, Upstream

RTPROT_STATIC = 4  # the routes we own carry this protocol; others are the kernel's
BATCH = 64  # more local routes than this at once (a router's first sync) go through `ip -batch`
RT_TABLE_LOCAL, RTN_LOCAL, RT_SCOPE_HOST = 255, 2, 254  # a floating IP's route: the kernel's own
ACTIVE, DOWN = "ACTIVE", "DOWN"
RTMGRP_IPV4_ROUTE, RTM_NEWROUTE, RTM_DELROUTE = 0x40, 24, 25
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type
RTA_DST, RTA_OIF = 1, 4
# Both families, as Neutron's L3 agent: without IPv6 forwarding the kernel answers neighbour
# solicitations without the router flag, and hosts drop the default route their router
# advertisement gave them.
IP_FORWARD = (
    Path("/proc/sys/net/ipv4/ip_forward"),
    Path("/proc/sys/net/ipv6/conf/all/forwarding"),
)


class NatError(RuntimeError):
    pass


@dataclass
class Applied:
    """What one router's namespace holds, as far as we know."""

    inode: int
    gateway: str | None
    forwarding: bool | None  # None: not known
    addresses: set[tuple[str, str]]  # (interface, CIDR)
    local: set[tuple[str, str]]  # (interface, floating IP) of our local routes
    routes: set[Route]  # ours (protocol static) in the main tables
    digest: str  # the plan's digest of the table's rules (empty: unknown, replace them)
    dnat: dict[str, str]  # floating -> fixed
    snat: dict[str, str]  # fixed -> floating
    forwards: dict[ForwardKey, tuple[str, int]]  # port forwardings -> (internal IP, port)
    metering: str | None  # the plan's digest of the metering table ("": none; None: unknown)


@dataclass(frozen=True)
class Mappings:
    """What a router's floating IPs want of the kernel: local routes (interface, address) and
    both maps' elements."""

    local: frozenset[tuple[str, str]]
    dnat: dict[str, str]  # floating -> fixed
    snat: dict[str, str]  # fixed -> floating


def mappings_of(router: Router) -> Mappings:
    local: set[tuple[str, str]] = set()
    if router.gateway:
        local = {(router.gateway, f.address) for f in router.floatingips}
        local |= {(router.gateway, p.address) for p in router.port_forwardings}
    return Mappings(
        frozenset(local),
        {f.address: f.fixed_ip for f in router.floatingips},
        {f.fixed_ip: f.address for f in router.floatingips},
    )


@dataclass
class RoutersResult:
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    floatingips: dict[str, str] = field(default_factory=dict)  # id -> ACTIVE | DOWN


class RouteWatch:
    """rtnetlink's notifications of one namespace's links and IPv4 routes: whether its
    floating IPs' local routes may have moved otherwise than by our own changes."""

    def __init__(self) -> None:  # in the namespace
        self.sock = notifications(RTMGRP_LINK | RTMGRP_IPV4_ROUTE)
        self.moved = True  # nothing read since it listens

    def take(self, ours: frozenset[tuple[int, int, str]] = frozenset()) -> None:
        """Read what was notified; a change of a link, or of a static local route that is
        not one of `ours` (what we just did: message type, interface index, address), means
        the routes may have moved."""
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno != errno.ENOBUFS:
                    raise
                self.moved = True  # notifications were lost
                continue
            offset = 0
            while offset + NLMSG_HEADER.size <= len(data):
                length, kind = NLMSG_HEADER.unpack_from(data, offset)[:2]
                if kind in (RTM_NEWLINK, RTM_DELLINK):
                    self.moved = True
                elif kind in (RTM_NEWROUTE, RTM_DELROUTE):
                    self.moved |= _foreign_route(data, offset, length, kind, ours)
                offset += (length + 3) & ~3


def _foreign_route(
    data: bytes, offset: int, length: int, kind: int, ours: frozenset[tuple[int, int, str]]
) -> bool:
    """Whether a route's notification tells of a static local route we did not change."""
    start = offset + NLMSG_HEADER.size
    table, protocol = RTMSG.unpack_from(data, start)[4:6]
    if table != RT_TABLE_LOCAL or protocol != RTPROT_STATIC:
        return False
    found = {}
    for kind_of, begin, end in nfnetlink.attributes(data, start + RTMSG.size, offset + length):
        if kind_of == RTA_DST and end - begin == 4:
            found[RTA_DST] = socket.inet_ntoa(data[begin:end])
        elif kind_of == RTA_OIF:
            found[RTA_OIF] = struct.unpack_from("=i", data, begin)[0]
    return (kind, found.get(RTA_OIF, 0), found.get(RTA_DST, "")) not in ours


class Namespace:
    """A worker thread in one router namespace, with its nft, netlink and ARP sockets.

    They stay open: closing a packet socket waits for an RCU grace period (tens of ms).
    The netlink socket is opened by the worker, in the namespace, on first use: a
    pyroute2 socket belongs to the thread that opened it, and opening one "in a
    namespace" from elsewhere costs pyroute2 several milliseconds. The libnftables context
    kept serves the changes: a listing, or the whole table's transaction, has one of its own
    (drivers/nftables.py tells why).
    """

    def __init__(self, name: str) -> None:
        self.inode = os.stat(ns.NETNS_DIR / name).st_ino
        self.worker = ns.NetnsThread(name)
        self.nft: nftables.Nftables = self.worker.call(nftables.Nftables)
        self._ip: IPRoute | None = None
        self.indexes: dict[str, int] = {}  # interfaces' indexes, until their links may move
        # the nftables generation after our last commit or reading of the tables (None: none)
        self.generation: int | None = None
        self._watch: RouteWatch | None = None  # opened by the worker, on first use
        self._arp: tuple[str, socket.socket] | None = None  # (interface, socket bound to it)

    def index(self, ifname: str) -> int | None:
        """The index of `ifname` (None: there is none), from within the worker (an ioctl in
        its namespace: pyroute2 takes a millisecond to ask, once after every sync)."""
        if ifname not in self.indexes:
            try:
                self.indexes[ifname] = socket.if_nametoindex(ifname)
            except OSError:
                return None
        return self.indexes[ifname]

    def netlink(self, change: Callable[[IPRoute], None]) -> None:
        def call() -> None:
            if self._ip is None:
                self._ip = IPRoute()
            change(self._ip)

        self.worker.call(call)

    def run(self, command: str, as_json: bool = False, terse: bool = False) -> tuple[int, str, str]:
        """`terse` leaves set and map elements out of a listing."""

        def call() -> tuple[int, str, str]:
            nft = nftables.Nftables()
            nft.set_json_output(as_json)
            nft.set_terse_output(terse)
            rc, out, err = nft.cmd(command)
            return int(rc), str(out), str(err)

        return self.worker.call(call)

    def apply(self, commands: list[dict[str, Any]], whole: bool = False) -> None:
        """One transaction; `whole`: the table's, in a libnftables context of its own."""
        if not commands:
            return

        def commit() -> tuple[int, str]:
            nft = nftables.Nftables() if whole else self.nft
            rc, _, err = nft.json_cmd({"nftables": commands})
            self.generation = nfnetlink.generation() if rc == 0 else None
            return int(rc), str(err)

        rc, err = self.worker.call(commit)
        if rc != 0:
            raise NatError(f"nft transaction failed: {err.strip()}")

    def routes_moved(self) -> bool:
        """Whether the local routes may have moved otherwise than by our changes since the last
        call (True the first time); the caller reads them now."""

        def read() -> bool:
            if self._watch is None:
                self._watch = RouteWatch()
            self._watch.take()
            moved, self._watch.moved = self._watch.moved, False
            return moved

        return self.worker.call(read)

    def took(self, ours: frozenset[tuple[int, int, str]] | None) -> None:
        """Our changes of local routes are done (in the worker): their notifications are ours;
        None: too many to tell, read them back next time."""
        if self._watch is None:
            return
        if ours is None:
            self._watch.moved = True
        else:
            self._watch.take(ours)

    def tables_moved(self) -> bool:
        """Whether a commit (not ours) may have changed the tables since we last made or read
        them."""
        return self.generation is None or self.worker.call(nfnetlink.generation) != self.generation

    def forget(self, mappings: list[tuple[str, str]]) -> None:
        """Delete the connections of these (floating, fixed) mappings."""
        if mappings:
            self.worker.call(lambda: forget_mappings(mappings))

    def announce(self, ifname: str, addresses: list[str]) -> None:
        """Gratuitous ARP requests for `addresses` from `ifname`."""

        def send() -> None:
            for attempt in range(2):
                if self._arp is None or self._arp[0] != ifname:
                    self._close_arp()
                    sock = socket.socket(
                        socket.AF_PACKET, socket.SOCK_RAW, 0
                    )  # sends, receives nothing
                    sock.bind((ifname, 0))
                    self._arp = (ifname, sock)
                try:
                    send_garp(self._arp[1], addresses)
                    return
                except OSError:
                    self._close_arp()  # the interface was made again
                    if attempt:
                        raise

        if addresses:
            self.worker.call(send)

    def _close_arp(self) -> None:
        if self._arp is not None:
            self._arp[1].close()
            self._arp = None

    def close(self) -> None:
        def release() -> None:
            self._close_arp()
            if self._watch is not None:
                self._watch.sock.close()
            if self._ip is not None:
                self._ip.close()

        self.worker.call(release)
        self.worker.close()


class RouterDriver:
    def __init__(self, links: LinkDriver, state_dir: Path) -> None:
        self.links = links
        self.state_dir = state_dir
        self._namespaces: dict[str, Namespace] = {}
        self._applied: dict[str, Applied] = {}
        self._mappings: dict[str, tuple[Router, Mappings]] = {}  # by router id, per plan of it

    # --- public ------------------------------------------------------------------

    def ensure_all(
        self,
        routers: tuple[Router, ...],
        upstreams: tuple[Upstream, ...],
        verify: bool = True,
        fresh: frozenset[str] = frozenset(),
    ) -> RoutersResult:
        """`verify`: read every router's kernel state back; `fresh`: namespaces made empty
        just now."""
        result = RoutersResult()
        for router in routers:
            try:
                self.ensure(router, result, verify, router.netns in fresh)
                status = ACTIVE
            except Exception as error:
                result.errors.append(f"router {router.id}: {error}")
                self._applied.pop(router.id, None)  # read the kernel again next time
                status = DOWN
            result.floatingips.update(dict.fromkeys((fip.id for fip in router.floatingips), status))
            result.floatingips.update(
                dict.fromkeys((pf.floatingip_id for pf in router.port_forwardings), status)
            )
        wanted = {router.id for router in routers}
        self._release(wanted)
        for path in self._state_files():
            if path.stem not in wanted:
                path.unlink()
        for upstream in upstreams:
            try:
                if self._ensure_upstream(upstream):
                    result.changes.append(
                        f"set gateway addresses in {upstream.netns} {upstream.bridge}"
                    )
            except Exception as error:
                result.errors.append(f"outside {upstream.netns} {upstream.bridge}: {error}")
        return result

    def ensure(self, router: Router, result: RoutersResult, verify: bool, fresh: bool) -> None:
        space = self._namespace(router.id, router.netns)
        space.indexes.clear()  # its links may have been made again
        applied = self._applied.get(router.id)
        if fresh:
            applied = self._applied[router.id] = Applied(
                space.inode, router.gateway, None, set(), set(), set(), "", {}, {}, {}, ""
            )
        elif applied is None or applied.inode != space.inode or applied.gateway != router.gateway:
            applied = self._observe(router, space)
        elif verify:
            applied = self._observe(router, space, applied)
        mappings = self._mappings_of(router)
        if applied.forwarding != router.forwarding:
            if self._set_forwarding(space, router.forwarding):
                result.changes.append(
                    f"router {router.id}: forwarding {'on' if router.forwarding else 'off'}"
                )
            applied.forwarding = router.forwarding
        if self._ensure_accept_ra(router, space):
            result.changes.append(f"router {router.id}: accept_ra {router.accept_ra}")
        if self._ensure_local_routes(router, space, applied, mappings):
            result.changes.append(f"router {router.id}: local routes")
        if self._ensure_addresses(router, space, applied):
            result.changes.append(f"router {router.id}: addresses")
        if self._ensure_routes(router, space, applied):
            result.changes.append(f"router {router.id}: routes")
        if self._ensure_metering(router, space, applied):
            result.changes.append(f"router {router.id}: metering {applied.metering or 'none'}")
        if applied.digest != router.nat.digest:
            self._replace(router, space)
            result.changes.append(f"router {router.id}: replace NAT table {router.nat.digest}")
            return
        gone, added = self._update_floatingips(router, space, applied, mappings)
        if gone or added:
            result.changes.append(f"router {router.id}: floating IPs -{len(gone)} +{len(added)}")
        gone_forwards, new_forwards = self._update_port_forwardings(router, space, applied)
        if gone_forwards or new_forwards:
            result.changes.append(
                f"router {router.id}: port forwardings -{gone_forwards} +{new_forwards}"
            )

    def ensure_elements(self, wanted: Router, before: Router, result: RoutersResult) -> bool:
        """Change only some floating IPs' elements: their map elements, port forwardings and
        local routes; `wanted` is the router with just their elements now, `before` with those
        they had. False (nothing done) unless the router is as this agent last applied it,
        with the same rules and gateway: then it needs `ensure`."""
        space = self._namespaces.get(wanted.id)
        applied = self._applied.get(wanted.id)
        if (
            space is None
            or applied is None
            or applied.inode != space.inode
            or applied.gateway != wanted.gateway
            or applied.digest != wanted.nat.digest
        ):
            return False
        addresses = {f.address for r in (wanted, before) for f in r.floatingips}
        addresses |= {p.address for r in (wanted, before) for p in r.port_forwardings}
        fixed = {f.fixed_ip for r in (wanted, before) for f in r.floatingips}
        answered = {(wanted.gateway, a) for a in addresses}
        part = dataclasses.replace(
            applied,
            local=applied.local & answered,
            dnat={a: applied.dnat[a] for a in addresses if a in applied.dnat},
            snat={f: applied.snat[f] for f in fixed if f in applied.snat},
            forwards={k: v for k, v in applied.forwards.items() if k[1] in addresses},
        )
        try:
            mappings = mappings_of(wanted)
            self._ensure_local_routes(wanted, space, part, mappings)
            gone, added = self._update_floatingips(wanted, space, part, mappings)
            forwards = self._update_port_forwardings(wanted, space, part)
        finally:  # what was done, done or not, is what the namespace holds
            applied.local -= answered  # in place: a router may hold 50,000
            applied.local |= part.local
            for a in addresses:
                applied.dnat.pop(a, None)
            for f in fixed:
                applied.snat.pop(f, None)
            for key in [k for k in applied.forwards if k[1] in addresses]:
                del applied.forwards[key]
            applied.dnat.update(part.dnat)
            applied.snat.update(part.snat)
            applied.forwards.update(part.forwards)
        if gone or added:
            result.changes.append(f"router {wanted.id}: floating IPs -{len(gone)} +{len(added)}")
        if any(forwards):
            result.changes.append(
                f"router {wanted.id}: port forwardings -{forwards[0]} +{forwards[1]}"
            )
        result.floatingips.update({f.id: ACTIVE for f in wanted.floatingips})
        result.floatingips.update({p.floatingip_id: ACTIVE for p in wanted.port_forwardings})
        return True

    @staticmethod
    def _update_port_forwardings(
        router: Router, space: Namespace, applied: Applied
    ) -> tuple[int, int]:
        """Make the map hold exactly the router's port forwardings; (deleted, added)."""
        wanted = {forward_key(p): (p.internal_ip, p.internal_port) for p in router.port_forwardings}
        stale = [key for key, value in applied.forwards.items() if wanted.get(key) != value]
        new = [p for p in router.port_forwardings if forward_key(p) not in applied.forwards]
        new += [p for p in router.port_forwardings if forward_key(p) in stale]
        doomed = [forward_element_key(key) for key in stale]
        commands = (
            map_elements("delete", PF_ADDR, doomed)
            + map_elements("delete", PF_PORT, doomed)
            + forward_elements(new)
        )
        if not commands:
            return 0, 0
        space.apply(commands)
        held = {key[1] for key in applied.forwards}
        # Connections of a forwarding that went or changed go with it.
        space.forget(sorted({(key[1], applied.forwards.pop(key)[0]) for key in stale}))
        applied.forwards.update({forward_key(p): (p.internal_ip, p.internal_port) for p in new})
        if router.gateway:  # a floating IP newly forwarded from is announced as a new one is
            space.announce(router.gateway, sorted({p.address for p in new} - held))
        return len(stale), len(new)

    def _update_floatingips(
        self, router: Router, space: Namespace, applied: Applied, mappings: Mappings
    ) -> tuple[list[str], list[str]]:
        """Make the maps hold exactly the router's floating IPs; (addresses unmapped, mapped)."""
        dnat, snat = mappings.dnat, mappings.snat
        if dnat == applied.dnat and snat == applied.snat:  # a resync's usual answer, at C speed
            return [], []
        stale_dnat = [a for a, fixed in applied.dnat.items() if dnat.get(a) != fixed]
        stale_snat = [f for f, address in applied.snat.items() if snat.get(f) != address]
        new = [f for f in router.floatingips if applied.dnat.get(f.address) != f.fixed_ip]
        new_snat = [f for f in router.floatingips if applied.snat.get(f.fixed_ip) != f.address]
        commands = (
            map_elements("delete", FIP_DNAT, stale_dnat)
            + map_elements("delete", FIP_SNAT, stale_snat)
            + map_elements("add", FIP_DNAT, [[f.address, f.fixed_ip] for f in new])
            + map_elements("add", FIP_SNAT, [[f.fixed_ip, f.address] for f in new_snat])
        )
        if not commands:
            return [], []
        space.apply(commands)
        gone = {(address, applied.dnat.pop(address)) for address in stale_dnat}
        gone |= {(applied.snat.pop(fixed), fixed) for fixed in stale_snat}
        applied.dnat.update({f.address: f.fixed_ip for f in new})
        applied.snat.update({f.fixed_ip: f.address for f in new_snat})
        # The old mappings' connections go now; then the new holders are announced.
        space.forget(sorted(gone))
        if router.gateway:
            space.announce(router.gateway, [f.address for f in new])
        return stale_dnat, [f.address for f in new]

    def _mappings_of(self, router: Router) -> Mappings:
        known = self._mappings.get(router.id)
        if known is None or known[0] is not router:
            known = self._mappings[router.id] = (router, mappings_of(router))
        return known[1]

    def forget(self, router_id: str) -> None:
        """Read the router's namespace again next time."""
        self._applied.pop(router_id, None)
        if router_id in self._namespaces:
            self._namespaces[router_id].indexes.clear()

    def close(self) -> None:
        """Stop the namespaces' threads; the kernel and the state files stay."""
        self._release(set())

    def reset(self) -> None:
        """Forget everything, including the state files (after a teardown)."""
        self.close()
        for path in self._state_files():
            path.unlink()

    # --- parts -------------------------------------------------------------------

    def _namespace(self, router_id: str, name: str) -> Namespace:
        space = self._namespaces.get(router_id)
        if space is not None and space.inode != os.stat(ns.NETNS_DIR / name).st_ino:
            space.close()  # the namespace was re-made: our thread sits in the old one
            space = None
        if space is None:
            space = self._namespaces[router_id] = Namespace(name)
        return space

    def _release(self, keep: set[str]) -> None:
        for router_id in set(self._namespaces) - keep:
            self._namespaces.pop(router_id).close()
        for router_id in set(self._applied) - keep:
            del self._applied[router_id]
        for router_id in set(self._mappings) - keep:
            del self._mappings[router_id]

    def _state_files(self) -> list[Path]:
        return list(self.state_dir.glob("*.json")) if self.state_dir.exists() else []

    @staticmethod
    def _set_forwarding(space: Namespace, on: bool) -> bool:
        def write() -> bool:
            if _forwarding() == on:
                return False
            for path in IP_FORWARD:
                path.write_text("1\n" if on else "0\n")
            return True

        return space.worker.call(write)

    @staticmethod
    def _ensure_accept_ra(router: Router, space: Namespace) -> bool:
        """Its gateway's accept_ra, read each time (one small file): whether it changed."""

        def write() -> bool:
            changed = False
            for ifname, value in router.accept_ra:
                path = Path(f"/proc/sys/net/ipv6/conf/{ifname}/accept_ra")
                if path.read_text().strip() != str(value):
                    path.write_text(f"{value}\n")
                    changed = True
            return changed

        return bool(router.accept_ra) and space.worker.call(write)

    @staticmethod
    def _ensure_addresses(router: Router, space: Namespace, applied: Applied) -> bool:
        """Its interfaces' addresses, one netlink call per change."""
        wanted = {(a.ifname, a.cidr) for a in router.addresses}
        if wanted == applied.addresses:
            return False

        def change(sock: IPRoute) -> None:
            for ifname, cidr in applied.addresses - wanted:
                index = sock.link_lookup(ifname=ifname)
                if index:
                    _address(sock, "del", index[0], cidr, errno.EADDRNOTAVAIL)
            for ifname, cidr in sorted(wanted - applied.addresses):
                _address(sock, "add", sock.link_lookup(ifname=ifname)[0], cidr, errno.EEXIST)

        space.netlink(change)
        applied.addresses = wanted
        return True

    @staticmethod
    def _ensure_local_routes(
        router: Router, space: Namespace, applied: Applied, mappings: Mappings
    ) -> bool:
        """A local route on the gateway per floating IP (mapped or forwarded from): one netlink
        call per change, or one `ip -batch` for many."""
        wanted = mappings.local
        if wanted == applied.local:
            return False
        doomed, new = sorted(applied.local - wanted), sorted(wanted - applied.local)
        if not doomed and not new:
            return False
        if len(doomed) + len(new) > BATCH:
            _routes_in_batch(router.netns, doomed, new)
            space.worker.call(lambda: space.took(None))
        else:

            def change(sock: IPRoute) -> None:
                ours = set()
                try:
                    for ifname, address in doomed:
                        index = space.index(ifname)
                        if index is not None:  # else gone with its interface
                            ours.add((RTM_DELROUTE, index, address))
                            _local_route(sock, "del", index, address, errno.ESRCH)
                    for ifname, address in new:
                        index = space.index(ifname)
                        if index is None:
                            raise NatError(f"no interface {ifname} for floating IP {address}")
                        ours.add((RTM_NEWROUTE, index, address))
                        _local_route(sock, "replace", index, address, 0)
                finally:
                    space.took(frozenset(ours))

            space.netlink(change)
        applied.local = set(wanted)  # changed in place by ensure_elements
        return True

    @staticmethod
    def _ensure_routes(router: Router, space: Namespace, applied: Applied) -> bool:
        wanted = set(router.routes)
        if wanted == applied.routes:
            return False

        def change(sock: IPRoute) -> None:
            for route in applied.routes - wanted:
                try:
                    sock.route(
                        "del", dst=route.destination, gateway=route.nexthop, proto=RTPROT_STATIC
                    )
                except NetlinkError:
                    pass  # gone with its interface
            for route in wanted - applied.routes:
                sock.route(
                    "replace", dst=route.destination, gateway=route.nexthop, proto=RTPROT_STATIC
                )

        space.netlink(change)
        applied.routes = wanted
        return True

    def _state_file(self, router_id: str) -> Path:
        return self.state_dir / f"{router_id}.json"

    def _stored(self, router_id: str) -> dict[str, str]:
        return remembered(self._state_file(router_id))

    def _store(self, router_id: str, **values: str) -> None:
        """Digests of what was applied (the plan's) and of the kernel's listing of it."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._state_file(router_id).write_text(json.dumps({**self._stored(router_id), **values}))

    def _ensure_metering(self, router: Router, space: Namespace, applied: Applied) -> bool:
        """The metering table as planned, changed in place in one transaction: flushed of its
        rules, rid of the chains and counters of labels gone, refilled. `add` keeps an
        existing counter's count, so a label that stays keeps counting."""
        wanted = router.metering.digest if router.metering else ""
        if applied.metering == wanted:
            return False
        table = {"table": {"family": metering.FAMILY, "name": metering.TABLE}}
        commands: list[dict[str, Any]] = [{"add": table}]
        if router.metering is None:
            commands.append({"delete": table})
        else:
            _, present = _metering_listing(space)
            made = {
                (kind, body["name"])
                for command in router.metering.commands
                for kind, body in command["add"].items()
                if kind in ("chain", "counter")
            }
            commands.append({"flush": table})
            commands += [
                {"delete": {kind: {**metering.METERING, "name": name}}}
                for kind, name in sorted(present - made)
            ]
            commands += router.metering.commands
        space.apply(commands)
        listing = _metering_listing(space)[0] if router.metering else ""
        self._store(router.id, metering=wanted, metering_listing=listing)
        applied.metering = wanted
        return True

    def _observe(self, router: Router, space: Namespace, known: Applied | None = None) -> Applied:
        """Read the kernel back: addresses and routes, the table's rules' listing, both maps;
        of `known` (what we applied), the tables are kept when no commit moved them since."""
        moved = space.routes_moved()  # first: what moves while we read is told next time
        applied = Applied(
            space.inode,
            router.gateway,
            space.worker.call(_forwarding),
            _addresses(router.netns),
            _local_routes(router.netns) if moved or known is None else known.local,
            _routes(router.netns),
            "",
            {},
            {},
            {},
            None,
        )
        if known is not None and not space.tables_moved():
            applied.digest, applied.metering = known.digest, known.metering
            applied.dnat, applied.snat, applied.forwards = known.dnat, known.snat, known.forwards
        else:
            space.generation = space.worker.call(nfnetlink.generation)  # before: a commit
            stored = self._stored(router.id)  # while we read moves it again
            listing = _rules(space)
            if listing and listing == stored.get("listing"):
                applied.digest = stored.get("digest", "")
            applied.dnat, applied.snat = _elements(space, FIP_DNAT), _elements(space, FIP_SNAT)
            applied.forwards = _forwards(space)
            if _metering_listing(space)[0] == stored.get("metering_listing", ""):
                applied.metering = stored.get("metering", "")
        self._applied[router.id] = applied
        return applied

    def _replace(self, router: Router, space: Namespace) -> None:
        """The whole table, floating IPs included, in one transaction (rules changed)."""
        applied = self._applied[router.id]  # observed before, at least
        before, forwarded_before = applied.dnat, {key[1] for key in applied.forwards}
        table = {"table": {"family": "ip", "name": TABLE}}
        commands = [
            {"add": table},
            {"delete": table},
            *router.nat.commands,
            *fip_elements(router.floatingips),
            *forward_elements(router.port_forwardings),
        ]
        space.apply(commands, whole=True)
        listing = _rules(space)
        if not listing:
            raise NatError("NAT table missing after replace")
        self._store(router.id, digest=router.nat.digest, listing=listing)
        dnat = {f.address: f.fixed_ip for f in router.floatingips}
        applied.digest, applied.dnat = router.nat.digest, dnat
        applied.snat = {f.fixed_ip: f.address for f in router.floatingips}
        applied.forwards = {
            forward_key(p): (p.internal_ip, p.internal_port) for p in router.port_forwardings
        }
        space.forget([(a, fixed) for a, fixed in before.items() if dnat.get(a) != fixed])
        if router.gateway:
            forwarded = {p.address for p in router.port_forwardings} - forwarded_before
            space.announce(
                router.gateway,
                [a for a, fixed in dnat.items() if before.get(a) != fixed] + sorted(forwarded),
            )

    def _ensure_upstream(self, upstream: Upstream) -> bool:
        if upstream.bridge not in self.links.observe(upstream.netns):
            return False  # made with the host's NIC; next sync
        wanted = [Address(upstream.netns, upstream.bridge, cidr) for cidr in upstream.cidrs]
        # Announced: a bridge made again has a new MAC, which routers would not ask for
        # before their neighbour entry goes stale (half a minute).
        return self.links.ensure_addresses(upstream.netns, upstream.bridge, wanted, announce=True)


def _forwarding() -> bool:
    """Whether the calling thread's namespace forwards IPv4 and IPv6."""
    return all(path.read_text().strip() == "1" for path in IP_FORWARD)


def _address(sock: Any, verb: str, index: int, cidr: str, fine: int) -> None:
    """Add or delete an address; `fine` is the errno of "it was so already"."""
    address, prefixlen = cidr.split("/")
    try:
        sock.addr(verb, index=index, address=address, prefixlen=int(prefixlen))
    except NetlinkError as error:
        if error.code != fine:
            raise


def _local_route(sock: Any, verb: str, index: int, address: str, fine: int) -> None:
    """Add ("replace") or delete a floating IP's local route; `fine` is the errno of "it was
    so already"."""
    try:
        sock.route(
            verb,
            dst=address,
            dst_len=32,
            table=RT_TABLE_LOCAL,
            type=RTN_LOCAL,
            scope=RT_SCOPE_HOST,
            proto=RTPROT_STATIC,
            oif=index,
        )
    except NetlinkError as error:
        if error.code != fine:
            raise


def _routes_in_batch(netns: str, doomed: list[tuple[str, str]], new: list[tuple[str, str]]) -> None:
    """Many local routes in one process: 50,000 in a fraction of a second, not one netlink
    round trip each through pyroute2. A route to delete may be gone with its interface
    (`-force` goes on): what the kernel holds after is the judge."""
    route = "route {} local {}/32 dev {} table local proto static\n"
    script = "".join(route.format("del", a, ifname) for ifname, a in doomed)
    script += "".join(route.format("replace", a, ifname) for ifname, a in new)
    done = subprocess.run(
        ["ip", "-force", "-n", netns, "-batch", "-"],
        input=script,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        held = _local_routes(netns)
        if held & set(doomed) or not held >= set(new):
            raise RuntimeError(f"ip -batch in {netns}: {done.stderr.strip()[:500]}")


def _ip_json(netns: str, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["ip", "-n", netns, "-j", *args], capture_output=True, text=True, timeout=30, check=False
    )
    found: list[dict[str, Any]] = json.loads(done.stdout or "[]") if done.returncode == 0 else []
    return found


def _addresses(netns: str) -> set[tuple[str, str]]:
    """(interface, CIDR) of every global address in the namespace."""
    return {
        (link["ifname"], f"{a['local']}/{a['prefixlen']}")
        for link in _ip_json(netns, "addr", "show")
        for a in link.get("addr_info", [])
        if link["ifname"] != "lo" and not ipaddress.ip_address(a["local"]).is_link_local
    }


def _local_routes(netns: str) -> set[tuple[str, str]]:
    """(interface, address) of our local routes: static, in the local table. Read as text
    ("local ADDRESS dev NAME scope host"): for 50,000 routes, JSON's decoding costs more
    than iproute2's listing."""
    done = subprocess.run(
        ["ip", "-n", netns, "-4", "route", "show", "table", "local", "proto", "static"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    found = set()
    for line in done.stdout.splitlines() if done.returncode == 0 else ():
        words = line.split()
        if words[:1] == ["local"] and words[2:3] == ["dev"]:
            found.add((words[3], words[1]))
    return found


def _routes(netns: str) -> set[Route]:
    """Ours: static, via a next hop (a route without one was not made by us)."""
    found = set()
    for family, default in (("-4", "0.0.0.0/0"), ("-6", "::/0")):
        for route in _ip_json(netns, family, "route", "show", "table", "main", "proto", "static"):
            nexthop = route.get("gateway")
            if nexthop is None:
                continue
            dst = route["dst"]
            if dst == "default":
                dst = default
            elif "/" not in dst:
                dst += "/32" if family == "-4" else "/128"
            found.add(Route(dst, nexthop))
    return found


def _rules(space: Namespace) -> str:
    """A digest of the table without the floating IP maps' elements: its rules, and the sets
    of internal and routed networks whole ("": no table)."""
    found = space.worker.call(lambda: table_description(TABLE, (INTERNAL, ROUTED)))
    return "" if found is None else hashlib.sha256(found).hexdigest()[:16]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _elements(space: Namespace, name: str) -> dict[str, str]:
    return space.worker.call(lambda: ipv4_map(TABLE, name)) or {}


def _forwards(space: Namespace) -> dict[ForwardKey, tuple[str, int]]:
    """Port forwardings from both maps: those in one only are incomplete, so absent."""
    found: list[dict[ForwardKey, Any]] = []
    for name in (PF_ADDR, PF_PORT):
        rc, out, _ = space.run(f"list map ip {TABLE} {name}", as_json=True)
        maps = [i["map"] for i in json.loads(out)["nftables"] if "map" in i] if rc == 0 else []
        found.append(dict(parse_forward_element(e) for m in maps for e in m.get("elem", [])))
    addresses, ports = found
    return {
        key: (str(address), int(ports[key])) for key, address in addresses.items() if key in ports
    }


def _metering_listing(space: Namespace) -> tuple[str, set[tuple[str, str]]]:
    """A digest of the metering table without its counts ("": no table), and its chains and
    counters as (kind, name)."""
    rc, out, _ = space.run(f"list table {metering.FAMILY} {metering.TABLE}", as_json=True)
    if rc != 0:
        return "", set()
    items = [item for item in json.loads(out)["nftables"] if "metainfo" not in item]
    for item in items:
        for kind, body in item.items():
            body.pop("handle", None)
            if kind == "counter":
                body.pop("packets", None)
                body.pop("bytes", None)
    objects = {
        (kind, body["name"])
        for item in items
        for kind, body in item.items()
        if kind in ("chain", "counter")
    }
    return _digest(json.dumps(items, sort_keys=True)), objects
