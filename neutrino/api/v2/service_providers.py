"""`/v2.0/service-providers`: the implementations behind the advanced services.

One: routers (`L3_ROUTER_NAT`) are served by the agent of the one host a router
lives on, Neutron's single-node provider; a router's `ha` and `distributed`
flags do not change that.
"""

from __future__ import annotations

from typing import Any

from neutrino.api.v2.attrs import Attr
from neutrino.api.v2.computed import Computed
from neutrino.context import Context
from neutrino.db import Database

PROVIDERS = [{"service_type": "L3_ROUTER_NAT", "name": "single_node", "default": True}]


def service_providers(
    _db: Database, _ctx: Context, _filters: dict[str, list[Any]]
) -> list[dict[str, Any]]:
    return [dict(provider) for provider in PROVIDERS]


SERVICE_PROVIDERS = Computed(
    "service_providers",
    "service_provider",
    "service-providers",
    "name",
    {name: Attr(filter=False) for name in ("service_type", "name", "default")},
    service_providers,
)
