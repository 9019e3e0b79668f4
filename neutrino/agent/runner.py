"""The agent's loop: follow the server's change feed, reconcile, report.

It programs nothing until it holds a complete snapshot; after that it keeps
its copy of the model exact by applying the feed's changes (each carries the
resource's current body). After every batch it compiles and applies only what
the changes touch (plan.keyed: a floating IP's change, its elements and
local route only, however many its router has; a port's, its tap and its
network's DHCP hosts, however many ports the host has); every few seconds, when
a poll of the feed brings no change, it compares every key's digest with its
inputs' (a change the index missed is compiled then, and logged) and
reconciles the whole host, which repairs drift. If the
server forgets its revision (410) or cannot be reached, it starts again from
a snapshot; the kernel is left as it is meanwhile, so traffic keeps flowing.

Each report is also the heartbeat of the host's agents. A sync can take
longer than the server allows between heartbeats (its agent down time), so a
thread of its own sends the last report again whenever none went for the
report interval, as Neutron's agents report their state apart from their
work (report_interval, 30 s by default against an agent_down_time of 75 s).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import logging
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from neutrino.agent.drivers.links import LinkEvents
from neutrino.agent.inspect import Realized
from neutrino.agent.reconciler import ACTIVE, Agent, SyncReport
from neutrino.client import ClientError, Session
from neutrino.ipam import AUTO_ADDRESS_MODES
from neutrino.plan import HostConfig
from neutrino.plan.keyed import Change, Changed, KeyedPlan
from neutrino.plan.state import Outline

log = logging.getLogger("neutrino.agent")
HEALTH_SECONDS = 1.0
REPORT_INTERVAL = 30.0  # seconds, Neutron's report_interval
LOOK_SECONDS = 0.2  # how often the addresses of instances that wait for some are read again
# Neutron's rule: the agent down time is at least twice the report interval; a server's own
# (embedded) agent reports at this fraction of its down time, as 30 s of 75 s.
DOWN_TIME_PER_REPORT = 2.5

KINDS = {
    "network": "networks",
    "subnet": "subnets",
    "port": "ports",
    "security_group": "security_groups",
    "address_group": "address_groups",
    "router": "routers",
    "floatingip": "floatingips",
    "instance": "instances",
    "loadbalancer": "loadbalancers",
    "qos_policy": "qos_policies",
    "metering_label": "metering_labels",
    "vxlan_endpoint": "vxlan_endpoints",
}


class Model:
    """The agent's copy of the logical model, keyed by type and id."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self._lock = threading.Lock()  # the loop changes it, inspect reads it
        self.revision: int = snapshot["revision"]
        self.anchors: dict[str, list[str]] = snapshot["anchors"]  # of its host's share
        self.items: dict[str, dict[str, dict[str, Any]]] = {
            key: {item["id"]: item for item in snapshot.get(key, [])} for key in KINDS.values()
        }

    def apply(self, delta: dict[str, Any]) -> list[Change]:
        """Take the changes in; what each did (plan.keyed's index reads them)."""
        done = []
        with self._lock:
            for change in delta["changes"]:
                collection = KINDS[change["type"]]
                items = self.items[collection]
                before = items.get(change["id"])
                if change["resource"] is None:
                    items.pop(change["id"], None)
                else:
                    items[change["id"]] = change["resource"]
                done.append(Change(collection, change["id"], before, change["resource"]))
            self.revision = delta["revision"]
            self.anchors = delta["anchors"]
        return done

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "revision": self.revision,
                **{key: list(items.values()) for key, items in self.items.items()},
            }


