"""Service providers: what serves routers, as Neutron lists it."""

from __future__ import annotations

from tests.conftest import Api
from tests.conftest import expect_error as error

SINGLE_NODE = {"service_type": "L3_ROUTER_NAT", "name": "single_node", "default": True}


def test_routers_are_served_by_the_single_node_provider(api: Api) -> None:
    for caller in (api.demo, api.admin):
        assert caller.get("/service-providers").json() == {"service_providers": [SINGLE_NODE]}
    shown = api.demo.get("/service-providers", params={"fields": "name"}).json()
    assert shown == {"service_providers": [{"name": "single_node"}]}
    refused = api.demo.get("/service-providers", params={"service_type": "L3_ROUTER_NAT"})
    assert error(refused, 400, "HTTPBadRequest") == (
        "service_type is invalid attribute for filtering"
    )
    assert "service-type" in {e["alias"] for e in api.demo.get("/extensions").json()["extensions"]}
