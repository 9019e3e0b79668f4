"""compile_host: the logical model -> one host's desired state."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from neutrino.plan import names
from neutrino.plan.dhcp import DHCP_AGENT_HOST, DHCP_OWNER, compile_dhcp
from neutrino.plan.firewall import compile_firewall, is_protected
from neutrino.plan.host import HostConfig
from neutrino.plan.loadbalancer import compile_loadbalancers
from neutrino.plan.overlay import compile_arp, compile_fdb
from neutrino.plan.qos import compile_qos
from neutrino.plan.ra import (
    advertised_by_routers,
    compile_dhcp_advertiser,
    compile_router_advertiser,
    dhcpv6_mode,
)
from neutrino.plan.routers import (
    ROUTER_OWNERS,
    FloatingIpPiece,
    RouterPiece,
    compile_floatingip,
    compile_router,
    compile_upstreams,
    local_routers,
    placed_here,
    router_port_networks,
    with_floatingips,
)
from neutrino.plan.state import (
    Address,
    Advertiser,
    DesiredState,
    DhcpServer,
    FdbEntry,
    Firewall,
    Instance,
    Link,
    LoadBalancer,
    Outline,
    ProxyNeighbour,
    Resource,
    Router,
    Shaper,
    Upstream,
    VethPeer,
)


def _is_local_dhcp(port: Resource, networks: dict[str, Resource], host: HostConfig) -> bool:
    """The DHCP port is served by the host of the network's DHCP agent (`dhcp_agent_host`)."""
    if port.get("device_owner") != DHCP_OWNER:
        return False
    scheduled = networks.get(port["network_id"], {}).get(DHCP_AGENT_HOST)
    bound = {port.get("binding:host_id") or ""} - {""}
    return placed_here(scheduled, bound, host)


@dataclass(frozen=True)
class PortPiece:
    """What a port plugged here adds to the host apart from the rest (plan.keyed compiles it
    alone): its tap, bound or a veth to the instance or load balancer behind it."""

    port: Resource
    links: tuple[Link, ...]
    instance: Instance | None  # the instance's NIC at the tap's far end
    device: str  # the tap's name (names.device)
    netns: str | None = None  # the namespace at the far end of its veth


@dataclass(frozen=True)
class NetworkPiece:
    """What a network realized here adds to the host: its bridge and segment device, its DHCP
    server (the namespace, the veth, dnsmasq's hosts), its VXLAN device's forwarding entries."""

    links: tuple[Link, ...]
    dhcp: tuple[DhcpServer, ...]
    addresses: tuple[Address, ...]
    devices: dict[str, str]  # DHCP port id -> its tap
    fdb: tuple[FdbEntry, ...]
    arp: tuple[ProxyNeighbour, ...]

    @property
    def namespaces(self) -> frozenset[str]:
        return frozenset(server.netns for server in self.dhcp)


@dataclass(frozen=True)
class HostBase:
    """A host's desired state apart from its routers and its firewall (compile_base), and what
    those are compiled from: the networks' and the ports' pieces, and the rest (subports, load
    balancers, QoS, the NICs, upstreams)."""

    namespaces: frozenset[str]
    links: tuple[Link, ...]
    addresses: tuple[Address, ...]
    instances: tuple[Instance, ...]
    devices: dict[str, str]  # port id -> device name
    problems: tuple[str, ...]
    upstreams: tuple[Upstream, ...]
    loadbalancers: tuple[LoadBalancer, ...]
    shapers: tuple[Shaper, ...]
    advertisers: tuple[Advertiser, ...]  # radvd in routers and DHCP namespaces (plan.ra)
    networks: dict[str, NetworkPiece]  # the realized networks'
    ports: dict[str, PortPiece]  # the plugged ports' but subports
    realized: frozenset[str]  # the networks this host has
    # The networks something else than the ports' pieces wants here (DHCP, routers, subports),
    # and those with a protected subport (their bridges pass packets through netfilter).
    wanted_elsewhere: frozenset[str]
    protected_elsewhere: frozenset[str]
    subports: frozenset[str]  # the ids of the ports trunks list as subports (present or not)
    router_ports: dict[str, tuple[Resource, ...]]  # the routers that live here: their ports
    realized_ports: tuple[Resource, ...]  # the ports plugged here, on realized networks
    qos_commands: tuple[dict[str, Any], ...]  # the ports' QoS chains, for the firewall


