"""UDP and SCTP load balancing: the nftables tables of plan.l4 in each load balancer's
namespace, the health checks that decide which members they hold, and the listeners' counters.

Each of the two tables (balancing; limits and counters) is applied like the host's firewall
(drivers/nftables.py, one transaction replacing it whole) and only when its plan or the
kernel's listing moved from what was last applied, so a sync over an unchanged namespace
touches nothing and a table edited or deleted by hand is put back. The namespace forwards
(DNATed packets leave by the interface they came in on) and sends no ICMP redirects for them.

Statistics are reported with haproxy's: the counting table's counters, and as active
connections the listener's flows that conntrack held at the sync (`statistics`).

Health checks run in the agent, as keepalived runs them for the amphora: a thread probes each
member of a monitored pool every `delay` seconds from inside the namespace, at its monitor
address and port, within `timeout` seconds:

- UDP-CONNECT: a datagram to the member; an ICMP port (or host) unreachable marks it down,
  a reply or silence up (Octavia's check: `nc -uz`).
- SCTP: an INIT chunk over a raw socket (this kernel has no SCTP sockets); an INIT-ACK or an
  ABORT from the member marks it up, silence down. The member holds no state for an INIT.
- TCP: a connection accepted; HTTP: a request answered with one of the expected codes.

A member's first result sets its state; after that `rise` successes in a row bring it up and
`fall` failures take it down (Octavia's max_retries and max_retries_down). Until its first
result a member counts as up. States are reported as haproxy's are (UP, DOWN; NO_CHECK
without a monitor), which services/loadbalancers turns into operating statuses.
"""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from neutrino.agent.drivers import conntrack
from neutrino.agent.drivers.netns import NETNS_DIR, NetnsThread
from neutrino.agent.drivers.nftables import NftDriver, listing_digest
from neutrino.agent.drivers.state import remembered
from neutrino.plan.l4 import (
    COUNTING,
    TABLE,
    mark,
    render_l4_counting,
    render_l4_table,
    vip_family,
)
from neutrino.plan.state import Firewall, L4Listener, L4Member, L4Monitor, LoadBalancer

UP, DOWN, NO_CHECK = "UP", "DOWN", "NO_CHECK"
TICK = 0.1  # seconds between looks for checks that are due
IPPROTO_SCTP = 132


@dataclass
class Check:
    """One member's health under one monitor."""

    member: L4Member
    monitor: L4Monitor
    state: str | None = None  # None until the first result
    streak: int = 0  # results in a row against the current state
    due: float = 0.0
    running: bool = False


@dataclass
class Space:
    """A load balancer namespace we balance in: its worker thread, nft, what we applied."""

    lb_id: str
    netns: str
    inode: int
    worker: NetnsThread
    nft: NftDriver
    # per table name, what was applied: (plan digest, listing digest)
    applied: dict[str, tuple[str, str]] = field(default_factory=dict)
    tables: tuple[tuple[str, str], ...] = ()  # the tables applied: (family, name)
    checks: dict[str, Check] = field(default_factory=dict)  # member id -> check
    flows: dict[int, dict[tuple[str, int], int]] = field(default_factory=dict)  # at the last sync


