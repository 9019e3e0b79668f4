"""The agent's reconciler: make one host's kernel match the plan.

Level-based, never edge-based. Each sync starts from a complete model
snapshot, compiles the host's desired state (neutrino.plan), observes the
kernel, and changes only what differs. It never asks "what event happened?",
so a missed event, an agent restart and drift (a bridge, tap, rule or table
removed by hand) are all handled by the same code: the next sync repairs them.
A sync over an unchanged kernel does nothing: no link is re-created, no table
is replaced, dnsmasq is neither restarted nor signalled.

What the agent owns, and so repairs: the namespaces it names (the host's,
qrouter-, qdhcp-, qlbaas-, lab instances' ninst-, the outside); bridges, veth,
VLAN and VXLAN links and their state (up, master, MAC, br_netfilter, IPv6 off on
the links it makes in the host's namespace: set when made, checked on full syncs), both
ends of a veth except an instance's eth0 once made (the instance's own, as a
VM's NIC is); addresses and routes (but an ACTIVE_STANDBY VIP: keepalived's); the sysctls it
sets (a router's ip_forward, the host's bridge-nf-call-*, an amphora's
ip_nonlocal_bind); nftables tables, sets, maps and their elements; taps' tbf
qdiscs (QoS); dnsmasq, haproxy and keepalived (the process, the namespace it
runs in, its files) and lab instances' DHCP clients. A full sync (`verify`; the
runner's periodic one) reads all of it back (a router's NAT tables and its
floating IPs' local routes when the kernel tells that something else moved
them: drivers/routers.py); the syncs in between trust what they applied for
what is costly to read (routers' addresses, routes and NAT maps, far ends of
veths in routers, DHCP and load balancers).

Two kernel facts shape the repair. A namespace deleted by hand lives on, with
its links, while a process or a thread is inside it: so the veths with an end
in a namespace made again are made again, and a dnsmasq, haproxy or DHCP
client found in a namespace that lost its name is replaced. And a socket bound
to an interface (dnsmasq's, a DHCP client's) hears nothing once that
interface is made again: their processes restart with it.

Steps, in the order that keeps the host safe: namespaces; the firewall
(before any new tap appears, so a port is never briefly unfiltered); links,
bridges first; VXLAN devices' forwarding entries and ARP responders (drivers/fdb.py,
drivers/arp.py); addresses;
taps' qdiscs; routers (forwarding, routes, the NAT table and its floating IP
elements: drivers/routers.py); dnsmasq (host entries, then
SIGHUP); lab instances' DHCP clients; then garbage: links and namespaces with our names that the
plan no longer wants. Every object we create has a deterministic name, which
is how we find what we own after a restart; we touch nothing else.

nftables: a sync first reads the namespace's nftables generation, which every
commit (ours or a hand edit) bumps: unchanged since our last commit, the
tables are as we left them, and a new plan changes them in one transaction,
only in the plan's parts that moved and there object by object (set elements
added and deleted, a port's or a group's chains flushed and refilled:
NftDriver.update). Otherwise the kernel's listing is compared, object by
object, with digests of the one last read: the chains, sets and maps that
differ (and those we changed since that read) are made again as we applied
them, in one transaction (NftDriver.repair). The listing is read again then,
after a replace, and on a full sync that follows changes: never on a change's
own path. A table missing or changed itself, or an agent that does not know
what it applied (just started, with another plan), replaces the tables whole,
in one transaction (`delete table` + `add table` commit atomically, and
conntrack entries live outside the tables, so established flows survive).

Between two full syncs, the runner applies what a batch of the feed changed
key by key (plan.keyed, `apply_changed`): the firewall, a router's rules, a
floating IP's elements and local route, a port's tap and its instance's DHCP
client, a network's links, DHCP server (its hosts file rewritten, dnsmasq
told by SIGHUP) and VXLAN entries; the rest of the host (load balancers,
trunks, QoS, a network wanted here or no more) with the whole plan.

Errors are per object: a failing link or dnsmasq is reported in the SyncReport
and retried on the next sync, while the rest of the host converges.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neutrino.agent import instance as lab
from neutrino.agent.drivers import arp, fdb, tc
from neutrino.agent.drivers import netns as ns
from neutrino.agent.drivers.dnsmasq import DnsmasqDriver
from neutrino.agent.drivers.haproxy import HaproxyDriver
from neutrino.agent.drivers.keepalived import KeepalivedDriver
from neutrino.agent.drivers.l4 import L4Driver
from neutrino.agent.drivers.links import LinkDriver, ObservedLink
from neutrino.agent.drivers.nftables import NftDriver, NftError, listing_objects, set_elements
from neutrino.agent.drivers.radvd import RadvdDriver
from neutrino.agent.drivers.routers import RouterDriver, RoutersResult
from neutrino.agent.drivers.state import remembered
from neutrino.plan import Address, DesiredState, HostConfig, VethPeer, compile_host, names
from neutrino.plan.keyed import Changed, KeyedPlan
from neutrino.plan.routers import with_floatingips
from neutrino.plan.state import Firewall, Link, LoadBalancer

log = logging.getLogger("neutrino.agent")
ACTIVE, DOWN = "ACTIVE", "DOWN"


@dataclass
class SyncReport:
    revision: int
    ports: dict[str, str]  # port id -> ACTIVE | DOWN
    errors: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # empty: the kernel was already right
    seconds: float = 0.0
    # id -> revision, members' health, listeners' counters
    loadbalancers: dict[str, dict[str, Any]] = field(default_factory=dict)
    floatingips: dict[str, str] = field(default_factory=dict)  # id -> ACTIVE | DOWN


class Agent:
    def __init__(self, host: HostConfig, state_dir: Path | str) -> None:
        self.host = host
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.links = LinkDriver()
        self.dnsmasq = DnsmasqDriver(self.state_dir)
        self.radvd = RadvdDriver(self.state_dir)
        self.haproxy = HaproxyDriver(self.state_dir)
        self.keepalived = KeepalivedDriver(self.state_dir)
        self.l4 = L4Driver(self.state_dir / "l4")
        self.routers = RouterDriver(self.links, self.state_dir / "routers")
        self._nft: NftDriver | None = None
        # Each load balancer instance's health (by its key) as the last sync observed it.
        self.synced_health: dict[str, dict[str, str]] = {}
        self._worker: ns.NetnsThread | None = None
        self._worker_inode: int | None = None
        self._lock = threading.Lock()
        self._ports: dict[str, str] = {}  # the ports' statuses, as the last apply saw them
        self._devices: dict[str, str] = {}  # port id -> its device, as last applied
        # The devices someone else makes (a VM's tap, a container's veth, a NIC), by name, as
        # last applied: plugged again whenever they come (replug).
        self._external: dict[str, Link] = {}
        self._absent: frozenset[str] = frozenset()  # ports whose such device is not there
        self._applied_firewall: Firewall | None = None  # the tables as this agent made them
        self._stored_firewall: dict[str, Any] | None = None  # firewall.json as last written

    # --- public --------------------------------------------------------------------

    def sync(self, model: dict[str, Any]) -> SyncReport:
        """Converge the kernel on `model` (a full snapshot); safe to call again at any time."""
        return self.apply(compile_host(model, self.host))

    def apply(self, desired: DesiredState, verify: bool = True) -> SyncReport:
        """Converge on `desired`. `verify=False` trusts what this agent applied last for the
        state that is costly to read back (routers' addresses, routes and NAT maps): the
        runner's syncs between two periodic full ones, which are driven by changes."""
        with self._lock:
            started = time.perf_counter()
            report = SyncReport(revision=desired.revision, ports={}, errors=list(desired.problems))
            fresh = self._ensure_namespaces(desired, report)
            self._ensure_bridge_netfilter(report)
            self._ensure_firewall(desired.firewall, report, verify)
            observed, replugged = self._ensure_links(desired, report, verify, fresh)
            self._ensure_fdb(desired, report, observed.get(self.host.netns, {}))
            self._ensure_addresses(desired, report)
            self._ensure_shapers(desired, report)
            self._ensure_routers(desired, report, verify, fresh)
            self._ensure_dhcp(desired, report, replugged)
            self._ensure_advertisers(desired, report, replugged)
            self._ensure_instances(desired, report, replugged)
            self._ensure_loadbalancers(desired, report)
            self._collect_namespaces(desired, report)
            self._devices = dict(desired.ports)
            self._external = {
                link.name: link
                for link in desired.links
                if link.kind == "external" and link.netns == self.host.netns
            }
            host_links = observed.get(self.host.netns, {})
            report.ports = self._ports = self._statuses(host_links)
            self._absent = self._absent_devices(host_links)
            report.seconds = time.perf_counter() - started
            return report

    def replug(self, moved: set[str]) -> bool:
        """Some links of the host came, changed or went (`moved`: their names; "*": maybe any):
        plug the devices among them that someone else made as the last plan applied said; True
        when a port's status changed with them."""
        with self._lock:
            watched = self._external.keys() | set(self._devices.values())
            if "*" not in moved and not moved & watched:
                return False
            observed = self.links.observe(self.host.netns)
            for name, link in self._external.items():
                if name in observed and ("*" in moved or name in moved):
                    try:
                        self.links.ensure(link, observed)
                    except Exception as error:  # gone meanwhile: the next sync looks again
                        log.debug("replug %s: %s", name, error)
            host_links = self.links.observe(self.host.netns)
            before = (self._ports, self._absent)
            self._ports = self._statuses(host_links)
            self._absent = self._absent_devices(host_links)
            return (self._ports, self._absent) != before

    def device_report(self) -> dict[str, Any]:
        """The ports' statuses as last seen (`ports`: ACTIVE while their device is there and
        up), and the ports whose device someone else makes is not there at all (`absent`)."""
        with self._lock:
            return {"ports": dict(self._ports), "absent": sorted(self._absent)}

    def _absent_devices(self, host_links: dict[str, ObservedLink]) -> frozenset[str]:
        missing = self._external.keys() - host_links.keys()  # the devices others make: few
        if not missing:
            return frozenset()
        return frozenset(port_id for port_id, device in self._devices.items() if device in missing)

    def _statuses(self, host_links: dict[str, ObservedLink]) -> dict[str, str]:
        return {
            port_id: ACTIVE if (link := host_links.get(dev)) is not None and link.up else DOWN
            for port_id, dev in self._devices.items()
        }

    def apply_changed(self, plan: KeyedPlan, changed: Changed, revision: int) -> SyncReport | None:
        """Converge on the pieces of `plan` that `changed` names and on nothing else: the
        firewall, ports and networks, routers' rules and addresses, floating IPs' elements.
        None (nothing done) when the host's base or a router's links moved: that takes `apply`
        of the whole."""
        if changed.base or changed.links_moved():
            return None
        with self._lock:
            started = time.perf_counter()
            report = SyncReport(revision=revision, ports={})
            if changed.firewall and plan.firewall is not None:
                self._ensure_firewall(plan.firewall, report)
            if changed.ports or changed.networks:
                self._ensure_pieces(plan, changed, report)
            report.ports = dict(self._ports)
            result = RoutersResult()
            for router_id in sorted(changed.touched_routers()):
                piece = plan.routers.get(router_id)
                if piece is None:
                    continue
                before, after = changed.floatingips_of(router_id)
                try:
                    if router_id in changed.routers or not self.routers.ensure_elements(
                        with_floatingips(piece, after, only=True),
                        with_floatingips(piece, before, only=True),
                        result,
                    ):
                        router = plan.router_with_fips(router_id)
                        self.routers.ensure(router, result, verify=False, fresh=False)
                        result.floatingips.update({f.id: ACTIVE for f in router.floatingips})
                        result.floatingips.update(
                            {p.floatingip_id: ACTIVE for p in router.port_forwardings}
                        )
                except Exception as error:
                    result.errors.append(f"router {router_id}: {error}")
                    self.routers.forget(router_id)
                    failed = plan.router_with_fips(router_id)
                    result.floatingips.update({f.id: DOWN for f in failed.floatingips})
                    result.floatingips.update(
                        {p.floatingip_id: DOWN for p in failed.port_forwardings}
                    )
            report.changes += result.changes
            report.errors += result.errors
            report.floatingips = result.floatingips
            report.seconds = time.perf_counter() - started
            return report

    def _ensure_pieces(self, plan: KeyedPlan, changed: Changed, report: SyncReport) -> None:
        """The links, addresses, DHCP servers and instances' DHCP clients of the ports and
        networks that changed; the links and namespaces they no longer want go."""
        assert plan.base is not None
        ports = [after for _, after in changed.ports.values() if after is not None]
        nets = [after for _, after in changed.networks.values()]
        part = DesiredState(
            revision=report.revision,
            host=self.host.name,
            namespaces=tuple(
                sorted(
                    {p.netns for p in ports if p.netns}
                    | {n for net in nets for n in net.namespaces}
                )
            ),
            links=(
                *(link for net in nets for link in net.links),
                *(l for p in ports for l in p.links),
            ),
            addresses=tuple(a for net in nets for a in net.addresses),
            dhcp=tuple(server for net in nets for server in net.dhcp),
            instances=tuple(p.instance for p in ports if p.instance),
            firewall=Firewall((), (), ""),
            ports={},
            fdb=tuple(entry for net in nets for entry in net.fdb),
            arp=tuple(entry for net in nets for entry in net.arp),
        )
        fresh = self._ensure_namespaces(part, report)
        observed, replugged = self._ensure_links(part, report, False, fresh, collect=False)
        host_links = observed.get(self.host.netns, {})
        overlays = {link.name for link in part.links if link.kind == "vxlan"}
        if overlays:  # read only when a VXLAN network changed
            self._ensure_fdb(part, report, {n: host_links[n] for n in overlays if n in host_links})
        self._ensure_addresses(part, report)
        self._ensure_dhcp(part, report, replugged)
        self._ensure_instances(part, report, replugged, collect=False)
        wanted = {(link.netns, link.name) for link in part.links}
        in_use = {p.netns for p in plan.base.ports.values()}
        for port_id, (before, after) in sorted(changed.ports.items()):
            for link in before.links if before is not None else ():
                present = host_links.get(link.name)
                if (link.netns, link.name) in wanted or present is None:
                    continue
                self._drop_host_link(present, set(), report)
            if before is None:
                continue
            nic = before.instance
            if nic is not None and nic not in part.instances:
                lab.stop_dhcp_client(self.state_dir, nic.netns, nic.ifname)
                report.changes.append(f"stop dhcp client {nic.netns} {nic.ifname}")
            if before.netns and before.netns not in in_use:
                self._delete_namespace(before.netns)
                report.changes.append(f"delete namespace {before.netns}")
        for port_id, (before, _) in changed.ports.items():
            self._ports.pop(port_id, None)
            self._devices.pop(port_id, None)
            for link in before.links if before is not None else ():
                self._external.pop(link.name, None)
        self._external.update(
            {link.name: link for p in ports for link in p.links if link.kind == "external"}
        )
        devices = {p.port["id"]: p.device for p in ports}
        devices.update({port_id: dev for net in nets for port_id, dev in net.devices.items()})
        self._devices.update(devices)
        host_links = self.links.observe(self.host.netns)
        for port_id, dev in devices.items():
            seen = host_links.get(dev)
            self._ports[port_id] = ACTIVE if seen is not None and seen.up else DOWN
        self._absent = self._absent_devices(host_links)

    def teardown(self) -> None:
        """Remove everything this agent made: namespaces, processes, links, tables, state."""
        with self._lock:
            self.routers.reset()  # its threads sit in the router namespaces
            for network_id in self.dnsmasq.served_networks():
                self.dnsmasq.stop(network_id)
            for key in self.radvd.served():
                self.radvd.stop(key)
            for key in self.keepalived.served():
                self.keepalived.stop(key)
            for lb_id in self.haproxy.served():
                self.haproxy.stop(lb_id)
            for lb_id in self.l4.served():
                self.l4.stop(lb_id)
            for name in self._owned_namespaces():
                self._delete_namespace(name)
            if self.host.netns is not None:
                self._close_worker()
                self.links.forget(self.host.netns)
                ns.delete_namespace(self.host.netns)
            else:
                self._firewall().delete(compile_host({}, self.host).firewall.tables)
                for link in self.links.observe(None).values():
                    if self._owns_host_link(link, set()):
                        self.links.delete(None, link.name)
            self._collect_outside()
            self.close()
            self._applied_firewall = self._stored_firewall = None
            (self.state_dir / "firewall.json").unlink(missing_ok=True)

    def close(self) -> None:
        """Release sockets and threads; the kernel state stays as it is."""
        self.routers.close()
        self.l4.close()
        self._close_worker()
        self.links.close()

    # --- namespaces ---------------------------------------------------------------

    def _owned_namespaces(self) -> set[str]:
        prefixes = tuple(f"{self.host.ns_prefix}{kind}" for kind in names.NAMESPACE_KINDS)
        return {name for name in ns.list_namespaces() if name.startswith(prefixes)}

    def _ensure_namespaces(self, desired: DesiredState, report: SyncReport) -> frozenset[str]:
        """The namespaces made now (empty, so there is nothing in them to read back)."""
        created = set()
        for name in desired.namespaces:
            try:
                if ns.ensure_namespace(name):
                    self.links.forget(name)
                    created.add(name)
                    if name.startswith(f"{self.host.ns_prefix}qdhcp-"):
                        # Its addresses are the port's, as Neutron's: none from a router's
                        # advertisement, nor a default route (before its interface exists).
                        ns.run_in_namespace(name, ns.ignore_router_advertisements)
                    report.changes.append(f"create namespace {name}")
            except Exception as error:
                report.errors.append(f"namespace {name}: {error}")
        return frozenset(created)

    def _collect_namespaces(self, desired: DesiredState, report: SyncReport) -> None:
        wanted_dhcp = {server.network_id for server in desired.dhcp}
        for network_id in self.dnsmasq.served_networks() - wanted_dhcp:
            self.dnsmasq.stop(network_id)
            report.changes.append(f"stop dnsmasq {network_id}")
        for name in self._owned_namespaces() - set(desired.namespaces):
            try:
                self._delete_namespace(name)
                report.changes.append(f"delete namespace {name}")
            except Exception as error:
                report.errors.append(f"namespace {name}: {error}")

    def _delete_namespace(self, name: str) -> None:
        self.links.forget(name)
        lab.delete_instance(self.state_dir, name)

    def _collect_outside(self) -> None:
        """Drop our NICs' far ends, and an outside namespace nobody else uses any more."""
        for config in self.host.physnets.values():
            outside = config.outside_netns
            if outside is None or outside not in ns.list_namespaces():
                continue
            links = self.links.observe(outside)
            for link in links.values():
                if link.name.startswith(names.outside_end(self.host, None)):
                    self.links.delete(outside, link.name)
            self.links.forget(outside)
            remaining = self.links.observe(outside)
            self.links.forget(outside)
            if all(link.kind in ("bridge", None) for link in remaining.values()):
                ns.delete_namespace(outside)

    # --- firewall ------------------------------------------------------------------

    def _firewall(self) -> NftDriver:
        """The nft driver, in a thread inside the host namespace (re-made if it was)."""
        inode = os.stat(ns.NETNS_DIR / self.host.netns).st_ino if self.host.netns else 0
        if self._nft is None or inode != self._worker_inode:
            self._close_worker()
            self._worker = ns.NetnsThread(self.host.netns)
            self._worker_inode = inode
            self._nft = NftDriver(self._worker)
        return self._nft

    def _close_worker(self) -> None:
        if self._worker is not None:
            self._worker.close()
        self._worker = self._nft = None

    def _ensure_bridge_netfilter(self, report: SyncReport) -> None:
        try:
            if self._firewall().bridges_choose_netfilter(self.host.netns is not None):
                report.changes.append("set bridge netfilter sysctls")
        except Exception as error:
            report.errors.append(f"firewall: {error}")

    def _ensure_firewall(
        self, firewall: Firewall, report: SyncReport, verify: bool = False
    ) -> None:
        """`verify`: and read the kernel's listing back if it changed since it was read."""
        try:
            nft = self._firewall()
            stored = self._stored_firewall
            if stored is None:
                stored = remembered(self.state_dir / "firewall.json")
            wanted = set_elements(firewall)
            seen = {"netns": self._worker_inode, "generation": nft.generation()}
            applied, self._applied_firewall = self._applied_firewall, None  # until it holds
            same_netns = stored.get("netns") == seen["netns"]
            if applied is not None and not (same_netns and stored.get("digest") == applied.digest):
                applied = None
            objects: dict[str, str] = stored.setdefault("objects", {})
            # Nobody committed anything to nftables here since we checked.
            kept = same_netns and stored.get("generation") == seen["generation"]
            if applied is not None and not kept:
                kept = self._repair_firewall(applied, objects, report)
                if kept:
                    stored = self._stored_firewall or {}
                    seen["generation"] = stored.get("generation")
            if kept and (stored.get("digest"), stored.get("elements")) == (firewall.digest, wanted):
                self._applied_firewall = firewall
                if verify and not stored.get("fresh"):
                    self._store_firewall(firewall, wanted)
                return
            if kept and applied is not None:
                changed = nft.update(applied, firewall)
                if changed is not None:
                    self._applied_firewall = firewall
                    report.changes += [f"{verb} {_kind_and_name(key)}" for verb, key in changed]
                    # The listing is not read: what changed is unknown until it is.
                    for _, key in changed:
                        objects.pop(key, None)
                    seen["generation"] = nft.generation()
                    self._remember_firewall(
                        {**seen, "digest": firewall.digest, "elements": wanted, "objects": objects}
                    )
                    return
            listing = nft.listing(firewall.tables)
            if (
                listing is None
                or not stored.get("fresh")
                or listing_objects(listing) != objects
                or stored.get("digest") != firewall.digest
            ):
                nft.replace(firewall)
                report.changes.append(f"replace firewall {firewall.digest}")
            else:
                changed_sets = nft.update_elements(firewall, stored.get("elements") or {})
                report.changes += [f"update set {name}" for name in changed_sets]
            self._applied_firewall = firewall
            self._store_firewall(firewall, wanted)
        except Exception as error:
            report.errors.append(f"firewall: {error}")

    def _repair_firewall(
        self, applied: Firewall, objects: dict[str, str], report: SyncReport
    ) -> bool:
        """Somebody else committed to nftables: the objects of our tables they changed (or
        that changed since the listing was read) made again as we applied them, one
        transaction. False when that cannot be (a table missing, or changed itself)."""
        nft = self._firewall()
        listing = nft.listing(applied.tables)
        if listing is None:
            return False
        now = listing_objects(listing)
        moved = {key for key in now.keys() | objects.keys() if now.get(key) != objects.get(key)}
        if any(key.startswith("table ") for key in moved):
            return False
        if moved:
            try:
                report.changes += nft.repair(applied, moved)
            except NftError:
                return False
        self._store_firewall(applied, set_elements(applied))
        return True

    def _store_firewall(self, firewall: Firewall, elements: dict[str, list[Any]]) -> None:
        """Remember the tables as they are now that they hold `firewall`: the kernel's
        listing, object by object."""
        nft = self._firewall()
        generation = nft.generation()
        objects = listing_objects(nft.listing(firewall.tables) or "")
        self._remember_firewall(
            {
                "netns": self._worker_inode,
                "generation": generation,
                "digest": firewall.digest,
                "elements": elements,
                "objects": objects,
                "fresh": True,
            }
        )

    def _remember_firewall(self, state: dict[str, Any]) -> None:
        """Here, and for the next start (a listing's digests only while they hold: `fresh`)."""
        kept = state if state.get("fresh") else {**state, "objects": {}}
        (self.state_dir / "firewall.json").write_text(json.dumps(kept))
        self._stored_firewall = state

    # --- links ---------------------------------------------------------------------

    def _ensure_links(
        self,
        desired: DesiredState,
        report: SyncReport,
        verify: bool,
        fresh: frozenset[str],
        collect: bool = True,
    ) -> tuple[dict[str | None, dict[str, ObservedLink]], frozenset[tuple[str | None, str]]]:
        """The links, and the far ends (netns, name) made again with their veth; with
        `collect`, the links of ours that `desired` does not name go."""
        guests = {instance.netns for instance in desired.instances}

        def checked(peer: VethPeer) -> bool:
            # Far ends on a shared outside bridge are checked on every sync; those
            # in routers, DHCP and load balancers on full ones; an instance's eth0 is
            # its own once made, as a VM's NIC would be.
            return peer.master is not None or verify and peer.netns not in guests

        peers = [link.peer for link in desired.links if link.peer is not None]
        netnses = {link.netns for link in desired.links} | {self.host.netns}
        netnses |= {peer.netns for peer in peers if checked(peer)}
        observed = {netns: self.links.observe(netns) for netns in netnses}
        replugged = set()
        ipv6_off: dict[str | None, list[str]] = {}
        for link in desired.links:
            peer = link.peer
            try:
                if peer is not None and peer.netns in fresh and link.name in observed[link.netns]:
                    # Its far end went with the namespace deleted by hand, which lives on
                    # while a process (or a thread of ours) is inside: made again.
                    self.links.delete(link.netns, link.name)
                    del observed[link.netns][link.name]
                action = self.links.ensure(link, observed[link.netns])
                if action:
                    report.changes.append(f"{action} link {link.name}")
                if link.ipv6_off and (verify or action in ("created", "re-created")):
                    ipv6_off.setdefault(link.netns, []).append(link.name)
                if peer is None:
                    continue
                if action in ("created", "re-created"):
                    replugged.add((peer.netns, peer.name))
                if checked(peer) and self.links.ensure_peer(peer, observed[peer.netns]):
                    report.changes.append(f"fixed link {peer.name}")
            except Exception as error:
                report.errors.append(f"link {link.name}: {error}")
        for netns, names_off in ipv6_off.items():
            try:
                for name in self.links.turn_ipv6_off(netns, names_off):
                    report.changes.append(f"turned IPv6 off on link {name}")
            except Exception as error:
                report.errors.append(f"IPv6 of links in {netns or 'the root namespace'}: {error}")
        if not collect:
            return observed, frozenset(replugged)
        wanted = {link.name for link in desired.links if link.netns == self.host.netns}
        for present in list(observed[self.host.netns].values()):
            if self._drop_host_link(present, wanted, report):
                del observed[self.host.netns][present.name]
        # An instance's VLANs go with the subports they carry (veths go with their host end).
        for netns in guests if self.host.trunk_mode == "8021q" else ():
            wanted_in = {link.name for link in desired.links if link.netns == netns}
            for present in list(self.links.observe(netns).values()):
                if present.kind == "vlan" and present.name not in wanted_in:
                    self.links.delete(netns, present.name)
                    report.changes.append(f"delete link {present.name}")
        return observed, frozenset(replugged)

    def _ensure_fdb(
        self, desired: DesiredState, report: SyncReport, links: dict[str, ObservedLink]
    ) -> None:
        """The VXLAN devices' peers and ARP responders (plan.overlay); entries of devices not
        made yet wait."""
        index = {link.name: link.index for link in links.values() if link.kind == "vxlan"}
        try:
            sock = self.links.socket(self.host.netns)
            devices = {i: n for n, i in index.items()}
            present = fdb.observe(sock, self.host.netns, devices)
            wanted = {entry for entry in desired.fdb if entry.device in index}
            report.changes += fdb.apply(sock, wanted, present, index)
            neighbours = {entry for entry in desired.arp if entry.device in index}
            found = arp.observe(sock, self.host.netns, devices)
            report.changes += arp.apply(sock, neighbours, found, index)
        except Exception as error:
            report.errors.append(f"fdb: {error}")

    def _drop_host_link(self, link: ObservedLink, wanted: set[str], report: SyncReport) -> bool:
        """A link of the host namespace that the plan does not want: deleted if ours (True);
        a device someone else made (a VM's tap, a container's veth) whose port is gone or
        bound elsewhere is taken off our bridge, where nothing would filter it any more."""
        if self._owns_host_link(link, wanted):
            self.links.delete(self.host.netns, link.name)
            report.changes.append(f"delete link {link.name}")
            return True
        if link.name not in wanted and link.master is not None:
            bridges = self.links.observe(self.host.netns)
            if any(b.index == link.master and b.name.startswith("brq") for b in bridges.values()):
                self.links.unplug(self.host.netns, link.name)
                report.changes.append(f"unplug link {link.name}")
        return False

    def _owns_host_link(self, link: ObservedLink, wanted: set[str]) -> bool:
        """Links of the host namespace that carry our names (VM taps are not ours)."""
        if link.name in wanted:
            return False
        if link.name.startswith(("brq", "vxlan-", "ifb")):
            return True
        if link.name.startswith("tap"):
            # A lab instance's, or a subport's VLAN of a parent's tap; a VM's tap is a tun.
            return link.kind in ("veth", "vlan")
        nics = [c.interface[:10] + "." for c in self.host.physnets.values()]
        return link.name.startswith(tuple(nics)) and link.kind in ("vlan", "veth")

    def _ensure_addresses(self, desired: DesiredState, report: SyncReport) -> None:
        by_link: dict[tuple[str | None, str], list[Address]] = {}
        for address in desired.addresses:
            by_link.setdefault((address.netns, address.ifname), []).append(address)
        for (netns, ifname), addresses in by_link.items():
            try:
                if self.links.ensure_addresses(netns, ifname, addresses, announce=True):
                    report.changes.append(f"set addresses of {ifname}")
            except Exception as error:
                report.errors.append(f"addresses of {ifname}: {error}")

    def _ensure_shapers(self, desired: DesiredState, report: SyncReport) -> None:
        """Ports' tbf qdiscs and redirects (plan.qos), changed in place; those the plan no
        longer wants go."""
        netns = self.host.netns
        try:
            seen = tc.observe(netns)
        except Exception as error:
            report.errors.append(f"qdiscs: {error}")
            return
        for shaper in desired.shapers:
            try:
                if not tc.matches(shaper, seen.buckets.get(shaper.device)):
                    tc.shape(shaper)
                    report.changes.append(f"shape {shaper.device}")
                tap = shaper.redirect_from
                if tap is not None and seen.redirects.get(tap) != shaper.device:
                    tc.redirect(netns, tap, shaper.device)
                    report.changes.append(f"redirect {tap}")
            except Exception as error:
                report.errors.append(f"qdisc of {shaper.device}: {error}")
        shaped = {shaper.device for shaper in desired.shapers}
        redirected = {shaper.redirect_from for shaper in desired.shapers}
        for change, devices, undo in (
            ("unshape", seen.buckets.keys() - shaped, tc.unshape),
            ("stop redirect", seen.redirects.keys() - redirected, tc.stop_redirect),
        ):
            for device in sorted(devices):
                try:
                    undo(netns, device)
                    report.changes.append(f"{change} {device}")
                except Exception as error:
                    report.errors.append(f"qdisc of {device}: {error}")

    def _ensure_routers(
        self, desired: DesiredState, report: SyncReport, verify: bool, fresh: frozenset[str]
    ) -> None:
        done = self.routers.ensure_all(desired.routers, desired.upstreams, verify, fresh)
        report.changes += done.changes
        report.errors += done.errors
        report.floatingips = done.floatingips

    # --- processes -------------------------------------------------------------------

    def _ensure_dhcp(
        self,
        desired: DesiredState,
        report: SyncReport,
        replugged: frozenset[tuple[str | None, str]],
    ) -> None:
        for server in desired.dhcp:
            try:
                done = self.dnsmasq.ensure(server, (server.netns, server.interface) in replugged)
                if done:
                    report.changes.append(f"{done} dnsmasq {server.network_id}")
            except Exception as error:
                report.errors.append(f"dnsmasq {server.network_id}: {error}")

    def _ensure_advertisers(
        self,
        desired: DesiredState,
        report: SyncReport,
        replugged: frozenset[tuple[str | None, str]],
    ) -> None:
        """radvd where the plan advertises IPv6 prefixes (plan.ra); stopped where it no longer
        does (before its namespace goes)."""
        for advertiser in desired.advertisers:
            again = any(netns == advertiser.netns for netns, _ in replugged)
            try:
                done = self.radvd.ensure(advertiser, again)
                if done:
                    report.changes.append(f"{done} radvd {advertiser.key}")
            except Exception as error:
                report.errors.append(f"radvd {advertiser.key}: {error}")
        for key in self.radvd.served() - {a.key for a in desired.advertisers}:
            self.radvd.stop(key)
            report.changes.append(f"stop radvd {key}")

    def _ensure_loadbalancers(self, desired: DesiredState, report: SyncReport) -> None:
        vips = {(a.netns, a.cidr.split("/")[0]) for a in desired.addresses if a.vrrp}
        self.synced_health = {}
        for lb in desired.loadbalancers:
            entry: dict[str, Any] = {"revision": lb.revision}
            try:
                if self.haproxy.ensure_gateway(self.links.socket(lb.netns), lb.gateway):
                    report.changes.append(f"set default route of {lb.netns}")
                if lb.vrrp:
                    self.keepalived.allow_nonlocal_bind(lb)
                done = self.haproxy.ensure(lb)
                if done:
                    report.changes.append(f"{done} haproxy {lb.key}")
                done = self.l4.ensure(lb)
                if done:
                    report.changes.append(f"{done} nft balancing {lb.key}")
                if lb.vrrp:
                    done = self.keepalived.ensure(lb, self.haproxy.socket(lb.key))
                    if done:
                        report.changes.append(f"{done} keepalived {lb.key}")
                entry.update(self._observe_loadbalancer(lb.key))
                entry["listeners"] = {**entry["listeners"], **self.l4.statistics(lb)}
            except Exception as error:
                entry["error"] = str(error)
                report.errors.append(f"load balancer {lb.key}: {error}")
            self.synced_health[lb.key] = health(entry)
            # An ACTIVE_STANDBY load balancer's amphorae report as one: an error of either, else
            # the health and counters of the one that holds the VIP.
            before = report.loadbalancers.get(lb.id)
            if (
                before is None
                or "error" in entry
                or ("error" not in before and self._holds(lb, vips))
            ):
                report.loadbalancers[lb.id] = entry
        wanted = {lb.key for lb in desired.loadbalancers}
        for key in self.keepalived.served() - {lb.key for lb in desired.loadbalancers if lb.vrrp}:
            self.keepalived.stop(key)  # first: a master hands the VIP over at once
            report.changes.append(f"stop keepalived {key}")
        for lb_id in self.haproxy.served() - wanted:
            self.haproxy.stop(lb_id)
            report.changes.append(f"stop haproxy {lb_id}")
        for lb_id in self.l4.served() - wanted:
            self.l4.stop(lb_id)
            report.changes.append(f"stop nft balancing {lb_id}")

    def _observe_loadbalancer(self, key: str) -> dict[str, Any]:
        """Members' health (haproxy's checks and the UDP and SCTP ones) and listeners' status and
        counters, as reported, of one instance of a load balancer."""
        seen = self.haproxy.observe(key)
        return {"members": {**seen.members, **self.l4.observe(key)}, "listeners": seen.listeners}

    def _holds(self, lb: LoadBalancer, vips: set[tuple[str | None, str]]) -> bool:
        """Whether the instance `lb` holds its VIP now (keepalived made it VRRP master)."""
        held = {msg.get("address") for msg in self.links.socket(lb.netns).get_addr()}
        return any((lb.netns, address) in vips for address in held)

    def health(self) -> dict[str, dict[str, str]]:
        """Members' and listeners' health in every load balancer instance this host runs (by
        its key), as seen now."""
        return {
            key: health(self._observe_loadbalancer(key))
            for key in self.haproxy.served() | self.l4.served()
        }

    def health_moved(self) -> bool:
        """Whether a member's or listener's health in a load balancer instance this host runs
        differs now from what the last sync saw (and reported)."""
        return any(
            health(self._observe_loadbalancer(key)) != seen
            for key, seen in self.synced_health.items()
        )

    def _ensure_instances(
        self,
        desired: DesiredState,
        report: SyncReport,
        replugged: frozenset[tuple[str | None, str]],
        collect: bool = True,
    ) -> None:
        """The instances' DHCP clients (and DHCPv6 ones where their subnets want them); with
        `collect`, those of interfaces the instances of `desired` no longer have stop."""
        wanted = {
            version: {(i.netns, i.ifname) for i in desired.instances if version == 4 or i.dhcpv6}
            for version in (4, 6)
        }
        for version, clients in wanted.items():
            # A subport's interface is gone with it; DHCPv6 with the last subnet that wants it.
            for netns in {netns for netns, _ in wanted[4]} if collect else ():
                for ifname in lab.dhcp_client_interfaces(self.state_dir, netns, version):
                    if (netns, ifname) not in clients:
                        lab.stop_dhcp_client(self.state_dir, netns, ifname, version)
                        report.changes.append(f"stop dhcp client {netns} {ifname}")
        for instance in desired.instances:
            again = (instance.netns, instance.ifname) in replugged
            try:
                if lab.ensure_dhcp_client(
                    self.state_dir, instance.netns, instance.ifname, restart=again
                ):
                    report.changes.append(f"start dhcp client {instance.netns}")
                if instance.dhcpv6 and lab.ensure_dhcp6_client(
                    self.state_dir, instance.netns, instance.ifname, instance.dhcpv6, again
                ):
                    report.changes.append(f"start dhcpv6 client {instance.netns}")
            except Exception as error:
                report.errors.append(f"instance {instance.id}: {error}")


def health(entry: dict[str, Any]) -> dict[str, str]:
    """A load balancer's report reduced to what its operating statuses follow: each member's
    health and each listener's status, by id."""
    listeners = entry.get("listeners", {})
    return {
        **entry.get("members", {}),
        # UDP and SCTP listeners report counters only: the kernel has no status for them
        **{id_: str(seen["status"]) for id_, seen in listeners.items() if "status" in seen},
    }


def _kind_and_name(key: str) -> str:
    """ "chain egress" of "chain bridge neutrino egress" (drivers.nftables.object_key)."""
    words = key.split(" ")
    return " ".join([*words[:-3], words[-1]])
