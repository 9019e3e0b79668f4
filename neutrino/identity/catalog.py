"""The service catalog, built from one table of services.

A service that neutrino starts serving adds one `CatalogService` to the
table it passes to `Identity`; each gets public, internal and admin endpoints
under the public URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

INTERFACES = ("public", "internal", "admin")
# A fixed namespace makes service and endpoint ids stable across restarts and processes.
_IDS = uuid.UUID("6f1c7f2e-3a8e-4c1e-9a55-2b3f7e0c9d41")


@dataclass(frozen=True)
class CatalogService:
    type: str
    name: str
    path: str  # below the public URL, e.g. "/networking"


DEFAULT_SERVICES: tuple[CatalogService, ...] = (
    CatalogService("identity", "keystone", "/identity"),
    CatalogService("network", "neutron", "/networking"),
    CatalogService("load-balancer", "octavia", "/load-balancer"),
    CatalogService("key-manager", "barbican", "/key-manager"),
    CatalogService("lab", "neutrino-lab", "/lab"),
)


def build_catalog(
    services: Sequence[CatalogService], public_url: str, region: str
) -> list[dict[str, Any]]:
    """The catalog in Keystone's token shape."""
    return [
        {
            "id": _stable_id(service.type),
            "type": service.type,
            "name": service.name,
            "endpoints": [
                {
                    "id": _stable_id(f"{service.type}/{interface}"),
                    "interface": interface,
                    "region": region,
                    "region_id": region,
                    "url": public_url.rstrip("/") + service.path,
                }
                for interface in INTERFACES
            ],
        }
        for service in services
    ]


def _stable_id(key: str) -> str:
    return uuid.uuid5(_IDS, key).hex
