"""Links and addresses through netlink (pyroute2), in any namespace.

What a namespace's links are is read once, then kept current from the
kernel's link notifications (a netlink socket subscribed to them, drained
before every look): a sync looks at every link it owns, and decoding a dump
of a few hundred links costs pyroute2 tens of milliseconds, while the
notifications since the last sync are only what changed, by us or by hand.
Should the kernel drop notifications (the socket's buffer overflowed), the
links are read whole again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from neutrino.agent.drivers.netns import run_in_namespace
from neutrino.plan.state import Address, Link, VethPeer

IFF_UP = 0x1
IFA_F_NODAD = 0x2  # an address added without duplicate address detection
VXLAN_PORT = 4789
RTMGRP_LINK = 0x1
RTM_NEWLINK, RTM_DELLINK = 16, 17
NLMSG_HEADER = struct.Struct("=LHHLL")  # length, type, flags, sequence, port
IFINFO_HEADER = struct.Struct("=B3xi")  # family, index: the start of struct ifinfomsg
NOTIFICATION_BUFFER = 4 << 20
SO_RCVBUFFORCE = 33  # Linux; Python's socket module does not name it
ETH_P_ARP = 0x0806


@dataclass(frozen=True)
class ObservedLink:
    index: int
    name: str
    kind: str | None  # None for links without IFLA_LINKINFO ("external" NICs, lo)
    master: int | None
    up: bool
    mac: str | None
    vni: int | None
    vlan_id: int | None
    netfilter: bool | None  # a bridge's own br_netfilter switch (None: not a bridge)
    mtu: int | None = None
    vxlan: tuple[str | None, bool] | None = None  # a VXLAN device's local address and proxy


def _latest_by_link(data: bytes, latest: dict[int, bytes | None]) -> None:
    """Note each link's last notification in `data` (a read from the socket)."""
    offset = 0
    while offset + NLMSG_HEADER.size + IFINFO_HEADER.size <= len(data):
        length, kind = NLMSG_HEADER.unpack_from(data, offset)[:2]
        family, index = IFINFO_HEADER.unpack_from(data, offset + NLMSG_HEADER.size)
        # AF_BRIDGE ones tell of bridge ports, partially; AF_UNSPEC ones carry the whole link.
        if family == socket.AF_UNSPEC and kind in (RTM_NEWLINK, RTM_DELLINK):
            latest[index] = data[offset : offset + length] if kind == RTM_NEWLINK else None
        offset += (length + 3) & ~3


def _observed(msg: ifinfmsg) -> ObservedLink:
    kind = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    data = ("IFLA_LINKINFO", "IFLA_INFO_DATA")
    return ObservedLink(
        index=msg["index"],
        name=msg.get("ifname"),
        kind=kind,
        master=msg.get("master"),
        up=bool(msg["flags"] & IFF_UP),
        mac=msg.get("address"),
        vni=msg.get_nested(*data, "IFLA_VXLAN_ID") if kind == "vxlan" else None,
        vlan_id=msg.get_nested(*data, "IFLA_VLAN_ID") if kind == "vlan" else None,
        netfilter=bool(msg.get_nested(*data, "IFLA_BR_NF_CALL_IPTABLES"))
        if kind == "bridge"
        else None,
        mtu=msg.get("mtu"),
        vxlan=(
            msg.get_nested(*data, "IFLA_VXLAN_LOCAL"),
            bool(msg.get_nested(*data, "IFLA_VXLAN_PROXY")),
        )
        if kind == "vxlan"
        else None,
    )


def _rtnetlink() -> socket.socket:
    """A netlink socket for pyroute2, in the calling thread's namespace, with the buffers it
    gives its own."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return sock


def notifications(groups: int, buffer: int = NOTIFICATION_BUFFER) -> socket.socket:
    """A non-blocking socket that receives rtnetlink's notifications of `groups`, in the
    calling thread's namespace."""
    sock = socket.socket(
        socket.AF_NETLINK,
        socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
        socket.NETLINK_ROUTE,
    )
    try:  # beyond net.core.rmem_max, which root may do
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, buffer)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    sock.bind((0, groups))
    return sock


