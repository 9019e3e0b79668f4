"""The configuration of one agent's host: which namespace it is, its physical networks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

VlanMode = Literal["8021q", "veth"]


@dataclass(frozen=True)
class PhysnetConfig:
    """How a physical network reaches this host.

    `interface` is the host's NIC for it. With `outside_netns` set (the isolated lab
    mode) the agent creates that NIC itself as a veth whose far end sits in the
    outside namespace, on a bridge shared by every simulated host of the machine.
    `vlan_mode` "8021q" makes a VLAN subinterface per segment; "veth" (for kernels
    without 8021q, and the isolated default) gives each VLAN segment its own veth
    to a per-VLAN bridge in the outside namespace: the same isolation, no tags.
    """

    interface: str
    outside_netns: str | None = None
    vlan_mode: VlanMode = "8021q"


@dataclass(frozen=True)
class HostConfig:
    name: str
    netns: str | None = None  # None: the root namespace (production)
    ns_prefix: str = ""  # prepended to every namespace this agent creates
    physnets: dict[str, PhysnetConfig] = field(default_factory=dict)
    vtep_ip: str | None = None
    # The interface whose IPv4 address is `vtep_ip`, read again before every report: an
    # underlay address may be given by DHCP, or renumbered.
    vtep_interface: str | None = None
    # Also serve what no scheduler placed (DHCP ports, routers, load balancers bound to no
    # host); an agent that follows a server reports its DHCP and L3 roles only then.
    serves_dhcp: bool = True
    # How a trunk's subports reach a lab instance: "8021q" tags them on the parent's veth (a
    # VLAN of its tap on the host, of its NIC in the instance); "veth" (kernels without 8021q,
    # and the isolated default) gives each its own veth, named as that VLAN would be.
    trunk_mode: VlanMode = "8021q"
    availability_zone: str = "nova"  # of its DHCP and L3 roles

    @classmethod
    def isolated(
        cls,
        name: str,
        prefix: str = "",
        physnets: tuple[str, ...] = ("default",),
        vtep_ip: str | None = None,
    ) -> HostConfig:
        """A host that is a namespace of its own, with veth "NICs" to outside namespaces."""
        return cls(
            name=name,
            netns=f"{prefix}nhost-{name}",
            ns_prefix=f"{prefix}{name}-",
            physnets={
                physnet: PhysnetConfig(
                    interface=f"p-{physnet[:8]}",
                    outside_netns=f"{prefix}nout-{physnet}",
                    vlan_mode="veth",
                )
                for physnet in physnets
            },
            vtep_ip=vtep_ip,
            trunk_mode="veth",
        )

    @property
    def tag(self) -> str:
        """A short stable token for this host, used in names of shared objects."""
        return hashlib.sha256(self.name.encode()).hexdigest()[:5]
