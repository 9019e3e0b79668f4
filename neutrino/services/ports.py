"""Ports: MAC and fixed IP allocation, port security, security group bindings."""

from __future__ import annotations

import builtins
import ipaddress
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    String,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    or_,
    select,
    update,
)

from neutrino import errors, ipam
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, insert_unless_taken, schema
from neutrino.plan import names
from neutrino.services import (
    common,
    dns,
    extra_dhcp_opts,
    free_ranges,
    networks,
    qos,
    quotas,
    rbac,
    realization,
    security_groups,
)
from neutrino.services.common import Tags
from neutrino.services.listing import STANDARD_PLAIN, Listed, Listing, Source, standard_columns

P, A = schema.ports, schema.ip_allocations
ROUTER_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip")
# Ports without the EUI-64 address of an automatic-address subnet: a router interface holds
# the subnet's gateway address, a floating IP one IPv4 address. A router's gateway takes it,
# as in Neutron (its qg- interface's address on an external SLAAC subnet).
NOT_AUTOMATIC = ("network:router_interface", "network:floatingip")
DHCP_OWNER = "network:dhcp"  # the port of a network's DHCP server (services.dhcp)
PORTS_BY_ID = select(P).where(P.c.id.in_(common.IDS))
STATUSES_ON_HOST = select(P.c.id, P.c.status).where(P.c.binding_host_id == bindparam("host"))


FIXED_IP_MATCHES: dict[str, Callable[[str], ColumnElement[bool]]] = {
    "ip_address": lambda wanted: A.c.ip_address == wanted,
    "subnet_id": lambda wanted: A.c.subnet_id == wanted,
    "ip_address_substr": lambda wanted: A.c.ip_address.contains(wanted, autoescape=True),
}


def fixed_ips_filter(values: list[str]) -> ColumnElement[bool]:
    """`fixed_ips=ip_address=10.0.0.5`, `subnet_id=...`, `ip_address_substr=10.0.`: as Neutron,
    repeated values of one key are OR, different keys AND (each may match another address)."""
    wanted: dict[str, list[str]] = defaultdict(list)
    for value in values:
        key, _, text = value.partition("=")
        if key not in FIXED_IP_MATCHES or not text:
            raise errors.HTTPBadRequest(
                f"Invalid fixed_ips filter '{value}': use ip_address=ADDR, subnet_id=ID "
                "or ip_address_substr=TEXT"
            )
        wanted[key].append(text)
    return and_(
        *[
            P.c.id.in_(select(A.c.port_id).where(or_(*map(FIXED_IP_MATCHES[key], texts))))
            for key, texts in wanted.items()
        ]
    )


LISTING = Listing(
    P,
    {
        **standard_columns(P),
        "binding:host_id": P.c.binding_host_id,
    },
    {
        "fixed_ips": fixed_ips_filter,
        "security_groups": lambda ids: P.c.id.in_(
            select(schema.port_security_groups.c.port_id).where(
                schema.port_security_groups.c.security_group_id.in_(ids)
            )
        ),
    },
    plain=(
        *STANDARD_PLAIN,
        "network_id",
        "mac_address",
        "admin_state_up",
        "status",
        "device_owner",
        "device_id",
        "port_security_enabled",
        "dns_name",
        "dns_domain",
        "device_profile",
        "numa_affinity_policy",
    ),
)


def visible(ctx: Context) -> ColumnElement[bool] | None:
    """Own ports; a network owner also sees every port on its networks; admin sees all."""
    if ctx.is_admin:
        return None
    owned_nets = select(schema.networks.c.id).where(schema.networks.c.project_id == ctx.project_id)
    return or_(P.c.project_id == ctx.project_id, P.c.network_id.in_(owned_nets))


def fetch(conn: Connection, ctx: Context, port_id: str, *, for_write: bool = False) -> Row:
    where = [P.c.id == port_id]
    seen = visible(ctx)
    if seen is not None:
        where.append(seen)
    row = conn.execute(select(P).where(*where)).first()
    if row is None:
        raise errors.PortNotFound(port_id=port_id)
    if for_write and not ctx.is_admin and row.project_id != ctx.project_id:
        raise errors.PolicyNotAuthorized(action="update_port")
    return row


# A port's relations, for `render`.
FIXED_IPS_OF = (
    select(A.c.port_id, A.c.subnet_id, A.c.ip_address)
    .where(A.c.port_id.in_(common.IDS))
    .order_by(A.c.position)
)
PAIRS_OF = (
    select(
        schema.allowed_address_pairs.c.port_id,
        schema.allowed_address_pairs.c.ip_address,
        schema.allowed_address_pairs.c.mac_address,
    )
    .where(schema.allowed_address_pairs.c.port_id.in_(common.IDS))
    .order_by(schema.allowed_address_pairs.c.position)
)
GROUPS_OF = select(
    schema.port_security_groups.c.port_id, schema.port_security_groups.c.security_group_id
).where(schema.port_security_groups.c.port_id.in_(common.IDS))
TRUNKS_OF = select(schema.trunks.c.id, schema.trunks.c.port_id).where(
    schema.trunks.c.port_id.in_(common.IDS)
)
SUBPORTS_OF = (
    select(schema.trunk_subports, P.c.mac_address)
    .join(P, P.c.id == schema.trunk_subports.c.port_id)
    .where(schema.trunk_subports.c.trunk_id.in_(common.IDS))
    .order_by(schema.trunk_subports.c.segmentation_type, schema.trunk_subports.c.segmentation_id)
)