class LinkView:
    """One namespace's links, as the kernel last told us: by index. `sock` gives the calling
    thread's socket in the namespace, for a dump."""

    def __init__(
        self, netns: str | None, sock: Callable[[], IPRoute], buffer: int = NOTIFICATION_BUFFER
    ) -> None:
        self._sock = sock
        # subscribed before the dump: nothing falls in between
        self._events = run_in_namespace(netns, lambda: notifications(RTMGRP_LINK, buffer))
        self._links = self._dump()

    def _dump(self) -> dict[int, ObservedLink]:
        return {msg["index"]: _observed(msg) for msg in self._sock().get_links()}

    def links(self) -> dict[str, ObservedLink]:
        """By name, after every notification received since the last look."""
        latest: dict[int, bytes | None] = {}  # index -> its last RTM_NEWLINK (None: deleted)
        while True:
            try:
                data = self._events.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno != errno.ENOBUFS:
                    raise
                self._links, latest = (
                    self._dump(),
                    {},
                )  # notifications were lost: read the kernel again
                continue
            _latest_by_link(data, latest)
        for (
            index,
            message,
        ) in latest.items():  # one decode per changed link, however often it changed
            if message is None:
                self._links.pop(index, None)
            else:
                msg = ifinfmsg(message)
                msg.decode()
                self._links[index] = _observed(msg)
        return {link.name: link for link in self._links.values()}

    def close(self) -> None:
        self._events.close()


class LinkEvents:
    """The names of links that come, change or go in one namespace, as they do: what a VM's
    tap or a container's veth does, which the agent learns from no change feed."""

    def __init__(self, netns: str | None) -> None:
        self._events = run_in_namespace(netns, lambda: notifications(RTMGRP_LINK, 1 << 20))

    def wait(self, timeout: float) -> set[str]:
        """The names of the links that moved: the first notification's, within `timeout`
        seconds, and those of the ones that follow it closely (for 50 ms at most); empty when
        none came. None are lost: the kernel's buffer overflowing says "*" (any)."""
        self._events.settimeout(timeout)
        names: set[str] = set()
        until = None
        while True:
            try:
                data = self._events.recv(1 << 16)
            except TimeoutError:
                return names
            except OSError as error:
                if error.errno != errno.ENOBUFS:
                    raise
                return {"*"}
            offset = 0
            while offset + NLMSG_HEADER.size <= len(data):
                length, kind = NLMSG_HEADER.unpack_from(data, offset)[:2]
                if kind in (RTM_NEWLINK, RTM_DELLINK):
                    msg = ifinfmsg(data[offset : offset + length])
                    msg.decode()
                    names.add(msg.get("ifname") or "")
                offset += (length + 3) & ~3
            until = until or time.monotonic() + 0.05
            if time.monotonic() >= until:
                return names
            self._events.settimeout(0.01)  # what else moves with it

    def close(self) -> None:
        self._events.close()


class _Socket:
    """pyroute2 on `raw`, with an event loop of ours: pyroute2 closes a loop it made only in
    the thread that made it, and a namespace may be forgotten by another (each such loop
    kept three descriptors open)."""

    def __init__(self, raw: socket.socket) -> None:
        self.raw = raw
        self.loop = asyncio.new_event_loop()
        self.iproute = IPRoute(use_socket=raw, use_event_loop=self.loop)
        self.transport = self.iproute.asyncore.transport  # this thread's, made with it

    def close(self) -> None:
        self.iproute.close()
        self.transport.abort()
        self.loop.run_until_complete(asyncio.sleep(0))  # where the transport lets go of raw
        self.loop.close()
        self.raw.close()


