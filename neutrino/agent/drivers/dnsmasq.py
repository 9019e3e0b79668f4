"""dnsmasq, one process per network in its qdhcp- namespace.

Host entries, options and the ports' DNS names live in files that dnsmasq
re-reads on SIGHUP, so a port added or renamed does not restart it; only a
change of its command line (a subnet's range, the domain) does, a host entry
gone (see _hosts_forgotten), and a change on a network whose host entries carry
tags (see _has_tagged_hosts). It answers DNS on the network's DHCP address, for
the names of the network's ports only (no upstream servers), as Neutron's does.
The command line is compared with /proc/<pid>/cmdline, and its namespace with
the one of the network's name, so what runs is what is observed, across agent
restarts and namespaces deleted by hand.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
from pathlib import Path

from neutrino.agent.drivers.netns import runs_in, terminate
from neutrino.plan.state import DhcpServer


class DnsmasqDriver:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "dhcp"
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, network_id: str) -> Path:
        return self.root / network_id

    def argv(self, server: DhcpServer) -> list[str]:
        where = self._dir(server.network_id)
        # --user=root: it re-reads its files from the agent's private state dir,
        # which "nobody" cannot enter.
        return [
            "dnsmasq",
            "--conf-file=",
            "--user=root",
            "--no-hosts",
            "--no-resolv",
            "--bind-interfaces",
            f"--interface={server.interface}",
            "--except-interface=lo",
            "--leasefile-ro",
            "--dhcp-authoritative",
            "--no-ping",
            f"--pid-file={where / 'pid'}",
            f"--dhcp-hostsfile={where / 'hosts'}",
            f"--dhcp-optsfile={where / 'opts'}",
            f"--addn-hosts={where / 'names'}",
            *(f"--dhcp-range={r}" for r in server.ranges),
            *([f"--domain={server.domain}"] if server.domain else []),
        ]

    def running_pid(self, network_id: str) -> int | None:
        try:
            pid = int((self._dir(network_id) / "pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid if cmdline.startswith(b"dnsmasq\0") else None

    def ensure(self, server: DhcpServer, replugged: bool = False) -> str | None:
        """Make dnsmasq serve `server`; returns what was done, None if nothing.

        `replugged`: its interface was made again, and the socket dnsmasq bound to the old
        one (by index) hears nothing more."""
        where = self._dir(server.network_id)
        where.mkdir(parents=True, exist_ok=True)
        hosts = where / "hosts"
        before = hosts.read_text() if hosts.exists() else None
        tagged = _has_tagged_hosts(before or "")
        # A full sync of an unchanged network (50,000 ports on one) reads its hosts only once.
        changed = before != server.hosts
        forgotten = changed and _hosts_forgotten(before or "", server.hosts)
        if changed:
            _write(hosts, server.hosts)
        changed |= _write_if_changed(where / "opts", server.opts)
        changed |= _write_if_changed(where / "names", server.names)
        argv = self.argv(server)
        pid = self.running_pid(server.network_id)
        if (
            pid is not None
            and _cmdline(pid) == argv
            and runs_in(pid, server.netns)
            and not replugged
        ):
            if not changed:
                return None
            if not tagged and not forgotten:
                os.kill(pid, signal.SIGHUP)
                return "reloaded"
        if pid is not None:
            terminate(pid)  # so that a successor can bind the DHCP port
        subprocess.run(
            ["ip", "netns", "exec", server.netns, *argv],
            check=True,
            capture_output=True,
            timeout=10,
        )
        return "restarted" if pid is not None else "started"

    def stop(self, network_id: str) -> None:
        pid = self.running_pid(network_id)
        if pid is not None:
            terminate(pid)
        shutil.rmtree(self._dir(network_id), ignore_errors=True)

    def served_networks(self) -> set[str]:
        return {p.name for p in self.root.iterdir() if p.is_dir()}


def _has_tagged_hosts(hosts: str) -> bool:
    """Whether host entries set a tag (a port's own DHCP options).

    dnsmasq (2.90 and older) links a served host's tags to stack memory of the
    exchange, and frees them when a SIGHUP re-reads the hosts: it crashes. A
    network whose hosts carry tags is restarted instead; its leases are static,
    so clients renew against the new process as against the old.
    """
    return ",set:" in hosts


def _hosts_forgotten(before: str, hosts: str) -> bool:
    """Whether host entries go (a port deleted, or its MAC changed; a new name is no loss).

    dnsmasq keeps the lease it gave such an entry, in memory, through a SIGHUP: the address
    would not be offered to the MAC that has it now. Only a new process forgets it; the
    other leases are static, so their clients renew against it as against the old one.
    """
    return bool(_unnamed(before) - _unnamed(hosts))


def _unnamed(hosts: str) -> set[tuple[str, ...]]:
    """Host entries (`MAC,NAME,ADDRESS[,id:...][,set:...]`, DHCPv6's `MAC,tag:dhcpv6,NAME,
    [ADDRESS]`) without their names."""
    return {
        tuple(field for field in line.split(",") if not _is_name(field))
        for line in hosts.splitlines()
    }


def _is_name(field: str) -> bool:
    """Whether a host entry's field is its name: neither a MAC, an IPv6 address nor a `tag:`,
    `set:` or `id:` (all of which have a colon), nor an IPv4 address."""
    if ":" in field:
        return False
    try:
        ipaddress.IPv4Address(field)
    except ValueError:
        return True
    return False


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except FileNotFoundError:
        return []


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    _write(path, text)
    return True


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
