"""TLS of listeners and pools: Octavia's defaults and checks, with its fault strings.

A TERMINATED_HTTPS listener needs a default or an SNI certificate; client
authentication needs a client CA, and a CRL needs the CA it revokes for. A
pool with tls_enabled speaks TLS to its members, optionally with a client
certificate, a CA that must have signed the members' and a CRL. Without a
version, cipher or ALPN list of their own, TLS listeners and pools get
Octavia's defaults (OWASP suite B: TLS 1.2 and 1.3). Each reference must be
one the caller may read in the key manager, at create and update time.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Row

from neutrino.services.loadbalancers import Invalid

TLS_VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
ALPN_PROTOCOLS = ("http/1.0", "http/1.1", "h2")
DEFAULT_TLS_VERSIONS = ["TLSv1.2", "TLSv1.3"]
DEFAULT_ALPN_PROTOCOLS = ["h2", "http/1.1", "http/1.0"]
DEFAULT_CIPHERS = (
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
CIPHERS = re.compile(r"[A-Za-z0-9\-+!:@=_.]+")
LISTENER_CERTIFICATES = ("default_tls_container_ref", "sni_container_refs")
TERMINATED = "TERMINATED_HTTPS"


def refused(detail: str) -> Invalid:
    return Invalid(f"Validation failure: {detail}")


def set_defaults(values: dict[str, Any], *keys: str) -> None:
    """Octavia's defaults for the TLS options among `keys` that are missing or null."""
    defaults = {
        "tls_ciphers": DEFAULT_CIPHERS,
        "tls_versions": DEFAULT_TLS_VERSIONS,
        "alpn_protocols": DEFAULT_ALPN_PROTOCOLS,
    }
    for key in keys:
        if values.get(key) is None:
            values[key] = list(defaults[key]) if key != "tls_ciphers" else defaults[key]


def check_options(values: dict[str, Any], versions_and_alpn: bool) -> None:
    """Ciphers (only characters OpenSSL's syntax uses), versions and ALPN protocols."""
    if values.get("tls_ciphers") and not CIPHERS.fullmatch(values["tls_ciphers"]):
        raise refused(
            "Invalid characters in cipher string. Only alphanumeric, -, +, !, :, @, =, _, "
            "and . are allowed."
        )
    if not versions_and_alpn:
        return
    if values.get("tls_versions") == []:
        raise refused(
            "Empty TLS version list. Either specify at least one TLS version or remove this "
            "parameter to use the default."
        )
    wrong = [v for v in values.get("tls_versions") or [] if v not in TLS_VERSIONS]
    if wrong:
        raise refused("Invalid TLS versions: " + ", ".join(wrong))
    if values.get("alpn_protocols") == []:
        raise refused(
            "Empty ALPN protocol list. Either specify at least one ALPN protocol or remove "
            "this parameter to use the default."
        )
    wrong = [p for p in values.get("alpn_protocols") or [] if p not in ALPN_PROTOCOLS]
    if wrong:
        raise refused("Invalid ALPN protocol: " + ", ".join(wrong))


def prepare_listener(values: dict[str, Any]) -> None:
    """A new listener's TLS fields, checked and completed (Octavia's create_listener and
    _validate_create_listener, in their order)."""
    protocol = values["protocol"]
    values["sni_container_refs"] = values.get("sni_container_refs") or []
    values["client_authentication"] = values.get("client_authentication") or "NONE"
    certificate = values.get("default_tls_container_ref") or values["sni_container_refs"]
    if protocol == TERMINATED:
        set_defaults(values, "tls_ciphers", "tls_versions", "alpn_protocols")
    elif certificate or values.get("client_ca_tls_container_ref"):
        raise refused(
            f"Certificate container references are not allowed on {protocol} protocol listeners."
        )
    if values.get("client_ca_tls_container_ref") and not certificate:
        raise refused(
            "An SNI or default certificate container reference must be provided with a client "
            "CA container reference."
        )
    if protocol == TERMINATED and not certificate:
        raise refused(
            "An SNI or default certificate container reference must be provided for "
            f"{protocol} protocol listeners."
        )
    if values["client_authentication"] != "NONE" and not values.get("client_ca_tls_container_ref"):
        raise refused(
            f"Client authentication setting {values['client_authentication']} requires a "
            "client CA container reference."
        )
    if values.get("client_crl_container_ref") and not values.get("client_ca_tls_container_ref"):
        raise refused(
            "A client authentication CA reference is required to specify a client "
            "authentication revocation list."
        )
    check_options(values, protocol == TERMINATED)
    if (values.get("hsts_include_subdomains") or values.get("hsts_preload")) and values.get(
        "hsts_max_age"
    ) is None:
        raise refused(
            "HSTS configuration options hsts_include_subdomains and hsts_preload only make "
            "sense if hsts_max_age is set as well."
        )
    _check_hsts_protocol(values, protocol)


