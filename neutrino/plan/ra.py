"""IPv6 router advertisements: radvd's configuration per namespace, as Neutron writes it.

A subnet's `ipv6_ra_mode` says whether neutrino advertises it and how: `slaac` and
`dhcpv6-stateless` prefixes are autonomous (hosts make their address from the prefix and
their MAC, EUI-64: the address the API gave the port), `dhcpv6-stateful` ones are not, and
the M and O flags send hosts to DHCPv6 for their address (stateful) or their options
(stateless). Without an `ipv6_ra_mode` neutrino advertises nothing for the subnet: a router
outside it does.

Where from: the router's `qr-` interface when a router interface holds an address on the
subnet, as Neutron's L3 agent runs radvd there; its link-local address becomes the hosts'
default route (every interface with an IPv6 subnet advertises, prefixes or not, as
Neutron's). A subnet on no router is advertised from its network's DHCP namespace, with a
router lifetime of 0: its prefix, flags and options, but no default route through a
namespace that routes nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from neutrino.plan import names
from neutrino.plan.host import HostConfig
from neutrino.plan.state import Advertiser, Resource

SLAAC, STATEFUL, STATELESS = "slaac", "dhcpv6-stateful", "dhcpv6-stateless"
AUTONOMOUS = (SLAAC, STATELESS)
MIN_INTERVAL, MAX_INTERVAL = 30, 100  # seconds: Neutron's min/max_rtr_adv_interval
MAX_RDNSS = 3  # radvd takes at most 3 servers in an RDNSS line
IPV6_MIN_MTU = 1280
ROUTER_INTERFACE = "network:router_interface"


def advertised_by_routers(ports: Iterable[Resource]) -> set[str]:
    """The subnets a router interface holds an address on: their router advertises them."""
    return {
        ip["subnet_id"]
        for port in ports
        if port.get("device_owner") == ROUTER_INTERFACE
        for ip in port.get("fixed_ips", [])
    }


def compile_router_advertiser(
    host: HostConfig,
    router_id: str,
    ports: Iterable[Resource],
    subnets: dict[str, Resource],
    networks: dict[str, Resource],
    realized: frozenset[str] | set[str],
) -> Advertiser | None:
    """radvd on the router's interfaces that have an IPv6 subnet, if any."""
    blocks = []
    for port in sorted(ports, key=lambda p: p["id"]):
        if port.get("device_owner") != ROUTER_INTERFACE or port["network_id"] not in realized:
            continue
        ipv6 = _ipv6_subnets(port.get("fixed_ips", []), subnets)
        if ipv6:
            mtu = networks.get(port["network_id"], {}).get("mtu")
            interface = names.router_interface(port["id"])
            blocks.append(interface_config(interface, ipv6, mtu, default_router=True))
    if not blocks:
        return None
    return Advertiser(router_id, names.router_netns(host, router_id), "".join(blocks))


def compile_dhcp_advertiser(
    host: HostConfig,
    network: Resource,
    dhcp_port: Resource,
    subnets: dict[str, Resource],
    on_routers: set[str],
) -> Advertiser | None:
    """radvd in the network's DHCP namespace for its advertised subnets on no router."""
    wanted = sorted(
        (
            s
            for s in subnets.values()
            if s["network_id"] == network["id"]
            and s["ip_version"] == 6
            and s.get("ipv6_ra_mode")
            and s["id"] not in on_routers
        ),
        key=lambda s: s["id"],
    )
    if not wanted:
        return None
    interface = names.dhcp_interface(dhcp_port["id"])
    config = interface_config(interface, wanted, network.get("mtu"), default_router=False)
    return Advertiser(f"dhcp-{network['id']}", names.dhcp_netns(host, network["id"]), config)


def dhcpv6_mode(port: Resource, subnets: dict[str, Resource]) -> str:
    """What an instance on `port` asks DHCPv6 for, from its subnets' address modes, as
    cloud-init configures a guest from them: "stateful" (an address and options),
    "stateless" (options only), or "" (nothing: SLAAC, or no IPv6)."""
    modes = {
        subnets[ip["subnet_id"]].get("ipv6_address_mode")
        for ip in port.get("fixed_ips", [])
        if ip["subnet_id"] in subnets
    }
    return "stateful" if STATEFUL in modes else "stateless" if STATELESS in modes else ""


def _ipv6_subnets(fixed_ips: Iterable[Resource], subnets: dict[str, Resource]) -> list[Resource]:
    found = {ip["subnet_id"]: subnets.get(ip["subnet_id"]) for ip in fixed_ips}
    return sorted(
        (s for s in found.values() if s is not None and s["ip_version"] == 6),
        key=lambda s: s["id"],
    )


def interface_config(
    interface: str, ipv6_subnets: list[Resource], mtu: int | None, default_router: bool
) -> str:
    """One `interface` block of radvd.conf (Neutron's template, and a router lifetime of 0
    where the sender routes nothing)."""
    modes = {s.get("ipv6_ra_mode") for s in ipv6_subnets}
    lines = [
        f"interface {interface}",
        "{",
        "   AdvSendAdvert on;",
        f"   MinRtrAdvInterval {MIN_INTERVAL};",
        f"   MaxRtrAdvInterval {MAX_INTERVAL};",
    ]
    if not default_router:
        lines.append("   AdvDefaultLifetime 0;")
    if mtu and mtu >= IPV6_MIN_MTU:
        lines.append(f"   AdvLinkMTU {mtu};")
    if STATELESS in modes:
        lines.append("   AdvOtherConfigFlag on;")
    if STATEFUL in modes:
        lines.append("   AdvManagedFlag on;")
    servers = [a for s in ipv6_subnets if s.get("ipv6_ra_mode") == SLAAC for a in _dns(s)]
    if servers:
        lines.append(f"   RDNSS {' '.join(servers[:MAX_RDNSS])} {{}};")
    for subnet in ipv6_subnets:
        mode = subnet.get("ipv6_ra_mode")
        if mode not in (SLAAC, STATELESS, STATEFUL):
            continue
        autonomous = "on" if mode in AUTONOMOUS else "off"
        lines += [
            f"   prefix {ipaddress.ip_network(subnet['cidr'])}",
            "   {",
            "      AdvOnLink on;",
            f"      AdvAutonomous {autonomous};",
            "   };",
        ]
    lines.append("};")
    return "".join(f"{line}\n" for line in lines)


def _dns(subnet: Resource) -> list[str]:
    return [a for a in subnet.get("dns_nameservers") or [] if ":" in a]
