"""Request shapes of networks, subnets and ports."""

from __future__ import annotations

import ipaddress

from neutrino import errors
from neutrino.api.v2.agents import AVAILABILITY_ZONE_ATTRS
from neutrino.api.v2.attrs import (
    REQUIRED,
    Attr,
    boolean,
    cidr,
    column_integer,
    dict_of,
    integer,
    invalid,
    ip_address,
    ip_or_cidr,
    list_of,
    mac_address,
    mac_address_or_none,
    non_negative,
    none_as_empty,
    one_of,
    ranged_int,
    standard,
    string,
    tag,
    uuid_str,
)
from neutrino.api.v2.dns import dns_domain, dns_name
from neutrino.api.v2.extra_dhcp_opts import extra_dhcp_opts

PROVIDER = {
    "provider:network_type": one_of("flat", "vlan", "vxlan"),
    "provider:physical_network": string(64, allow_none=True),
    "provider:segmentation_id": ranged_int(1, 2**24 - 1, allow_none=True),
}


def segments(value: object) -> list[dict[str, object]]:
    """multi-provider's `segments`: a list of provider attribute sets."""
    if not isinstance(value, list) or not all(isinstance(s, dict) for s in value):
        raise invalid(f"'{value}' is not a list of segments")
    for segment in value:
        unknown = set(segment) - set(PROVIDER)
        if unknown:
            raise errors.HTTPBadRequest(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
    return [
        {key: PROVIDER[key](segment[key]) for key in PROVIDER if segment.get(key) is not None}
        for segment in value
    ]


NETWORK = {
    **standard(),
    "admin_state_up": Attr(boolean, default=True, put=True, sort=True),
    "shared": Attr(boolean, put=True),  # not a sort key: it is a policy, as in Neutron
    "router:external": Attr(boolean, put=True),
    "is_default": Attr(boolean, put=True),  # of an external network; set by admins
    "mtu": Attr(ranged_int(0, 2**31 - 1), put=True, sort=True, filter_convert=column_integer),
    "status": Attr(post=False, sort=True),
    "subnets": Attr(post=False),
    "port_security_enabled": Attr(boolean, put=True),
    "ipv4_address_scope": Attr(post=False, filter=False),
    "ipv6_address_scope": Attr(post=False, filter=False),
    **AVAILABILITY_ZONE_ATTRS,
    "provider:network_type": Attr(PROVIDER["provider:network_type"], put=True, admin_only=True),
    "provider:physical_network": Attr(
        PROVIDER["provider:physical_network"], put=True, admin_only=True
    ),
    "provider:segmentation_id": Attr(
        PROVIDER["provider:segmentation_id"],
        put=True,
        admin_only=True,
        filter_convert=column_integer,
    ),
    "qos_policy_id": Attr(uuid_str(allow_none=True), put=True, filter=False),
    "segments": Attr(segments, put=True, admin_only=True, filter=False),
    "dns_domain": Attr(dns_domain, default="", put=True, filter=False),
}

HOST_ROUTE = dict_of({"destination": (cidr, True), "nexthop": (ip_address(), True)})
POOL = dict_of({"start": (ip_address(), True), "end": (ip_address(), True)})


def ip_version(value: object) -> int:
    """4 or 6; a string such as "4" is converted, as Neutron's convert_to_int does."""
    return int(one_of(4, 6)(integer(value)))


# Neutron adds "compute:" to the device owner prefixes one character at a time, so a service
# type passes when it begins with any of them; clients rely on it (e.g. "test:type_1").
SERVICE_TYPE_PREFIXES = ("network:", "neutron:", *"compute:")


def service_types(value: object) -> list[str]:
    """A subnet's service types: the device owners whose ports take addresses from it."""
    if not value:
        return []
    if not isinstance(value, list):
        raise errors.HTTPBadRequest("Subnet service types must be a list.")
    for service_type in value:
        if not isinstance(service_type, str):
            raise errors.InvalidInputSubnetServiceType(service_type=service_type)
        if not service_type.startswith(SERVICE_TYPE_PREFIXES):
            raise errors.InvalidSubnetServiceType(service_type=service_type)
    return list(dict.fromkeys(value))


SUBNET = {
    **standard(),
    "network_id": Attr(uuid_str(), default=REQUIRED, sort=True),
    "ip_version": Attr(ip_version, default=REQUIRED, sort=True, filter_convert=column_integer),
    "cidr": Attr(cidr, sort=True),
    "prefixlen": Attr(non_negative, filter=False),
    "use_default_subnetpool": Attr(boolean, filter=False),
    "gateway_ip": Attr(ip_address(allow_none=True), put=True, sort=True),
    "allocation_pools": Attr(list_of(POOL), put=True, filter=False),
    "dns_nameservers": Attr(
        none_as_empty(list_of(ip_address(), unique=True)), put=True, filter=False
    ),
    "host_routes": Attr(none_as_empty(list_of(HOST_ROUTE)), put=True, filter=False),
    "enable_dhcp": Attr(boolean, put=True, sort=True),
    "ipv6_ra_mode": Attr(one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless", allow_none=True)),
    "ipv6_address_mode": Attr(
        one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless", allow_none=True)
    ),
    "subnetpool_id": Attr(uuid_str(allow_none=True), sort=True),
    "service_types": Attr(service_types, put=True, filter=False),
    "shared": Attr(boolean, post=False),  # a filter only: subnets of shared networks
    "router:external": Attr(boolean, post=False),  # the network's, shown and filtered
}

FIXED_IP = dict_of({"subnet_id": (uuid_str(), False), "ip_address": (ip_address(), False)})
MULTICAST = {4: ipaddress.ip_network("224.0.0.0/4"), 6: ipaddress.ip_network("ff00::/8")}


def pair_address(value: object) -> str:
    """An allowed address pair's address or prefix, never multicast (aap-reject-multicast)."""
    text = ip_or_cidr(value)
    net = ipaddress.ip_network(text)
    multicast = MULTICAST[net.version]
    if "/" not in text and net.overlaps(multicast):
        raise errors.HTTPBadRequest(f"IP {value} is a multicast address, which is not supported.")
    if "/" in text and net.overlaps(multicast) and text != "0.0.0.0/0":
        raise errors.HTTPBadRequest(
            f"Subnet {value} overlaps with multicast range {multicast}, which is not supported."
        )
    return text


# Names of links the agent makes itself, by prefix (agent.reconciler owns them): a device
# that something else created may not take one.
AGENT_DEVICE_PREFIXES = ("brq", "vxlan-", "ifb")


def binding_profile(value: object) -> dict[str, object]:
    """Any object, as in Neutron (null: empty). Its "device" is the name of the host's device
    (a VM's tap, a container's veth) the port is plugged as, which the agent puts on the
    port's network: an interface name."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"'{value}' is not a dictionary")
    device = value.get("device")
    if device is None:
        return value
    if (
        not isinstance(device, str)
        or not 0 < len(device) <= 15
        or device in (".", "..")
        or any(c in device for c in "/: \t\n")
    ):
        raise invalid(
            f"'{device}' is not an interface name (1 to 15 characters, no '/', ':' or space)"
        )
    if device.startswith(AGENT_DEVICE_PREFIXES):
        raise invalid(
            f"'{device}' is a name of the agent's own devices (prefixes "
            f"{', '.join(AGENT_DEVICE_PREFIXES)})"
        )
    return value


ADDRESS_PAIR = dict_of({"ip_address": (pair_address, True), "mac_address": (mac_address, False)})

PORT = {
    **standard(),
    "network_id": Attr(uuid_str(), default=REQUIRED, sort=True),
    "admin_state_up": Attr(boolean, default=True, put=True, sort=True),
    "mac_address": Attr(mac_address_or_none, put=True, sort=True),
    "fixed_ips": Attr(list_of(FIXED_IP), put=True, filter_convert=str),
    "device_id": Attr(string(), put=True, sort=True),
    "device_owner": Attr(string(), put=True, sort=True),
    "status": Attr(post=False, sort=True),
    "port_security_enabled": Attr(boolean, put=True),
    "security_groups": Attr(list_of(uuid_str(), unique=True), put=True),
    "allowed_address_pairs": Attr(list_of(ADDRESS_PAIR), put=True, filter=False),
    "binding:host_id": Attr(string(), put=True, sort=True),
    "binding:vif_type": Attr(post=False),
    "binding:vif_details": Attr(post=False, filter=False),
    "binding:vnic_type": Attr(one_of("normal"), put=True),
    "binding:profile": Attr(binding_profile, put=True, filter=False),
    "extra_dhcp_opts": Attr(extra_dhcp_opts, put=True, filter=False),
    "trunk_details": Attr(post=False, filter=False),
    "qos_policy_id": Attr(uuid_str(allow_none=True), put=True, filter=False),
    "qos_network_policy_id": Attr(post=False, filter=False),
    "tags": Attr(list_of(tag, unique=True), filter=False),  # tag-ports-during-bulk-creation
    "dns_name": Attr(dns_name, default="", put=True, filter=False),
    "dns_domain": Attr(dns_domain, default="", put=True, filter=False),
    "dns_assignment": Attr(post=False, filter=False),
    "device_profile": Attr(string(allow_none=True), filter=False),
    "numa_affinity_policy": Attr(
        one_of("required", "preferred", "legacy", "socket", allow_none=True), put=True, filter=False
    ),
}
