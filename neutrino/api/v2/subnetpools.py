"""Request shapes of subnet pools and address scopes, and the subnet pools' member actions."""

from __future__ import annotations

import ipaddress
from typing import Any

from neutrino import errors
from neutrino.api.v2 import Action
from neutrino.api.v2.attrs import (
    REQUIRED,
    Attr,
    boolean,
    column_integer,
    invalid,
    list_of,
    non_negative,
    project_id,
    standard,
    string,
    uuid_str,
)
from neutrino.api.v2.networks import ip_version
from neutrino.context import Context
from neutrino.db import Database
from neutrino.services.subnetpools import SubnetPools


def prefix(value: Any) -> str:
    """A CIDR of a pool: host bits are allowed and dropped, as Neutron's IPSet drops them."""
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise invalid(f"'{value}' is not a valid IP subnet") from None


def not_empty_string(value: Any) -> str:
    text = string()(value)
    if not text.strip():
        raise invalid(f"'{value}' Blank strings are not permitted")
    return str(text)


SUBNETPOOL = {
    **standard(),
    "name": Attr(not_empty_string, default=REQUIRED, put=True, sort=True),
    "prefixes": Attr(list_of(prefix), default=REQUIRED, put=True, filter=False),
    "ip_version": Attr(post=False, sort=True, filter_convert=column_integer),
    "default_prefixlen": Attr(non_negative, put=True, sort=True, filter_convert=column_integer),
    "min_prefixlen": Attr(non_negative, put=True, sort=True, filter_convert=column_integer),
    "max_prefixlen": Attr(non_negative, put=True, sort=True, filter_convert=column_integer),
    "default_quota": Attr(non_negative, put=True, sort=True, filter_convert=column_integer),
    "is_default": Attr(boolean, default=False, put=True, sort=True),
    "shared": Attr(boolean, default=False),  # a policy, not a sort key, as a network's
    "address_scope_id": Attr(uuid_str(allow_none=True), put=True, sort=True),
}

ADDRESS_SCOPE = {
    "id": Attr(post=False, sort=True, filter_convert=str),
    "name": Attr(string(), default="", put=True, sort=True),
    "project_id": Attr(project_id, sort=True),
    "tenant_id": Attr(project_id, sort=True),
    "shared": Attr(boolean, default=False, put=True),  # a policy, not a sort key
    "ip_version": Attr(ip_version, default=REQUIRED, sort=True, filter_convert=column_integer),
}


def prefixes_request(body: Any) -> list[str]:
    """The body of add_prefixes and remove_prefixes: `{"prefixes": [CIDR, ...]}`."""
    prefixes = body.get("prefixes") if isinstance(body, dict) else None
    if not prefixes or not isinstance(prefixes, list):
        raise errors.HTTPBadRequest("Request body contains invalid data")
    return list_of(prefix)(prefixes)


def subnetpool_actions(service: SubnetPools) -> dict[str, Action]:
    def add_prefixes(db: Database, ctx: Context, pool_id: str, body: Any) -> dict[str, Any]:
        return service.change_prefixes(db, ctx, pool_id, prefixes_request(body), add=True)

    def remove_prefixes(db: Database, ctx: Context, pool_id: str, body: Any) -> dict[str, Any]:
        return service.change_prefixes(db, ctx, pool_id, prefixes_request(body), add=False)

    def onboard(db: Database, ctx: Context, pool_id: str, body: Any) -> Any:
        network_id = body.get("network_id") if isinstance(body, dict) else None
        if network_id is None:
            raise errors.InvalidInput(error_message="network_id must be specified.")
        return service.onboard_network_subnets(db, ctx, pool_id, uuid_str()(network_id))

    return {
        "add_prefixes": add_prefixes,
        "remove_prefixes": remove_prefixes,
        "onboard_network_subnets": onboard,
    }