def compile_host(model: dict[str, Any], host: HostConfig) -> DesiredState:
    """The union of the per-key functions: the base, each router, each floating IP, the
    firewall (the agent compiles them key by key: plan.keyed)."""
    base = compile_base(model, host)
    fips: dict[str, list[FloatingIpPiece]] = {}
    for fip in model.get("floatingips", []):
        piece = compile_floatingip(fip)
        if piece.router_id in base.router_ports:
            fips.setdefault(piece.router_id, []).append(piece)
    routers = {r["id"]: r for r in model.get("routers", [])}
    labels = model.get("metering_labels", [])
    networks = {n["id"]: n for n in model.get("networks", [])}
    subnets = {s["id"]: s for s in model.get("subnets", [])}
    pieces = {
        router_id: router_piece(host, routers[router_id], base, networks, subnets, labels)
        for router_id in base.router_ports
    }
    firewall = compile_host_firewall(base, model)
    routers = {r: with_floatingips(piece, fips.get(r, ())) for r, piece in pieces.items()}
    return assemble(int(model.get("revision", 0)), host, base, pieces, routers, firewall)


def router_piece(
    host: HostConfig,
    router: Resource,
    base: HostBase,
    networks: dict[str, Resource],
    subnets: dict[str, Resource],
    labels: list[Resource],
) -> RouterPiece:
    """A router's piece, its veths carrying their networks' MTUs."""
    piece = compile_router(
        host, router, base.router_ports[router["id"]], subnets, base.realized, labels
    )
    return dataclasses.replace(
        piece, links=tuple(_fitted_to_host(host, list(piece.links), networks))
    )


def compile_host_firewall(base: HostBase, model: dict[str, Any]) -> Firewall:
    return compile_firewall(
        base.realized_ports,
        model.get("ports", []),
        model.get("security_groups", []),
        model.get("address_groups", []),
        base.qos_commands,
    )


def assemble(
    revision: int,
    host: HostConfig,
    base: HostBase,
    pieces_of: dict[str, RouterPiece],
    routers: dict[str, Router],
    firewall: Firewall,
) -> DesiredState:
    """The host's desired state from its pieces; `routers`: each router's piece with its
    floating IPs (with_floatingips)."""
    shown = outline(base, pieces_of, routers)
    pieces = [pieces_of[router_id] for router_id in sorted(pieces_of)]
    networks = [base.networks[network_id] for network_id in sorted(base.networks)]
    ports = base.ports.values()
    links = {
        *base.links,
        *(link for piece in pieces for link in piece.links),
        *(link for net in networks for link in net.links),
        *(link for port in ports for link in port.links),
    }
    namespaces = {*base.namespaces, *(piece.netns for piece in pieces)}
    namespaces |= {netns for net in networks for netns in net.namespaces}
    namespaces |= {netns for port in ports if (netns := port.netns) is not None}
    addresses = [*base.addresses, *(address for net in networks for address in net.addresses)]
    return DesiredState(
        revision=revision,
        host=host.name,
        namespaces=tuple(sorted(namespaces)),
        links=tuple(sorted(links, key=_link_order)),
        addresses=tuple(sorted(addresses, key=lambda a: (a.netns or "", a.ifname, a.cidr))),
        dhcp=shown.dhcp,
        instances=shown.instances,
        firewall=firewall,
        ports=dict(sorted(shown.ports.items())),
        problems=base.problems,
        routers=shown.routers,
        upstreams=base.upstreams,
        loadbalancers=shown.loadbalancers,
        shapers=base.shapers,
        advertisers=base.advertisers,
        fdb=tuple(
            sorted(
                (entry for net in networks for entry in net.fdb),
                key=lambda e: (e.device, e.mac, e.dst),
            )
        ),
        arp=tuple(
            sorted((entry for net in networks for entry in net.arp), key=lambda n: (n.device, n.ip))
        ),
    )


