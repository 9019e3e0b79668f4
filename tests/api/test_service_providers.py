"""Service providers: what serves routers, as Neutron lists them."""

from __future__ import annotations

from tests.conftest import Api
from tests.conftest import expect_error as error

L3 = "L3_ROUTER_NAT"
PROVIDERS = [  # in name order, as Neutron sorts and pages them
    {"service_type": L3, "name": "dvr", "default": False},
    {"service_type": L3, "name": "dvrha", "default": False},
    {"service_type": L3, "name": "ha", "default": False},
    {"service_type": L3, "name": "single_node", "default": True},
]


def test_routers_have_neutrons_four_providers(api: Api) -> None:
    for caller in (api.demo, api.admin):
        assert caller.get("/service-providers").json() == {"service_providers": PROVIDERS}
    shown = api.demo.get("/service-providers", params={"fields": "name"}).json()
    assert shown == {"service_providers": [{"name": p["name"]} for p in PROVIDERS]}
    refused = api.demo.get("/service-providers", params={"service_type": L3})
    assert error(refused, 400, "HTTPBadRequest") == (
        "service_type is invalid attribute for filtering"
    )
    assert "service-type" in {e["alias"] for e in api.demo.get("/extensions").json()["extensions"]}