class Feed:
    """The change feed of one host: its share of the model (plan.share), and what changes it."""

    def __init__(self, server: str, session: Session, host: str) -> None:
        self.base = server.rstrip("/") + "/internal/v1"
        self.session = session
        self.host = host

    def snapshot(self) -> dict[str, Any]:
        model: dict[str, Any] = self.session.call(
            "GET", f"{self.base}/snapshot", params={"host": self.host}
        )
        return model

    def changes(self, model: Model, timeout: float) -> dict[str, Any] | None:
        """Changes to `model` (the share it holds, by its anchors) after its revision, waiting
        up to `timeout` s for one; None when a resync is needed."""
        response = self.session.request(
            "POST",
            f"{self.base}/changes",
            params={"since": model.revision, "timeout": timeout, "host": self.host},
            content=json.dumps({"anchors": model.anchors}),
            timeout=timeout + 30,
        )
        if response.status_code == 410:
            return None
        response.raise_for_status()
        delta: dict[str, Any] = response.json()
        return delta

    def report(self, host: str, body: dict[str, Any]) -> None:
        self.session.call("POST", f"{self.base}/agents/{host}/report", content=json.dumps(body))


def roles(
    host: HostConfig, shown: Outline, floating_ips: int | None = None
) -> dict[str, dict[str, Any]]:
    """What this agent does, by Neutron agent type, with each role's `configurations`: the
    Linux bridge L2 role everywhere; DHCP and L3 on hosts that serve them (network nodes).
    `floating_ips`: their count now, when `shown` was outlined before they changed."""
    found: dict[str, dict[str, Any]] = {
        "Linux bridge agent": {
            "devices": len(shown.ports),
            "interface_mappings": {name: p.interface for name, p in host.physnets.items()},
            "bridge_mappings": {},
            "tunnel_types": ["vxlan"] if host.vtep_ip else [],
            "tunneling_ip": host.vtep_ip,
            "l2_population": True,
            "extensions": [],
        }
    }
    if not host.serves_dhcp:
        return found
    found["DHCP agent"] = {
        "dhcp_driver": "dnsmasq",
        "networks": len(shown.dhcp),
        "subnets": sum(len(server.ranges) for server in shown.dhcp),
        "ports": sum(len(server.hosts.splitlines()) for server in shown.dhcp),
        "log_agent_heartbeats": False,
    }
    found["L3 agent"] = {
        "agent_mode": "legacy",
        "routers": len(shown.routers),
        "ex_gw_ports": sum(1 for router in shown.routers if router.gateway),
        "interfaces": sum(
            len({a.ifname for a in router.addresses} - {router.gateway}) for router in shown.routers
        ),
        "floating_ips": sum(len(router.floatingips) for router in shown.routers)
        if floating_ips is None
        else floating_ips,
        "handle_internal_only_routers": True,
        "gateway_external_network_id": "",
        "external_network_bridge": "",
        "log_agent_heartbeats": False,
    }
    return found