def outline(
    base: HostBase, pieces_of: dict[str, RouterPiece], routers: dict[str, Router]
) -> Outline:
    """What the host's report tells of its desired state (see assemble)."""
    networks = [base.networks[network_id] for network_id in sorted(base.networks)]
    devices = dict(base.devices)
    for net in networks:
        devices.update(net.devices)
    devices.update({port_id: port.device for port_id, port in base.ports.items()})
    for router_id in sorted(pieces_of):
        devices.update(pieces_of[router_id].devices)
    instances = [*base.instances, *(port.instance for port in base.ports.values() if port.instance)]
    return Outline(
        instances=tuple(sorted(instances, key=lambda i: (i.id, i.port_id))),
        ports=devices,
        dhcp=tuple(server for net in networks for server in net.dhcp),
        routers=tuple(routers[router_id] for router_id in sorted(routers)),
        loadbalancers=base.loadbalancers,
    )


def compile_base(model: dict[str, Any], host: HostConfig) -> HostBase:
    networks = {n["id"]: n for n in model.get("networks", [])}
    subnets = {s["id"]: s for s in model.get("subnets", [])}
    ports = {p["id"]: p for p in model.get("ports", [])}
    instances = sorted(
        (i for i in model.get("instances", []) if i.get("host") == host.name), key=lambda i: i["id"]
    )

    plugged_by: dict[str, tuple[str, str]] = {}  # port id -> (instance netns, ifname)
    instance_of: dict[str, str] = {}  # port id -> the instance whose NIC it is
    for instance in instances:
        netns = names.instance_netns(host, instance["id"])
        for index, port_id in enumerate(instance.get("port_ids", [])):
            if port_id in ports:
                plugged_by[port_id] = (netns, f"eth{index}")
                instance_of[port_id] = instance["id"]
    vips = compile_loadbalancers(model, host, ports, subnets)
    plugged_by.update({vip.port_id: (vip.lb.netns, vip.ifname) for vip in vips})
    for vip in vips:
        instance_of.pop(vip.port_id, None)
    trunked = _subports(ports)

    def here(port: Resource) -> bool:
        """Plugged or bound here; a subport goes where its parent does."""
        if port["id"] in trunked:
            port = ports[trunked[port["id"]][0]]
        return port["id"] in plugged_by or port.get("binding:host_id") == host.name

    local_ports = sorted(
        (p for p in ports.values() if is_plain(p) and here(p)),
        key=lambda p: p["id"],
    )
    dhcp_ports = [p for p in ports.values() if _is_local_dhcp(p, networks, host)]
    router_ports = local_routers(model.get("routers", []), ports.values(), host)
    subports = [p for p in local_ports if p["id"] in trunked]

    namespaces: set[str] = {host.netns} if host.netns else set()
    links: list[Link] = []
    devices: dict[str, str] = {}
    problems: list[str] = []

    tagged_by: dict[str, tuple[str, str]] = {}  # subport id -> (instance netns, VLAN ifname)

    realized: set[str] = set()
    wanted_elsewhere = {p["network_id"] for p in [*dhcp_ports, *subports]}
    wanted_elsewhere |= router_port_networks(router_ports)
    protected_elsewhere = {p["network_id"] for p in subports if is_protected(p)}
    for network_id in sorted(wanted_elsewhere | {p["network_id"] for p in local_ports}):
        network = networks.get(network_id)
        problem = "unknown network" if network is None else _segment_problem(network, host)
        if problem:
            problems.append(f"network {network_id}: {problem}")
            continue
        realized.add(network_id)
    flat_bridges = {
        networks[n]["provider:physical_network"]: names.bridge(n)
        for n in realized
        if networks[n]["provider:network_type"] == "flat"
    }
    links += _physical_links(host, namespaces, flat_bridges)

    on_network: dict[str, list[Resource]] = {}
    for port in ports.values():
        on_network.setdefault(port["network_id"], []).append(port)
    pieces: dict[str, PortPiece] = {}
    for port in local_ports:
        if port["network_id"] not in realized:
            continue
        if port["id"] not in trunked:
            network = networks[port["network_id"]]
            plugged = plugged_by.get(port["id"])
            pieces[port["id"]] = port_piece(host, port, network, subnets, plugged, instance_of)
            continue
        devices[port["id"]] = names.tap(port["id"])
        parent_id, vlan_id = trunked[port["id"]]
        if ports[parent_id]["network_id"] not in realized:
            continue
        guest = plugged_by.get(parent_id)
        if guest is None and host.trunk_mode == "veth":
            problems.append(f"port {port['id']}: a subport of a VM's port needs 8021q")
            continue
        if guest is not None:
            tagged_by[port["id"]] = (guest[0], names.guest_vlan(guest[1], vlan_id))
        links += _subport_links(host, port, parent_id, vlan_id, guest)
    endpoints = model.get("vxlan_endpoints", [])
    protected = protected_elsewhere | {
        p.port["network_id"] for p in pieces.values() if is_protected(p.port)
    }
    network_pieces = {
        network_id: network_piece(
            host,
            networks[network_id],
            on_network.get(network_id, []),
            subnets,
            endpoints,
            protected=network_id in protected,
        )
        for network_id in sorted(realized)
    }
    on_routers = advertised_by_routers(ports.values())
    advertisers = [
        advertiser
        for router_id, its_ports in sorted(router_ports.items())
        if (
            advertiser := compile_router_advertiser(
                host, router_id, its_ports, subnets, networks, realized
            )
        )
    ]
    for port in dhcp_ports:
        if port["network_id"] in realized:
            network = networks[port["network_id"]]
            advertiser = compile_dhcp_advertiser(host, network, port, subnets, on_routers)
            advertisers += [advertiser] if advertiser else []

    realized_ports = [p for p in local_ports if p["network_id"] in realized]
    qos = compile_qos(host.netns, realized_ports, networks, model.get("qos_policies", []))
    outside_links, upstreams = compile_upstreams(host, networks.values(), subnets.values())
    links += outside_links + list(qos.links)
    vips = [vip for vip in vips if vip.network_id in realized]
    addresses = [address for vip in vips for address in vip.addresses]
    lab = [  # the NICs of the ports that are not pieces (subports' VLANs)
        Instance(instance["id"], netns, port_id, ifname, dhcpv6_mode(ports[port_id], subnets))
        for instance in instances
        for port_id, (netns, ifname) in sorted({**plugged_by, **tagged_by}.items())
        if port_id not in pieces
        and netns == names.instance_netns(host, instance["id"])
        and ports[port_id]["network_id"] in realized
    ]
    links = _fitted_to_host(host, links, networks)
    return HostBase(
        namespaces=frozenset(namespaces),
        links=tuple(links),
        addresses=tuple(addresses),
        instances=tuple(lab),
        devices=devices,
        problems=tuple(problems),
        upstreams=tuple(upstreams),
        loadbalancers=tuple(vip.lb for vip in vips),
        shapers=qos.shapers,
        advertisers=tuple(advertisers),
        networks=network_pieces,
        ports=pieces,
        realized=frozenset(realized),
        wanted_elsewhere=frozenset(wanted_elsewhere),
        protected_elsewhere=frozenset(protected_elsewhere),
        subports=frozenset(
            subport["port_id"]
            for parent in ports.values()
            for subport in (parent.get("trunk_details") or {}).get("sub_ports", [])
        ),
        router_ports={r: tuple(ports) for r, ports in router_ports.items()},
        realized_ports=tuple(realized_ports),
        qos_commands=tuple(qos.commands),
    )