class LinkDriver:
    """Holds one netlink socket per namespace it works in and thread that works there (a
    pyroute2 socket belongs to the thread that made it), and one LinkView per namespace."""

    def __init__(self) -> None:
        self._sockets: dict[tuple[str | None, int], _Socket] = {}  # by (namespace, thread id)
        self._views: dict[str | None, LinkView] = {}

    def socket(self, netns: str | None) -> IPRoute:
        """The calling thread's socket in `netns`. Made in the namespace by a thread of ours:
        pyroute2's own way (IPRoute(netns=...)) forks the whole process, after which each
        page of its memory costs a page fault when it is next written to (a plan of 1,000
        ports: thousands, milliseconds of the next change's work)."""
        key = (netns, threading.get_ident())
        if key not in self._sockets:
            raw = run_in_namespace(netns, _rtnetlink) if netns else _rtnetlink()
            self._sockets[key] = _Socket(raw)
        return self._sockets[key].iproute

    def forget(self, netns: str | None) -> None:
        for key in [key for key in list(self._sockets) if key[0] == netns]:
            self._sockets.pop(key).close()
        view = self._views.pop(netns, None)
        if view is not None:
            view.close()

    def close(self) -> None:
        for netns in {netns for netns, _ in list(self._sockets)} | set(self._views):
            self.forget(netns)

    # --- observe ---------------------------------------------------------------

    def observe(self, netns: str | None) -> dict[str, ObservedLink]:
        if netns not in self._views:
            self._views[netns] = LinkView(netns, lambda: self.socket(netns))
        return self._views[netns].links()

    # --- apply -----------------------------------------------------------------

    def ensure(self, link: Link, observed: dict[str, ObservedLink]) -> str | None:
        """Make `link` as desired, changing only what differs; says what it did, if anything.

        `observed` (the links of its namespace) is kept up to date.
        """
        sock = self.socket(link.netns)
        current = observed.get(link.name)
        action = None
        if current is not None and not _same_kind(current, link):
            sock.link("del", index=current.index)
            current, action = None, "re-created"
        if current is None:
            if link.kind == "external":
                return None  # someone else creates it (a VM's tap, a real NIC)
            try:
                self._create(sock, link)
            except NetlinkError as error:
                if error.code != errno.EEXIST or link.peer is None:
                    raise
                # The far end's name is held by the far end of a veth whose near end is in
                # a namespace deleted by hand (alive until its last user leaves): ours.
                run_in_namespace(link.peer.netns, lambda: _delete(link.peer))
                self._create(sock, link)
            action = action or "created"
            current = self._refresh(link.netns, link.name)
            if link.peer is not None:
                run_in_namespace(link.peer.netns, lambda: _bring_up(link.peer))
        master = observed[link.master].index if link.master else None
        changes: dict[str, object] = {}
        if current.master != master:
            changes["master"] = master or 0
        if current.up != link.up:
            changes["state"] = "up" if link.up else "down"
        if link.mac and current.mac != link.mac:
            changes["address"] = link.mac
        if link.mtu and current.mtu != link.mtu:
            changes["mtu"] = link.mtu
        if link.kind == "bridge" and current.netfilter != link.netfilter:
            changes.update(kind="bridge", **_bridge_netfilter(link.netfilter))
        if changes:
            sock.link("set", index=current.index, **changes)
            action = action or "fixed"
        observed[link.name] = dataclasses.replace(
            current,
            master=master,
            up=link.up,
            mac=link.mac or current.mac,
            mtu=link.mtu or current.mtu,
            netfilter=link.netfilter if link.kind == "bridge" else None,
        )
        return action

    def ensure_peer(self, peer: VethPeer, observed: dict[str, ObservedLink]) -> bool:
        """Fix the far end of a veth: MAC, master, up (`observed` is of its namespace)."""
        sock = self.socket(peer.netns)
        current = observed.get(peer.name) or self._refresh(peer.netns, peer.name)
        changes: dict[str, object] = {}
        if peer.mac and current.mac != peer.mac:
            changes["address"] = peer.mac
        if peer.mtu and current.mtu != peer.mtu:
            changes["mtu"] = peer.mtu
        if peer.master:
            master = observed.get(peer.master) or self._refresh(peer.netns, peer.master)
            if current.master != master.index:
                changes["master"] = master.index
        if not current.up:
            changes["state"] = "up"
        if changes:
            sock.link("set", index=current.index, **changes)
        return bool(changes)

    def _create(self, sock: IPRoute, link: Link) -> None:
        spec: dict[str, object] = {"ifname": link.name, "kind": link.kind}
        if link.kind == "veth":
            assert link.peer is not None
            peer: dict[str, object] = {"ifname": link.peer.name}
            if link.peer.netns:
                peer["net_ns_fd"] = link.peer.netns
            if link.peer.mac:
                peer["address"] = link.peer.mac
            if link.peer.mtu:
                peer["mtu"] = link.peer.mtu
            spec["peer"] = peer
        elif link.kind == "vxlan":
            spec.update(
                vxlan_id=link.vni, vxlan_port=VXLAN_PORT, vxlan_learning=0, vxlan_proxy=link.proxy
            )
            if link.local_ip:
                spec["vxlan_local"] = link.local_ip
        elif link.kind == "vlan":
            spec.update(link=sock.link_lookup(ifname=link.parent)[0], vlan_id=link.vlan_id)
            if link.mac:
                spec["address"] = link.mac
        elif link.kind == "bridge":
            spec.update(_bridge_netfilter(link.netfilter))
        sock.link("add", **spec)

    def _refresh(self, netns: str | None, name: str) -> ObservedLink:
        sock = self.socket(netns)
        return _observed(sock.get_links(sock.link_lookup(ifname=name)[0])[0])

    def delete(self, netns: str | None, name: str) -> None:
        sock = self.socket(netns)
        with contextlib.suppress(IndexError, NetlinkError):  # gone (a veth goes with its peer)
            sock.link("del", index=sock.link_lookup(ifname=name)[0])

    def unplug(self, netns: str | None, name: str) -> None:
        """Take a link off its bridge, leaving it as it is otherwise."""
        sock = self.socket(netns)
        with contextlib.suppress(IndexError, NetlinkError):  # gone meanwhile
            sock.link("set", index=sock.link_lookup(ifname=name)[0], master=0)

    def turn_ipv6_off(self, netns: str | None, names: list[str]) -> list[str]:
        """Set disable_ipv6 on the links `names` of `netns` where it is not; returns those. It is
        a sysctl: netlink can read it but not set it, and its change sends no link
        notification, so it is read from /proc/sys whenever it is checked."""

        def turn_off() -> list[str]:
            changed = []
            for name in names:
                path = Path("/proc/sys/net/ipv6/conf") / name / "disable_ipv6"
                with contextlib.suppress(FileNotFoundError):  # gone, or a kernel without IPv6
                    if path.read_text().strip() != "1":
                        path.write_text("1\n")
                        changed.append(name)
            return changed

        return run_in_namespace(netns, turn_off) if names else []

    # --- addresses -------------------------------------------------------------

    def ensure_addresses(
        self, netns: str | None, ifname: str, wanted: list[Address], announce: bool = False
    ) -> bool:
        """Exactly `wanted` on `ifname` (IPv6 link-local addresses are the kernel's, VRRP ones
        keepalived's); True if it changed. With `announce`, IPv4 addresses it adds are announced
        by gratuitous ARP: a neighbour that asked for one while it was missing would otherwise
        wait for its next try, a second later."""
        sock = self.socket(netns)
        index = sock.link_lookup(ifname=ifname)[0]
        present = set()
        for msg in sock.get_addr(index=index):
            cidr = f"{msg.get('address')}/{msg['prefixlen']}"
            if ipaddress.ip_interface(cidr).ip.is_link_local:
                continue
            present.add(cidr)
        desired = {a.cidr: a for a in wanted if not a.vrrp}
        present -= {a.cidr for a in wanted if a.vrrp}  # keepalived's to add and remove
        for cidr in present - desired.keys():
            address, prefixlen = cidr.split("/")
            sock.addr("del", index=index, address=address, prefixlen=int(prefixlen))
        added = sorted(desired.keys() - present)
        for cidr in added:
            address, prefixlen = cidr.split("/")
            flags = IFA_F_NODAD if desired[cidr].nodad else 0
            sock.addr("add", index=index, address=address, prefixlen=int(prefixlen), flags=flags)
        fresh = [cidr.split("/")[0] for cidr in added if ":" not in cidr]
        if announce and fresh:
            run_in_namespace(netns, lambda: _announce_once(ifname, fresh))
        return present != desired.keys()


