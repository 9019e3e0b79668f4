"""Request shapes of the Octavia v2 API: which fields each object takes on create and update."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from neutrino import errors
from neutrino.api.v2.attrs import (
    Converter,
    boolean,
    dict_of,
    ip_address,
    list_of,
    one_of,
    project_id,
    ranged_int,
    string,
    tag,
    uuid_str,
)
from neutrino.config import QUOTA_LIMIT_MAX
from neutrino.services.refusals import Invalid

REQUIRED = object()
LISTENER_PROTOCOLS = ("HTTP", "HTTPS", "TERMINATED_HTTPS", "TCP", "UDP", "SCTP", "PROMETHEUS")
POOL_PROTOCOLS = ("HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP", "UDP", "SCTP")
MONITOR_TYPES = ("HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT", "SCTP")
MAX_TIMEOUT = 24 * 60 * 60 * 1000  # milliseconds, as Octavia


@dataclass(frozen=True)
class Field:
    convert: Converter
    default: Any = None
    put: bool = False


def expected_codes(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\d{3}(-\d{3}|(,\d{3})*)", value):
        raise errors.InvalidInput(
            error_message="use a code (200), a list (200,202) or a range (200-204)"
        )
    return value


def url_path(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/") or any(c.isspace() for c in value):
        raise errors.InvalidInput(error_message="a URL path starts with '/' and has no spaces")
    return value


def http_version(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value not in (1.0, 1.1):
        raise errors.InvalidInput(error_message="Value should be one of: 1.0, 1.1")
    return float(value)


# Octavia's DOMAIN_NAME_REGEX: dot-separated labels of letters, digits, '-' and '_'.
DOMAIN_NAME = re.compile(r"^(?=.{1,253}\.?$)(?:(?!-|[^.]+_)[A-Za-z0-9-_]{1,63}(?<!-)(?:\.|$))+$")


def domain_name(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or not DOMAIN_NAME.match(value):
        raise errors.InvalidInput(
            error_message=f"Value should match the pattern {DOMAIN_NAME.pattern}"
        )
    return value


def word(max_len: int) -> Converter:
    """A value haproxy's configuration carries as one quoted word: printable, no spaces or
    quotes."""

    def convert(value: Any) -> str:
        if not isinstance(value, str) or not re.fullmatch(rf"[!#-&(-~]{{1,{max_len}}}", value):
            raise errors.InvalidInput(
                error_message=f"use 1 to {max_len} printable characters without spaces or quotes"
            )
        return value

    return convert


def redirect_url(value: Any) -> str:
    if (
        not isinstance(value, str)
        or len(value) > 2048
        or not re.fullmatch(r"https?://[!#-&(-~]+", value)
        or not urlsplit(value).hostname
    ):
        raise errors.InvalidInput(
            error_message="use an absolute http:// or https:// URL without spaces or quotes"
        )
    return value


def header_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[!#$%&*+\-.^_`|~0-9A-Za-z]{1,255}", value):
        raise errors.InvalidInput(
            error_message="a header or cookie name is a token without spaces or quotes"
        )
    return value


SESSION_PERSISTENCE = dict_of(
    {
        "type": (one_of("SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE"), True),
        "cookie_name": (string(255, allow_none=True), False),
        "persistence_timeout": (ranged_int(0, MAX_TIMEOUT, allow_none=True), False),
        "persistence_granularity": (ip_address(allow_none=True), False),
    }
)


def address_as_given(allow_none: bool = False) -> Converter:
    """An IPv4 or IPv6 address, kept as written (Octavia shows 2001:db8:0:0::1 as it came)."""
    check = ip_address(allow_none)

    def convert(value: Any) -> Any:
        check(value)
        return value

    return convert


def allowed_cidr(value: Any) -> str:
    """A network, host bits allowed and cleared (Octavia's CidrType)."""
    try:
        return ipaddress.ip_network(
            value if isinstance(value, str) else "", strict=False
        ).with_prefixlen
    except ValueError:
        raise errors.InvalidInput(
            error_message="Value should be IPv4 or IPv6 CIDR format"
        ) from None


def insert_headers(value: Any) -> dict[str, str]:
    """Header name -> "true"/"false", as strings of at most 255 characters."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) <= 255 for k, v in value.items()
    ):
        raise errors.InvalidInput(error_message="use an object of strings")
    return value


def optional(convert: Converter) -> Converter:
    return lambda value: None if value is None else convert(value)


def common(name_put: bool = True) -> dict[str, Field]:
    return {
        "name": Field(string(), "", put=name_put),
        "description": Field(string(), "", put=True),
        "admin_state_up": Field(boolean, True, put=True),
        "project_id": Field(project_id),
        "tenant_id": Field(project_id),
        "tags": Field(list_of(tag, unique=True), put=True),
    }


def timeout(default: int) -> Field:
    return Field(ranged_int(0, MAX_TIMEOUT), default, put=True)


LOADBALANCER = {
    **common(),
    "vip_subnet_id": Field(uuid_str()),
    "vip_network_id": Field(uuid_str()),
    "vip_port_id": Field(uuid_str()),
    "vip_address": Field(ip_address()),
    "vip_qos_policy_id": Field(one_of(None)),
    "provider": Field(string(64)),
    "flavor_id": Field(uuid_str()),
    "availability_zone": Field(string(255)),
}


def tls(*refs: str) -> dict[str, Field]:
    """TLS fields of listeners and pools: certificate references (checked against the key
    manager by the service), ciphers, versions and ALPN protocols (checked as Octavia does)."""
    return {
        **{ref: Field(string(255, allow_none=True), put=True) for ref in refs},
        "tls_ciphers": Field(string(2048, allow_none=True), put=True),
        "tls_versions": Field(optional(list_of(string(32))), put=True),
        "alpn_protocols": Field(optional(list_of(string(32))), put=True),
    }


LISTENER = {
    **common(),
    "loadbalancer_id": Field(uuid_str(), REQUIRED),
    "protocol": Field(one_of(*LISTENER_PROTOCOLS), REQUIRED),
    "protocol_port": Field(ranged_int(1, 65535), REQUIRED),
    "insert_headers": Field(optional(insert_headers), put=True),
    "allowed_cidrs": Field(optional(list_of(allowed_cidr)), put=True),
    "connection_limit": Field(ranged_int(-1, 1_000_000), -1, put=True),
    "default_pool_id": Field(uuid_str(allow_none=True), put=True),
    "timeout_client_data": timeout(50000),
    "timeout_member_connect": timeout(5000),
    "timeout_member_data": timeout(50000),
    "timeout_tcp_inspect": timeout(0),
    **tls("default_tls_container_ref", "client_ca_tls_container_ref", "client_crl_container_ref"),
    "sni_container_refs": Field(optional(list_of(string(255))), put=True),
    "client_authentication": Field(
        one_of("NONE", "OPTIONAL", "MANDATORY", allow_none=True), put=True
    ),
    "hsts_max_age": Field(ranged_int(0, 2**31 - 1, allow_none=True), put=True),
    "hsts_include_subdomains": Field(boolean, put=True),
    "hsts_preload": Field(boolean, put=True),
}

POOL = {
    **common(),
    "loadbalancer_id": Field(uuid_str()),
    "listener_id": Field(uuid_str()),
    "protocol": Field(one_of(*POOL_PROTOCOLS), REQUIRED),
    "lb_algorithm": Field(
        one_of("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT"),
        REQUIRED,
        put=True,
    ),
    "session_persistence": Field(optional(SESSION_PERSISTENCE), put=True),
    "tls_enabled": Field(boolean, False, put=True),
    **tls("tls_container_ref", "ca_tls_container_ref", "crl_container_ref"),
}

MEMBER = {
    **common(),
    "address": Field(address_as_given(), REQUIRED),
    "protocol_port": Field(ranged_int(1, 65535), REQUIRED),
    "weight": Field(ranged_int(0, 256), 1, put=True),
    "subnet_id": Field(uuid_str()),
    "backup": Field(boolean, False, put=True),
    "monitor_address": Field(address_as_given(allow_none=True), put=True),
    "monitor_port": Field(ranged_int(1, 65535, allow_none=True), put=True),
}

HEALTHMONITOR = {
    **common(),
    "pool_id": Field(uuid_str(), REQUIRED),
    "type": Field(one_of(*MONITOR_TYPES), REQUIRED),
    "delay": Field(ranged_int(0, MAX_TIMEOUT), REQUIRED, put=True),
    "timeout": Field(ranged_int(0, MAX_TIMEOUT), REQUIRED, put=True),
    "max_retries": Field(ranged_int(1, 10), REQUIRED, put=True),
    "max_retries_down": Field(ranged_int(1, 10), put=True),
    "http_method": Field(
        one_of("GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "PATCH", "CONNECT"),
        put=True,
    ),
    "url_path": Field(url_path, put=True),
    "expected_codes": Field(expected_codes, put=True),
    "http_version": Field(optional(http_version), put=True),
    "domain_name": Field(optional(domain_name), put=True),
}

L7POLICY = {
    **common(),
    "listener_id": Field(uuid_str(), REQUIRED),
    "action": Field(
        one_of("REJECT", "REDIRECT_TO_URL", "REDIRECT_TO_POOL", "REDIRECT_PREFIX"),
        REQUIRED,
        put=True,
    ),
    "position": Field(ranged_int(1, 2**31 - 1), put=True),
    "redirect_pool_id": Field(uuid_str(allow_none=True), put=True),
    "redirect_url": Field(optional(redirect_url), put=True),
    "redirect_prefix": Field(optional(redirect_url), put=True),
    "redirect_http_code": Field(one_of(301, 302, 303, 307, 308, allow_none=True), put=True),
}

L7RULE = {
    **{key: field for key, field in common().items() if key not in ("name", "description")},
    "type": Field(
        one_of(
            "HOST_NAME",
            "PATH",
            "FILE_TYPE",
            "HEADER",
            "COOKIE",
            "SSL_CONN_HAS_CERT",
            "SSL_VERIFY_RESULT",
            "SSL_DN_FIELD",
        ),
        REQUIRED,
        put=True,
    ),
    "compare_type": Field(
        one_of("REGEX", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "EQUAL_TO"), REQUIRED, put=True
    ),
    "key": Field(optional(header_name), put=True),
    "value": Field(word(255), REQUIRED, put=True),
    "invert": Field(boolean, False, put=True),
}

QUOTA = {
    name: Field(ranged_int(-1, QUOTA_LIMIT_MAX, allow_none=True), put=True)
    for name in (
        "load_balancer",
        "listener",
        "pool",
        "member",
        "health_monitor",
        "l7policy",
        "l7rule",
    )
}


def without(fields: dict[str, Field], *keys: str) -> dict[str, Field]:
    """A shape inside a fully populated create, where the tree gives these (the parents' ids)."""
    return {key: field for key, field in fields.items() if key not in keys}


def parse_loadbalancer(
    body: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """A load balancer create, fully populated or not: its values, listeners and pools, each part
    checked with its own shape (the nested parts keep their nested parts under the same keys)."""
    if not isinstance(body, dict) or not isinstance(body.get("loadbalancer"), dict):
        return parse(body, "loadbalancer", LOADBALANCER, create=True), [], []  # refused there
    lb = dict(body["loadbalancer"])
    listeners, pools = _items(lb, "listeners"), _items(lb, "pools")
    values = parse({"loadbalancer": lb}, "loadbalancer", LOADBALANCER, create=True)
    return values, [_listener(item) for item in listeners], [_pool(item) for item in pools]


def _items(parent: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = parent.pop(key, None) or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise Invalid(
            f"Invalid input for field/attribute {key}. Value: '{items}'. "
            "It must be a list of objects."
        )
    return [dict(item) for item in items]


def _pool(item: dict[str, Any]) -> dict[str, Any]:
    members, monitor = _items(item, "members"), item.pop("healthmonitor", None)
    values = parse(
        {"pool": item}, "pool", without(POOL, "loadbalancer_id", "listener_id"), create=True
    )
    values["members"] = [
        parse({"member": member}, "member", MEMBER, create=True) for member in members
    ]
    if monitor is not None:
        values["healthmonitor"] = parse(
            {"healthmonitor": monitor},
            "healthmonitor",
            without(HEALTHMONITOR, "pool_id"),
            create=True,
        )
    return values


def _pool_or_name(item: Any, key: str) -> dict[str, Any] | None:
    """A pool given in place, or {"name": ...} naming one of the load balancer's pools."""
    if item is None:
        return None
    if not isinstance(item, dict):
        raise Invalid(
            f"Invalid input for field/attribute {key}. Value: '{item}'. It must be an object."
        )
    return {"name": string()(item["name"])} if set(item) == {"name"} else _pool(dict(item))


def _listener(item: dict[str, Any]) -> dict[str, Any]:
    default, policies = item.pop("default_pool", None), _items(item, "l7policies")
    values = parse(
        {"listener": item}, "listener", without(LISTENER, "loadbalancer_id"), create=True
    )
    values["default_pool"] = _pool_or_name(default, "default_pool")
    values["l7policies"] = [_policy(policy) for policy in policies]
    return values


def _policy(item: dict[str, Any]) -> dict[str, Any]:
    redirect, rules = item.pop("redirect_pool", None), _items(item, "rules")
    values = parse({"l7policy": item}, "l7policy", without(L7POLICY, "listener_id"), create=True)
    values["redirect_pool"] = _pool_or_name(redirect, "redirect_pool")
    values["rules"] = [parse({"rule": rule}, "rule", L7RULE, create=True) for rule in rules]
    return values


def parse(body: Any, member: str, fields: dict[str, Field], *, create: bool) -> dict[str, Any]:
    """`{member: {...}}` -> converted values; Octavia's 400 messages for what does not fit."""
    if not isinstance(body, dict) or not isinstance(body.get(member), dict):
        raise Invalid(f"Invalid input: the request body must be an object with the key '{member}'.")
    out: dict[str, Any] = {}
    for key, value in body[member].items():
        field = fields.get(key)
        if field is None or not (create or field.put):
            raise Invalid(
                f"Invalid input for field/attribute {key}. Value: '{value}'. "
                f"{'Unknown attribute' if field is None else 'It cannot be updated'}."
            )
        try:
            out[key] = field.convert(value)
        except errors.NeutronError as refused:
            reason = refused.kwargs.get("error_message", refused.msg)
            raise Invalid(
                f"Invalid input for field/attribute {key}. Value: '{value}'. {reason}"
            ) from None
    tenant = out.pop("tenant_id", None)
    if tenant and out.get("project_id", tenant) != tenant:
        raise Invalid("Validation failure: project_id and tenant_id do not match.")
    if tenant:
        out["project_id"] = tenant
    if create:
        for key, field in fields.items():
            if key in out or key in ("project_id", "tenant_id"):
                continue
            if field.default is REQUIRED:
                raise Invalid(
                    f"Invalid input for field/attribute {key}. Value: 'None'. "
                    "Mandatory field missing."
                )
            if field.default is not None:
                out[key] = field.default
    return out
