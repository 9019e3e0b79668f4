"""dnsmasq configuration for one network: static host entries, and the names of its ports.

Each address of a port has the names of its `dns_assignment` (the hostname and the fully
qualified name in the service's domain, which DHCP hands out), as Neutron's DHCP agent
writes them, and, as OVN adds, the hostname in the network's own `dns_domain`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from neutrino.plan import names
from neutrino.plan.host import HostConfig
from neutrino.plan.state import Address, DhcpServer, Resource

LEASE_SECONDS = 86400
DHCP_DOMAIN = "dhcp_domain"  # in the feed's network bodies: the domain of the ports' names
DHCP_OWNER = "network:dhcp"  # the device_owner of a network's DHCP port
DHCP_AGENT_HOST = "dhcp_agent_host"  # in the feed's network bodies: where its DHCP is served
STATEFUL, STATELESS = "dhcpv6-stateful", "dhcpv6-stateless"


def _tag(subnet_id: str) -> str:
    return f"subnet-{subnet_id[:8]}"


def compile_dhcp(
    host: HostConfig,
    network: Resource,
    dhcp_port: Resource,
    subnets: dict[str, Resource],
    ports: Iterable[Resource],
) -> tuple[DhcpServer, list[Address]]:
    """The dnsmasq of `network`, served from `dhcp_port`, and that port's addresses."""
    netns = names.dhcp_netns(host, network["id"])
    interface = names.dhcp_interface(dhcp_port["id"])
    served = {
        s["id"]: s
        for s in subnets.values()
        if s["network_id"] == network["id"] and s.get("enable_dhcp") and _serves(s)
    }
    ranges, opts, addresses = [], [], []
    for subnet_id in sorted(served):
        subnet = served[subnet_id]
        net = ipaddress.ip_network(subnet["cidr"])
        tag = _tag(subnet_id)
        if net.version == 6:
            ranges.append(
                f"set:{tag},{net.network_address},static,{net.prefixlen},{LEASE_SECONDS}s"
            )
            opts += _subnet_options_v6(tag, subnet, domain=network.get(DHCP_DOMAIN, ""))
            continue
        ranges.append(f"set:{tag},{net.network_address},static,{net.netmask},{LEASE_SECONDS}s")
        opts += _subnet_options(tag, subnet, network.get("mtu"))
    for ip in dhcp_port.get("fixed_ips", []):
        if ip["subnet_id"] in subnets:
            net = ipaddress.ip_network(subnets[ip["subnet_id"]]["cidr"])
            # IPAM gave it to this port, in a namespace of its own: no one else holds it.
            cidr, nodad = f"{ip['ip_address']}/{net.prefixlen}", net.version == 6
            addresses.append(Address(netns, interface, cidr, nodad=nodad))
    domain = network.get(DHCP_DOMAIN, "")
    hosts, dns_names = [], []
    for port in sorted(ports, key=lambda p: p["id"]):
        if port["network_id"] != network["id"] or port["id"] == dhcp_port["id"]:
            continue
        entry, port_opts = _port_options(port)
        assigned = {a["ip_address"]: a for a in port.get("dns_assignment") or []}
        for ip in port.get("fixed_ips", []):
            names_of_ip = _names(ip["ip_address"], assigned, domain, network.get("dns_domain"))
            dns_names.append(f"{ip['ip_address']}\t{' '.join(names_of_ip)}")
            if ip["subnet_id"] in served:
                fqdn = names_of_ip[0]
                if ":" in ip["ip_address"]:
                    if served[ip["subnet_id"]].get("ipv6_address_mode") != STATELESS:
                        # For DHCPv6 only, as Neutron writes it: not an IPv4 client's entry.
                        hosts.append(
                            f"{port['mac_address']},tag:dhcpv6,{fqdn},[{ip['ip_address']}]"
                        )
                    continue
                hosts.append(f"{port['mac_address']},{fqdn},{ip['ip_address']}{entry}")
                opts += port_opts
                port_opts = []  # once per port, however many addresses it has
    server = DhcpServer(
        network_id=network["id"],
        netns=netns,
        interface=interface,
        ranges=tuple(ranges),
        hosts="".join(f"{line}\n" for line in hosts),
        opts="".join(f"{o}\n" for o in opts),
        domain=domain,
        names="".join(f"{line}\n" for line in dns_names),
    )
    return server, addresses


