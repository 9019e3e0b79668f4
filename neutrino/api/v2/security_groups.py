"""Request shapes of security groups and security group rules."""

from __future__ import annotations

import ipaddress
from typing import Any

from neutrino import errors
from neutrino.api.v2.attrs import (
    REQUIRED,
    Attr,
    boolean,
    column_integer,
    ip_or_cidr,
    one_of,
    ranged_int,
    standard,
    string,
    uuid_str,
)

ETHERTYPES = ("IPv4", "IPv6")


def ethertype(value: Any) -> str:
    """Case-insensitive, stored as Neutron spells it."""
    found = next(
        (e for e in ETHERTYPES if isinstance(value, str) and value.lower() == e.lower()), None
    )
    if found is None:
        raise errors.SecurityGroupRuleInvalidEtherType(ethertype=value, values=list(ETHERTYPES))
    return found


def protocol(value: Any) -> str | int | None:
    """A name or a number; services/security_groups.py checks and normalizes it."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
        raise errors.SecurityGroupRuleInvalidProtocol(protocol=value, values="names or numbers")
    return value


def remote_ip_prefix(value: Any) -> str | None:
    """Kept as sent, as a prefix (an address gets its host length); normalized_cidr is its
    network."""
    if value is None:
        return None
    ip_or_cidr(value)  # refuses what is neither, with its message
    return ipaddress.ip_interface(value).with_prefixlen


def port_number(value: Any) -> int | None:
    """0-65535 or null; anything else is SecurityGroupInvalidPortValue, as in Neutron."""
    if value is None:
        return None
    try:
        return ranged_int(0, 65535)(value)
    except errors.InvalidInput:
        raise errors.SecurityGroupInvalidPortValue(port=value) from None


SECURITY_GROUP = {
    **standard(),
    "security_group_rules": Attr(post=False, filter=False),
    "shared": Attr(boolean, post=False),  # shared with the caller by an RBAC policy
}

SECURITY_GROUP_RULE = {
    **{key: attr for key, attr in standard().items() if key != "name"},
    "security_group_id": Attr(uuid_str(), default=REQUIRED, sort=True),
    "direction": Attr(one_of("ingress", "egress"), default=REQUIRED, sort=True),
    "ethertype": Attr(ethertype, default="IPv4", sort=True, filter_convert=ethertype),
    "protocol": Attr(protocol, sort=True),
    "port_range_min": Attr(port_number, sort=True, filter_convert=column_integer),
    "port_range_max": Attr(port_number, sort=True, filter_convert=column_integer),
    "remote_ip_prefix": Attr(remote_ip_prefix, sort=True),
    "remote_group_id": Attr(string(allow_none=True), sort=True),  # unknown: 404, UUID or not
    "normalized_cidr": Attr(post=False),
}
