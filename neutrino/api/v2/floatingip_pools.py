"""`/v2.0/floatingip-pools`: read-only, one entry per IPv4 subnet of an external network."""

from __future__ import annotations

from neutrino.api.v2.attrs import Attr
from neutrino.api.v2.computed import Computed
from neutrino.services.floatingip_pools import floatingip_pools

ATTRIBUTES = {
    name: Attr(filter=False)
    for name in ("subnet_id", "subnet_name", "network_id", "cidr", "project_id")
}
FLOATINGIP_POOLS = Computed(
    "floatingip_pools",
    "floatingip_pool",
    "floatingip-pools",
    "subnet_id",
    ATTRIBUTES,
    floatingip_pools,
)
