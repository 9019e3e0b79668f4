"""One host's desired state kept by key, and changed key by key by the feed's changes.

`compile_host` is the union of per-key functions (plan.compile); this keeps,
per key, the compiled piece and a digest of what it was compiled from:

    the base      compile_base: links, addresses, DHCP, load balancers, ...:
                  networks, subnets, ports, instances, load balancers, QoS
                  policies, VXLAN endpoints, and where routers live
    a port        port_piece: the tap of a port plugged here that stands alone
                  (see `_alone`): its body, the instance that plugs it
    a network     network_piece: the bridge and segment device of a network
                  realized here, its DHCP server and host entries, its VXLAN
                  forwarding entries: its body and every port on it
    a router      compile_router: its body, its ports, their subnets and
                  networks, which of those networks the host has, metering
                  labels
    a floating IP compile_floatingip: its body
    the firewall  compile_firewall, in parts: each port's (a port plugged here,
                  which of its groups exist and are stateful) and the part the
                  ports share (which of them are stateless), the groups' (those
                  ports' groups, address groups) and their members' (every
                  port's addresses in the groups the rules name, kept by an
                  index of every group's members: a port's change moves the
                  sets of its own groups only); and the QoS chains of the base

The index (`update`) maps each change of the feed, with the body before and
after it, to the keys it touches; only those are compiled again. What the
base passes on (the routers here and their ports, the networks realized, the
ports plugged, QoS chains) touches the routers and the firewall when it moves.
A port's or an instance's change whose ports stand alone touches those ports
and their networks only, unless it makes a network wanted here or not (the
whole base then). A key whose inputs' digest did not move is not compiled at all, which is also
what makes `resync` (every key's digest compared: the safety net against a
change the index missed) cheap when nothing changed. A resource's body is
replaced, never changed in place, by a change: its digest is remembered by
the object.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from neutrino.plan import names
from neutrino.plan.compile import (
    HostBase,
    NetworkPiece,
    PortPiece,
    assemble,
    compile_base,
    is_plain,
    network_piece,
    outline,
    port_piece,
    router_piece,
)
from neutrino.plan.firewall import (
    FirewallPart,
    count_members,
    firewall_of,
    group_rules,
    groups_chains,
    is_protected,
    is_stateful,
    member_set,
    members_part,
    port_groups,
    port_part,
    ports_part,
    protected_ports,
    remote_groups,
)
from neutrino.plan.host import HostConfig
from neutrino.plan.routers import (
    L3_AGENT_HOST,
    FloatingIpPiece,
    RouterPiece,
    compile_floatingip,
    with_floatingips,
)
from neutrino.plan.state import DesiredState, Firewall, Outline, Resource, Router

Items = dict[str, dict[str, Resource]]  # collection -> id -> body
BASE_COLLECTIONS = (
    "networks",
    "subnets",
    "ports",
    "instances",
    "loadbalancers",
    "qos_policies",
    "vxlan_endpoints",
)
_ID = operator.itemgetter("id")


@dataclass
class Change:
    """One change of the feed: the body before and after it (None: absent)."""

    collection: str
    id: str
    before: Resource | None
    after: Resource | None


Piece = TypeVar("Piece")
Key = TypeVar("Key")


def _chained(
    first: dict[str, tuple[Piece, Piece]], then: dict[str, tuple[Piece, Piece]]
) -> dict[str, tuple[Piece, Piece]]:
    """Each key's piece before `first` and after `then`."""
    chained = dict(first)
    for key, (before, after) in then.items():
        chained[key] = (chained.get(key, (before, after))[0], after)
    return chained