def check_listener_update(row: Row, values: dict[str, Any]) -> None:
    """A listener's TLS fields on update (Octavia's _validate_listener_PUT), then the defaults
    of what is set to null (its _set_default_on_none)."""
    if row.protocol != TERMINATED and any(
        values.get(key) for key in (*LISTENER_CERTIFICATES, "client_ca_tls_container_ref")
    ):
        raise refused(
            f"Certificate container references are not allowed on {row.protocol} protocol "
            "listeners."
        )
    ca = _merged(values, row, "client_ca_tls_container_ref")
    if values.get("client_authentication") not in (None, "NONE") and not ca:
        raise refused(
            f"Client authentication setting {values['client_authentication']} requires a "
            "client CA container reference."
        )
    if _merged(values, row, "client_crl_container_ref") and not ca:
        raise refused(
            "A client authentication CA reference is required to specify a client "
            "authentication revocation list."
        )
    check_options(values, True)
    if (values.get("hsts_include_subdomains") or values.get("hsts_preload")) and (
        values.get("hsts_max_age") is None and row.hsts_max_age is None
    ):
        raise refused(
            "Cannot enable hsts_include_subdomains or hsts_preload if hsts_max_age was not set "
            "as well."
        )
    _check_hsts_protocol(values, row.protocol)
    for key, default in (
        ("client_authentication", "NONE"),
        ("hsts_include_subdomains", False),
        ("hsts_preload", False),
    ):
        if key in values and values[key] is None:
            values[key] = default
    if "sni_container_refs" in values and values["sni_container_refs"] is None:
        values["sni_container_refs"] = []
    set_defaults(
        values, *(k for k in ("tls_ciphers", "tls_versions", "alpn_protocols") if k in values)
    )


def prepare_pool(values: dict[str, Any]) -> None:
    """A new pool's TLS fields (Octavia's create_pool and _validate_create_pool)."""
    if values.get("tls_enabled"):
        set_defaults(values, "tls_ciphers", "tls_versions", "alpn_protocols")
    if values.get("crl_container_ref") and not values.get("ca_tls_container_ref"):
        raise refused("A CA certificate reference is required to specify a revocation list.")
    check_options(values, bool(values.get("tls_enabled")))


def check_pool_update(row: Row, values: dict[str, Any]) -> None:
    """A pool's TLS fields on update (Octavia's _validate_pool_PUT and put)."""
    crl = values.get("crl_container_ref", row.crl_container_ref)
    if "ca_tls_container_ref" in values and not values["ca_tls_container_ref"] and crl:
        raise refused(
            "A CA reference cannot be removed when a certificate revocation list is present."
            if row.ca_tls_container_ref
            else "A CA reference is required to specify a certificate revocation list."
        )
    if "ca_tls_container_ref" not in values and crl and not row.ca_tls_container_ref:
        raise refused("A CA reference is required to specify a certificate revocation list.")
    check_options(values, True)
    set_defaults(values, *(k for k in ("tls_ciphers", "tls_versions") if k in values))


def _merged(values: dict[str, Any], row: Row, key: str) -> Any:
    return values[key] if values.get(key) else getattr(row, key)


def _check_hsts_protocol(values: dict[str, Any], protocol: str) -> None:
    if values.get("hsts_max_age") is not None and protocol != TERMINATED:
        raise refused(
            "The HSTS feature can only be used for listeners using the TERMINATED_HTTPS protocol."
        )
