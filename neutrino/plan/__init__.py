"""plan: the compiler from the logical model to one host's desired kernel state.

Why pure. `compile_host(model, host)` reads the API's resources (a snapshot)
and returns plain data: namespaces, links, addresses, dnsmasq configurations,
lab instances, nftables tables. It does no I/O, knows neither HTTP nor the
kernel, and is tested without root. The agent diffs its result against what it
observes in the kernel and applies the difference; nothing else decides what
the kernel should look like.

Naming. Every kernel object has a name derived from a resource ID, so the
agent can find what it owns after a restart and garbage-collect what is no
longer wanted: `brq<network id[:11]>` bridges, `tap<port id[:11]>` ports,
`ns-<port id[:11]>` DHCP interfaces in `qdhcp-<network id>`, `vxlan-<vni>`,
`<nic[:10]>.<vlan id>` VLAN interfaces, lab instances in `ninst-<id[:8]>`.
Link names stay within the kernel's 15 characters; namespace names take the
host's `ns_prefix`, so several simulated hosts and parallel test runs never
collide. nftables objects are named after full IDs (no length limit there).

Incremental == full. The desired state is a function of the snapshot alone:
same model, same plan, whatever sequence of changes led to it and in whatever
order resources are listed. An agent that applies a stream of changes and one
that starts from scratch therefore converge on the same kernel state; the
unit tests check the compile side, the netns tests the kernel side.

Extensible. Routers, floating IPs and load balancers are more plain data of
the same kind: `qrouter-` namespaces (one per router scheduled here, with or
without ports), their links, addresses, routes and an nft table per router
(plan.routers); `qlbaas-` namespaces and haproxy proxies (plan.loadbalancer),
with an nft table for their UDP and SCTP listeners (plan.l4).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from neutrino.plan.compile import compile_host
    from neutrino.plan.host import HostConfig, PhysnetConfig
    from neutrino.plan.state import (
        Address,
        DesiredState,
        DhcpServer,
        Firewall,
        Instance,
        Link,
        VethPeer,
    )

# Imported when first asked for: the server reads a few names of plan's modules, and starts
# faster without the compiler, which only the agent runs.
_HOMES = {
    "compile_host": "compile",
    "HostConfig": "host",
    "PhysnetConfig": "host",
    **dict.fromkeys(
        ["Address", "DesiredState", "DhcpServer", "Firewall", "Instance", "Link", "VethPeer"],
        "state",
    ),
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


__all__ = [
    "Address",
    "DesiredState",
    "DhcpServer",
    "Firewall",
    "HostConfig",
    "Instance",
    "Link",
    "PhysnetConfig",
    "VethPeer",
    "compile_host",
]