def _serves(subnet: Resource) -> bool:
    """Whether dnsmasq answers for the subnet: IPv4, and IPv6 but for SLAAC, as Neutron's
    DHCP agent gives it a range (an IPv6 subnet without modes too); a stateless subnet's
    range hands out options only."""
    if subnet["ip_version"] == 4:
        return True
    address_mode, ra_mode = subnet.get("ipv6_address_mode"), subnet.get("ipv6_ra_mode")
    return address_mode in (STATEFUL, STATELESS) or not (address_mode or ra_mode)


def _subnet_options_v6(tag: str, subnet: Resource, domain: str) -> list[str]:
    opts = []
    if subnet.get("dns_nameservers"):
        servers = ",".join(f"[{a}]" for a in subnet["dns_nameservers"])
        opts.append(f"tag:{tag},option6:dns-server,{servers}")
    if domain:
        opts.append(f"tag:{tag},option6:domain-search,{domain}")
    return opts


def _names(
    address: str, assigned: dict[str, Resource], domain: str, network_domain: str | None
) -> list[str]:
    """The DNS names of a port's address, its fully qualified one first (for PTR answers);
    without a dns_assignment, Neutron's `host-<address>` in `domain`."""
    if address in assigned:
        hostname, fqdn = assigned[address]["hostname"], assigned[address]["fqdn"]
    else:
        hostname = "host-" + address.replace(".", "-").replace(":", "-")
        fqdn = f"{hostname}.{domain}" if domain else hostname
    names = [fqdn.rstrip("."), hostname.rstrip(".")]
    if network_domain and not hostname.endswith("."):
        names.append(f"{hostname}.{network_domain.rstrip('.')}")
    return list(dict.fromkeys(names))


def _port_tag(port_id: str) -> str:
    return f"port-{port_id}"


CLIENT_ID = ("client-id", "61")


def _one_line(text: str) -> str:
    """Up to the first newline: no value can add lines of its own to dnsmasq's files."""
    return text.split("\n", 1)[0]


def _port_options(port: Resource) -> tuple[str, list[str]]:
    """What the port's IPv4 extra DHCP options add to its host entry, and its option lines.

    As Neutron writes them: an option by name or number, after an optional `tag:`
    of the user's; the client-id identifies the host in its entry instead.
    """
    entry, opts = "", []
    for opt in port.get("extra_dhcp_opts") or []:
        if opt["ip_version"] != 4:
            continue
        value = _one_line(opt["opt_value"])
        if opt["opt_name"] in CLIENT_ID:
            entry = f",id:{value}" + entry
            continue
        tags, name = [f"tag:{_port_tag(port['id'])}"], _one_line(opt["opt_name"])
        if name.startswith("tag:") and "," in name:
            extra_tag, name = name.rsplit(",", 1)
            tags.append(extra_tag)
        option = name if name.isdigit() else f"option:{name}"
        opts.append(",".join([*tags, option, value]))
    if opts:
        entry += f",set:{_port_tag(port['id'])}"
    return entry, opts


def _subnet_options(tag: str, subnet: Resource, mtu: int | None) -> list[str]:
    gateway = subnet.get("gateway_ip")
    # An empty router option stops dnsmasq from offering itself as the gateway.
    opts = [f"tag:{tag},option:router" + (f",{gateway}" if gateway else "")]
    if subnet.get("dns_nameservers"):
        opts.append(f"tag:{tag},option:dns-server," + ",".join(subnet["dns_nameservers"]))
    routes = [f"{r['destination']},{r['nexthop']}" for r in subnet.get("host_routes") or []]
    if routes:
        if gateway:  # with classless routes, clients ignore the router option (RFC 3442)
            routes.append(f"0.0.0.0/0,{gateway}")
        opts.append(f"tag:{tag},option:classless-static-route," + ",".join(routes))
    if mtu:
        opts.append(f"tag:{tag},option:mtu,{mtu}")
    return opts