class L4Driver:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir  # per load balancer, what was applied: an agent restart keeps it
        self.root.mkdir(parents=True, exist_ok=True)
        self._spaces: dict[str, Space] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="l4-check")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None  # started with the first namespace

    def served(self) -> set[str]:
        return set(self._spaces) | {path.stem for path in self.root.glob("*.json")}

    def ensure(self, lb: LoadBalancer) -> str | None:
        """Balance `lb`'s UDP and SCTP listeners; what was done, None if nothing."""
        if not lb.l4:
            if lb.key not in self.served():
                return None
            # after a restart too (nothing applied by this process): whichever family it was
            self._space(lb).tables = tuple(
                (kind, table) for kind in ("ip", "ip6") for table in (TABLE, COUNTING)
            )
            self.stop(lb.key)
            return "removed"
        space = self._space(lb)
        self._watch(space, lb.l4)
        healthy = frozenset(
            member.id
            for listener in lb.l4
            for member in listener.members
            if self._state(space, member.id) in (UP, NO_CHECK)
        )
        space.flows = conntrack.flows_to_members(space.netns, vip_family(lb.l4) == "ip6")
        firewalls = (
            render_l4_table(lb.l4, healthy, self._member_flows(space, lb.l4)),
            render_l4_counting(lb.l4),
        )
        applied = space.applied or self._stored(lb.key)
        changed = [firewall for firewall in firewalls if self._moved(space, applied, firewall)]
        if not changed:
            return None
        space.worker.call(_forward)
        wanted = tuple(table for firewall in firewalls for table in firewall.tables)
        if gone := tuple(table for table in space.tables if table not in wanted):
            space.nft.delete(gone)  # the VIP changed family
        for firewall in changed:
            space.nft.replace(firewall)
            listing = space.nft.listing(firewall.tables) or ""
            applied[firewall.tables[0][1]] = (firewall.digest, listing_digest(listing))
        space.applied, space.tables = applied, wanted
        (self.root / f"{lb.key}.json").write_text(json.dumps(applied))
        return "applied"

    def statistics(self, lb: LoadBalancer) -> dict[str, dict[str, int | str]]:
        """Per UDP and SCTP listener id, its counters as haproxy's frontends report them: those
        of the counting table (`worker`: its handle, a table made again counts from zero) and the
        flows conntrack held at the last sync."""
        space = self._spaces.get(lb.key)
        if space is None or not lb.l4:
            return {}
        found = space.nft.counters(vip_family(lb.l4), COUNTING)
        if found is None:
            return {}
        handle, counters = found
        worker = f"{COUNTING} {handle}@{space.inode}"
        return {
            listener.id: {
                "worker": worker,
                "active_connections": sum(space.flows.get(mark(listener), {}).values()),
                "total_connections": counters.get(f"new-{listener.id}", (0, 0))[0],
                "bytes_in": counters.get(f"in-{listener.id}", (0, 0))[1],
                "bytes_out": counters.get(f"out-{listener.id}", (0, 0))[1],
                "request_errors": 0,  # as the amphora's: UDP and SCTP have no requests to fail
            }
            for listener in lb.l4
        }

    def observe(self, lb_id: str) -> dict[str, str]:
        """Members' states by member id (those of enabled members of UDP and SCTP listeners)."""
        space = self._spaces.get(lb_id)
        if space is None:
            return {}
        with self._lock:
            return {c.member.id: c.state or UP for c in space.checks.values()}

    def _state(self, space: Space, member_id: str) -> str:
        with self._lock:
            check = space.checks.get(member_id)
            return NO_CHECK if check is None else check.state or UP

    def stop(self, lb_id: str) -> None:
        """Forget a load balancer; its table goes with its namespace (or its last listener)."""
        (self.root / f"{lb_id}.json").unlink(missing_ok=True)
        space = self._spaces.pop(lb_id, None)
        if space is None:
            return
        if space.tables:
            space.nft.delete(space.tables)
        self._close(space)

    def close(self) -> None:
        """Stop checking and release the namespaces' threads; the tables stay as they are."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._stop.clear()
        for lb_id in list(self._spaces):
            self._close(self._spaces.pop(lb_id))

    # -- namespaces and tables ------------------------------------------------------------
    @staticmethod
    def _moved(space: Space, applied: dict[str, tuple[str, str]], firewall: Firewall) -> bool:
        """Whether the plan or the kernel's table moved from what was applied."""
        listing = space.nft.listing(firewall.tables)
        return listing is None or applied.get(firewall.tables[0][1]) != (
            firewall.digest,
            listing_digest(listing),
        )

    def _stored(self, lb_id: str) -> dict[str, tuple[str, str]]:
        stored = remembered(self.root / f"{lb_id}.json")
        return {table: (plan, listing) for table, (plan, listing) in stored.items()}

    def _space(self, lb: LoadBalancer) -> Space:
        inode = os.stat(NETNS_DIR / lb.netns).st_ino
        space = self._spaces.get(lb.key)
        if space is not None and space.inode == inode:
            return space
        if space is not None:  # the namespace was made again: a fresh worker in the new one
            self._close(space)
        worker = NetnsThread(lb.netns)
        nft = NftDriver(worker, terse=True, stateless=True)
        space = Space(lb.key, lb.netns, inode, worker, nft)
        self._spaces[lb.key] = space
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="l4-health")
            self._thread.start()
        return space

    @staticmethod
    def _close(space: Space) -> None:
        space.worker.close()

    @staticmethod
    def _member_flows(space: Space, listeners: tuple[L4Listener, ...]) -> dict[str, int]:
        """Member id -> the listener's flows conntrack holds for it."""
        return {
            member.id: space.flows.get(mark(listener), {}).get((member.address, member.port), 0)
            for listener in listeners
            for member in listener.members
        }

    # -- health ---------------------------------------------------------------------------
    def _watch(self, space: Space, listeners: tuple[L4Listener, ...]) -> None:
        """Check the members of monitored pools; a changed monitor or member starts afresh."""
        wanted = {
            member.id: (member, listener.monitor)
            for listener in listeners
            if listener.monitor is not None
            for member in listener.members
        }
        with self._lock:
            for member_id in set(space.checks) - set(wanted):
                del space.checks[member_id]
            for member_id, (member, monitor) in wanted.items():
                check = space.checks.get(member_id)
                if check is None or (check.member, check.monitor) != (member, monitor):
                    assert monitor is not None
                    space.checks[member_id] = Check(member, monitor)

    def _run(self) -> None:
        while not self._stop.wait(TICK):
            now = time.monotonic()
            with self._lock:
                due = [
                    (space, check)
                    for space in list(self._spaces.values())
                    for check in space.checks.values()
                    if not check.running and check.due <= now
                ]
                for _, check in due:
                    check.running, check.due = True, now + check.monitor.delay
            for space, check in due:
                self._pool.submit(self._check, space, check)

    def _check(self, space: Space, check: Check) -> None:
        try:
            healthy = PROBES[check.monitor.type](space.worker, check.member, check.monitor)
        except Exception:  # noqa: BLE001 - a probe that cannot run finds nothing up
            healthy = False
        with self._lock:
            check.running = False
            result = UP if healthy else DOWN
            if check.state is None or check.state == result:
                check.state, check.streak = result, 0
                return
            check.streak += 1
            if check.streak >= (check.monitor.rise if healthy else check.monitor.fall):
                check.state, check.streak = result, 0