def interface_ipv4(netns: str | None, ifname: str) -> str | None:
    """The first IPv4 address of `ifname` in `netns` (None: it has none, or is not there)."""
    where = ["-n", netns] if netns else []
    done = subprocess.run(
        ["ip", *where, "-j", "-4", "addr", "show", "dev", ifname],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    if done.returncode != 0:
        return None
    found = [a["local"] for link in json.loads(done.stdout or "[]") for a in link["addr_info"]]
    return found[0] if found else None


def with_current_vtep(host: HostConfig) -> HostConfig:
    """`host` with the address its VTEP interface has now (if it names one)."""
    if host.vtep_interface is None:
        return host
    address = interface_ipv4(host.netns, host.vtep_interface)
    if address != host.vtep_ip:
        log.warning("VTEP %s: %s is now %s", host.vtep_interface, host.vtep_ip, address)
    return dataclasses.replace(host, vtep_ip=address)


def _given(address: str, subnet: dict[str, Any]) -> bool:
    """Whether an instance gets `address` of `subnet` by itself: by DHCP (IPv4), by SLAAC
    from the subnet's advertisements (IPv6)."""
    if ":" in address:
        return subnet.get("ipv6_ra_mode") in AUTO_ADDRESS_MODES
    return bool(subnet.get("enable_dhcp"))


def _lacks(seen: list[str], expected: set[str]) -> bool:
    """Whether some `expected` address is not among those `seen` (CIDRs)."""
    return not expected <= {cidr.split("/")[0] for cidr in seen}


def instance_addresses(netns: str) -> list[str]:
    """Addresses inside an instance, as `ip addr` shows them there (global scope only)."""
    done = subprocess.run(
        ["ip", "-n", netns, "-j", "addr", "show"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        return []
    return sorted(
        f"{a['local']}/{a['prefixlen']}"
        for link in json.loads(done.stdout)
        for a in link.get("addr_info", [])
        if a.get("scope") == "global"
    )


@contextlib.contextmanager
def long_lived(whole: bool) -> Iterator[None]:
    """While a sync makes what lives until the next one, the garbage collector waits; then it
    walks what was made once (the cycles that died go) and freezes it. The plan of a snapshot
    lives as long as it (with the model: at 50,000 floating IPs or 10,000 ports, millions of
    objects), a `whole` sync's outline and report until the next (hundreds of
    thousands): walked by the collections of the changes that follow instead, they cost the
    first of those milliseconds (a young dict of 50,000 floating IPs), and every full
    collection tens. Frozen objects are still freed when their count drops (the model's bodies,
    when a change replaces them; an outline, when the next sync makes its own)."""
    if not whole:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()
        gc.freeze()


class Runner:
    """One host's agent loop; `run()` blocks until `stop()`."""

    def __init__(
        self,
        agent: Agent,
        feed: Feed,
        resync_seconds: float = 5.0,
        endpoint: str | None = None,
        report_interval: float = REPORT_INTERVAL,
    ) -> None:
        self.agent, self.feed = agent, feed
        self.resync_seconds = resync_seconds
        self.report_interval = report_interval
        self._reporting = threading.Lock()  # one report at a time, in the order they were made
        self._last_report: dict[str, Any] | None = None
        self._reported_at = 0.0  # time.monotonic() of the last report
        self.endpoint = endpoint  # where the server asks this agent for the lab's tools
        self.endpoint_certificate: str | None = None  # the only one the server trusts there
        self.realized: Realized | None = None  # what the agent works from
        self._plan: KeyedPlan | None = None  # the host's, kept by key
        self.outline: Outline | None = None  # what the last report told of the desired state
        self._stop = threading.Event()
        self._watching = False  # the thread that plugs devices as they come (_watch_devices)
        self._addresses: dict[str, list[str]] = {}  # instance id -> last seen
        # What the host failed to apply, by collection, until it is applied (services.realization)
        self._failed: dict[str, set[str]] = {"floatingips": set(), "loadbalancers": set()}
        self.started_at = datetime.now(UTC).isoformat()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        threading.Thread(
            target=self._heartbeats, name=f"heartbeat-{self.agent.host.name}", daemon=True
        ).start()
        backoff = 0.2
        while not self._stop.is_set():
            try:
                self._follow(Model(self.feed.snapshot()))
                backoff = 0.2
            except (httpx.HTTPError, ClientError) as error:
                # The embedded agent starts before its server listens: quiet for the first second.
                log.log(
                    logging.WARNING if backoff >= 1 else logging.DEBUG,
                    "change feed unavailable (%s); retrying in %.1fs",
                    error,
                    backoff,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _follow(self, model: Model) -> None:
        for failed in self._failed.values():
            failed.clear()
        self._plan = None
        pending = self._reconcile(model, full=True)
        if not self._watching:  # the host's namespace is there now
            self._watching = True
            threading.Thread(
                target=self._watch_devices, name=f"devices-{self.agent.host.name}", daemon=True
            ).start()
        last_full = last_look = time.monotonic()
        while not self._stop.is_set():
            # Instances waiting for their addresses are looked at often; else wait for changes.
            wait = (
                LOOK_SECONDS
                if pending
                else max(0.1, self.resync_seconds - (time.monotonic() - last_full))
            )
            if self.agent.synced_health:  # health is watched every HEALTH_SECONDS
                wait = min(wait, HEALTH_SECONDS)
            delta = self.feed.changes(model, timeout=wait)
            if delta is None:
                return
            changes = model.apply(delta) if delta["changes"] else []
            since = time.monotonic() - last_full
            full = since >= self.resync_seconds
            # Changes go first: the full resync waits for the next poll that brings none,
            # unless it is overdue by a whole period.
            if changes and since < 2 * self.resync_seconds:
                pending = self._reconcile(model, full=False, changes=changes, whole=False)
            elif changes or full or self.agent.health_moved():
                pending = self._reconcile(model, full=full, changes=changes, whole=True)
                if full:
                    last_full = last_look = time.monotonic()
            # Their clients run on their own: nothing to apply, only to look, between changes
            # (which never wait for a process that reads an instance's addresses).
            if pending and time.monotonic() - last_look >= LOOK_SECONDS:
                pending = self._look_at_instances(model)
                last_look = time.monotonic()

    def _compile(
        self, model: Model, changes: list[Change], full: bool
    ) -> tuple[KeyedPlan, Changed]:
        """The host's plan, compiled again where `changes` touch it (everywhere it moved, after
        a `full` look at every key's digest)."""
        self.agent.host = with_current_vtep(self.agent.host)
        plan = self._plan
        if plan is None or plan.host != self.agent.host or plan.items is not model.items:
            plan = self._plan = KeyedPlan(self.agent.host, model.items)
            return plan, Changed(base=True)
        changed = plan.update(changes)
        if full:
            missed = plan.resync()
            if missed:
                log.warning("resync: the change index missed %s", missed)
            changed = changed.merged(missed)
        return plan, changed

    def _reconcile(
        self, model: Model, full: bool, changes: Sequence[Change] = (), whole: bool = True
    ) -> bool:
        """Sync the host (its changed pieces, or the `whole` of it) and report; True while some
        instance still waits for its addresses."""
        building = self._plan is None or self._plan.items is not model.items
        with long_lived(whole or building):
            return self._sync(model, full, changes, whole)

    def _sync(self, model: Model, full: bool, changes: Sequence[Change], whole: bool) -> bool:
        plan, changed = self._compile(model, list(changes), full)
        report = None if whole else self.agent.apply_changed(plan, changed, model.revision)
        applied_whole = report is None  # also when the changes took more than their pieces
        if report is None:
            desired = plan.desired(model.revision)
            report = self.agent.apply(desired, verify=full)
            self.outline = desired.outline()
        elif changed.ports or changed.networks:  # what the report tells of instances and roles
            self.outline = plan.outline()
        shown = self.outline
        assert shown is not None  # the first sync applies the whole
        instances, pending = self._instances(model, shown, "every" if full else "none")
        for error in report.errors:
            log.warning("sync: %s", error)
        body = self._report_body(report, instances)
        body["failed"] = self._failures(model, report, applied_whole)
        body["namespaces"] = {
            "routers": {router.id: router.netns for router in shown.routers},
            "loadbalancers": {lb.id: lb.netns for lb in shown.loadbalancers},
        }
        made = {**body["namespaces"], "instances": {i.id: i.netns for i in shown.instances}}
        self.realized = Realized(model.snapshot, self.agent.host.name, self.agent.host.netns, made)
        body["endpoint"] = self.endpoint
        body["endpoint_certificate"] = self.endpoint_certificate
        # Every report is also the heartbeat of this agent's roles.
        body["agents"] = roles(self.agent.host, shown, plan.floating_ips())
        body["started_at"] = self.started_at
        body["availability_zone"] = self.agent.host.availability_zone
        body["host_netns"] = self.agent.host.netns
        body["outside"] = {
            name: physnet.outside_netns
            for name, physnet in self.agent.host.physnets.items()
            if physnet.outside_netns
        }
        self._report(body)
        return pending

    def _look_at_instances(self, model: Model) -> bool:
        """Read again the addresses of the instances that wait for some, and report them if
        they moved; True while some instance still waits."""
        assert self.outline is not None and self._last_report is not None
        instances, pending = self._instances(model, self.outline, "waiting")
        if instances != self._last_report["instances"]:
            self._report({**self._last_report, "instances": instances})
        return pending

    def _report(self, body: dict[str, Any]) -> None:
        with self._reporting:
            self._send(body)

    def _send(self, body: dict[str, Any]) -> None:
        # The ports' statuses as they are now: a device may have come or gone since the sync.
        body = {**body, **self.agent.device_report()}
        self.feed.report(self.agent.host.name, body)
        self._last_report, self._reported_at = body, time.monotonic()

    def _watch_devices(self) -> None:
        """Plug a VM's tap or a container's veth as soon as it comes, and report the statuses
        that its coming or going moves, without waiting for the next sync (the change feed
        tells nothing of devices)."""
        while not self._stop.is_set():
            try:
                events = LinkEvents(self.agent.host.netns)
            except OSError as error:  # the host's namespace, deleted by hand: made again soon
                log.warning("link notifications: %s", error)
                self._stop.wait(1.0)
                continue
            try:
                while not self._stop.is_set():
                    moved = events.wait(1.0)
                    if moved and self.agent.replug(moved):
                        self._report_devices()
            except OSError as error:
                log.warning("link notifications: %s", error)
            finally:
                events.close()

    def _report_devices(self) -> None:
        with self._reporting:
            if self._last_report is None:
                return
            try:
                self._send(self._last_report)
            except (httpx.HTTPError, ClientError) as error:
                log.debug("device statuses not sent (%s)", error)

    def _heartbeats(self) -> None:
        """Send the last report again whenever none went for the report interval (a report
        says what the host had then: sent twice, it changes nothing more)."""
        while not self._stop.wait(self.report_interval / 2):
            with self._reporting:  # so that no newer report goes before it
                last = self._last_report
                if last is None or time.monotonic() - self._reported_at < self.report_interval:
                    continue
                try:
                    self._send(last)
                except (httpx.HTTPError, ClientError) as error:
                    log.debug("heartbeat not sent (%s)", error)

    def _failures(self, model: Model, report: SyncReport, whole: bool) -> dict[str, list[str]]:
        """What the host has failed to apply, as of the report's revision: a floating IP until
        its router is applied again (by key, or `whole`), a load balancer until the next
        `whole` sync applies it."""
        fips, lbs = self._failed["floatingips"], self._failed["loadbalancers"]
        if whole:
            fips.clear()
            lbs.clear()
            lbs |= {lb_id for lb_id, entry in report.loadbalancers.items() if "error" in entry}
        else:  # a whole sync's report names every floating IP here: only those failed count
            fips -= {fip_id for fip_id, status in report.floatingips.items() if status == ACTIVE}
        fips |= {fip_id for fip_id, status in report.floatingips.items() if status != ACTIVE}
        existing = model.items["floatingips"]
        self._failed["floatingips"] = {fip_id for fip_id in fips if fip_id in existing}
        return {collection: sorted(ids) for collection, ids in self._failed.items()}

    def _instances(
        self, model: Model, shown: Outline, read: Literal["every", "waiting", "none"]
    ) -> tuple[dict[str, Any], bool]:
        """The instances of `shown` with their addresses (those of `read` instances read in
        their namespaces again, the others as last seen), and whether some instance still
        waits for an address it should get."""
        ports, subnets = model.items["ports"], model.items["subnets"]
        found: dict[str, Any] = {}
        pending = False
        for instance_id, netns in {(i.id, i.netns) for i in shown.instances}:
            # The addresses that come within seconds by the subnet's doing: IPv4 ones where
            # DHCP serves them, and SLAAC ones where the subnet is advertised here. An instance
            # on a subnet without DHCP waits for nothing (its client never gets an answer).
            expected = {
                ip["ip_address"]
                for port_id in model.items["instances"].get(instance_id, {}).get("port_ids", [])
                for ip in ports.get(port_id, {}).get("fixed_ips", [])
                if _given(ip["ip_address"], subnets.get(ip["subnet_id"], {}))
            }
            seen = self._addresses.get(instance_id, [])
            if read == "every" or (read == "waiting" and _lacks(seen, expected)):
                seen = self._addresses[instance_id] = instance_addresses(netns)
            pending |= _lacks(seen, expected)
            found[instance_id] = {"netns": netns, "addresses": seen}
        return found, pending

    def _report_body(self, report: SyncReport, instances: dict[str, Any]) -> dict[str, Any]:
        return {
            "revision": report.revision,
            "ports": report.ports,
            "errors": report.errors,
            "instances": instances,
            "loadbalancers": report.loadbalancers,
            "seconds": round(report.seconds, 4),
        }
