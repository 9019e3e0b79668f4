"""`dns_name` and `dns_domain`, checked as neutron-lib's DNS validators check them.

Both are lower-cased first. A name is a PQDN or an FQDN of 1-63 character
labels (RFC 1123); an FQDN must end in the configured domain, and a PQDN must
fit in 255 characters with it. A domain is an FQDN. The messages are Neutron's,
which speak of its configuration file.
"""

from __future__ import annotations

import re
from typing import Any

from neutrino import errors
from neutrino.services import dns

FQDN_MAX = 255
LABEL = re.compile(r"[a-z0-9-]{1,63}")


def lowercase(value: Any) -> str:
    if not isinstance(value, str):
        raise errors.InvalidInput(error_message=f"Input value {value} must be string type")
    return value.lower()


def format_error(data: str) -> str | None:
    """Why `data` is no PQDN or FQDN, if it is not one ('' passes)."""
    if not data:
        return None
    trimmed = data.removesuffix(".")
    labels = trimmed.split(".")
    reason = next(filter(None, map(label_error, labels)), None)
    if len(trimmed) > FQDN_MAX:
        reason = f"'{trimmed}' exceeds the {FQDN_MAX} character FQDN limit"
    elif reason is None and len(labels) > 1 and labels[-1].isdigit():
        reason = f"TLD '{labels[-1]}' must not be all numeric"
    return reason and f"'{data}' not a valid PQDN or FQDN. Reason: {reason}"


def label_error(label: str) -> str | None:
    if not label:
        return "Encountered an empty component"
    if label.startswith("-") or label.endswith("-"):
        return f"Name '{label}' must not start or end with a hyphen"
    if not LABEL.fullmatch(label):
        return (
            f"Name '{label}' must be 1-63 characters long, each of which can only be "
            "alphanumeric or a hyphen"
        )
    return None


def domain_error(name: str) -> str | None:
    """Why the name does not go with the configured domain, if it does not."""
    higher = f".{dns.DOMAIN}"
    if not name.endswith("."):
        if len(name) + len(higher) > FQDN_MAX:
            return (
                f"The dns_name passed is a PQDN and its size is '{len(name)}'. The dns_domain "
                f"option in neutron.conf is set to {dns.CONFIGURED}, with a length of "
                f"'{len(higher)}'. When the two are concatenated to form a FQDN (with a '.' at "
                f"the end), the resulting length exceeds the maximum size of '{FQDN_MAX}'"
            )
        return None
    if len(name) <= len(higher) or not name.endswith(higher):
        return (
            "The dns_name passed is a FQDN. Its higher level labels must be equal to the "
            f"dns_domain option in neutron.conf, that has been set to '{dns.CONFIGURED}'. It "
            "must also include one or more valid DNS labels to the left of "
            f"'{dns.CONFIGURED}'"
        )
    return None


def rejected(attr: str, reason: str) -> errors.HTTPBadRequest:
    return errors.HTTPBadRequest(f"Invalid input for {attr}. Reason: {reason}.")


def dns_name(value: Any) -> str:
    name = lowercase(value)
    reason = format_error(name) or (domain_error(name) if name and dns.names_kept() else None)
    if reason:
        raise rejected("dns_name", reason)
    return name


def dns_domain(value: Any) -> str:
    domain = lowercase(value)
    if not domain:
        return domain
    reason = f"'{domain}' is not a FQDN" if not domain.endswith(".") else format_error(domain)
    if reason is None and len(domain) > FQDN_MAX - 2:
        reason = (
            f"'{domain}' contains {len(domain)} characters. Adding a sub-domain will cause it "
            f"to exceed the maximum length of a FQDN of '{FQDN_MAX}'"
        )
    if reason:
        raise rejected("dns_domain", reason)
    return domain