def render(
    conn: Connection, rows: list[Row], fields: list[str] | None = None
) -> list[dict[str, Any]]:
    """Port bodies; relations are loaded only when `fields` asks for them."""
    want = (lambda name: name in fields) if fields else (lambda name: True)
    ids = [r.id for r in rows]
    ips: dict[str, list[dict[str, str]]] = defaultdict(list)
    pairs: dict[str, list[dict[str, str]]] = defaultdict(list)
    groups: dict[str, list[str]] = defaultdict(list)
    dhcp_opts: dict[str, list[dict[str, Any]]] = {}
    trunks: dict[str, dict[str, Any]] = {}
    policies: dict[str, tuple[str | None, str | None]] = {}
    tags: dict[str, list[str]] = {}
    if want("fixed_ips") or want("dns_assignment"):
        for pid, sid, ip in common.rows_for(conn, FIXED_IPS_OF, ids):
            ips[pid].append({"subnet_id": sid, "ip_address": ip})
    if want("allowed_address_pairs"):
        for pid, ip, mac in common.rows_for(conn, PAIRS_OF, ids):
            pairs[pid].append({"ip_address": ip, "mac_address": mac})
    if want("security_groups"):
        for pid, sg in common.rows_for(conn, GROUPS_OF, ids):
            groups[pid].append(sg)
    if want("extra_dhcp_opts"):
        dhcp_opts = extra_dhcp_opts.load(conn, ids)
    if want("trunk_details"):
        trunks = trunk_details(conn, ids)
    if want("qos_policy_id") or want("qos_network_policy_id"):
        policies = qos.port_policies(conn, ids)
    if want("tags"):
        tags = common.load_tags(conn, ids)
    return [
        body(
            r,
            ips.get(r.id, []),
            pairs.get(r.id, []),
            groups.get(r.id, []),
            tags,
            dhcp_opts.get(r.id, []),
            policies.get(r.id, (None, None)),
            trunks.get(r.id),
        )
        for r in rows
    ]


def trunk_details(conn: Connection, port_ids: list[str]) -> dict[str, dict[str, Any]]:
    """`trunk_details` of those of the ports that are trunk parents: the trunk, and its subports
    with their MACs."""
    details = {
        port_id: {"trunk_id": trunk_id, "sub_ports": []}
        for trunk_id, port_id in common.rows_for(conn, TRUNKS_OF, port_ids)
    }
    by_trunk = {detail["trunk_id"]: detail for detail in details.values()}
    if by_trunk:
        for row in common.rows_for(conn, SUBPORTS_OF, by_trunk):
            by_trunk[row.trunk_id]["sub_ports"].append(
                {
                    "segmentation_id": row.segmentation_id,
                    "port_id": row.port_id,
                    "segmentation_type": row.segmentation_type,
                    "mac_address": row.mac_address,
                }
            )
    return details


def vif_type(host: str) -> str:
    """A port bound to a host is plugged into a Linux bridge there."""
    return "bridge" if host else "unbound"


def vif_details(host: str, network_id: str) -> dict[str, Any]:
    """What a hypervisor needs to know of a bound port, as Neutron's Linux bridge driver says
    it: the bridge of its network (the agent plugs the device into it; a hypervisor may too),
    filtered by the agent (port security and security groups)."""
    if not host:
        return {}
    return {"bridge_name": names.bridge(network_id), "port_filter": True, "connectivity": "l2"}


def device_of(port_id: str, profile: dict[str, Any]) -> str:
    """The host's device the port is plugged as (plan.names.device)."""
    return names.device({"id": port_id, "binding:profile": profile})


def require_free_device(conn: Connection, port_id: str, host: str, profile: dict[str, Any]) -> None:
    """Two ports bound to one host may not be plugged as the same device: a port that names
    its device may not take another's, named or derived from its id."""
    if not host or "device" not in profile:
        return
    device = device_of(port_id, profile)
    bound = select(P.c.id, P.c.binding_profile).where(
        P.c.binding_host_id == host, P.c.id != port_id
    )
    for other_id, other_profile in conn.execute(bound):
        if device_of(other_id, other_profile or {}) == device:
            raise errors.PortDeviceInUse(device=device, host=host, port_id=other_id)


