"""Service providers: the implementations behind the advanced services, as Neutron names them.

Routers (`L3_ROUTER_NAT`) have Neutron's four providers, one for each pair of the
`ha` and `distributed` flags; each takes routers of its own kind only. The agent of
the one host a router lives on serves them all alike: a router is one namespace
whatever its flags say. A service profile names a provider by its driver, and a
router made with a flavor gets the provider of the flavor's profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from neutrino import errors

L3 = "L3_ROUTER_NAT"

# The service plugins this service stands for, by Neutron's plugin type names: what a
# flavor's service_type may name.
SERVICE_TYPES = (
    "CORE",
    "FLAVORS",
    "FLOATINGIPPOOL",
    L3,
    "PORTFORWARDING",
    "QOS",
    "network-ip-availability",
    "trunk",
)


@dataclass(frozen=True)
class Provider:
    service_type: str
    name: str
    driver: str
    default: bool
    ha: bool  # the one value of a router's `ha` flag this provider takes
    distributed: bool

    def refused_flag(self, values: dict[str, object]) -> str | None:
        """The first of a router request's `distributed` and `ha` that it sets to a value
        this provider does not take (absent or null ones are not checked)."""
        for key in ("distributed", "ha"):
            flag = values.get(key)
            if isinstance(flag, bool) and flag != getattr(self, key):
                return key
        return None


_L3_DRIVERS = "neutron.services.l3_router.service_providers."
PROVIDERS = [
    Provider(L3, "dvrha", _L3_DRIVERS + "dvrha.DvrHaDriver", False, ha=True, distributed=True),
    Provider(L3, "dvr", _L3_DRIVERS + "dvr.DvrDriver", False, ha=False, distributed=True),
    Provider(L3, "ha", _L3_DRIVERS + "ha.HaDriver", False, ha=True, distributed=False),
    Provider(
        L3,
        "single_node",
        _L3_DRIVERS + "single_node.SingleNodeDriver",
        True,
        ha=False,
        distributed=False,
    ),
]


def by_driver(driver: str) -> Provider:
    for provider in PROVIDERS:
        if provider.driver == driver:
            return provider
    raise errors.ServiceProfileDriverNotFound(driver=driver)


def by_name(name: str) -> Provider:
    return next(p for p in PROVIDERS if p.name == name)