def is_plain(port: Resource) -> bool:
    """A port plugged as a NIC: neither a network's DHCP port nor a router's."""
    return port.get("device_owner") not in (DHCP_OWNER, *ROUTER_OWNERS)


def port_piece(
    host: HostConfig,
    port: Resource,
    network: Resource,
    subnets: dict[str, Resource],
    plugged: tuple[str, str] | None,
    instance_of: dict[str, str],
) -> PortPiece:
    """A plain port's tap on its (realized) network's bridge: a veth to the instance or load
    balancer that plugs it (`plugged`: its namespace and interface there), else the device it
    is bound as (made by someone else: a VM's tap, a container's veth)."""
    tap, bridge = names.device(port), names.bridge(port["network_id"])
    up = bool(port.get("admin_state_up", True))
    if plugged is None:
        link = Link(host.netns, tap, "external", master=bridge, up=up)
        links = tuple(_fitted_to_host(host, [link], {"": network}))
        return PortPiece(port, links, None, tap)
    netns, ifname = plugged
    peer = VethPeer(netns, ifname, mac=port["mac_address"])
    link = Link(host.netns, tap, "veth", master=bridge, up=up, peer=peer)
    instance_id = instance_of.get(port["id"])
    instance = (
        Instance(instance_id, netns, port["id"], ifname, dhcpv6_mode(port, subnets))
        if instance_id
        else None
    )
    links = tuple(_fitted_to_host(host, [link], {"": network}))
    return PortPiece(port, links, instance, tap, netns)


