"""Flavors, service profiles and routers made with a flavor, as Neutron answers them."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, ApiClient
from tests.conftest import expect_error as error

Body = dict[str, Any]
L3_DRIVERS = "neutron.services.l3_router.service_providers."
SINGLE_NODE = L3_DRIVERS + "single_node.SingleNodeDriver"
DVR = L3_DRIVERS + "dvr.DvrDriver"
MISSING = "0b5a0a6e-94c3-4b63-9b4f-62e6a8b1f2a1"
HIDDEN = "The resource could not be found."


def bind(client: ApiClient, flavor: Body, profile: Body) -> Any:
    body = {"service_profile": {"id": profile["id"]}}
    return client.post(f"/flavors/{flavor['id']}/service_profiles", json=body)


def router_flavor(api: Api, driver: str = SINGLE_NODE, **flavor: Any) -> Body:
    """An L3 flavor bound to one profile of `driver`."""
    made = api.admin.create("flavors", service_type="L3_ROUTER_NAT", **flavor)
    profile = api.admin.create("service_profiles", driver=driver)
    assert bind(api.admin, made, profile).status_code == 201
    return made


def test_flavor_create_show_list_update_delete(api: Api) -> None:
    flavor = api.admin.create("flavors", name="gold", service_type="FLAVORS", description="d")
    assert flavor == {
        "id": flavor["id"],
        "name": "gold",
        "description": "d",
        "service_type": "FLAVORS",
        "enabled": True,
        "service_profiles": [],
    }
    for caller in (api.admin, api.demo):
        assert caller.get(f"/flavors/{flavor['id']}").json() == {"flavor": flavor}
        assert caller.get("/flavors").json() == {"flavors": [flavor]}
    silver = api.admin.create("flavors", name="silver", service_type="L3_ROUTER_NAT")
    names = api.demo.get("/flavors", params={"sort_key": "name", "sort_dir": "desc"}).json()
    assert [f["name"] for f in names["flavors"]] == ["silver", "gold"]
    assert api.demo.get("/flavors", params={"id": "33"}).json() == {"flavors": []}

    changed = api.admin.put(
        f"/flavors/{flavor['id']}", json={"flavor": {"enabled": False, "name": "bronze"}}
    )
    assert changed.json()["flavor"] == {**flavor, "enabled": False, "name": "bronze"}
    enabled = api.demo.get("/flavors", params={"enabled": "true"}).json()["flavors"]
    assert [f["id"] for f in enabled] == [silver["id"]]
    refused = api.admin.put(f"/flavors/{flavor['id']}", json={"flavor": {"service_type": "QOS"}})
    assert error(refused, 400, "BadRequest")

    assert api.admin.delete(f"/flavors/{flavor['id']}").status_code == 204
    gone = api.admin.get(f"/flavors/{flavor['id']}")
    assert error(gone, 404, "FlavorNotFound") == f"Flavor {flavor['id']} could not be found."
    assert error(api.admin.delete(f"/flavors/{flavor['id']}"), 404, "FlavorNotFound")


def test_a_flavor_is_of_a_service_type_that_is_here(api: Api) -> None:
    refused = api.admin.post("/flavors", json={"flavor": {"service_type": "FIREWALL"}})
    assert error(refused, 400, "InvalidServiceType") == "Invalid service type: FIREWALL."
    refused = api.admin.post("/flavors", json={"flavor": {"name": "x"}})
    assert error(refused, 400, "BadRequest") == (
        "Bad flavor request: Failed to parse request. "
        "Required attribute 'service_type' not specified."
    )
    assert api.admin.get("/flavors").json() == {"flavors": []}


def test_service_profile_create_show_list_update_delete(api: Api) -> None:
    profile = api.admin.create("service_profiles", metainfo='{"data": "value"}', description="p")
    assert profile == {
        "id": profile["id"],
        "description": "p",
        "driver": "",
        "enabled": True,
        "metainfo": '{"data": "value"}',
    }
    assert api.admin.get(f"/service_profiles/{profile['id']}").json() == {
        "service_profile": profile
    }
    l3 = api.admin.create("service_profiles", driver=SINGLE_NODE)
    assert l3["driver"] == SINGLE_NODE and l3["metainfo"] == ""
    listed = api.admin.get("/service_profiles", params={"driver": SINGLE_NODE}).json()
    assert listed == {"service_profiles": [l3]}

    changed = api.admin.put(
        f"/service_profiles/{profile['id']}", json={"service_profile": {"enabled": False}}
    )
    assert changed.json() == {"service_profile": {**profile, "enabled": False}}
    assert api.admin.delete(f"/service_profiles/{profile['id']}").status_code == 204
    gone = api.admin.get(f"/service_profiles/{profile['id']}")
    assert error(gone, 404, "ServiceProfileNotFound") == (
        f"Service Profile {profile['id']} could not be found."
    )


def test_a_service_profile_names_a_provider_here_or_carries_metainfo(api: Api) -> None:
    empty = api.admin.post("/service_profiles", json={"service_profile": {"description": "x"}})
    assert error(empty, 400, "ServiceProfileEmpty") == (
        "Service Profile needs either a driver or metainfo."
    )
    unknown = "neutron.services.vpn.device_drivers.ipsec.OpenSwanDriver"
    refused = api.admin.post("/service_profiles", json={"service_profile": {"driver": unknown}})
    assert error(refused, 404, "ServiceProfileDriverNotFound") == (
        f"Service Profile driver {unknown} could not be found."
    )
    profile = api.admin.create("service_profiles", driver=DVR)
    change = {"service_profile": {"driver": unknown}}
    refused = api.admin.put(f"/service_profiles/{profile['id']}", json=change)
    assert error(refused, 404, "ServiceProfileDriverNotFound")
    assert api.admin.get("/service_profiles").json() == {"service_profiles": [profile]}


def test_binding_profiles_to_a_flavor(api: Api) -> None:
    flavor = api.admin.create("flavors", service_type="L3_ROUTER_NAT")
    first, second = (api.admin.create("service_profiles", driver=SINGLE_NODE) for _ in "ab")
    bound = bind(api.admin, flavor, first)
    assert bound.status_code == 201
    assert bound.json() == {"service_profile": {"id": first["id"]}}
    assert bind(api.admin, flavor, second).status_code == 201
    shown = api.demo.get(f"/flavors/{flavor['id']}").json()["flavor"]
    assert shown["service_profiles"] == sorted([first["id"], second["id"]])

    assert error(bind(api.admin, flavor, first), 409, "FlavorServiceProfileBindingExists") == (
        f"Service Profile {first['id']} is already associated with flavor {flavor['id']}."
    )
    in_use = f"Service Profile {first['id']} is used by some service instance."
    change = {"service_profile": {"description": "x"}}
    refused = api.admin.put(f"/service_profiles/{first['id']}", json=change)
    assert error(refused, 409, "ServiceProfileInUse") == in_use
    refused = api.admin.delete(f"/service_profiles/{first['id']}")
    assert error(refused, 409, "ServiceProfileInUse") == in_use

    missing = bind(api.admin, {"id": MISSING}, first)
    assert error(missing, 404, "FlavorNotFound") == f"Flavor {MISSING} could not be found."
    missing = bind(api.admin, flavor, {"id": MISSING})
    assert error(missing, 404, "ServiceProfileNotFound")
    malformed = api.admin.post(
        f"/flavors/{flavor['id']}/service_profiles", json={"service_profile": {"id": "x"}}
    )
    assert error(malformed, 400, "InvalidInput")

    path = f"/flavors/{flavor['id']}/service_profiles/{first['id']}"
    assert api.admin.delete(path).status_code == 204
    assert error(api.admin.delete(path), 404, "FlavorServiceProfileBindingNotFound") == (
        f"Service Profile {first['id']} is not associated with flavor {flavor['id']}."
    )
    assert api.admin.delete(f"/service_profiles/{first['id']}").status_code == 204
    # A flavor takes its bindings with it.
    assert api.admin.delete(f"/flavors/{flavor['id']}").status_code == 204
    assert api.admin.delete(f"/service_profiles/{second['id']}").status_code == 204


def test_only_administrators_write_and_see_profiles(api: Api) -> None:
    flavor = api.admin.create("flavors", service_type="L3_ROUTER_NAT")
    profile = api.admin.create("service_profiles", driver=SINGLE_NODE)

    def refused(response: Any, action: str) -> None:
        assert (
            error(response, 403, "PolicyNotAuthorized") == f"rule:{action} is disallowed by policy"
        )

    new = {"flavor": {"service_type": "L3_ROUTER_NAT"}}
    refused(api.demo.post("/flavors", json=new), "create_flavor")
    rename = {"flavor": {"name": "mine"}}
    refused(api.demo.put(f"/flavors/{flavor['id']}", json=rename), "update_flavor")
    refused(api.demo.delete(f"/flavors/{flavor['id']}"), "delete_flavor")
    assert error(api.demo.put(f"/flavors/{MISSING}", json=rename), 404, "FlavorNotFound")
    new_profile = {"service_profile": {"driver": SINGLE_NODE}}
    refused(api.demo.post("/service_profiles", json=new_profile), "create_service_profile")
    refused(bind(api.demo, flavor, profile), "create_flavor_service_profile")

    # Profiles are the administrators' alone: to others they answer as if not there.
    assert api.demo.get("/service_profiles").json() == {"service_profiles": []}
    path = f"/service_profiles/{profile['id']}"
    assert error(api.demo.get(path), 404, "HTTPNotFound") == HIDDEN
    change = {"service_profile": {"enabled": False}}
    assert error(api.demo.put(path, json=change), 404, "HTTPNotFound") == HIDDEN
    assert error(api.demo.delete(path), 404, "HTTPNotFound") == HIDDEN
    assert bind(api.admin, flavor, profile).status_code == 201
    binding = f"/flavors/{flavor['id']}/service_profiles/{profile['id']}"
    assert error(api.demo.delete(binding), 404, "HTTPNotFound") == HIDDEN

    assert api.admin.get(path).json()["service_profile"] == profile
    assert api.admin.get(f"/flavors/{flavor['id']}").json()["flavor"] == {
        **flavor,
        "service_profiles": [profile["id"]],
    }


def test_a_router_made_with_a_flavor(api: Api) -> None:
    flavor = router_flavor(api, name="economy")
    plain = api.demo.create("routers", name="plain")
    assert plain["flavor_id"] is None
    router = api.demo.create("routers", name="r", flavor_id=flavor["id"])
    assert router["flavor_id"] == flavor["id"]
    assert api.demo.get(f"/routers/{router['id']}").json()["router"]["flavor_id"] == flavor["id"]
    sorted_ids = api.demo.get("/routers", params={"sort_key": "flavor_id"}).json()["routers"]
    assert {r["id"] for r in sorted_ids} == {plain["id"], router["id"]}

    change = {"router": {"flavor_id": None}}
    refused = api.demo.put(f"/routers/{router['id']}", json=change)
    assert error(refused, 400, "BadRequest")
    # A single-node flavor's routers are neither distributed nor HA.
    flags = {"router": {"name": "x", "flavor_id": flavor["id"], "distributed": True}}
    refused = api.admin.post("/routers", json=flags)
    assert error(refused, 400, "InvalidInput") == (
        "Invalid input for operation: Provider single_node does not support distributed=True."
    )
    change = {"router": {"ha": True, "admin_state_up": False}}
    refused = api.admin.put(f"/routers/{router['id']}", json=change)
    assert error(refused, 400, "InvalidInput") == (
        "Invalid input for operation: Changing the 'ha' and 'distributed' attributes on a "
        "router associated with a flavor is not supported."
    )

    in_use = api.admin.delete(f"/flavors/{flavor['id']}")
    assert error(in_use, 409, "FlavorInUse") == (
        f"Flavor {flavor['id']} is used by some service instance."
    )
    assert api.demo.delete(f"/routers/{router['id']}").status_code == 204
    assert api.admin.delete(f"/flavors/{flavor['id']}").status_code == 204


def test_a_distributed_flavor_takes_distributed_routers(api: Api) -> None:
    flavor = router_flavor(api, DVR)
    router = api.admin.create("routers", name="r", flavor_id=flavor["id"], distributed=True)
    assert (router["flavor_id"], router["distributed"]) == (flavor["id"], True)
    refused = api.admin.post(
        "/routers", json={"router": {"flavor_id": flavor["id"], "distributed": False}}
    )
    assert error(refused, 400, "InvalidInput") == (
        "Invalid input for operation: Provider dvr does not support distributed=False."
    )


def test_a_router_refuses_a_flavor_it_cannot_use(api: Api) -> None:
    def refused(flavor_id: str, status: int, kind: str) -> str:
        body = {"router": {"name": "r", "flavor_id": flavor_id}}
        return error(api.demo.post("/routers", json=body), status, kind)

    disabled = router_flavor(api, enabled=False)
    assert refused(disabled["id"], 503, "FlavorDisabled") == "Flavor is not enabled."
    other = api.admin.create("flavors", service_type="FLAVORS")
    assert refused(other["id"], 400, "InvalidFlavorServiceType") == (
        "Invalid service type FLAVORS."
    )
    assert refused(MISSING, 404, "FlavorNotFound") == f"Flavor {MISSING} could not be found."
    unbound = api.admin.create("flavors", service_type="L3_ROUTER_NAT")
    assert refused(unbound["id"], 404, "FlavorServiceProfileBindingNotFound") == (
        f"Service Profile  is not associated with flavor {unbound['id']}."
    )
    off = api.admin.create("flavors", service_type="L3_ROUTER_NAT")
    profile = api.admin.create("service_profiles", driver=SINGLE_NODE, enabled=False)
    assert bind(api.admin, off, profile).status_code == 201
    assert refused(off["id"], 503, "ServiceProfileDisabled") == "Service Profile is not enabled."
    metainfo_only = api.admin.create("flavors", service_type="L3_ROUTER_NAT")
    profile = api.admin.create("service_profiles", metainfo="{}")
    assert bind(api.admin, metainfo_only, profile).status_code == 201
    assert refused(metainfo_only["id"], 404, "ServiceProfileDriverNotFound") == (
        "Service Profile driver  could not be found."
    )
    assert api.demo.get("/routers").json() == {"routers": []}
