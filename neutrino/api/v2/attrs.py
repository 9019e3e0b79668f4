"""Request shapes: one `Attr` per resource attribute, as Neutron's attribute maps.

An attribute says whether it may be given on create and on update, its
default, how a request value is checked and converted, and whether it can
be filtered and sorted on. Converters raise `InvalidInput` with a message a
person can act on; `parse_body` rejects unknown attributes.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neutrino import errors

Converter = Callable[[Any], Any]
REQUIRED = object()


def invalid(message: str) -> errors.InvalidInput:
    return errors.InvalidInput(error_message=message)


class Unacceptable(ValueError):
    """A value that converts but that its attribute's validator refuses. Neutron words it
    "Invalid input for <attribute>. Reason: <reason>." (HTTPBadRequest), and a value that does
    not convert as the converter's InvalidInput."""


@dataclass(frozen=True)
class Attr:
    convert: Converter = lambda v: v
    default: Any = None
    post: bool = True
    put: bool = False
    sort: bool = False
    filter: bool = True
    admin_only: bool = False  # only an admin may set it (provider attributes)
    filter_convert: Converter | None = None

    def parse_filter(self, text: str) -> Any:
        if self.filter_convert is not None:
            return self.filter_convert(text)
        if self.convert is boolean:
            return boolean(text)
        return text


# -- converters --------------------------------------------------------------
def string(max_len: int = 255, allow_none: bool = False) -> Converter:
    def convert(value: Any) -> Any:
        if value is None and allow_none:
            return None
        if not isinstance(value, str):
            raise invalid(f"'{value}' is not a valid string")
        if len(value) > max_len:
            raise invalid(f"'{value}' exceeds maximum length of {max_len}")
        return value

    return convert


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if value in (0, 1) and not isinstance(value, float):
        return bool(value)
    raise invalid(f"'{value}' cannot be converted to boolean")


def integer(value: Any) -> int:
    if isinstance(value, bool):
        raise invalid(f"'{value}' is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise invalid(f"'{value}' is not an integer")


def non_negative(value: Any) -> int:
    number = integer(value)
    if number < 0:
        raise invalid(f"'{number}' should be non-negative")
    return number


def ranged_int(low: int, high: int, allow_none: bool = False) -> Converter:
    def convert(value: Any) -> Any:
        if value is None and allow_none:
            return None
        number = integer(value)
        if not low <= number <= high:
            raise invalid(f"'{number}' is not in range {low} through {high}")
        return number

    return convert


# A filter on an integer column: a value PostgreSQL's INTEGER cannot hold is a 400, not a
# database error (SQLite's limit, 64 bits, is wider).
column_integer = ranged_int(-(2**31), 2**31 - 1)


def uuid_str(allow_none: bool = False) -> Converter:
    def convert(value: Any) -> Any:
        if value is None and allow_none:
            return None
        try:
            return str(uuid.UUID(value))
        except (ValueError, TypeError, AttributeError):
            raise invalid(f"'{value}' is not a valid UUID") from None

    return convert


def project_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise invalid(f"'{value}' is not a valid project ID")
    return value


def ip_address(allow_none: bool = False) -> Converter:
    def convert(value: Any) -> Any:
        if value is None and allow_none:
            return None
        try:
            return str(ipaddress.ip_address(value if isinstance(value, str) else ""))
        except ValueError:
            raise invalid(f"'{value}' is not a valid IP address") from None

    return convert


def cidr(value: Any) -> str:
    """A network in CIDR form; host bits set is an error, as in Neutron."""
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise invalid(f"'{value}' is not a valid IP subnet") from None
    if (
        str(net) != str(ipaddress.ip_interface(value).network)
        or ipaddress.ip_interface(value).ip != net.network_address
    ):
        raise invalid(f"'{value}' isn't a recognized IP subnet cidr, '{net}' is recommended")
    return str(net)


def ip_or_cidr(value: Any) -> str:
    """An address or a prefix (allowed address pairs, remote_ip_prefix)."""
    text = value if isinstance(value, str) else ""
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=False))
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise invalid(f"'{value}' is not a valid IP address or CIDR") from None


MAC_RE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")


def mac_address(value: Any) -> str:
    if not isinstance(value, str) or not MAC_RE.match(value):
        raise invalid(f"'{value}' is not a valid MAC address")
    mac = value.lower().replace("-", ":")
    if int(mac[:2], 16) & 1:
        raise invalid(f"'{value}' is a multicast MAC address")
    if mac == "00:00:00:00:00:00":
        raise invalid(f"'{value}' is not a valid MAC address")
    return mac


def mac_address_or_none(value: Any) -> str | None:
    """A MAC address, or null for a new random one (port-mac-address-regenerate)."""
    return None if value is None else mac_address(value)