def body(
    row: Row,
    fixed_ips: list[dict[str, str]],
    pairs: list[dict[str, str]],
    groups: list[str],
    tags: dict[str, list[str]],
    dhcp_opts: list[dict[str, Any]],
    policies: tuple[str | None, str | None],
    trunk: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One port's body from its row and its relations; `policies`: its own QoS policy and its
    network's; `trunk_details` only on a trunk's parent."""
    item = common.render_standard(row, tags)
    item.update(
        {
            "network_id": row.network_id,
            "mac_address": row.mac_address,
            "admin_state_up": row.admin_state_up,
            "status": row.status,
            "device_owner": row.device_owner,
            "device_id": row.device_id,
            "fixed_ips": fixed_ips,
            "allowed_address_pairs": pairs,
            "security_groups": sorted(groups),
            "port_security_enabled": row.port_security_enabled,
            "binding:host_id": row.binding_host_id,
            "binding:vif_type": vif_type(row.binding_host_id),
            "binding:vif_details": vif_details(row.binding_host_id, row.network_id),
            "binding:vnic_type": "normal",
            "binding:profile": row.binding_profile or {},
            "extra_dhcp_opts": dhcp_opts,
            "qos_policy_id": policies[0],
            "qos_network_policy_id": policies[1],
            "dns_name": row.dns_name,
            "dns_domain": row.dns_domain,
            "dns_assignment": dns.assignment(fixed_ips, row.dns_name),
            "device_profile": row.device_profile,
            "numa_affinity_policy": row.numa_affinity_policy,
        }
    )
    if trunk is not None:
        item["trunk_details"] = trunk
    return item


# -- allocation (shared with DHCP, router and floating IP ports) ---------------------
# Built once: a port create runs them (see db).
SUBNETS_OF = (
    select(schema.subnets)
    .where(schema.subnets.c.network_id == bindparam("network_id"))
    .order_by(schema.subnets.c.created_at, schema.subnets.c.id)
)
JOIN_DEFAULT_GROUP = (
    insert(schema.port_security_groups)
    .from_select(
        ["port_id", "security_group_id"],
        select(bindparam("port_id", type_=String), schema.security_groups.c.id).where(
            schema.security_groups.c.project_id == bindparam("project_id"),
            schema.security_groups.c.is_default,
        ),
    )
    .returning(schema.port_security_groups.c.security_group_id)
)


def subnets_of(conn: Connection, network_id: str) -> list[Row]:
    return list(conn.execute(SUBNETS_OF, {"network_id": network_id}))


def serves(subnet: Row, device_owner: str) -> bool:
    """Whether ports of `device_owner` take addresses from `subnet` (its service types).

    A DHCP server takes one from every subnet it serves, whatever the subnet's types.
    """
    return (
        not subnet.service_types
        or device_owner in subnet.service_types
        or (device_owner == DHCP_OWNER and subnet.enable_dhcp)
    )


def serving(conn: Connection, network_id: str, device_owner: str) -> list[Row]:
    """The subnets of a network that ports of `device_owner` take addresses from: those
    reserved for such ports first, as in Neutron. 409 when the network has subnets, but
    none of them for such ports."""
    subnets = subnets_of(conn, network_id)
    candidates = sorted(
        (s for s in subnets if serves(s, device_owner)), key=lambda s: not s.service_types
    )
    if subnets and not candidates:
        raise errors.IpAddressGenerationFailureNoMatchingSubnet(
            network_id=network_id, service_type=device_owner
        )
    return candidates


def allocate_ip(conn: Connection, subnet: Row, port_id: str, position: int = 0) -> str:
    """The next free address of `subnet` for `port_id`; 409 when the pools are exhausted."""
    pools = ipam.pools_from(subnet.allocation_pools)
    if ipam.pool_size(pools) > ipam.SCAN_LIMIT:
        for candidate in ipam.random_candidates(pools):
            if take_ip(conn, subnet, port_id, str(candidate), position):
                return str(candidate)
        # Random probing missed in a nearly full large pool: the lowest free one.
    while (address := free_ranges.lowest(conn, subnet.id)) is not None:
        if take_ip(conn, subnet, port_id, address, position):
            return address
    raise errors.IpAddressGenerationFailure(net_id=subnet.network_id)


def claim_ip(conn: Connection, subnet: Row, port_id: str, address: str, position: int = 0) -> None:
    """Take a specific address; 409 IpAddressAlreadyAllocated if someone has it."""
    if not take_ip(conn, subnet, port_id, address, position):
        raise errors.IpAddressAlreadyAllocated(ip=address, subnet_id=subnet.id)


def add_automatic_addresses(conn: Connection, subnet: Row) -> None:
    """A new automatic-address subnet gives every port of its network (but those
    NOT_AUTOMATIC) its EUI-64 address there, after the ones it has, as Neutron does."""
    net = ipaddress.IPv6Network(subnet.cidr)
    on_network = select(P).where(
        P.c.network_id == subnet.network_id, P.c.device_owner.not_in(NOT_AUTOMATIC)
    )
    for port in conn.execute(on_network).all():
        held = conn.execute(select(A.c.position).where(A.c.port_id == port.id)).scalars().all()
        address = str(ipam.eui64(net, port.mac_address))
        claim_ip(conn, subnet, port.id, address, max(held, default=-1) + 1)
        common.bump(conn, P, "port", port)


def take_ip(conn: Connection, subnet: Row, port_id: str, address: str, position: int) -> bool:
    """Allocate `address` to `port_id` unless someone has it; whether it did."""
    taken = (
        conn.execute(
            insert_unless_taken(conn, A, "subnet_id", "ip_address"),
            {
                "subnet_id": subnet.id,
                "ip_address": address,
                "port_id": port_id,
                "network_id": subnet.network_id,
                "position": position,
            },
        ).first()
        is not None
    )
    # Either way the address is no longer free.
    free_ranges.carve(conn, subnet.id, address)
    return taken


# What a port asks of IPAM: an address from the first of these subnets that has one free (or
# the EUI-64 one of an automatic-address subnet), or this address on the (single) subnet.
Wanted = tuple[list[Row], str | None]


def auto_address(subnet: Row) -> bool:
    return ipam.is_auto_address(subnet.ipv6_ra_mode, subnet.ipv6_address_mode)


def resolve_fixed_ips(
    conn: Connection, network_id: str, requested: list[dict[str, Any]] | None, device_owner: str
) -> list[Wanted]:
    """Turn a request's fixed_ips into what to allocate.

    With none requested, as Neutron does: one IPv4 address from whichever IPv4 subnet has one
    free, likewise one from the IPv6 subnets with assigned addresses; requested or not (except
    on NOT_AUTOMATIC ports), the EUI-64 address on every automatic-address (SLAAC, DHCPv6-stateless)
    subnet.
    """
    subnets = serving(conn, network_id, device_owner)
    by_id = {s.id: s for s in subnets}
    if requested is None:
        v4 = [s for s in subnets if s.ip_version == 4]
        v6 = [s for s in subnets if s.ip_version == 6 and not auto_address(s)]
        automatic = [] if device_owner in NOT_AUTOMATIC else [s for s in subnets if auto_address(s)]
        return [(group, None) for group in (v4, v6) if group] + [([s], None) for s in automatic]
    out: list[Wanted] = []
    for item in requested:
        subnet_id, address = item.get("subnet_id"), item.get("ip_address")
        if subnet_id is not None:
            subnet = by_id.get(subnet_id)
            if subnet is None:
                raise errors.InvalidInput(
                    error_message=(
                        f"Failed to create port on network {network_id}, "
                        f"because fixed_ips included invalid subnet {subnet_id}"
                    )
                )
        elif address is not None:
            ip = ipaddress.ip_address(address)
            subnet = next((s for s in subnets if ip in ipaddress.ip_network(s.cidr)), None)
            if subnet is None:
                raise errors.InvalidIpForNetwork(ip_address=address)
        else:
            raise errors.InvalidInput(
                error_message="Each fixed_ips entry needs a subnet_id or an ip_address"
            )
        if address is not None:
            check_address(subnet, address, device_owner)
        out.append(([subnet], address))
    # As Neutron's: the EUI-64 address of every automatic-address subnet comes along, asked
    # for or not (its hosts configure it from the router advertisement, whatever IPAM says).
    listed = {candidates[0].id for candidates, _ in out}
    if device_owner not in NOT_AUTOMATIC:
        out += [([s], None) for s in subnets if auto_address(s) and s.id not in listed]
    return out


def check_address(subnet: Row, address: str, device_owner: str) -> None:
    ip, net = ipaddress.ip_address(address), ipaddress.ip_network(subnet.cidr)
    if ip not in net:
        raise errors.InvalidIpForSubnet(ip_address=address)
    if (
        net.version == 4
        and net.prefixlen < 31
        and ip in (net.network_address, net.broadcast_address)
    ):
        raise errors.InvalidIpForSubnet(ip_address=address)
    if subnet.gateway_ip == address and device_owner not in (
        "network:router_interface",
        "network:router_gateway",
    ):
        raise errors.IpAddressAlreadyAllocated(ip=address, subnet_id=subnet.id)
    if auto_address(subnet) and device_owner not in ROUTER_OWNERS:
        raise errors.InvalidInput(
            error_message=(
                f"IPv6 address {address} cannot be directly assigned "
                f"to a port on subnet {subnet.id} "
                "as the subnet is configured for automatic addresses"
            )
        )


def assign_ips(
    conn: Connection, port_id: str, mac: str, wanted: list[Wanted]
) -> list[dict[str, str]]:
    """Allocate what `wanted` asks for; the port's fixed_ips, in the order asked."""
    fixed_ips: list[dict[str, str]] = [{}] * len(wanted)
    # Explicit addresses first, so an "any" request never takes one that was asked for.
    for position, (candidates, address) in sorted(enumerate(wanted), key=lambda e: e[1][1] is None):
        subnet = candidates[0]
        if address is None and auto_address(subnet):
            address = str(ipam.eui64(ipaddress.IPv6Network(subnet.cidr), mac))
        if address is None:
            subnet, address = allocate_from_any(conn, candidates, port_id, position)
        else:
            claim_ip(conn, subnet, port_id, address, position)
        fixed_ips[position] = {"subnet_id": subnet.id, "ip_address": address}
    return fixed_ips


def allocate_from_any(
    conn: Connection, candidates: list[Row], port_id: str, position: int
) -> tuple[Row, str]:
    """An address from the first of `candidates` with one free; 409 when all are full."""
    for subnet in candidates[:-1]:
        try:
            return subnet, allocate_ip(conn, subnet, port_id, position)
        except errors.IpAddressGenerationFailure:
            continue
    return candidates[-1], allocate_ip(conn, candidates[-1], port_id, position)


def change_mac(conn: Connection, row: Row, mac: str | None, owner: str) -> str:
    """Give an unbound port `mac`, or a new random one when None; its SLAAC addresses follow.

    The port's MAC is what the instance plugged into it has, so a bound port keeps it, and
    so does a router's or DHCP server's port, as in Neutron. The new MAC, or the old one
    when unchanged.
    """
    new = mac or next(m for m in iter(ipam.random_mac, None) if not mac_taken(conn, row, m))
    if new == row.mac_address:
        return new
    if row.binding_host_id:
        raise errors.PortBound(
            port_id=row.id,
            vif_type=vif_type(row.binding_host_id),
            old_mac=row.mac_address,
            new_mac=new,
        )
    if owner.startswith("network:"):
        raise errors.UnsupportedPortDeviceOwner(
            op="mac address update", device_owner=owner, port_id=row.id
        )
    if mac_taken(conn, row, new):
        raise errors.MacAddressInUse(net_id=row.network_id, mac=new)
    for subnet in subnets_of(conn, row.network_id):
        if auto_address(subnet):
            conn.execute(
                update(A)
                .where(A.c.port_id == row.id, A.c.subnet_id == subnet.id)
                .values(ip_address=str(ipam.eui64(ipaddress.IPv6Network(subnet.cidr), new)))
            )
    return new


def mac_taken(conn: Connection, row: Row, mac: str) -> bool:
    return bool(
        conn.execute(
            select(exists().where(P.c.network_id == row.network_id, P.c.mac_address == mac))
        ).scalar()
    )


def insert_row(conn: Connection, values: dict[str, Any], mac: str | None) -> Row:
    """Insert a port row with `mac`, or with a random MAC free on its network; the row as stored."""
    statement = insert_unless_taken(conn, P, "network_id", "mac_address")
    while True:
        row = conn.execute(statement, {**values, "mac_address": mac or ipam.random_mac()}).first()
        if row is not None:
            return row
        if mac is not None:
            raise errors.MacAddressInUse(net_id=values["network_id"], mac=mac)


def insert_port(
    conn: Connection, project_id: str, network: Row, values: dict[str, Any]
) -> dict[str, Any]:
    """Create a port row with its MAC, addresses, groups and pairs; returns its body.

    Used by the API and by services that make ports of their own (DHCP,
    router interfaces and gateways, floating IPs, load balancer VIPs).
    The body is built from what was written, so a create reads nothing back.
    """
    moment = common.now()
    port_id = values.get("id") or common.new_id()
    owner = values.get("device_owner", "")
    security = values.get("port_security_enabled", network.port_security_enabled)
    groups = values.get("security_groups")
    pairs = values.get("allowed_address_pairs") or []
    if not security and groups:
        raise errors.PortSecurityAndIPRequiredForSecurityGroups()
    if not security and pairs:
        raise errors.AddressPairAndPortSecurityRequired()
    wanted = resolve_fixed_ips(conn, network.id, values.get("fixed_ips"), owner)
    profile = values.get("binding:profile") or {}
    require_free_device(conn, port_id, values.get("binding:host_id", ""), profile)
    row = insert_row(
        conn,
        {
            "id": port_id,
            "project_id": project_id,
            "name": values.get("name", ""),
            "description": values.get("description", ""),
            "created_at": moment,
            "updated_at": moment,
            "revision_number": 1,
            "network_id": network.id,
            "admin_state_up": values.get("admin_state_up", True),
            "status": "DOWN",
            "device_owner": owner,
            "device_id": values.get("device_id", ""),
            "binding_host_id": values.get("binding:host_id", ""),
            "binding_profile": profile,
            "port_security_enabled": security,
            "dns_name": "",
            "dns_domain": "",
            **dns.port_names(values),
            "device_profile": values.get("device_profile"),
            "numa_affinity_policy": values.get("numa_affinity_policy"),
        },
        values.get("mac_address"),
    )
    fixed_ips = assign_ips(conn, port_id, row.mac_address, wanted)
    if security and groups is None and not owner.startswith("network:"):
        groups = [join_default_group(conn, project_id, port_id)]
    elif groups:
        groups = bind_groups(conn, project_id, port_id, groups)
    stored_pairs = set_pairs(conn, port_id, pairs, row.mac_address) if pairs else []
    dhcp_opts = extra_dhcp_opts.create(conn, port_id, values.get("extra_dhcp_opts"))
    tags = values.get("tags", [])
    common.insert_tags(conn, "port", port_id, tags)
    common.record_change(conn, "port", port_id, "create")
    return body(
        row,
        fixed_ips,
        stored_pairs,
        groups or [],
        {port_id: sorted(tags)},
        dhcp_opts,
        (None, qos.network_policies(conn, [network.id]).get(network.id)),
    )


def join_default_group(conn: Connection, project_id: str, port_id: str) -> str:
    """Put a new port in its project's default group, made on first use; the group's id."""
    joined = conn.execute(
        JOIN_DEFAULT_GROUP, {"port_id": port_id, "project_id": project_id}
    ).scalar()
    if joined is None:
        joined = security_groups.ensure_default(conn, project_id)
        conn.execute(
            insert(schema.port_security_groups).values(port_id=port_id, security_group_id=joined)
        )
    return joined


def bind_groups(conn: Connection, project_id: str, port_id: str, group_ids: list[str]) -> list[str]:
    """Make `group_ids` the port's groups; returns them without repeats."""
    PSG = schema.port_security_groups
    conn.execute(delete(PSG).where(PSG.c.port_id == port_id))
    unique = list(dict.fromkeys(group_ids))
    statefulness = set()
    for group_id in unique:
        # Those its project sees, whoever asks: Neutron binds no other project's, even for admin.
        group = security_groups.find_group(
            conn, group_id, rbac.seen_by("security_group", project_id)
        )
        statefulness.add(group.stateful)
        conn.execute(insert(PSG).values(port_id=port_id, security_group_id=group_id))
    if len(statefulness) > 1:
        raise errors.SecurityGroupConflict(
            reason="Cannot apply both stateful and stateless security groups on the same port "
            "at the same time"
        )
    return unique


def set_pairs(
    conn: Connection, port_id: str, pairs: list[dict[str, str]], port_mac: str
) -> list[dict[str, str]]:
    """Replace the port's allowed address pairs (a pair without a MAC gets the port's); returns
    them."""
    AP = schema.allowed_address_pairs
    conn.execute(delete(AP).where(AP.c.port_id == port_id))
    stored = [
        {"ip_address": pair["ip_address"], "mac_address": pair.get("mac_address") or port_mac}
        for pair in pairs
    ]
    for position, pair in enumerate(stored):
        conn.execute(insert(AP).values(port_id=port_id, position=position, **pair))
    return stored


def network_for_port(
    conn: Connection, ctx: Context, network_id: str, fixed_ips: list[dict[str, Any]] | None
) -> Row:
    """The network a new port of the caller's goes on: one it sees; if another project's, neither
    external (unless also shared) nor with addresses of the caller's choosing (Neutron's policy)."""
    network = networks.fetch(conn, ctx, network_id)
    if not ctx.is_admin and network.project_id != ctx.project_id:
        if network.external and not networks.is_shared_with(conn, network.id, ctx.project_id):
            raise errors.PolicyNotAuthorized(action="create_port on an external network")
        if any("ip_address" in fixed for fixed in fixed_ips or []):
            raise errors.PolicyNotAuthorized(action="create_port:fixed_ips:ip_address")
    return network


def forget_forwardings(conn: Connection, port_id: str) -> None:
    """Port forwardings to addresses the port no longer holds go, as in Neutron; a floating IP
    left without any has no router any more."""
    FIP, PF = schema.floatingips, schema.port_forwardings
    held = select(A.c.ip_address).where(A.c.port_id == port_id)
    gone = (PF.c.internal_port_id == port_id) & PF.c.internal_ip_address.not_in(held)
    forwarded = select(PF.c.floatingip_id).where(gone)
    fips = conn.execute(select(FIP).where(FIP.c.id.in_(forwarded))).all()
    conn.execute(delete(PF).where(gone))
    for fip in fips:
        left = conn.execute(select(exists().where(PF.c.floatingip_id == fip.id))).scalar_one()
        common.bump(conn, FIP, "floatingip", fip, {} if left else {"router_id": None})


def record_report(
    conn: Connection, host: str, applied: realization.Applied, links: dict[str, str]
) -> None:
    """The statuses of the ports `host` plugs (`links`: port id -> ACTIVE while its link is up):
    ACTIVE once bound there, applied and up; DOWN when its link is not. The word of a host the
    port has left, or on a revision of it that the host has not applied yet, is not taken."""
    # Read whole only when moved: a host may report 10,000 ports at each change.
    moved = [
        port_id
        for port_id, status in conn.execute(STATUSES_ON_HOST, {"host": host})
        if links.get(port_id, status) != status
    ]
    rows = list(common.rows_for(conn, PORTS_BY_ID, moved))
    rising = [row.id for row in rows if links[row.id] == "ACTIVE"]
    changed = realization.changed_at(conn, "port", rising)
    for row in rows:
        if row.id not in changed or changed[row.id] <= applied.revision:
            common.bump(conn, P, "port", row, {"status": links[row.id]})


def collect_absent(
    conn: Connection, host: str, applied: realization.Applied, absent: list[str]
) -> None:
    """Delete the ports that neutrino-cni made for containers (device owner CNI_OWNER) whose
    device `host` reports gone: the container died without telling the plugin (its DEL), and
    the veth went with its namespace. The word of a host on a revision of the port that it has
    not applied yet (the port was bound anew meanwhile) is not taken."""
    rows = [
        row
        for row in common.rows_for(conn, PORTS_BY_ID, absent)
        if row.binding_host_id == host
        and row.device_owner == names.CNI_OWNER
        and "device" in (row.binding_profile or {})
    ]
    changed = realization.changed_at(conn, "port", [row.id for row in rows])
    for row in rows:
        if changed.get(row.id, 0) > applied.revision:
            continue
        try:
            require_untrunked(conn, row.id)  # a trunk goes first, as on a DELETE
        except errors.InUse:
            continue
        remove_port(conn, row.id)


def remove_port(conn: Connection, port_id: str) -> None:
    """Delete a port and what hangs off it; its floating IPs become unassociated, and its port
    forwardings go."""
    FIP = schema.floatingips
    for fip in conn.execute(select(FIP).where(FIP.c.fixed_port_id == port_id)).all():
        common.bump(
            conn,
            FIP,
            "floatingip",
            fip,
            {"fixed_port_id": None, "fixed_ip_address": None, "router_id": None, "status": "DOWN"},
        )
    free_ranges.release(conn, A.c.port_id == port_id)
    forget_forwardings(conn, port_id)
    common.delete_resource(conn, P, "port", port_id)


def require_untrunked(conn: Connection, port_id: str) -> None:
    """A trunk's subport or parent goes only after it has left the trunk, or with its trunk."""
    T, S = schema.trunks, schema.trunk_subports
    trunk_id = conn.execute(select(S.c.trunk_id).where(S.c.port_id == port_id)).scalar()
    if trunk_id:
        raise errors.PortInUseAsSubPort(port_id=port_id, trunk_id=trunk_id)
    trunk_id = conn.execute(select(T.c.id).where(T.c.port_id == port_id)).scalar()
    if trunk_id:
        raise errors.PortInUseAsTrunkParent(port_id=port_id, trunk_id=trunk_id)


def inactive_binding_on(conn: Connection, port_id: str, host: str) -> bool:
    B = schema.port_inactive_bindings
    return bool(
        conn.execute(select(exists().where(B.c.port_id == port_id, B.c.host == host))).scalar()
    )


# What only the network's owner (or an admin) may set on a port, by Neutron's default policy:
# on someone else's shared network, a port must not escape the owner's filtering.
OWNER_ONLY = ("port_security_enabled", "allowed_address_pairs", "mac_address")


def require_network_owner(values: dict[str, Any], action: str) -> None:
    for key in OWNER_ONLY:
        if key in values:
            raise errors.PolicyNotAuthorized(action=f"{action}:{key}")


# Shown to administrators only, as Neutron's policy has them (get_port:binding:host_id, ...).
ADMIN_READ = ("binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details")


def shown(ctx: Context, port: dict[str, Any]) -> dict[str, Any]:
    """A port's body as `ctx` sees it."""
    return port if ctx.is_admin else {k: v for k, v in port.items() if k not in ADMIN_READ}


class Ports(Listed):
    resource = "port"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        def bodies(conn: Connection, rows: builtins.list[Row]) -> builtins.list[dict[str, Any]]:
            return [shown(ctx, port) for port in render(conn, rows, query.fields)]

        return Source(LISTING, visible(ctx), bodies)

    def get(self, db: Database, ctx: Context, port_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return shown(ctx, render(conn, [fetch(conn, ctx, port_id)])[0])

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        for key in ("binding:host_id", "binding:profile"):
            if key in values and not ctx.is_admin:
                raise errors.PolicyNotAuthorized(action=f"create_port:{key}")
        with db.write() as conn:
            network = network_for_port(conn, ctx, values["network_id"], values.get("fixed_ips"))
            if not ctx.is_admin and network.project_id != ctx.project_id:
                require_network_owner(values, "create_port")
            std = common.standard_values(ctx, dict(values))
            quotas.check(conn, std["project_id"], "port", 1)
            port = insert_port(conn, std["project_id"], network, {**values, "id": std["id"]})
            policy_id = values.get("qos_policy_id")
            qos.bind_new_port(conn, ctx, port["id"], policy_id, port["qos_network_policy_id"])
            return shown(ctx, {**port, "qos_policy_id": policy_id})

    def update(
        self, db: Database, ctx: Context, port_id: str, values: dict[str, Any], if_match: int | None
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        for key in ("binding:host_id", "binding:profile", "mac_address"):
            if key in values and not ctx.is_admin:
                raise errors.PolicyNotAuthorized(action=f"update_port:{key}")
        with db.write() as conn:
            row = fetch(conn, ctx, port_id, for_write=True)
            common.check_revision(row, if_match)
            N = schema.networks
            if (
                not ctx.is_admin
                and conn.execute(select(N.c.project_id).where(N.c.id == row.network_id)).scalar()
                != ctx.project_id
            ):
                require_network_owner(values, "update_port")
            security = values.get("port_security_enabled", row.port_security_enabled)
            groups = values.get("security_groups")
            pairs = values.get("allowed_address_pairs")
            if not security:
                PSG, AP = schema.port_security_groups, schema.allowed_address_pairs
                has_pairs = (
                    pairs
                    if pairs is not None
                    else conn.execute(select(exists().where(AP.c.port_id == port_id))).scalar()
                )
                if groups:
                    raise errors.PortSecurityAndIPRequiredForSecurityGroups()
                has_groups = select(exists().where(PSG.c.port_id == port_id))
                if groups is None and conn.execute(has_groups).scalar():
                    raise errors.PortSecurityPortHasSecurityGroup()
                if has_pairs:
                    raise errors.AddressPairAndPortSecurityRequired()
            host = values.get("binding:host_id")
            if host and inactive_binding_on(conn, port_id, host):
                # Activating that binding is how a port moves to a host it is bound to.
                raise errors.PortBindingAlreadyExists(port_id=port_id, host=host)
            if "mac_address" in values:
                owner = values.get("device_owner") or row.device_owner
                values = {
                    **values,
                    "mac_address": change_mac(conn, row, values["mac_address"], owner),
                }
            if "fixed_ips" in values:
                self.replace_ips(
                    conn, row, values["fixed_ips"], values.get("device_owner", row.device_owner)
                )
                forget_forwardings(conn, port_id)
            if groups is not None:
                bind_groups(conn, row.project_id, port_id, groups)
            if pairs is not None:
                set_pairs(conn, port_id, pairs, row.mac_address)
            extra_dhcp_opts.change(conn, port_id, values.get("extra_dhcp_opts"))
            if "qos_policy_id" in values:
                qos.bind_port(conn, ctx, port_id, values["qos_policy_id"])
            columns = {"binding:host_id": "binding_host_id", "binding:profile": "binding_profile"}
            skip = {
                "fixed_ips",
                "security_groups",
                "allowed_address_pairs",
                "binding:vnic_type",
                "extra_dhcp_opts",
                "qos_policy_id",
                *dns.PORT_NAMES,
            }
            changes = {columns.get(k, k): v for k, v in values.items() if k not in skip}
            changes |= dns.port_names(values)
            bound_to = changes.get("binding_host_id", row.binding_host_id)
            profile = changes.get("binding_profile", row.binding_profile or {})
            if device_of(row.id, profile) != device_of(row.id, row.binding_profile or {}) or (
                bound_to != row.binding_host_id
            ):  # plugged anew: DOWN until the agent of its host has plugged it
                require_free_device(conn, row.id, bound_to, profile)
                changes["status"] = "DOWN"
            common.bump(conn, P, "port", row, changes)
            return shown(ctx, render(conn, [fetch(conn, ctx, port_id)])[0])

    def delete(self, db: Database, ctx: Context, port_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            # Any port the caller sees: its own, or one on its network (Neutron's delete_port).
            row = fetch(conn, ctx, port_id)
            require_untrunked(conn, port_id)
            # Router and floating IP ports go with their owner resource, as in Neutron.
            if row.device_owner in ROUTER_OWNERS:
                raise errors.PortInUse(
                    port_id=port_id, net_id=row.network_id, device_id=row.device_id
                )
            remove_port(conn, port_id)

    def set_tags(
        self, db: Database, ctx: Context, port_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, port_id, for_write=True)
            return common.set_tags(conn, P, "port", row, add, remove)

    @staticmethod
    def replace_ips(
        conn: Connection, row: Row, requested: builtins.list[dict[str, Any]], owner: str
    ) -> None:
        """Keep addresses asked for again and automatic ones, release others, take new ones."""
        current = {
            (sid, ip)
            for sid, ip in conn.execute(
                select(A.c.subnet_id, A.c.ip_address).where(A.c.port_id == row.id)
            )
        }
        asked = resolve_fixed_ips(conn, row.network_id, requested, owner)
        keep = {(s[0].id, ip) for s, ip in asked if ip is not None and (s[0].id, ip) in current}
        # An entry naming only a subnet keeps an address the port has there, as in Neutron.
        spare = sorted(current - keep)
        wanted: list[Wanted] = []
        for candidates, ip in asked:
            if ip is None:
                reused = next((pair for pair in spare if pair[0] == candidates[0].id), None)
                if reused is not None:
                    spare.remove(reused)
                    keep.add(reused)
                    ip = reused[1]
            wanted.append((candidates, ip))
        # A SLAAC address stays as long as its subnet does (router ports have none), as in Neutron.
        automatic = {s.id for s in subnets_of(conn, row.network_id) if auto_address(s)}
        keep |= {(sid, ip) for sid, ip in current if sid in automatic}
        kept_automatic = {sid for sid, _ in keep} & automatic
        new = [
            (s, ip)
            for s, ip in wanted
            if (ip is None or (s[0].id, ip) not in keep) and s[0].id not in kept_automatic
        ]
        # A router interface keeps its IPv4 address: the router's subnet gateway (Neutron's
        # l3-port-ip-change-not-allowed).
        changed = {ipaddress.ip_address(ip).version for _, ip in current - keep}
        if row.device_owner == "network:router_interface" and 4 in changed | {
            s[0].ip_version for s, _ in new
        }:
            raise errors.BadRequest(
                resource="ports", msg=f"IP updates for port {row.id} are not allowed"
            )
        for subnet_id, ip in current - keep:
            free_ranges.release(conn, and_(A.c.subnet_id == subnet_id, A.c.ip_address == ip))
        assign_ips(conn, row.id, row.mac_address, new)
        for position, (candidates, ip) in enumerate(wanted):
            if ip is not None:
                conn.execute(
                    update(A)
                    .where(A.c.subnet_id == candidates[0].id, A.c.ip_address == ip)
                    .values(position=position)
                )