def _forward() -> None:
    """In the namespace: forward (DNATed packets go back out of the VIP's interface) without
    telling clients of a shorter way (ICMP redirects)."""
    for path, value in (
        ("ipv4/ip_forward", "1"),
        ("ipv6/conf/all/forwarding", "1"),
        ("ipv4/conf/all/send_redirects", "0"),
    ):
        target = Path("/proc/sys/net") / path
        if target.exists() and target.read_text().strip() != value:
            target.write_text(value + "\n")


def _socket(worker: NetnsThread, address: str, kind: int, proto: int = 0) -> socket.socket:
    """A socket of the namespace (a socket belongs to the namespace it was made in)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return worker.call(lambda: socket.socket(family, kind, proto))


def probe_udp(worker: NetnsThread, member: L4Member, monitor: L4Monitor) -> bool:
    with _socket(worker, member.check_address, socket.SOCK_DGRAM) as sock:
        sock.settimeout(monitor.timeout)
        sock.connect((member.check_address, member.check_port))
        sock.send(b"\n")
        try:
            sock.recv(512)
        except TimeoutError:
            return True  # no ICMP error: something may be listening
        except OSError:  # ECONNREFUSED (port unreachable), EHOSTUNREACH, ...
            return False
        return True


def probe_tcp(worker: NetnsThread, member: L4Member, monitor: L4Monitor) -> bool:
    with _socket(worker, member.check_address, socket.SOCK_STREAM) as sock:
        sock.settimeout(monitor.timeout)
        try:
            sock.connect((member.check_address, member.check_port))
        except OSError:
            return False
        return True


def probe_http(worker: NetnsThread, member: L4Member, monitor: L4Monitor) -> bool:
    with _socket(worker, member.check_address, socket.SOCK_STREAM) as sock:
        sock.settimeout(monitor.timeout)
        try:
            sock.connect((member.check_address, member.check_port))
            sock.sendall(
                f"{monitor.http_method} {monitor.url_path} HTTP/1.0\r\n"
                f"Host: {member.check_address}\r\n\r\n".encode()
            )
            status = sock.recv(64).split(b" ", 2)
        except OSError:
            return False
    return len(status) > 1 and status[1].isdigit() and _expected(monitor, int(status[1]))


def _expected(monitor: L4Monitor, code: int) -> bool:
    codes = monitor.expected_codes
    if "-" in codes:
        low, high = (int(c) for c in codes.split("-"))
        return low <= code <= high
    return str(code) in codes.split(",")


def probe_sctp(worker: NetnsThread, member: L4Member, monitor: L4Monitor) -> bool:
    """An SCTP INIT from a raw socket; up on the member's INIT-ACK or ABORT."""
    ipv6 = ":" in member.check_address
    source_port, tag = random.randint(1024, 65535), random.randint(1, 2**32 - 1)
    init = struct.pack("!BBHIIHHI", 1, 0, 20, tag, 65535, 1, 1, tag)
    header = struct.pack("!HHII", source_port, member.check_port, 0, 0)
    packet = header[:8] + struct.pack("<I", crc32c(header + init)) + init
    with _socket(worker, member.check_address, socket.SOCK_RAW, IPPROTO_SCTP) as sock:
        sock.sendto(packet, (member.check_address, 0))
        deadline = time.monotonic() + monitor.timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, sender = sock.recvfrom(2048)
            except TimeoutError:
                return False
            if not ipv6:
                data = data[(data[0] & 0x0F) * 4 :]  # IPv4 raw sockets see the IP header
            if sender[0] != member.check_address or len(data) < 13:
                continue
            ports, kind = struct.unpack("!HH", data[:4]), data[12]
            if ports == (member.check_port, source_port) and kind in (2, 6):  # INIT-ACK, ABORT
                return True
    return False


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), SCTP's checksum."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


PROBES: dict[str, Callable[[NetnsThread, L4Member, L4Monitor], bool]] = {
    "UDP-CONNECT": probe_udp,
    "SCTP": probe_sctp,
    "TCP": probe_tcp,
    "HTTP": probe_http,
}