def _announce_once(ifname: str, addresses: list[str]) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:  # sends, receives nothing
        sock.bind((ifname, 0))
        send_garp(sock, addresses)


def send_garp(sock: socket.socket, addresses: list[str]) -> None:
    """Gratuitous ARP for `addresses` on `sock`, a packet socket bound to their interface."""
    for frame in garp_frames(sock.getsockname()[4], addresses):
        sock.send(frame)


def garp_frames(mac: bytes, addresses: list[str]) -> list[bytes]:
    """Broadcast ARP requests from and for each address: its holder is now `mac`."""
    frames = []
    for address in addresses:
        ip = socket.inet_aton(address)
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\x00" * 6 + ip
        frames.append(b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP) + arp)
    return frames


def _bring_up(peer: VethPeer | None) -> None:
    """Up (and into its bridge) the new far end of a veth, from inside its namespace.

    A transient socket: instance namespaces are many, and each is set up once.
    pyroute2 opens its socket on the first request, so in this thread's namespace.
    """
    assert peer is not None
    with IPRoute() as sock:
        changes: dict[str, object] = {"state": "up"}
        if peer.master:
            changes["master"] = sock.link_lookup(ifname=peer.master)[0]
        sock.link("set", index=sock.link_lookup(ifname=peer.name)[0], **changes)


def _delete(peer: VethPeer | None) -> None:
    """Delete the link named as `peer`, from inside its namespace (a transient socket)."""
    assert peer is not None
    with IPRoute() as sock:
        sock.link("del", index=sock.link_lookup(ifname=peer.name)[0])


def _bridge_netfilter(on: bool) -> dict[str, int]:
    return {"br_nf_call_iptables": int(on), "br_nf_call_ip6tables": int(on)}


def _same_kind(current: ObservedLink, link: Link) -> bool:
    if link.kind == "external":
        return True
    if current.kind != link.kind:
        return False
    if link.kind == "vlan":  # a subport moved to another VLAN keeps its tap's name
        return current.vlan_id == link.vlan_id
    if link.kind == "vxlan":  # a new VTEP address, or the ARP responder, needs a new device
        return (current.vni, current.vxlan) == (link.vni, (link.local_ip, link.proxy))
    return True
