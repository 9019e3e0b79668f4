"""`/v2.0/network-ip-availabilities`: read-only, keyed by network ID."""

from __future__ import annotations

from neutrino.api.v2.attrs import Attr, integer
from neutrino.api.v2.computed import Computed
from neutrino.services.ip_availability import NetworkIpAvailabilities

ATTRIBUTES = {
    "network_id": Attr(sort=True),
    "network_name": Attr(),
    "project_id": Attr(),
    "tenant_id": Attr(),
    "ip_version": Attr(filter_convert=integer),
    **{
        name: Attr(filter=False)
        for name in ("total_ips", "used_ips", "subnet_ip_availability", "ip_availability_details")
    },
}

service = NetworkIpAvailabilities()
NETWORK_IP_AVAILABILITY = Computed(
    "network_ip_availabilities",
    "network_ip_availability",
    "network-ip-availabilities",
    "network_id",
    ATTRIBUTES,
    service.list,
    service.get,
)