def boolean_if_not_none(value: Any) -> bool | None:
    """A boolean, or null for the default."""
    return None if value is None else boolean(value)


def list_of(item: Converter, max_items: int = 1000, unique: bool = False) -> Converter:
    def convert(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise invalid(f"'{value}' is not a list")
        if len(value) > max_items:
            raise invalid(f"'{value}' exceeds the maximum of {max_items} items")
        out = [item(v) for v in value]
        if unique:
            dupes = {str(v) for v in out if out.count(v) > 1}
            if dupes:
                raise invalid(f"Duplicate items in the list: '{', '.join(sorted(dupes))}'")
        return out

    return convert


def none_as_empty(convert: Converter) -> Converter:
    """A list attribute where null means `[]` (Neutron's convert_none_to_empty_list)."""
    return lambda value: [] if value is None else convert(value)


def dict_of(spec: dict[str, tuple[Converter, bool]]) -> Converter:
    """A JSON object with known keys: `spec[key] = (converter, required)`."""

    def convert(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid(f"'{value}' is not a dictionary")
        unknown = set(value) - set(spec)
        if unknown:
            raise invalid(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
        out = {}
        for key, (conv, required) in spec.items():
            if key in value:
                out[key] = conv(value[key])
            elif required:
                raise invalid(f"Validation of dictionary's keys failed. Expected keys: {{'{key}'}}")
        return out

    return convert


def one_of(*choices: Any, allow_none: bool = False) -> Converter:
    def convert(value: Any) -> Any:
        if value is None and allow_none:
            return None
        if value not in choices:
            raise invalid(f"'{value}' is not in {list(choices)}")
        return value

    return convert


def tag(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 255 or "," in value or "/" in value:
        raise invalid(f"'{value}' is not a valid tag: tags are 1-255 characters without ',' or '/'")
    return value


# -- attribute sets ------------------------------------------------------------
def standard(name_put: bool = True) -> dict[str, Attr]:
    """The standard attributes every Neutron resource carries."""
    return {
        "id": Attr(post=False, sort=True, filter_convert=str),
        "name": Attr(string(), default="", put=name_put, sort=True),
        "description": Attr(string(), default="", put=True),
        "project_id": Attr(project_id, sort=True),
        "tenant_id": Attr(project_id, sort=True),
        "created_at": Attr(post=False, filter=False),
        "updated_at": Attr(post=False, filter=False),
        "revision_number": Attr(post=False, filter_convert=column_integer),
        "tags": Attr(post=False, filter=False),
    }


def parse_body(
    body: Any, member: str, attrs: dict[str, Attr], *, create: bool, is_admin: bool
) -> dict[str, Any]:
    """Check a request body `{member: {...}}` against `attrs`; return converted values.

    On create, defaults fill what is absent (REQUIRED ones must be present);
    on update only what was sent is returned.
    """
    if not isinstance(body, dict) or not isinstance(body.get(member), dict) or len(body) != 1:
        raise errors.BadRequest(
            resource=member,
            msg=f"Resource body required: expected a JSON object with the single key '{member}'",
        )
    data = body[member]
    out: dict[str, Any] = {}
    for key, value in data.items():
        attr = attrs.get(key)
        if attr is None:
            raise errors.BadRequest(resource=member, msg=f"Unrecognized attribute(s) '{key}'")
        allowed = attr.post if create else attr.put
        if not allowed:
            verb = "created" if create else "updated"
            raise errors.BadRequest(
                resource=member,
                msg=(
                    f"Attribute '{key}' not allowed in {'POST' if create else 'PUT'}; "
                    f"it cannot be {verb}"
                ),
            )
        if attr.admin_only and not is_admin:
            raise errors.PolicyNotAuthorized(
                action=f"{'create' if create else 'update'}_{member}:{key}"
            )
        try:
            out[key] = attr.convert(value)
        except Unacceptable as refused:
            raise errors.HTTPBadRequest(f"Invalid input for {key}. Reason: {refused}.") from None
    if "tenant_id" in out or "project_id" in out:
        tenant, project = out.pop("tenant_id", None), out.get("project_id")
        if tenant and project and tenant != project:
            raise errors.BadRequest(
                resource=member, msg="'project_id' and 'tenant_id' do not match"
            )
        out["project_id"] = project or tenant
    if create:
        for key, attr in attrs.items():
            if key in out or not attr.post or key == "tenant_id" or key == "project_id":
                continue
            if attr.default is REQUIRED:
                raise errors.BadRequest(
                    resource=member,
                    msg=f"Failed to parse request. Required attribute '{key}' not specified",
                )
            if attr.default is not None:
                out[key] = attr.default() if callable(attr.default) else attr.default
    return out
