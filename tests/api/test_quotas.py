"""Quotas: limits per project, defaults, usage, and exact enforcement under concurrency."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import pytest

from neutrino.config import Settings
from tests.api.l3 import external_network
from tests.conftest import Api
from tests.conftest import expect_error as error

DEFAULTS = {
    "network": 100,
    "subnet": 100,
    "subnetpool": -1,
    "port": 500,
    "router": 10,
    "floatingip": 50,
    "security_group": 10,
    "security_group_rule": 100,
    "rbac_policy": 10,
}


def test_defaults_and_own_quota(api: Api) -> None:
    project = api.demo.project_id
    assert api.demo.get(f"/quotas/{project}").json() == {"quota": DEFAULTS}
    assert api.demo.get(f"/quotas/{project}/default").json() == {"quota": DEFAULTS}
    assert api.demo.get("/quotas/tenant").json() == {"tenant": {"tenant_id": project}}
    assert api.demo.get("/quotas/project").json() == {"project": {"project_id": project}}


def test_admin_sets_and_resets(api: Api) -> None:
    project = api.demo.project_id
    response = api.admin.put(f"/quotas/{project}", json={"quota": {"network": 5, "router": -1}})
    assert response.status_code == 200, response.text
    assert response.json()["quota"] == {**DEFAULTS, "network": 5, "router": -1}
    assert api.demo.get(f"/quotas/{project}").json()["quota"]["network"] == 5
    listed = api.admin.get("/quotas").json()["quotas"]
    assert listed == [
        {"project_id": project, "tenant_id": project, **DEFAULTS, "network": 5, "router": -1}
    ]
    assert api.admin.delete(f"/quotas/{project}").status_code == 204
    assert api.demo.get(f"/quotas/{project}").json()["quota"] == DEFAULTS
    assert api.admin.get("/quotas").json()["quotas"] == []


def test_a_limit_set_to_the_default_is_kept_and_listed(api: Api) -> None:
    project = api.demo.project_id
    response = api.admin.put(f"/quotas/{project}", json={"quota": {"network": 100}})
    assert response.status_code == 200, response.text
    listed = api.admin.get("/quotas").json()["quotas"]
    assert listed == [{"project_id": project, "tenant_id": project, **DEFAULTS}]


def test_members_cannot_set_or_peek(api: Api) -> None:
    project = api.demo.project_id
    error(
        api.demo.put(f"/quotas/{project}", json={"quota": {"network": 1000}}),
        403,
        "PolicyNotAuthorized",
    )
    error(api.demo.delete(f"/quotas/{project}"), 403, "PolicyNotAuthorized")
    error(api.demo.get("/quotas"), 403, "PolicyNotAuthorized")
    error(api.demo2.get(f"/quotas/{project}"), 403, "PolicyNotAuthorized")
    error(api.demo2.get(f"/quotas/{project}/details"), 403, "PolicyNotAuthorized")
    assert api.admin.get(f"/quotas/{project}").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"quota": {"network": -2}},
        {"quota": {"network": "many"}},
        {"quota": {"widgets": 3}},
        {"network": 3},
    ],
)
def test_invalid_updates(api: Api, body: dict) -> None:
    response = api.admin.put(f"/quotas/{api.demo.project_id}", json=body)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    ("given", "limit"), [(True, 1), (5.0, 5), (6.7, 6), ("7", 7), (" 8 ", 8), (-1.0, -1)]
)
def test_limits_are_converted_as_neutron_converts_them(api: Api, given: object, limit: int) -> None:
    """Neutron's quota attributes take whatever Python's int() takes."""
    project = api.demo.project_id
    response = api.admin.put(f"/quotas/{project}", json={"quota": {"network": given}})
    assert response.status_code == 200, response.text
    assert response.json()["quota"]["network"] == limit
    assert api.admin.get(f"/quotas/{project}").json()["quota"]["network"] == limit


@pytest.mark.parametrize("given", ["5.0", [5], {"n": 5}, None, ""])
def test_limits_int_does_not_take_are_refused(api: Api, given: object) -> None:
    project = api.demo.project_id
    response = api.admin.put(f"/quotas/{project}", json={"quota": {"network": given}})
    message = f"Invalid input for operation: '{given}' is not an integer."
    assert error(response, 400, "InvalidInput") == message
    assert api.admin.get(f"/quotas/{project}").json()["quota"]["network"] == 100


@pytest.mark.parametrize(
    ("limit", "kind", "message"),
    [
        (
            2**31,
            "HTTPBadRequest",
            (
                "Invalid input for network. Reason: '2147483648' is too large - must be no "
                "larger than '2147483647'."
            ),
        ),
        (
            -2,
            "HTTPBadRequest",
            "Invalid input for network. Reason: '-2' is too small - must be at least '-1'.",
        ),
        ("many", "InvalidInput", "Invalid input for operation: 'many' is not an integer."),
    ],
)
def test_limits_out_of_range_are_refused_as_neutron_does(
    api: Api, limit: object, kind: str, message: str
) -> None:
    """Neutron stores a limit in a 32-bit integer: its API takes -1 through 2**31 - 1."""
    project = api.demo.project_id
    response = api.admin.put(f"/quotas/{project}", json={"quota": {"network": limit}})
    assert error(response, 400, kind) == message
    highest = api.admin.put(f"/quotas/{project}", json={"quota": {"network": 2**31 - 1}})
    assert highest.status_code == 200 and highest.json()["quota"]["network"] == 2**31 - 1


def test_details_count_usage(api: Api) -> None:
    net = api.demo.create("networks", name="n")
    api.demo.create("subnets", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
    api.demo.create("routers", name="r")
    details = api.demo.get(f"/quotas/{api.demo.project_id}/details").json()["quota"]
    assert details["network"] == {"limit": 100, "used": 1, "reserved": 0}
    assert details["router"]["used"] == 1 and details["subnet"]["used"] == 1
    assert set(details) == set(DEFAULTS)


@pytest.mark.parametrize(
    ("resource", "collection", "body"),
    [
        ("network", "networks", lambda ctx: {"name": "n"}),
        ("router", "routers", lambda ctx: {"name": "r"}),
        ("security_group", "security-groups", lambda ctx: {"name": "g"}),
        ("floatingip", "floatingips", lambda ctx: {"floating_network_id": ctx["ext_net"]}),
    ],
)
def test_concurrent_creates_never_overshoot(api: Api, resource: str, collection: str, body) -> None:  # type: ignore[no-untyped-def]
    ctx = {"ext_net": external_network(api)[0]["id"]}
    limit = 4 if resource != "security_group" else 5  # the default group takes one
    api.admin.put(f"/quotas/{api.demo.project_id}", json={"quota": {resource: limit}})
    member = collection.rstrip("s").replace("-", "_")

    def attempt(_: int) -> int:
        return api.demo.post(f"/{collection}", json={member: body(ctx)}).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(attempt, range(16)))
    created = codes.count(201)
    assert created == limit - (1 if resource == "security_group" else 0)
    assert codes.count(409) == 16 - created and set(codes) == {201, 409}
    used = api.demo.get(f"/quotas/{api.demo.project_id}/details").json()["quota"][resource]["used"]
    assert used == limit


def test_a_limit_below_usage_is_refused_unless_forced(api: Api) -> None:
    project = api.demo.project_id
    api.demo.create("routers", name="r1")
    api.demo.create("routers", name="r2")
    message = "Quota limit 1 for router must be greater than or equal to already used 2"
    # The check is the default; check_limit, which asked for it, still does no harm.
    for quota in ({"router": 1}, {"router": 1, "check_limit": True}, {"router": 1, "force": 1}):
        below = api.admin.put(f"/quotas/{project}", json={"quota": quota})
        assert error(below, 400, "HTTPBadRequest") == message
    assert api.admin.get(f"/quotas/{project}").json()["quota"]["router"] == 10
    # Unlimited and the current usage are never below it.
    for limit in (-1, 2):
        assert (
            api.admin.put(f"/quotas/{project}", json={"quota": {"router": limit}}).json()["quota"][
                "router"
            ]
            == limit
        )
    forced = api.admin.put(f"/quotas/{project}", json={"quota": {"router": 0, "force": True}})
    assert forced.status_code == 200 and forced.json()["quota"]["router"] == 0
    error(api.demo.post("/routers", json={"router": {"name": "r3"}}), 409, "OverQuota")


@pytest.mark.in_process  # the defaults are the application's settings
class TestConfiguredDefaults:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return dataclasses.replace(settings, default_quotas={"router": 2, "network": -1})

    def test_shown_and_enforced(self, api: Api) -> None:
        project = api.demo.project_id
        configured = {"quota": {**DEFAULTS, "router": 2, "network": -1}}
        assert api.demo.get(f"/quotas/{project}").json() == configured
        assert api.demo.get(f"/quotas/{project}/default").json() == configured
        api.demo.create("routers", name="r1")
        api.demo.create("routers", name="r2")
        refused = api.demo.post("/routers", json={"router": {"name": "r3"}})
        assert refused.json() == {
            "NeutronError": {
                "type": "OverQuota",
                "message": "Quota exceeded for resources: ['router'].",
                "detail": "",
            }
        }
        assert refused.status_code == 409
