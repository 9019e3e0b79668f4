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

from cryptography import x509
from sqlalchemy import Row

from neutrino.context import Context
from neutrino.services.keymanager import KeyManager, id_in_ref
from neutrino.services.refusals import Invalid, Refusal

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
        raise _certificates_not_allowed(protocol)
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
    _check_client_authentication(
        values["client_authentication"],
        values.get("client_ca_tls_container_ref"),
        values.get("client_crl_container_ref"),
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
        raise _certificates_not_allowed(row.protocol)
    _check_client_authentication(
        values.get("client_authentication"),
        _merged(values, row, "client_ca_tls_container_ref"),
        _merged(values, row, "client_crl_container_ref"),
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


def _certificates_not_allowed(protocol: str) -> Invalid:
    return refused(
        f"Certificate container references are not allowed on {protocol} protocol listeners."
    )


def _check_client_authentication(authentication: str | None, ca: Any, crl: Any) -> None:
    if authentication not in (None, "NONE") and not ca:
        raise refused(
            f"Client authentication setting {authentication} requires a client CA container "
            "reference."
        )
    if crl and not ca:
        raise refused(
            "A client authentication CA reference is required to specify a client "
            "authentication revocation list."
        )


def _merged(values: dict[str, Any], row: Row, key: str) -> Any:
    return values[key] if values.get(key) else getattr(row, key)


def _check_hsts_protocol(values: dict[str, Any], protocol: str) -> None:
    if values.get("hsts_max_age") is not None and protocol != TERMINATED:
        raise refused(
            "The HSTS feature can only be used for listeners using the TERMINATED_HTTPS protocol."
        )


# -- the key manager: references checked as the caller, PEM material read for the agents ------
key_manager: KeyManager | None = None  # the server's, set when it is built


def configure(manager: KeyManager) -> None:
    global key_manager
    key_manager = manager


CERTIFICATE_REFS = {
    "default_tls_container_ref": "certificate",
    "sni_container_refs": "certificates",
    "client_ca_tls_container_ref": "secret",
    "client_crl_container_ref": "secret",
    "tls_container_ref": "certificate",
    "ca_tls_container_ref": "secret",
    "crl_container_ref": "secret",
}


def check_references(
    ctx: Context, values: dict[str, Any], row: Row | None, ca_key: str, crl_key: str
) -> None:
    """Each reference set (on create or update) must be one `ctx` may read: Octavia's
    _validate_tls_refs, then _validate_client_ca_and_crl_refs on the CA (`ca_key`) and CRL
    (`crl_key`) in force."""
    certificates = [
        *(values.get("sni_container_refs") or []),
        *(values[k] for k in ("default_tls_container_ref", "tls_container_ref") if values.get(k)),
    ]
    unreadable = [ref for ref in certificates if _read_certificate(ctx, ref) is None]
    if unreadable:
        raise Invalid(f"Could not retrieve certificate: {unreadable}")
    if not (values.get(ca_key) or values.get(crl_key)):
        return
    ca_ref = values.get(ca_key) or (getattr(row, ca_key) if row is not None else None)
    crl_ref = values.get(crl_key) or (getattr(row, crl_key) if row is not None else None)
    ca = _read_secret(ctx, ca_ref) if ca_ref else None
    crl = _read_secret(ctx, crl_ref) if crl_ref else None
    unreadable = [ref for ref, pem in ((ca_ref, ca), (crl_ref, crl)) if ref and pem is None]
    if unreadable:
        raise Invalid(f"Could not retrieve certificate: {unreadable}")
    assert ca is not None
    try:
        authority = x509.load_pem_x509_certificate(ca.encode())
    except ValueError as error:
        raise refused(
            "The client authentication CA certificate is invalid. It must be a valid x509 PEM "
            f"format certificate. Error: {error}"
        ) from None
    if crl is None:
        return
    try:
        revocations = x509.load_pem_x509_crl(crl.encode())
    except ValueError as error:
        raise refused(
            "The client authentication certificate revocation list is invalid. It must be a "
            f"valid x509 PEM format certificate revocation list. Error: {error}"
        ) from None
    if not revocations.is_signature_valid(authority.public_key()):  # type: ignore[arg-type]
        raise refused(
            "The CRL specified is not valid for client certificate authority reference supplied."
        )


def attach_pem(tree: dict[str, Any]) -> None:
    """Put into a load balancer's tree (for its agent) the PEM material its TLS listeners and
    pools name, as `pem` keyed by the field of each reference. The caller's right to each was
    checked when it was set; neutrino itself reads it now (as Octavia's service user reads what
    the listener's owner granted it), so that one shared by an ACL from another project serves
    too. What cannot be read (deleted since) is left out: haproxy then refuses the
    configuration, which the agent reports."""
    for item in [*tree.get("listeners", []), *tree.get("pools", [])]:
        pem: dict[str, Any] = {}
        for key, kind in CERTIFICATE_REFS.items():
            if not item.get(key):
                continue
            if kind == "certificates":
                found = [_read_certificate(None, ref) for ref in item[key]]
                pem[key] = [p for p in found if p is not None]
            else:
                read = _read_certificate if kind == "certificate" else _read_secret
                pem[key] = read(None, item[key])
        if pem:
            item["pem"] = pem


def _read_certificate(ctx: Context | None, ref: str) -> str | None:
    """A certificate with its key and intermediates in one PEM (Octavia's build_pem)."""
    assert key_manager is not None
    try:
        bundle = key_manager.certificate_bundle(ctx, ref)
    except Refusal:
        return None
    key = [bundle.private_key] if bundle.private_key else []
    return b"\n".join([bundle.certificate, *key, *bundle.intermediates]).decode() + "\n"


def _read_secret(ctx: Context | None, ref: str) -> str | None:
    """A secret's payload as text; `ctx` None: neutrino itself reads it."""
    assert key_manager is not None
    try:
        payload, _ = key_manager.secret_payload(ctx, id_in_ref(ref), "*/*")
        return payload.decode()
    except (Refusal, UnicodeDecodeError):
        return None
