"""`/v2.0/floatingips/{id}/port_forwardings`: the request shapes of port forwardings."""

from __future__ import annotations

from typing import Any

from neutrino.api.v2.attrs import (
    REQUIRED,
    Attr,
    column_integer,
    integer,
    invalid,
    ip_address,
    string,
    uuid_str,
)

PROTOCOLS = ("tcp", "udp")


def port(value: Any) -> int | None:
    """A TCP or UDP port, or None (the other of port and port range is given)."""
    if value is None:
        return None
    number = integer(value)
    if number < 1:
        raise invalid(f"'{number}' is too small - must be at least '1'")
    if number > 65535:
        raise invalid(f"'{number}' is too large - must be no larger than '65535'")
    return number


def port_range(value: Any) -> str | None:
    """ "N" or "N:M" with N <= M, as neutron-lib's port_range validator checks it."""
    if value is None:
        return None
    text = str(value)
    ports = text.split(":")
    if len(ports) > 2 or not all(ports):
        raise invalid("Port range must be two integers separated by a colon")
    for item in ports:
        if not item.isdigit() or not 0 < int(item) < 65536:
            raise invalid(f"Invalid port: {item}")
    if int(ports[0]) > int(ports[-1]):
        raise invalid("First port in a port range must be lower than the second port")
    return text


def protocol(value: Any) -> str:
    if isinstance(value, str) and value.lower() in PROTOCOLS:
        return value.lower()
    raise invalid(
        f"IP protocol '{value}' is not supported. Only protocol names and their integer "
        "representation (0 to 255) are supported"
    )


PORT_FORWARDING = {
    "id": Attr(post=False, sort=True, filter_convert=str),
    "external_port": Attr(port, put=True, sort=True, filter_convert=column_integer),
    "internal_port": Attr(port, put=True, filter=False),
    "external_port_range": Attr(port_range, put=True, sort=True, filter_convert=port_range),
    "internal_port_range": Attr(port_range, put=True, filter=False),
    "internal_ip_address": Attr(ip_address(), default=REQUIRED, put=True, filter=False),
    "protocol": Attr(protocol, default=REQUIRED, put=True, sort=True),
    "internal_port_id": Attr(uuid_str(), default=REQUIRED, put=True, sort=True),
    "description": Attr(string(), default="", put=True),
}