@dataclass
class Changed:
    """The pieces compiled again and found different."""

    base: bool = False
    firewall: bool = False
    # port id -> its piece (before, after), when only ports and their networks changed
    ports: dict[str, tuple[PortPiece | None, PortPiece | None]] = field(default_factory=dict)
    networks: dict[str, tuple[NetworkPiece, NetworkPiece]] = field(default_factory=dict)
    # router id -> its piece (before, after); None: none
    routers: dict[str, tuple[RouterPiece | None, RouterPiece | None]] = field(default_factory=dict)
    # floating IP id -> its piece (before, after); None: none
    floatingips: dict[str, tuple[FloatingIpPiece | None, FloatingIpPiece | None]] = field(
        default_factory=dict
    )

    def __bool__(self) -> bool:
        return (
            self.base
            or self.firewall
            or bool(self.routers or self.floatingips or self.ports or self.networks)
        )

    def merged(self, other: Changed) -> Changed:
        """Both: `other` compiled after this."""
        return Changed(
            self.base or other.base,
            self.firewall or other.firewall,
            _chained(self.ports, other.ports),
            _chained(self.networks, other.networks),
            _chained(self.routers, other.routers),
            _chained(self.floatingips, other.floatingips),
        )

    def links_moved(self) -> bool:
        """Whether a router came, went, or changed its namespace's links."""
        return any(
            before is None
            or after is None
            or (before.netns, before.links, before.devices)
            != (after.netns, after.links, after.devices)
            for before, after in self.routers.values()
        )

    def floatingips_of(self, router_id: str) -> tuple[list[FloatingIpPiece], list[FloatingIpPiece]]:
        """The pieces of the floating IPs that changed on this router: before, and now."""
        found: tuple[list[FloatingIpPiece], list[FloatingIpPiece]] = ([], [])
        for pieces in self.floatingips.values():
            for had, piece in zip(found, pieces, strict=True):
                if piece is not None and piece.router_id == router_id:
                    had.append(piece)
        return found

    def touched_routers(self) -> set[str]:
        """Routers whose piece or floating IPs changed."""
        found = set(self.routers)
        for before, after in self.floatingips.values():
            found |= {p.router_id for p in (before, after) if p is not None and p.router_id}
        return found


