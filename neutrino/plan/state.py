"""The desired state of one host: plain, immutable, JSON-serializable data."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

LinkKind = Literal["bridge", "veth", "vxlan", "vlan", "external"]


@dataclass(frozen=True)
class VethPeer:
    netns: str | None
    name: str
    mac: str | None = None
    master: str | None = None


@dataclass(frozen=True)
class Link:
    """A link in `netns`. Kind "external" exists already (a NIC, a VM tap): only bound, never made."""

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


@dataclass(frozen=True)
class Address:
    netns: str | None
    ifname: str
    cidr: str  # address/prefixlen


@dataclass(frozen=True)
class DhcpServer:
    """dnsmasq for one network: `ranges` need a restart to change, hosts and opts a SIGHUP."""

    network_id: str
    netns: str
    interface: str
    ranges: tuple[str, ...]
    hosts: str
    opts: str


@dataclass(frozen=True)
class Instance:
    id: str
    netns: str
    port_id: str
    ifname: str


@dataclass(frozen=True)
class Firewall:
    """nftables tables as libnftables JSON commands (adds only), and their digest."""

    tables: tuple[tuple[str, str], ...]  # (family, name)
    commands: tuple[dict[str, Any], ...]
    digest: str


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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=1)
