"""`/v2.0/service-providers`: the implementations behind the advanced services
(services/providers.py)."""

from __future__ import annotations

from typing import Any

from neutrino.api.v2.attrs import Attr
from neutrino.api.v2.computed import Computed
from neutrino.context import Context
from neutrino.db import Database
from neutrino.services.providers import PROVIDERS


def service_providers(
    _db: Database, _ctx: Context, _filters: dict[str, list[Any]]
) -> list[dict[str, Any]]:
    return [
        {"service_type": p.service_type, "name": p.name, "default": p.default} for p in PROVIDERS
    ]


SERVICE_PROVIDERS = Computed(
    "service_providers",
    "service_provider",
    "service-providers",
    "name",
    {name: Attr(filter=False) for name in ("service_type", "name", "default")},
    service_providers,
)