class KeyedPlan:
    """The pieces of one host's desired state, compiled from `items` (the agent's copy of the
    model, which its owner changes and then reports with `update`)."""

    def __init__(self, host: HostConfig, items: Items) -> None:
        self.host = host
        self.items = items
        self.digests: dict[tuple[str, str], str] = {}
        self.base: HostBase | None = None
        self.routers: dict[str, RouterPiece] = {}
        self.floatingips: dict[str, FloatingIpPiece] = {}
        self.by_router: dict[str, dict[str, FloatingIpPiece]] = {}  # router id -> fip id -> piece
        self._compiled_from: dict[str, Resource] = {}  # fip id -> the body of its piece
        # router id -> its piece and the router with its floating IPs (with_floatingips), until
        # either moves
        self._with_fips: dict[str, tuple[RouterPiece, Router]] = {}
        self.firewall: Firewall | None = None
        # the firewall's parts
        self._group_rules = self._shared = self._groups_chains = FirewallPart(())
        # protected port plugged here -> the body its part was compiled from, which of its
        # groups existed and whether they were stateful, the part, its groups (port_groups);
        # every group's (id, stateful) then; their ids in order, and their parts in that order;
        # those stateless; the groups they name, and the ports' combinations of groups (-> how
        # many of them)
        self._port_parts: dict[
            str, tuple[Resource, tuple[Any, bool], FirewallPart, tuple[str, ...]]
        ] = {}
        self._port_kinds: list[Any] = []
        self._port_order: list[str] = []
        self._port_own: list[FirewallPart] = []
        self._stateless: dict[str, Resource] = {}
        self._named: dict[str, int] = {}
        self._combinations: dict[tuple[str, ...], int] = {}
        # the ports plugged here as the firewall last saw them (the base's realized ports),
        # and as _compile_pieces moved them: before, after, the ids of the ports that moved
        self._seen_plugged: Any = None
        self._pieces_moved: tuple[Any, Any, set[str]] | None = None
        # every port's addresses in each group's members (firewall.group_members), and the
        # sets of the remote groups made of them, until a member moves
        self.members: dict[str, dict[str, int]] = {}
        self._member_sets: dict[str, FirewallPart] = {}
        self._lists: dict[str, tuple[list[Resource], str]] = {}  # see _collection_digest
        self.mapped: dict[str, int] = {}  # router id -> its floating IPs with a mapping
        self._bodies: dict[int, tuple[Resource, str]] = {}  # id(body) -> (body, its digest)
        self.on_network: dict[str, set[str]] = {}  # network id -> its ports' ids
        self.plugs: dict[str, set[str]] = {}  # port id -> the instances that name it
        # the ports and instances `on_network` and `plugs` were last built from whole, and
        # whether a change of them was indexed since
        self._indexed: list[list[Resource]] = []
        self._reindex = True
        self.resync()

    # --- public --------------------------------------------------------------------

    def desired(self, revision: int = 0) -> DesiredState:
        """The union of the pieces: what compile_host gives for the whole model."""
        assert self.base is not None and self.firewall is not None
        return assemble(
            revision, self.host, self.base, self.routers, self._routers(), self.firewall
        )

    def outline(self) -> Outline:
        """What the host's report tells of `desired`, without making all of it."""
        assert self.base is not None
        return outline(self.base, self.routers, self._routers())

    def _routers(self) -> dict[str, Router]:
        return {r: self.router_with_fips(r) for r in self.routers}

    def router_with_fips(self, router_id: str) -> Router:
        """The router with its floating IPs: made again only when its piece or one of them
        moved (a router may hold 50,000)."""
        piece = self.routers[router_id]
        known = self._with_fips.get(router_id)
        if known is None or known[0] is not piece:
            known = self._with_fips[router_id] = (
                piece,
                with_floatingips(piece, self.router_fips(router_id)),
            )
        return known[1]

    def floating_ips(self) -> int:
        """How many floating IPs the routers here map."""
        return sum(
            self.mapped.get(router_id, 0)
            for router_id, piece in self.routers.items()
            if piece.router.gateway is not None
        )

    def router_fips(self, router_id: str) -> list[FloatingIpPiece]:
        return list(self.by_router.get(router_id, {}).values())

    def update(self, changes: Iterable[Change]) -> Changed:
        """Compile again the keys these changes touch (the index)."""
        dirty: set[tuple[str, str]] = set()
        for change in changes:
            dirty |= self._touched(change)
            self._index(change)
        return self._compile(dirty)

    def resync(self) -> Changed:
        """Compare every key's digest, compile again those that moved. What did not move
        costs a comparison of identities: a body that is the one compiled has the digest it
        had (a change replaces it)."""
        if len(self._bodies) > 2 * sum(len(bodies) for bodies in self.items.values()):
            self._bodies = {  # forget the digests of bodies replaced since
                id(body): known
                for collection in self.items.values()
                for body in collection.values()
                if (known := self._bodies.get(id(body))) is not None
            }
        indexed = [list(self.items.get(name, {}).values()) for name in ("ports", "instances")]
        if self._reindex or indexed != self._indexed:
            self.on_network, self.plugs, self.members, self._member_sets = {}, {}, {}, {}
            for collection, bodies in zip(("ports", "instances"), indexed, strict=True):
                for body in bodies:
                    self._index(Change(collection, body["id"], None, body))
            self._indexed, self._reindex = indexed, False
        keys = {("base", ""), ("firewall", "")}
        keys |= {("router", r) for r in self.routers}
        fips, compiled = self.items.get("floatingips", {}), self._compiled_from
        if fips != compiled:  # at C speed: the same bodies are equal without being read
            keys |= {("floatingip", f) for f, body in fips.items() if compiled.get(f) is not body}
            keys |= {("floatingip", f) for f in compiled.keys() - fips.keys()}
        return self._compile(keys)

    # --- the index -------------------------------------------------------------------

    def _touched(self, change: Change) -> set[tuple[str, str]]:
        bodies = [body for body in (change.before, change.after) if body is not None]
        if not bodies:
            return set()
        if change.collection == "floatingips":
            return {("floatingip", change.id)}
        if change.collection == "routers":
            placed = [body.get(L3_AGENT_HOST) for body in bodies]
            moved = len(bodies) == 1 or placed[0] != placed[1]
            return {("router", change.id), *([("base", "")] if moved else [])}
        if change.collection == "metering_labels":
            return {("router", r) for r in self.routers}
        if change.collection in ("security_groups", "address_groups"):
            return {("firewall", "")}
        pieces = self._pieces_touched(change, bodies)
        if pieces is not None:
            return pieces
        touched = {("base", "")}
        if change.collection == "ports":  # a router's ports: through the base (_passed_on)
            touched.add(("firewall", ""))
        if change.collection in ("networks", "subnets"):
            field_of = "network_id" if change.collection == "networks" else "subnet_id"
            touched |= {
                ("router", router_id)
                for router_id, ports in self._router_ports().items()
                if any(_uses(port, field_of, change.id) for port in ports)
            }
        return touched

    def _pieces_touched(
        self, change: Change, bodies: list[Resource]
    ) -> set[tuple[str, str]] | None:
        """The ports and networks a port's or an instance's change touches; None: the base."""
        ports = self.items.get("ports", {})
        if change.collection == "ports":
            touched = {("firewall", "")}
        elif change.collection == "instances":
            touched = set()
            bodies = [ports[p] for b in bodies for p in b.get("port_ids", []) if p in ports]
        else:
            return None
        if self.base is None or not all(self._alone(body) for body in bodies):
            return None
        touched |= {("port", body["id"]) for body in bodies}
        touched |= {("network", body["network_id"]) for body in bodies}
        return touched

    def _alone(self, port: Resource) -> bool:
        """Whether a port's tap is all it adds here: a plain port on a network realized here
        (or not plugged here), neither a trunk's nor a load balancer's, without QoS."""
        assert self.base is not None
        network = self.items.get("networks", {}).get(port["network_id"]) or {}
        balancers = self.items.get("loadbalancers", {}).values()
        # A VIP's port, or an amphora's VRRP port: the base plugs them with their addresses.
        vips = {lb.get("vip_port_id") for lb in balancers} | {
            amphora.get("vrrp_port_id") for lb in balancers for amphora in lb.get("amphorae") or ()
        }
        plugged = port.get("binding:host_id") == self.host.name or port["id"] in self.plugs
        return (
            is_plain(port)
            and not (port.get("trunk_details") or {}).get("sub_ports")
            and port["id"] not in self.base.subports
            and port["id"] not in vips
            and not port.get("qos_policy_id")
            and not network.get("qos_policy_id")
            and (port["network_id"] in self.base.realized or not plugged)
        )

    def _index(self, change: Change) -> None:
        """Keep `on_network`, `plugs` and `members` as the change left the model."""
        if change.collection in ("ports", "instances"):
            self._reindex = True
        for body, sign in ((change.before, -1), (change.after, 1)):
            if body is None:
                continue
            if change.collection == "ports":
                _mark(self.on_network, body["network_id"], change.id, sign)
                count_members(self.members, body, sign)
                for sg_id in body.get("security_groups", []):
                    self._member_sets.pop(sg_id, None)
            elif change.collection == "instances":
                for port_id in body.get("port_ids", []):
                    _mark(self.plugs, port_id, change.id, sign)

    def _router_ports(self) -> dict[str, tuple[Resource, ...]]:
        return self.base.router_ports if self.base is not None else {}

    # --- compiling -----------------------------------------------------------------------

    def _compile(self, dirty: set[tuple[str, str]]) -> Changed:
        changed = Changed()
        if ("base", "") not in dirty and not self._compile_pieces(dirty, changed):
            dirty.add(("base", ""))
        if ("base", "") in dirty and self._moved(("base", ""), self._base_inputs()):
            before = self.base
            model = {name: list(self.items.get(name, {}).values()) for name in BASE_COLLECTIONS}
            model["routers"] = list(self.items.get("routers", {}).values())
            self.base = compile_base(model, self.host)
            changed.base = before != self.base
            dirty |= self._passed_on(before, self.base)
        base = self.base
        assert base is not None
        for router_id in sorted(self.routers.keys() - base.router_ports.keys()):
            changed.routers[router_id] = (self.routers.pop(router_id), None)
            self.digests.pop(("router", router_id), None)
            self._with_fips.pop(router_id, None)
        for kind, router_id in sorted(dirty):
            if kind != "router" or router_id not in base.router_ports:
                continue
            router = self.items["routers"][router_id]
            if not self._moved(("router", router_id), self._router_inputs(router_id)):
                continue
            labels = list(self.items.get("metering_labels", {}).values())
            networks, subnets = self.items.get("networks", {}), self.items.get("subnets", {})
            piece = router_piece(self.host, router, base, networks, subnets, labels)
            if self.routers.get(router_id) != piece:
                changed.routers[router_id] = (self.routers.get(router_id), piece)
                self.routers[router_id] = piece
        for kind, fip_id in sorted(dirty):
            if kind == "floatingip":
                self._compile_floatingip(fip_id, changed)
        if ("firewall", "") in dirty:
            before_firewall, self.firewall = self.firewall, self._compile_firewall(base)
            changed.firewall = before_firewall is None or (
                before_firewall.digest,
                before_firewall.elements,
            ) != (self.firewall.digest, self.firewall.elements)
        return changed

    def _compile_pieces(self, dirty: set[tuple[str, str]], changed: Changed) -> bool:
        """Compile the ports' and networks' keys in `dirty` into the base; False (nothing
        done) when the base must be compiled whole: a network is wanted here, or no more."""
        base = self.base
        assert base is not None
        ports, networks = self.items.get("ports", {}), self.items.get("networks", {})
        pieces = dict(base.ports)
        moved: dict[str, tuple[PortPiece | None, PortPiece | None]] = {}
        for port_id in sorted(key for kind, key in dirty if kind == "port"):
            body = ports.get(port_id)
            instance_id, plugged = self._plugged(port_id)
            piece = None
            if body is not None and (plugged or body.get("binding:host_id") == self.host.name):
                if body["network_id"] not in base.realized:
                    return False
                network = networks[body["network_id"]]
                instance_of = {port_id: instance_id} if instance_id else {}
                subnets = self.items.get("subnets", {})
                piece = port_piece(self.host, body, network, subnets, plugged, instance_of)
            if pieces.get(port_id) != piece:
                moved[port_id] = (pieces.get(port_id), piece)
                if piece is None:
                    del pieces[port_id]
                else:
                    pieces[port_id] = piece
        for network_id in {b.port["network_id"] for b, _ in moved.values() if b is not None}:
            on_it = self.on_network.get(network_id, ())
            if network_id not in base.wanted_elsewhere and not any(p in pieces for p in on_it):
                return False  # no more wanted here
        nets = dict(base.networks)
        for network_id in sorted(key for kind, key in dirty if kind == "network"):
            if network_id not in base.realized:
                continue
            on_net = [ports[p] for p in sorted(self.on_network.get(network_id, ()))]
            protected = network_id in base.protected_elsewhere or any(
                is_protected(port) for port in on_net if port["id"] in pieces
            )
            endpoints = list(self.items.get("vxlan_endpoints", {}).values())
            subnets = self.items.get("subnets", {})
            net_piece = network_piece(
                self.host, networks[network_id], on_net, subnets, endpoints, protected
            )
            if net_piece != nets[network_id]:
                changed.networks[network_id] = (nets[network_id], net_piece)
                nets[network_id] = net_piece
        changed.ports.update(moved)
        if moved:
            dirty.add(("firewall", ""))
            realized_ports = _replaced(base.realized_ports, moved)
            self._pieces_moved = (base.realized_ports, realized_ports, set(moved))
            self.base = dataclasses.replace(
                base, ports=pieces, networks=nets, realized_ports=realized_ports
            )
        elif changed.networks:
            self.base = dataclasses.replace(base, networks=nets)
        return True

    def _plugged(self, port_id: str) -> tuple[str | None, tuple[str, str] | None]:
        """The instance here that plugs a port (the last by id), and its NIC (netns, name)."""
        instances = self.items.get("instances", {})
        here = [
            i for i in self.plugs.get(port_id, ()) if instances[i].get("host") == self.host.name
        ]
        if not here:
            return None, None
        instance = instances[max(here)]
        ids = instance.get("port_ids", [])
        index = len(ids) - 1 - ids[::-1].index(port_id)
        return instance["id"], (names.instance_netns(self.host, instance["id"]), f"eth{index}")

    def _compile_firewall(self, base: HostBase) -> Firewall:
        """The firewall from its parts, each compiled again only when its inputs moved: the
        ports' (only those that moved, but for which groups exist and are stateful), the
        groups' (a port leaves it alone, but for which groups they name) and each remote
        group's members' (only the groups of the ports that moved)."""
        groups = list(self.items.get("security_groups", {}).values())
        kinds = [(sg["id"], sg.get("stateful", True)) for sg in groups]
        realized, moved = base.realized_ports, self._pieces_moved
        if self._seen_plugged is not realized or kinds != self._port_kinds:
            by_id = {sg["id"]: sg for sg in groups}
            # Only the ports that moved, unless which groups exist (or are stateful) moved
            # too: that may change any port's part.
            if (
                moved is not None
                and moved[0] is self._seen_plugged
                and moved[1] is realized
                and kinds == self._port_kinds
            ):
                pieces = {p: base.ports.get(p) for p in moved[2]}
                ports = {p: piece.port if piece else None for p, piece in pieces.items()}
            else:
                ports = dict.fromkeys(self._port_parts)
                ports.update((port["id"], port) for port in protected_ports(realized))
            self._plug(ports, by_id, same_groups=kinds == self._port_kinds)
            self._seen_plugged, self._port_kinds = realized, kinds
        self._pieces_moved = None
        named = sorted(self._named)
        address_groups = self.items.get("address_groups", {}).values()
        inputs = [named, *map(self._collection_digest, ("security_groups", "address_groups"))]
        if self._moved(("firewall", "groups"), _digest(inputs)):
            self._group_rules = group_rules(named, groups, address_groups)
        remote = remote_groups(named, groups)
        for sg_id in remote:
            if sg_id not in self._member_sets:
                self._member_sets[sg_id] = member_set(sg_id, self.members.get(sg_id, {}).keys())
        members = members_part([self._member_sets[sg_id] for sg_id in remote])
        return firewall_of(
            self._shared,
            self._groups_chains,
            self._port_own,
            self._group_rules,
            members,
            base.qos_commands,
        )

    def _plug(
        self, ports: dict[str, Resource | None], groups: dict[str, Resource], same_groups: bool
    ) -> None:
        """Make the ports' parts those of `ports` (port id -> its body plugged here, None: not
        there), each compiled again only when its body moved, or which of its groups exist and
        whether they are stateful (unless `same_groups`)."""
        stateless, combinations = set(self._stateless), set(self._combinations)
        for port_id, port in ports.items():
            had = self._port_parts.get(port_id)
            if port is not None and not is_protected(port):
                port = None
            if had is not None and had[0] is port and same_groups:
                continue
            inputs = None
            if port is not None:
                sg_ids = port.get("security_groups", [])
                inputs = (tuple(sg in groups for sg in sg_ids), is_stateful(port, groups))
                if had is not None and had[0] is port and had[1] == inputs:
                    continue
            if had is not None:
                del self._port_parts[port_id]
                at = bisect.bisect_left(self._port_order, port_id)
                del self._port_order[at], self._port_own[at]
                self._stateless.pop(port_id, None)
                for sg_id in had[0].get("security_groups", []):
                    _mark_count(self._named, sg_id, -1)
                _mark_count(self._combinations, had[3], -1)
            if port is not None and inputs is not None:
                sg_ids = port_groups(port, groups)
                part = port_part(port, groups)
                self._port_parts[port_id] = (port, inputs, part, sg_ids)
                at = bisect.bisect_left(self._port_order, port_id)
                self._port_order.insert(at, port_id)
                self._port_own.insert(at, part)
                if not inputs[1]:
                    self._stateless[port_id] = port
                for sg_id in port.get("security_groups", []):
                    _mark_count(self._named, sg_id, 1)
                _mark_count(self._combinations, sg_ids, 1)
        if self._stateless.keys() != stateless or self._shared.digest == "":
            self._shared = ports_part(sorted(self._stateless.values(), key=lambda p: p["id"]))
        if self._combinations.keys() != combinations or self._groups_chains.digest == "":
            self._groups_chains = groups_chains(self._combinations)

    def _passed_on(self, before: HostBase | None, after: HostBase) -> set[tuple[str, str]]:
        """The keys that what the base passes on touches, when it moved."""
        dirty = set()
        was = before.router_ports if before is not None else {}
        realized = before.realized if before is not None else frozenset()
        moved_networks = realized ^ after.realized
        for router_id, ports in after.router_ports.items():
            if was.get(router_id) != ports or any(
                port["network_id"] in moved_networks for port in ports
            ):
                dirty.add(("router", router_id))
        if before is None or (before.realized_ports, before.qos_commands) != (
            after.realized_ports,
            after.qos_commands,
        ):
            dirty.add(("firewall", ""))
        return dirty

    def _compile_floatingip(self, fip_id: str, changed: Changed) -> None:
        """A floating IP's piece depends on its body alone: compiled again when the body is
        another than the one it was compiled from."""
        body = self.items.get("floatingips", {}).get(fip_id)
        before = self.floatingips.get(fip_id)
        if body is None:
            self._compiled_from.pop(fip_id, None)
            after = None
        elif self._compiled_from.get(fip_id) is not body:
            self._compiled_from[fip_id] = body
            after = compile_floatingip(body)
        else:
            return
        if after == before:
            return
        if before is not None:
            self.by_router.get(before.router_id or "", {}).pop(fip_id, None)
            self._with_fips.pop(before.router_id or "", None)
            self._count(before, -1)
            del self.floatingips[fip_id]
        if after is not None:
            self.by_router.setdefault(after.router_id or "", {})[fip_id] = after
            self._with_fips.pop(after.router_id or "", None)
            self._count(after, 1)
            self.floatingips[fip_id] = after
        earlier = changed.floatingips.get(fip_id, (before, None))[0]
        changed.floatingips[fip_id] = (earlier, after)

    def _count(self, piece: FloatingIpPiece, sign: int) -> None:
        router_id = piece.router_id or ""
        self.mapped[router_id] = self.mapped.get(router_id, 0) + sign * len(piece.floatingips)

    # --- digests -------------------------------------------------------------------------

    def _moved(self, key: tuple[str, str], digest: str) -> bool:
        """Whether the inputs of `key` moved since it was compiled (and remember them)."""
        if self.digests.get(key) == digest:
            return False
        self.digests[key] = digest
        return True

    def _digest_of(self, body: Resource) -> str:
        known = self._bodies.get(id(body))
        if known is None or known[0] is not body:
            known = self._bodies[id(body)] = (body, _digest(body))
        return known[1]

    def _digest_all(self, bodies: Iterable[Resource]) -> str:
        joined = "".join(self._digest_of(body) for body in bodies)
        return hashlib.sha256(joined.encode()).hexdigest()

    def _collection_digest(self, collection: str) -> str:
        """`_digest_all` of a collection's bodies: the last one when they are the same bodies
        (a list's comparison finds an identical item equal without reading it)."""
        bodies = list(self.items.get(collection, {}).values())
        last = self._lists.get(collection)
        if last is None or last[0] != bodies:
            last = self._lists[collection] = (bodies, self._digest_all(bodies))
        return last[1]

    def _base_inputs(self) -> str:
        placed = [(r, b.get(L3_AGENT_HOST)) for r, b in self.items.get("routers", {}).items()]
        parts = [self._collection_digest(name) for name in BASE_COLLECTIONS]
        return _digest([parts, placed])

    def _router_inputs(self, router_id: str) -> str:
        base = self.base
        assert base is not None
        ports = base.router_ports[router_id]
        subnets = self.items.get("subnets", {})
        networks = self.items.get("networks", {})
        used = {ip["subnet_id"] for port in ports for ip in port.get("fixed_ips", [])}
        nets = {port["network_id"] for port in ports}
        return self._digest_all(
            [
                self.items["routers"][router_id],
                *ports,
                *(subnets[s] for s in sorted(used) if s in subnets),
                *(networks[n] for n in sorted(nets) if n in networks),
                {"realized": sorted(nets & base.realized)},
                *self.items.get("metering_labels", {}).values(),
            ]
        )


