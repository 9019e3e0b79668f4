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
    invalid,
    ip_or_cidr,
    list_of,
    none_as_empty,
    one_of,
    project_id,
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


def subnet(value: Any) -> str:
    """A prefix with its length, host bits allowed (Neutron's type:subnet); kept as sent."""
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError
        interface = ipaddress.ip_interface(value)
    except ValueError:
        raise invalid(f"'{value}' is not a valid IP subnet") from None
    if interface.version == 4 and str(interface) != value:
        raise invalid(f"'{value}' is not a valid IP subnet")
    return value


SECURITY_GROUP = {
    **standard(),
    "security_group_rules": Attr(post=False, filter=False),
    "shared": Attr(boolean, post=False),  # shared with the caller by an RBAC policy
    # Absent: the project's default statefulness (services/security_groups.py).
    "stateful": Attr(boolean, put=True),
}

SECURITY_GROUPS_DEFAULT_STATEFULNESS = {
    "id": Attr(post=False, sort=True, filter_convert=str),
    # Null: the setting for every project without one of its own.
    "project_id": Attr(lambda v: None if v is None else project_id(v), sort=True),
    "tenant_id": Attr(lambda v: None if v is None else project_id(v), filter=False),
    "stateful": Attr(boolean, default=True, put=True, sort=True),
}

ADDRESS_GROUP = {
    **standard(),
    "addresses": Attr(none_as_empty(list_of(subnet, unique=True)), default=[], filter=False),
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
    "remote_address_group_id": Attr(string(allow_none=True), sort=True),
    "normalized_cidr": Attr(post=False),
    "belongs_to_default_sg": Attr(boolean, post=False),  # the rule's group is its project's default
}

# Templates have no name, project, timestamps or revision, and are never updated.
DEFAULT_SECURITY_GROUP_RULE = {
    "id": Attr(post=False, sort=True, filter_convert=str),
    "tenant_id": Attr(filter=False),
    "project_id": Attr(filter=False),
    "description": Attr(string(), default=""),
    **{
        key: attr
        for key, attr in SECURITY_GROUP_RULE.items()
        if key
        in (
            "direction",
            "ethertype",
            "protocol",
            "port_range_min",
            "port_range_max",
            "remote_ip_prefix",
            "remote_group_id",
            "remote_address_group_id",
        )
    },
    "used_in_default_sg": Attr(boolean, default=REQUIRED),
    "used_in_non_default_sg": Attr(boolean, default=REQUIRED),
}