def network_piece(
    host: HostConfig,
    network: Resource,
    ports: list[Resource],
    subnets: dict[str, Resource],
    endpoints: list[Resource],
    protected: bool,
) -> NetworkPiece:
    """A realized network's piece; `ports`: all of its ports, wherever they are."""
    links = _network_links(network, host, protected)
    dhcp, addresses, devices = [], [], {}
    networks = {network["id"]: network}
    for port in sorted(ports, key=lambda p: p["id"]):
        if not _is_local_dhcp(port, networks, host):
            continue
        server, server_addresses = compile_dhcp(host, network, port, subnets, ports)
        links.append(
            Link(
                host.netns,
                names.tap(port["id"]),
                "veth",
                master=names.bridge(network["id"]),
                up=bool(port.get("admin_state_up", True)),
                peer=VethPeer(server.netns, server.interface, mac=port["mac_address"]),
            )
        )
        devices[port["id"]] = names.tap(port["id"])
        dhcp.append(server)
        addresses += server_addresses
    overlay = _is_vxlan(network)
    return NetworkPiece(
        links=tuple(_fitted_to_host(host, links, {"": network})),
        dhcp=tuple(dhcp),
        addresses=tuple(addresses),
        devices=devices,
        fdb=tuple(compile_fdb(host, [network], ports, endpoints)) if overlay else (),
        arp=tuple(compile_arp(host, [network], ports, endpoints)) if overlay else (),
    )


def _fitted_to_host(
    host: HostConfig, links: list[Link], networks: dict[str, Resource]
) -> list[Link]:
    """A network's bridge and every link in it (its VXLAN device or VLAN, the taps, and their
    far ends) carry the network's MTU, as Neutron sets its devices' from the network's. A VLAN
    device keeps its parent's, which it cannot exceed.

    Every link we make in the host namespace (a bridge, its ports, an ifb: not an external one)
    carries tenants' packets, none of the host's: IPv6 is off on it (as Neutron's Linux bridge
    agent turns it off on its bridges), so that the host takes neither a link-local address there
    nor one from a tenant's router advertisement. That depends on nothing that changes in a link's
    life (not on its master: a NIC's veth in isolated mode has none until a flat network takes
    it), so it is turned off when the link is made."""
    mtus = {names.bridge(n["id"]): n["mtu"] for n in networks.values() if n.get("mtu")}
    fitted = []
    for link in links:
        if link.netns != host.netns:
            fitted.append(link)
            continue
        made_here = link.kind != "external"
        mtu = mtus.get(link.name) or mtus.get(link.master or "")
        if mtu is None or link.kind == "vlan":
            fitted.append(dataclasses.replace(link, ipv6_off=made_here))
            continue
        peer = link.peer and dataclasses.replace(link.peer, mtu=mtu)
        fitted.append(dataclasses.replace(link, mtu=mtu, peer=peer, ipv6_off=made_here))
    return fitted


def _is_vxlan(network: Resource) -> bool:
    return network.get("provider:network_type") == "vxlan"


def _subport_links(
    host: HostConfig,
    port: Resource,
    parent_id: str,
    vlan_id: int,
    guest: tuple[str, str] | None,
) -> list[Link]:
    """A subport's links. The parent's tap carries its frames tagged: a VLAN subinterface of
    the tap, bridged like any tap, and in the instance a VLAN of its NIC with the subport's MAC
    (as Neutron's Linux bridge trunk driver wired VMs). Without 8021q, a veth of its own."""
    tap, bridge = names.tap(port["id"]), names.bridge(port["network_id"])
    up = bool(port.get("admin_state_up", True))
    if host.trunk_mode == "veth":
        assert guest is not None, "only a lab instance's NIC has a veth per subport"
        netns, nic = guest
        peer = VethPeer(netns, names.guest_vlan(nic, vlan_id), mac=port["mac_address"])
        return [Link(host.netns, tap, "veth", master=bridge, up=up, peer=peer)]
    parent = names.tap(parent_id)
    links = [Link(host.netns, tap, "vlan", master=bridge, up=up, parent=parent, vlan_id=vlan_id)]
    if guest is not None:
        netns, nic = guest
        name = names.guest_vlan(nic, vlan_id)
        links.append(
            Link(netns, name, "vlan", parent=nic, vlan_id=vlan_id, mac=port["mac_address"])
        )
    return links


