"""The `extra_dhcp_opts` attribute of ports, checked as neutron-lib's key specs check it.

Each entry must match one of two shapes: `router` or `classless-static-route`
with any string value (blank allowed: it tells the client "none"), or any
other one-line name with a one-line non-blank value. A null value is allowed
by both: on update it removes that option. The messages are Neutron's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from neutrino.api.v2.attrs import invalid
from neutrino.services.extra_dhcp_opts import BLANKABLE

NAME_MAX, VALUE_MAX = 64, 255

Check = Callable[[Any], bool]


def is_string(value: Any, max_len: int) -> bool:
    return isinstance(value, str) and len(value) <= max_len


def is_one_line(value: Any, max_len: int) -> bool:
    return is_string(value, max_len) and bool(value.strip()) and len(value.splitlines()) <= 1


# (opt_name check, opt_value check) of each key spec, in neutron-lib's order
SPECS: tuple[tuple[Check, Check], ...] = (
    (lambda name: name in BLANKABLE, lambda value: value is None or is_string(value, VALUE_MAX)),
    (
        lambda name: is_one_line(name, NAME_MAX),
        lambda value: value is None or is_one_line(value, VALUE_MAX),
    ),
)


def ip_version(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"'{value}' is not an integer") from None


def matches(item: dict[str, Any], name_ok: Check, value_ok: Check) -> bool:
    """Whether `item` fits one key spec; converts its ip_version in place, as neutron-lib does."""
    if not {"opt_name", "opt_value"} <= set(item) or not set(item) <= {
        "opt_name",
        "opt_value",
        "ip_version",
    }:
        return False
    if not name_ok(item["opt_name"]) or not value_ok(item["opt_value"]):
        return False
    if "ip_version" in item:
        item["ip_version"] = ip_version(item["ip_version"])
        return item["ip_version"] in (4, 6)
    return True


def extra_dhcp_opts(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid(f"'{value}' is not a list")
    duplicates: list[Any] = []
    for i, item in enumerate(value):
        if item in value[:i] and item not in duplicates:
            duplicates.append(item)
    if duplicates:
        raise invalid(f"Duplicate items in the list: '{', '.join(str(d) for d in duplicates)}'")
    for item in value:
        if not isinstance(item, dict) or not any(matches(item, *spec) for spec in SPECS):
            raise invalid(f"No valid key specs matched for: {item}")
    return value