def _mark(index: dict[str, set[str]], key: str, member: str, sign: int) -> None:
    """Add `member` to (sign 1) or remove it from (-1) the set of `key` in `index`."""
    if sign > 0:
        index.setdefault(key, set()).add(member)
        return
    members = index.get(key, set())
    members.discard(member)
    if not members:
        index.pop(key, None)


def _replaced(
    ports: tuple[Resource, ...], moved: dict[str, tuple[PortPiece | None, PortPiece | None]]
) -> tuple[Resource, ...]:
    """`ports` (sorted by id) with the ports of the pieces that moved in place of those they
    had (a piece gone: its port out), found by bisection: a host may have 10,000."""
    found = list(ports)
    for port_id, (_, piece) in sorted(moved.items()):
        at = bisect.bisect_left(found, port_id, key=_ID)
        present = at < len(found) and found[at]["id"] == port_id
        if piece is None and present:
            del found[at]
        elif piece is not None and present:
            found[at] = piece.port
        elif piece is not None:
            found.insert(at, piece.port)
    return tuple(found)


def _mark_count(counts: dict[Key, int], key: Key, sign: int) -> None:
    """Count `key` in (sign 1) or out of (-1) `counts`."""
    count = counts.get(key, 0) + sign
    if count:
        counts[key] = count
    else:
        del counts[key]


def _uses(port: Resource, field_of: str, resource_id: str) -> bool:
    if field_of == "network_id":
        return bool(port.get("network_id") == resource_id)
    return any(ip.get("subnet_id") == resource_id for ip in port.get("fixed_ips", []))


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