def _subports(ports: dict[str, Resource]) -> dict[str, tuple[str, int]]:
    """Subport id -> (its parent port's id, its VLAN), from the parents' trunk_details."""
    return {
        subport["port_id"]: (parent["id"], subport["segmentation_id"])
        for parent in ports.values()
        for subport in (parent.get("trunk_details") or {}).get("sub_ports", [])
        if subport["port_id"] in ports
    }


_KIND_ORDER = {"bridge": "0", "external": "1", "veth": "2", "vlan": "3", "vxlan": "4", "ifb": "5"}


def _link_order(link: Link) -> str:
    """Bridges first, in every namespace: everything else may need one as its master. Then by
    namespace and name: one string (no name holds a NUL), which a host of 10,000 ports' links
    sorts faster than tuples."""
    return f"{_KIND_ORDER[link.kind]}{link.netns or ''}\0{link.name}"


def _physical_links(
    host: HostConfig, namespaces: set[str], flat_bridges: dict[str, str]
) -> list[Link]:
    """The NICs: made (as veths to the outside) in isolated mode, else only bound."""
    links = []
    for physnet in sorted(host.physnets):
        config = host.physnets[physnet]
        master = flat_bridges.get(physnet)
        if config.outside_netns is None:
            if master:
                links.append(Link(host.netns, config.interface, "external", master=master))
            continue
        namespaces.add(config.outside_netns)
        links.append(Link(config.outside_netns, names.outside_bridge(None), "bridge"))
        links.append(
            Link(
                host.netns,
                config.interface,
                "veth",
                master=master,
                peer=VethPeer(
                    config.outside_netns,
                    names.outside_end(host, None),
                    master=names.outside_bridge(None),
                ),
            )
        )
    return links


def _segment_problem(network: Resource, host: HostConfig) -> str | None:
    kind = network.get("provider:network_type")
    if kind in ("vlan", "vxlan") and not network.get("provider:segmentation_id"):
        return f"a {kind} network needs a segmentation id"
    if kind == "vxlan":
        return None
    if kind not in ("flat", "vlan"):
        return f"network type {kind!r} is not supported"
    physnet = network.get("provider:physical_network")
    if physnet not in host.physnets:
        return f"physical network {physnet!r} is not configured on host {host.name}"
    return None


def _network_links(network: Resource, host: HostConfig, protected: bool) -> list[Link]:
    bridge = names.bridge(network["id"])
    kind = network["provider:network_type"]
    segment = int(network.get("provider:segmentation_id") or 0)
    links = [
        Link(
            host.netns,
            bridge,
            "bridge",
            up=bool(network.get("admin_state_up", True)),
            netfilter=protected,
        )
    ]
    if kind == "vxlan":
        links.append(
            Link(
                host.netns,
                names.vxlan(segment),
                "vxlan",
                master=bridge,
                vni=segment,
                local_ip=host.vtep_ip,
                proxy=True,
            )
        )
        return links
    if kind == "flat":
        return links  # the NIC itself joins the bridge: see _physical_links
    config = host.physnets[network["provider:physical_network"]]
    name = names.vlan(config.interface, segment)
    if config.vlan_mode == "8021q":
        links.append(
            Link(host.netns, name, "vlan", master=bridge, parent=config.interface, vlan_id=segment)
        )
        return links
    assert config.outside_netns is not None, "veth VLAN mode needs an outside namespace"
    links.append(Link(config.outside_netns, names.outside_bridge(segment), "bridge"))
    links.append(
        Link(
            host.netns,
            name,
            "veth",
            master=bridge,
            peer=VethPeer(
                config.outside_netns,
                names.outside_end(host, segment),
                master=names.outside_bridge(segment),
            ),
        )
    )
    return links
