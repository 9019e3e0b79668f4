"""Internal DNS of ports, as Neutron's dns-integration gives it without an external DNS service.

Every address of a port has a name in the service's DNS domain (`dns_domain`
of the configuration, Neutron's default `openstacklocal`): the port's
`dns_name`, or `host-<address with dashes>` without one; `dns_assignment`
shows them, and the network's dnsmasq answers them (neutrino.plan.dhcp). As
in Neutron, ports keep a `dns_name` (and a `dns_domain`) only once the
domain is configured to something else than the default: with the default,
what a request gives them is checked and dropped.
"""

from __future__ import annotations

DEFAULT_DOMAIN = "openstacklocal"
# The domain as configured, and as Neutron uses it (with the root's dot); set from the
# configuration when the service is built.
CONFIGURED = DEFAULT_DOMAIN
DOMAIN = f"{DEFAULT_DOMAIN}."


def configure(domain: str) -> None:
    global CONFIGURED, DOMAIN
    CONFIGURED = domain
    DOMAIN = domain if not domain or domain.endswith(".") else f"{domain}."


def names_kept() -> bool:
    """Whether ports keep the dns_name and dns_domain they are given."""
    return bool(DOMAIN) and DOMAIN != f"{DEFAULT_DOMAIN}."


def assignment(fixed_ips: list[dict[str, str]], dns_name: str) -> list[dict[str, str]]:
    """A port's `dns_assignment`: the hostname and fully qualified name of each address (its
    dns_name counts only while names are kept)."""
    name = dns_name if names_kept() else ""
    out = []
    for ip in fixed_ips:
        hostname = name or "host-" + ip["ip_address"].replace(".", "-").replace(":", "-")
        fqdn = hostname
        if not hostname.endswith(".") and DOMAIN:
            fqdn = f"{hostname}.{DOMAIN}"
        out.append({"hostname": hostname, "ip_address": ip["ip_address"], "fqdn": fqdn})
    return out


PORT_NAMES = ("dns_name", "dns_domain")


def port_names(values: dict[str, str]) -> dict[str, str]:
    """Of the dns_name and dns_domain a request gives a port, those it keeps."""
    return {key: values[key] for key in PORT_NAMES if key in values and names_kept()}
