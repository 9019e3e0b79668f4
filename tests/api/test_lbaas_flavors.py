"""Octavia's flavors, availability zones and their profiles in-process, on both databases: what
administrators write, what members read, what load balancers take from them."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from tests.api.test_agents import heartbeat
from tests.api.test_loadbalancers import created, expect_fault, octavia, realize
from tests.conftest import Api, ApiClient, add_member_project, login

DENIED = "Policy does not allow this request to be performed."
SINGLE = json.dumps({"loadbalancer_topology": "SINGLE"})


def flavor_profile(api: Api, data: str = SINGLE, **extra: Any) -> dict[str, Any]:
    body = {"name": "fp", "provider_name": "amphora", "flavor_data": data, **extra}
    return created(
        octavia(api.admin).post("/flavorprofiles", json={"flavorprofile": body}), "flavorprofile"
    )


def flavor(api: Api, profile_id: str, **extra: Any) -> dict[str, Any]:
    body = {"name": "small", "flavor_profile_id": profile_id, **extra}
    return created(octavia(api.admin).post("/flavors", json={"flavor": body}), "flavor")


def zone_profile(api: Api, data: dict[str, Any]) -> dict[str, Any]:
    body = {"name": "azp", "provider_name": "amphora", "availability_zone_data": json.dumps(data)}
    return created(
        octavia(api.admin).post(
            "/availabilityzoneprofiles", json={"availability_zone_profile": body}
        ),
        "availability_zone_profile",
    )


def zone(api: Api, name: str, profile_id: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "availability_zone_profile_id": profile_id, **extra}
    return created(
        octavia(api.admin).post("/availabilityzones", json={"availability_zone": body}),
        "availability_zone",
    )


def subnet_of(api: Api, cidr: str = "10.30.0.0/24") -> dict[str, Any]:
    net = api.demo.create("networks", name="lb-net")
    return api.demo.create("subnets", network_id=net["id"], cidr=cidr, ip_version=4)


def create_lb(client: ApiClient, subnet: dict[str, Any], **extra: Any) -> Any:
    return octavia(client).post(
        "/loadbalancers", json={"loadbalancer": {"vip_subnet_id": subnet["id"], **extra}}
    )


def test_flavor_profiles_are_administrators_own(api: Api) -> None:
    admin, demo = octavia(api.admin), octavia(api.demo)
    profile = flavor_profile(api)
    assert profile == {
        "id": profile["id"],
        "name": "fp",
        "provider_name": "amphora",
        "flavor_data": SINGLE,
    }
    assert admin.get("/flavorprofiles").json() == {
        "flavorprofiles": [profile],
        "flavorprofile_links": [],
    }
    v20 = api.admin.http.get(
        f"/load-balancer/v2.0/lbaas/flavorprofiles/{profile['id']}",
        headers={"X-Auth-Token": api.admin.token},
    )
    assert v20.json() == {"flavorprofile": profile}
    for refused in (
        demo.get("/flavorprofiles"),
        demo.get(f"/flavorprofiles/{profile['id']}"),
        demo.post(
            "/flavorprofiles",
            json={
                "flavorprofile": {"name": "x", "provider_name": "amphora", "flavor_data": SINGLE}
            },
        ),
        demo.put(f"/flavorprofiles/{profile['id']}", json={"flavorprofile": {"name": "x"}}),
        demo.delete(f"/flavorprofiles/{profile['id']}"),
    ):
        assert expect_fault(refused, 403) == DENIED
    limited = json.dumps({"default_connection_limit": 500})
    updated = admin.put(
        f"/flavorprofiles/{profile['id']}",
        json={"flavorprofile": {"name": "fp2", "flavor_data": limited}},
    )
    assert updated.json()["flavorprofile"] == {**profile, "name": "fp2", "flavor_data": limited}
    assert admin.delete(f"/flavorprofiles/{profile['id']}").status_code == 204
    gone = admin.get(f"/flavorprofiles/{profile['id']}")
    assert expect_fault(gone, 404) == f"Flavor Profile {profile['id']} not found."
    missing = admin.delete(f"/flavorprofiles/{profile['id']}")
    assert expect_fault(missing, 404) == f"Flavor profile {profile['id']} not found."


def test_flavor_data_the_provider_cannot_honour_is_refused_as_octavia_refuses_it(api: Api) -> None:
    admin = octavia(api.admin)

    def refused(data: str, provider: str = "amphora") -> tuple[int, str]:
        body = {"name": "fp", "provider_name": provider, "flavor_data": data}
        response = admin.post("/flavorprofiles", json={"flavorprofile": body})
        return response.status_code, expect_fault(response, response.status_code)

    unsupported = "Provider 'amphora' does not support a requested option: "
    assert refused(json.dumps({"compute_flavor": "m1.amphora"})) == (
        400,
        unsupported + "Additional properties are not allowed ('compute_flavor' was unexpected)",
    )
    assert refused(json.dumps({"loadbalancer_topology": "ACTIVE_ACTIVE"})) == (
        400,
        unsupported
        + "loadbalancer_topology 'ACTIVE_ACTIVE' is not one of ['ACTIVE_STANDBY', 'SINGLE']",
    )
    assert refused(json.dumps({"default_connection_limit": 9000})) == (
        400,
        unsupported + "default_connection_limit 9000 is greater than the maximum of 8000",
    )
    assert refused(json.dumps({"default_connection_limit": "many"})) == (
        400,
        unsupported + "default_connection_limit 'many' is not of type 'integer'",
    )
    assert refused("[]") == (400, unsupported + "[] is not of type 'object'")
    assert refused("{nope") == (400, "{nope is not a valid option for flavor_data")
    assert refused(SINGLE, provider="noop") == (400, "Provider 'noop' is not enabled.")
    missing = admin.post("/flavorprofiles", json={"flavorprofile": {"name": "fp"}})
    assert expect_fault(missing, 400) == (
        "Invalid input for field/attribute provider_name. Value: 'None'. Mandatory field missing."
    )
    assert admin.get("/flavorprofiles").json()["flavorprofiles"] == []
    profile = flavor_profile(api)
    emptied = admin.put(f"/flavorprofiles/{profile['id']}", json={"flavorprofile": {"name": None}})
    assert expect_fault(emptied, 400) == "None is not a valid option for name"
    wrong = admin.put(
        f"/flavorprofiles/{profile['id']}",
        json={"flavorprofile": {"flavor_data": json.dumps({"sriov_vip": True})}},
    )
    assert expect_fault(wrong, 400) == (
        unsupported + "Additional properties are not allowed ('sriov_vip' was unexpected)"
    )
    assert admin.get(f"/flavorprofiles/{profile['id']}").json()["flavorprofile"] == profile


def test_flavors_are_read_by_members_written_by_administrators(api: Api) -> None:
    admin, demo = octavia(api.admin), octavia(api.demo)
    profile = flavor_profile(api)
    small = flavor(api, profile["id"], description="one haproxy")
    assert small == {
        "id": small["id"],
        "name": "small",
        "description": "one haproxy",
        "enabled": True,
        "flavor_profile_id": profile["id"],
    }
    assert demo.get("/flavors").json() == {"flavors": [small], "flavors_links": []}
    assert demo.get(f"/flavors/{small['id']}").json() == {"flavor": small}
    assert demo.get("/flavors", params={"name": "other"}).json()["flavors"] == []
    for refused in (
        demo.post("/flavors", json={"flavor": {"name": "x", "flavor_profile_id": profile["id"]}}),
        demo.put(f"/flavors/{small['id']}", json={"flavor": {"enabled": False}}),
        demo.delete(f"/flavors/{small['id']}"),
    ):
        assert expect_fault(refused, 403) == DENIED
    twin = admin.post(
        "/flavors", json={"flavor": {"name": "small", "flavor_profile_id": profile["id"]}}
    )
    assert expect_fault(twin, 409) == "A flavor of small already exists."
    unknown = "0b8b5f2c-8c1c-4b5e-9d8f-3a4b5c6d7e8f"
    orphan = admin.post("/flavors", json={"flavor": {"name": "x", "flavor_profile_id": unknown}})
    assert expect_fault(orphan, 400) == f"Flavor Profile {unknown} not found."
    moved = admin.put(f"/flavors/{small['id']}", json={"flavor": {"flavor_profile_id": unknown}})
    assert expect_fault(moved, 400).startswith(
        "Invalid input for field/attribute flavor_profile_id"
    )
    renamed = admin.put(
        f"/flavors/{small['id']}", json={"flavor": {"name": "tiny", "enabled": False}}
    )
    assert renamed.json()["flavor"] == {**small, "name": "tiny", "enabled": False}
    # A profile that a flavor uses keeps its provider and data, and stays.
    in_use = f"Flavor profile {profile['id']} is in use and cannot be modified."
    assert expect_fault(admin.delete(f"/flavorprofiles/{profile['id']}"), 409) == in_use
    changed = admin.put(
        f"/flavorprofiles/{profile['id']}", json={"flavorprofile": {"flavor_data": "{}"}}
    )
    assert expect_fault(changed, 409) == in_use
    assert (
        admin.put(
            f"/flavorprofiles/{profile['id']}", json={"flavorprofile": {"name": "kept"}}
        ).status_code
        == 200
    )
    assert admin.delete(f"/flavors/{small['id']}").status_code == 204
    assert (
        expect_fault(demo.get(f"/flavors/{small['id']}"), 404) == f"Flavor {small['id']} not found."
    )
    assert admin.delete(f"/flavorprofiles/{profile['id']}").status_code == 204


def test_only_observers_members_and_admins_read_flavors_and_zones(
    api: Api, http: TestClient
) -> None:
    """Octavia's load-balancer:read: a role that is none of its own or Keystone's is refused."""
    small = flavor(api, flavor_profile(api)["id"])
    response = api.admin.http.post(
        "/identity/v3/roles",
        headers={"X-Auth-Token": api.admin.token},
        json={"role": {"name": "auditor"}},
    )
    assert response.status_code == 201, response.text
    reader = octavia(login(http, *add_member_project(api.admin, "ro", role="reader"), "ro"))
    outsider = octavia(
        login(http, *add_member_project(api.admin, "auditor", role="auditor"), "auditor")
    )
    assert reader.get("/flavors").json()["flavors"] == [small]
    assert reader.get("/availabilityzones").status_code == 200
    for refused in (
        outsider.get("/flavors"),
        outsider.get(f"/flavors/{small['id']}"),
        outsider.get("/availabilityzones"),
    ):
        assert expect_fault(refused, 403) == DENIED


def test_a_load_balancer_takes_its_flavor(api: Api) -> None:
    admin, demo = octavia(api.admin), octavia(api.demo)
    subnet = subnet_of(api)
    limited = flavor_profile(api, json.dumps({"default_connection_limit": 300}))
    small = flavor(api, limited["id"])
    lb = created(create_lb(api.demo, subnet, name="web", flavor_id=small["id"]), "loadbalancer")
    assert (lb["flavor_id"], lb["provider"]) == (small["id"], "amphora")
    assert demo.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"]["flavor_id"] == small["id"]
    snapshot = api.admin.http.get(
        "/internal/v1/snapshot", headers={"X-Auth-Token": api.admin.token}
    ).json()
    [tree] = [item for item in snapshot["loadbalancers"] if item["id"] == lb["id"]]
    assert tree["flavor_data"] == {"default_connection_limit": 300}
    unknown = "0b8b5f2c-8c1c-4b5e-9d8f-3a4b5c6d7e8f"
    assert (
        expect_fault(create_lb(api.demo, subnet, flavor_id=unknown), 400)
        == "Validation failure: Invalid flavor_id."
    )
    mismatch = create_lb(api.demo, subnet, flavor_id=small["id"], provider="octavia")
    assert expect_fault(mismatch, 400) == (
        f"Flavor '{small['id']}' is not compatible with provider 'octavia'"
    )
    admin.put(f"/flavors/{small['id']}", json={"flavor": {"enabled": False}})
    assert expect_fault(create_lb(api.demo, subnet, flavor_id=small["id"]), 400) == (
        f"The selected flavor is not allowed in this deployment: {small['id']}"
    )
    assert len(demo.get("/loadbalancers").json()["loadbalancers"]) == 1
    refused = demo.put(f"/loadbalancers/{lb['id']}", json={"loadbalancer": {"flavor_id": None}})
    assert "It cannot be updated" in expect_fault(refused, 400)
    in_use = admin.delete(f"/flavors/{small['id']}")
    assert expect_fault(in_use, 409) == f"Flavor {small['id']} is in use and cannot be modified."
    realize(api)
    assert demo.delete(f"/loadbalancers/{lb['id']}").status_code == 204
    realize(api)
    assert demo.get("/loadbalancers").json()["loadbalancers"] == []
    assert admin.delete(f"/flavors/{small['id']}").status_code == 204


def test_availability_zones_and_their_profiles(api: Api) -> None:
    admin, demo = octavia(api.admin), octavia(api.demo)
    refused = admin.post(
        "/availabilityzoneprofiles",
        json={
            "availability_zone_profile": {
                "name": "azp",
                "provider_name": "amphora",
                "availability_zone_data": json.dumps({"compute_zone": "az1", "volume_zone": "v"}),
            }
        },
    )
    assert expect_fault(refused, 400) == (
        "Provider 'amphora' does not support a requested option: "
        "Additional properties are not allowed ('volume_zone' was unexpected)"
    )
    data = json.dumps({"compute_zone": "az1"})
    profile = zone_profile(api, {"compute_zone": "az1"})
    assert profile == {
        "id": profile["id"],
        "name": "azp",
        "provider_name": "amphora",
        "availability_zone_data": data,
    }
    assert admin.get("/availabilityzoneprofiles").json() == {
        "availability_zone_profiles": [profile],
        "availability_zone_profile_links": [],
    }
    assert expect_fault(demo.get("/availabilityzoneprofiles"), 403) == DENIED
    east = zone(api, "east", profile["id"], description="rack 1")
    assert east == {
        "name": "east",
        "description": "rack 1",
        "enabled": True,
        "availability_zone_profile_id": profile["id"],
    }
    assert demo.get("/availabilityzones").json() == {
        "availability_zones": [east],
        "availability_zones_links": [],
    }
    assert demo.get("/availabilityzones/east").json() == {"availability_zone": east}
    assert expect_fault(demo.delete("/availabilityzones/east"), 403) == DENIED
    twin = admin.post(
        "/availabilityzones",
        json={"availability_zone": {"name": "east", "availability_zone_profile_id": profile["id"]}},
    )
    assert expect_fault(twin, 409) == "A availability zone of east already exists."
    renamed = admin.put("/availabilityzones/east", json={"availability_zone": {"name": "west"}})
    assert expect_fault(renamed, 400) == (
        "Invalid input for field/attribute name. Value: 'west'. Unknown attribute."
    )
    updated = admin.put(
        "/availabilityzones/east", json={"availability_zone": {"description": "rack 2"}}
    )
    assert updated.json()["availability_zone"] == {**east, "description": "rack 2"}
    in_use = f"Availability Zone Profile {profile['id']} is in use and cannot be modified."
    assert expect_fault(admin.delete(f"/availabilityzoneprofiles/{profile['id']}"), 409) == in_use
    assert admin.delete("/availabilityzones/east").status_code == 204
    assert (
        expect_fault(admin.get("/availabilityzones/east"), 404)
        == "Availability Zone east not found."
    )
    assert admin.delete(f"/availabilityzoneprofiles/{profile['id']}").status_code == 204


def test_a_load_balancer_runs_in_its_zone_on_networks_the_zone_allows(api: Api) -> None:
    admin, demo = octavia(api.admin), octavia(api.demo)
    heartbeat(api, "h1", zone="az1")
    heartbeat(api, "h2", zone="az2")
    subnet = subnet_of(api)
    zone(api, "east", zone_profile(api, {"compute_zone": "az2"})["id"])
    lb = created(create_lb(api.demo, subnet, availability_zone="east"), "loadbalancer")
    assert lb["availability_zone"] == "east"
    port = api.admin.get(f"/ports/{lb['vip_port_id']}").json()["port"]
    assert port["binding:host_id"] == "h2"
    # No live agent in its zone: the first agent of that zone to report takes it.
    zone(api, "north", zone_profile(api, {"compute_zone": "az3"})["id"])
    waiting = created(create_lb(api.demo, subnet, availability_zone="north"), "loadbalancer")
    assert api.admin.get(f"/ports/{waiting['vip_port_id']}").json()["port"]["binding:host_id"] == ""
    realize(api, host="h1")
    assert (
        demo.get(f"/loadbalancers/{waiting['id']}").json()["loadbalancer"]["provisioning_status"]
        == "PENDING_CREATE"
    )
    heartbeat(api, "h3", zone="az3")
    realize(api, host="h3")
    assert (
        demo.get(f"/loadbalancers/{waiting['id']}").json()["loadbalancer"]["provisioning_status"]
        == "ACTIVE"
    )
    assert api.admin.get(f"/ports/{waiting['vip_port_id']}").json()["port"]["binding:host_id"] == (
        "h3"
    )
    other = subnet_of(api, "10.31.0.0/24")
    zone(api, "south", zone_profile(api, {"valid_vip_networks": [other["network_id"]]})["id"])
    assert created(create_lb(api.demo, other, availability_zone="south"), "loadbalancer")
    assert expect_fault(create_lb(api.demo, subnet, availability_zone="south"), 400) == (
        "Validation failure: Supplied VIP network_id is not allowed by the configuration of "
        "this deployment."
    )
    assert (
        expect_fault(create_lb(api.demo, subnet, availability_zone="nowhere"), 400)
        == "Validation failure: Invalid availability zone."
    )
    admin.put("/availabilityzones/east", json={"availability_zone": {"enabled": False}})
    assert expect_fault(create_lb(api.demo, subnet, availability_zone="east"), 400) == (
        "The selected availability_zone is not allowed in this deployment: east"
    )
    in_use = admin.delete("/availabilityzones/east")
    assert expect_fault(in_use, 409) == "Availability Zone east is in use and cannot be modified."
    assert len(demo.get("/loadbalancers").json()["loadbalancers"]) == 3
    first = demo.get("/availabilityzones", params={"limit": 1}).json()
    assert [z["name"] for z in first["availability_zones"]] == ["east"]
    assert "marker=east" in first["availability_zones_links"][0]["href"]
    rest = demo.get("/availabilityzones", params={"marker": "east"}).json()
    assert [z["name"] for z in rest["availability_zones"]] == ["north", "south"]


def test_provider_capabilities(api: Api) -> None:
    admin, demo = octavia(api.admin), octavia(api.demo)
    flavors = admin.get("/providers/amphora/flavor_capabilities").json()["flavor_capabilities"]
    assert [c["name"] for c in flavors] == ["loadbalancer_topology", "default_connection_limit"]
    named = admin.get(
        "/providers/amphora/flavor_capabilities", params={"name": "loadbalancer_topology"}
    ).json()
    assert named == {"flavor_capabilities": [flavors[0]]}
    assert flavors[0]["description"] == (
        "The load balancer topology. One of: SINGLE - One amphora per load balancer. "
        "ACTIVE_STANDBY - Two amphora per load balancer."
    )
    only_names = admin.get(
        "/providers/amphora/availability_zone_capabilities", params={"fields": "name"}
    ).json()
    assert only_names == {
        "availability_zone_capabilities": [{"name": "compute_zone"}, {"name": "valid_vip_networks"}]
    }
    assert expect_fault(demo.get("/providers/amphora/flavor_capabilities"), 403) == DENIED
    unknown = admin.get("/providers/noop/availability_zone_capabilities")
    assert expect_fault(unknown, 400) == "Provider 'noop' is not enabled."
