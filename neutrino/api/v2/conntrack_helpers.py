"""`/v2.0/routers/{id}/conntrack_helpers`: the request shapes of conntrack helpers.

Values are converted, then validated, as neutron-lib's attribute map does it, with its words:
a value that does not convert is InvalidInput, one that converts but is refused is
HTTPBadRequest naming the attribute (`Unacceptable`).
"""

from __future__ import annotations

from typing import Any

from neutrino.api.v2.attrs import (
    REQUIRED,
    Attr,
    Unacceptable,
    column_integer,
    invalid,
    project_id,
)

# The protocols Neutron's attribute accepts (iptables' names); which one a helper tracks is
# the service's check.
PROTOCOLS = ("dccp", "icmp", "ipv6-icmp", "sctp", "tcp", "udp")


def protocol(value: Any) -> str:
    """A protocol name, as given; a number (0 to 255) converts but is no name."""
    if value is None:
        raise Unacceptable("None is not in valid_values")
    if not isinstance(value, str):
        raise invalid(f"Input value {value} must be string type")
    if value.lower() not in PROTOCOLS:
        try:
            number = int(value)
        except ValueError:
            number = -1
        if not 0 <= number <= 255:
            raise invalid(
                f"IP protocol '{value}' is not supported. Only protocol names and their "
                "integer representation (0 to 255) are supported"
            )
    if value not in PROTOCOLS:
        raise Unacceptable(f"{value} is not in valid_values")
    return value


def port(value: Any) -> int:
    """Anything Python's int() takes, then 1 to 65535."""
    try:
        number = int(value)
    except (ValueError, TypeError, OverflowError):
        raise invalid(f"'{value}' is not an integer") from None
    if number < 1:
        raise Unacceptable(f"'{number}' is too small - must be at least '1'")
    if number > 65535:
        raise Unacceptable(f"'{number}' is too large - must be no larger than '65535'")
    return number


def helper(value: Any) -> str:
    """Any value as text, at most 64 characters."""
    if value is None:
        raise Unacceptable("'None' is not a valid string")
    text = str(value)
    if len(text) > 64:
        raise Unacceptable(f"'{text}' exceeds maximum length of 64")
    return text


CONNTRACK_HELPER = {
    "id": Attr(post=False, sort=True, filter_convert=str),
    "project_id": Attr(project_id, filter=False),
    "tenant_id": Attr(project_id, filter=False),
    "protocol": Attr(protocol, default=REQUIRED, put=True, sort=True, filter_convert=str),
    "port": Attr(port, default=REQUIRED, put=True, sort=True, filter_convert=column_integer),
    "helper": Attr(helper, default=REQUIRED, put=True, sort=True, filter_convert=str),
}
