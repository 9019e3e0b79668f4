"""The desired state of one host: plain, immutable, JSON-serializable data."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Literal

LinkKind = Literal["bridge", "veth", "vxlan", "vlan", "ifb", "external"]
Resource = dict[str, Any]  # one API resource, as the server serves it


@dataclass(frozen=True)
class VethPeer:
    netns: str | None
    name: str
    mac: str | None = None
    master: str | None = None
    mtu: int | None = None  # None: the kernel's default


@dataclass(frozen=True)
class Link:
    """A link in `netns`. Kind "external" exists already (a NIC, a VM tap): bound, never made.

    A bridge with `netfilter` passes its IP packets through the inet hooks too
    (br_netfilter), where conntrack makes security groups stateful: wanted where
    a protected port is plugged, and a cost per packet everywhere else.
    """

    netns: str | None
    name: str
    kind: LinkKind
    master: str | None = None
    up: bool = True
    peer: VethPeer | None = None
    vni: int | None = None
    local_ip: str | None = None
    parent: str | None = None
    vlan_id: int | None = None
    netfilter: bool = False
    mac: str | None = None  # of a VLAN link; a veth's far end has its own (VethPeer)
    mtu: int | None = None  # None: the kernel's default
    proxy: bool = False  # a VXLAN device answering ARP from its neighbours (plan.overlay)
    ipv6_off: bool = False  # its disable_ipv6 set; False: left as the kernel has it


@dataclass(frozen=True)
class Address:
    netns: str | None
    ifname: str
    cidr: str  # address/prefixlen
    # Usable at once, without IPv6 duplicate address detection: for an address that no one else
    # can hold (IPAM gave it to the port) in a namespace that is its own.
    nodad: bool = False
    # A VIP that keepalived holds while its instance is VRRP master: the agent neither adds nor
    # removes it.
    vrrp: bool = False


@dataclass(frozen=True)
class FdbEntry:
    """A static entry of a VXLAN device's forwarding database: frames to `mac` go to the VTEP
    `dst` (the all-zero MAC: broadcast and unknown frames are flooded to it too)."""

    netns: str | None
    device: str
    mac: str
    dst: str


@dataclass(frozen=True)
class ProxyNeighbour:
    """A permanent neighbour of a VXLAN device with `proxy`: the device answers ARP requests
    for `ip` with `mac` itself, and they never cross the overlay."""

    netns: str | None
    device: str
    ip: str
    mac: str


@dataclass(frozen=True)
class DhcpServer:
    """dnsmasq for one network: `ranges` and `domain` need a restart to change; hosts, opts
    and names (an /etc/hosts of the ports' addresses) a SIGHUP."""

    network_id: str
    netns: str
    interface: str
    ranges: tuple[str, ...]
    hosts: str
    opts: str
    domain: str = ""
    names: str = ""


@dataclass(frozen=True)
class Advertiser:
    """radvd in `netns`, for a router or a network's DHCP namespace (`key`), with `config`
    (plan.ra): re-read on SIGHUP."""

    key: str  # the router's id, or "dhcp-<network id>"
    netns: str
    config: str


@dataclass(frozen=True)
class Instance:
    id: str
    netns: str
    port_id: str
    ifname: str
    dhcpv6: str = ""  # "stateful", "stateless" or "": what its DHCPv6 client asks for (plan.ra)


@dataclass(frozen=True)
class Firewall:
    """nftables tables as libnftables JSON commands (adds only), in parts, and their digest.

    `parts`: the commands by part, each with its digest; a part whose digest did not move
    holds the same objects, so the agent changes only the others (NftDriver.update).
    `commands`: all of them, part after part, put together only when asked: a host of 10,000
    ports has a part for each, and a port's change moves one.
    `elements` fill sets that the commands declare empty: (family, table, set, elements).
    They are not in the digest, so the agent changes them element by element, in place.
    """

    tables: tuple[tuple[str, str], ...]  # (family, name)
    parts: tuple[tuple[str, tuple[dict[str, Any], ...]], ...]  # (digest, commands)
    digest: str
    elements: tuple[tuple[str, str, str, tuple[Any, ...]], ...] = ()

    @classmethod
    def whole(
        cls, tables: tuple[tuple[str, str], ...], commands: tuple[dict[str, Any], ...], digest: str
    ) -> Firewall:
        """Tables of one part."""
        return cls(tables, ((digest, commands),), digest)

    @functools.cached_property
    def commands(self) -> tuple[dict[str, Any], ...]:
        return tuple(itertools.chain.from_iterable(commands for _, commands in self.parts))


@dataclass(frozen=True)
class Shaper:
    """A tbf qdisc at the root of `device`: what leaves it is shaped (plan.qos). With
    `redirect_from`, what arrives on that device is sent to `device` (an ifb) to leave it."""

    netns: str | None
    device: str
    rate_bps: int  # bits per second
    burst_bytes: int
    redirect_from: str | None = None


@dataclass(frozen=True)
class Route:
    destination: str  # CIDR
    nexthop: str


@dataclass(frozen=True)
class FloatingIp:
    id: str
    address: str  # the floating IP, a local route on the router's gateway interface
    fixed_ip: str


@dataclass(frozen=True)
class PortForwarding:
    """One element of a router's port forwarding map: protocol . floating IP . external port(s)
    -> internal IP . port."""

    floatingip_id: str
    protocol: str  # tcp | udp
    address: str  # the floating IP
    external: tuple[int, int]  # first and last port
    internal_ip: str
    internal_port: int


@dataclass(frozen=True)
class Router:
    """A router's namespace: forwarding, static routes, and one nft table for its NAT.

    `nat` holds the table's rules and empty floating IP maps; the floating IPs
    are elements of those maps, added and deleted one by one (see plan.routers).
    Its interfaces' addresses are the router's too, not the host's (`addresses`);
    each floating IP has a local route on the gateway, changed one by one.
    Metering labels have a table of their own, changed in place (plan.metering).
    """

    id: str
    netns: str
    forwarding: bool
    gateway: str | None  # the qg- interface, when the router has a gateway
    routes: tuple[Route, ...]
    nat: Firewall
    floatingips: tuple[FloatingIp, ...]
    addresses: tuple[Address, ...] = ()  # of its qr- and qg- interfaces, from their ports
    port_forwardings: tuple[PortForwarding, ...] = ()  # elements, as floating IPs are
    metering: Firewall | None = None  # its metering labels' table (plan.metering), if any
    # accept_ra of its gateway interface on an external network with IPv6: 2 (its default
    # route from the upstream's advertisements) without the subnet's gateway IP, else 0.
    accept_ra: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Upstream:
    """The gateway addresses that a bridge of the outside namespace holds (isolated mode)."""

    netns: str
    bridge: str
    cidrs: tuple[str, ...]


@dataclass(frozen=True)
class L4Monitor:
    """A pool's health monitor, as the agent runs it against each member."""

    type: str  # UDP-CONNECT | SCTP | TCP | HTTP
    delay: int  # seconds between checks
    timeout: int  # seconds a check may take
    rise: int  # successes in a row that bring a member up (Octavia's max_retries)
    fall: int  # failures in a row that take it down (max_retries_down)
    http_method: str = "GET"
    url_path: str = "/"
    expected_codes: str = "200"


@dataclass(frozen=True)
class L4Member:
    id: str
    address: str
    port: int
    weight: int
    backup: bool
    check_address: str  # monitor_address, else the address
    check_port: int  # monitor_port, else the port


@dataclass(frozen=True)
class L4Listener:
    """A UDP or SCTP listener with its default pool's enabled members."""

    id: str
    protocol: str  # UDP | SCTP
    vip: str
    port: int
    algorithm: str
    members: tuple[L4Member, ...]
    monitor: L4Monitor | None
    persistence: tuple[int, str] | None = None  # (seconds, netmask) for SOURCE_IP
    connection_limit: int = -1  # flows per member; -1 (or 0, as IPVS's uthreshold): unlimited


@dataclass(frozen=True)
class LoadBalancer:
    """haproxy in the load balancer's namespace; `config` holds its proxies (plan.loadbalancer).
    `l4`: its UDP and SCTP listeners, which nftables serves (plan.l4)."""

    id: str
    netns: str
    revision: int  # of the load balancer's tree in the change feed: reported back once running
    amphora_id: str  # the instance: a new one (a failover) is a new haproxy, not a reload
    gateway: str | None  # the VIP subnet's gateway: the namespace's default route
    config: str  # empty: no haproxy listener (no HTTP, HTTPS or TCP one), no haproxy
    l4: tuple[L4Listener, ...] = ()
    # (name, content): certificates, keys, CAs, CRLs and crt-lists that `config` names
    files: tuple[tuple[str, str], ...] = ()
    # ACTIVE_STANDBY: keepalived's vrrp_instance for this amphora (plan.loadbalancer); the
    # instance's state is the amphora's (`key`), apart from its peer's on the same host
    vrrp: str = ""

    @property
    def key(self) -> str:
        return self.amphora_id if self.vrrp else self.id


@dataclass(frozen=True)
class Outline:
    """What an agent's report tells of its host's desired state: its instances, the ports'
    devices, DHCP servers, routers and load balancers; not the links, addresses and entries
    that only applying it needs, whose sorting grows with every port of the host."""

    instances: tuple[Instance, ...]
    ports: dict[str, str]  # port id -> device name
    dhcp: tuple[DhcpServer, ...]
    routers: tuple[Router, ...]
    loadbalancers: tuple[LoadBalancer, ...]


@dataclass(frozen=True)
class DesiredState:
    revision: int
    host: str
    namespaces: tuple[str, ...]
    links: tuple[Link, ...]
    addresses: tuple[Address, ...]
    dhcp: tuple[DhcpServer, ...]
    instances: tuple[Instance, ...]
    firewall: Firewall
    ports: dict[str, str] = field(default_factory=dict)  # port id -> device name
    problems: tuple[str, ...] = ()  # what the plan could not realize, and why
    routers: tuple[Router, ...] = ()
    upstreams: tuple[Upstream, ...] = ()
    loadbalancers: tuple[LoadBalancer, ...] = ()
    shapers: tuple[Shaper, ...] = ()
    fdb: tuple[FdbEntry, ...] = ()  # of the VXLAN devices (plan.overlay)
    arp: tuple[ProxyNeighbour, ...] = ()  # the VXLAN devices' ARP responder (plan.overlay)
    advertisers: tuple[Advertiser, ...] = ()  # IPv6 router advertisements (plan.ra)

    def outline(self) -> Outline:
        return Outline(self.instances, self.ports, self.dhcp, self.routers, self.loadbalancers)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=1)
