"""Networks: attributes, provider segments, visibility, errors."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.conftest import expect_error as error


def test_create_network_has_neutron_shape(api: Api) -> None:
    net = api.demo.create("networks", name="net1")
    assert net["name"] == "net1"
    assert (
        net["admin_state_up"] is True and net["shared"] is False and net["router:external"] is False
    )
    assert (
        net["status"] == "ACTIVE" and net["subnets"] == [] and net["port_security_enabled"] is True
    )
    assert net["mtu"] == 1450  # vxlan tenant network
    assert net["project_id"] == net["tenant_id"] == api.demo.project_id
    assert net["revision_number"] == 1 and net["tags"] == []
    assert net["created_at"].endswith("Z") and net["updated_at"].endswith("Z")
    assert "provider:network_type" not in net  # provider attributes are admin-only
    shown = api.admin.get(f"/networks/{net['id']}").json()["network"]
    assert shown["provider:network_type"] == "vxlan" and shown["provider:physical_network"] is None
    assert isinstance(shown["provider:segmentation_id"], int)


def test_a_create_answers_with_the_body_a_show_gives(api: Api) -> None:
    body = {"policy": {"name": "d", "project_id": api.demo.project_id, "is_default": True}}
    default = api.admin.post("/qos/policies", json=body).json()["policy"]
    created = [
        (api.demo, api.demo.create("networks", name="plain")),
        (api.demo, api.demo.create("networks", port_security_enabled=False, dns_domain="a.b.")),
        (api.admin, api.admin.create("networks", project_id=api.demo.project_id, mtu=1400)),
        (
            api.admin,
            api.admin.create(
                "networks",
                **{"provider:network_type": "vlan", "provider:physical_network": "default"},
            ),
        ),
        (api.admin, api.admin.create("networks", name="everyone's", shared=True)),
        (api.admin, api.admin.create("networks", name="out", **{"router:external": True})),
    ]
    assert created[0][1]["qos_policy_id"] == default["id"]
    assert created[4][1]["shared"] and created[5][1]["is_default"] is False
    for caller, network in created:
        assert caller.get(f"/networks/{network['id']}").json()["network"] == network


def test_flat_network_on_known_physnet_only_once(api: Api) -> None:
    flat = api.admin.create(
        "networks",
        name="flat_net",
        **{"provider:network_type": "flat", "provider:physical_network": "default"},
    )
    assert flat["provider:segmentation_id"] is None and flat["mtu"] == 1500
    again = api.admin.post(
        "/networks",
        json={"network": {"provider:network_type": "flat", "provider:physical_network": "default"}},
    )
    error(again, 409, "FlatNetworkInUse")
    unknown = api.admin.post(
        "/networks",
        json={"network": {"provider:network_type": "flat", "provider:physical_network": "nowhere"}},
    )
    assert "nowhere" in error(unknown, 400, "InvalidInput")


def test_vlan_ids_unique_per_physnet_and_in_range(api: Api) -> None:
    def vlan(vid: int, physnet: str = "default"):  # type: ignore[no-untyped-def]
        return api.admin.post(
            "/networks",
            json={
                "network": {
                    "provider:network_type": "vlan",
                    "provider:physical_network": physnet,
                    "provider:segmentation_id": vid,
                }
            },
        )

    assert vlan(100).status_code == 201
    error(vlan(100), 409, "VlanIdInUse")
    assert vlan(100, "physnet2").status_code == 201
    error(vlan(5000), 400, "InvalidInput")
    allocated = api.admin.create(
        "networks", **{"provider:network_type": "vlan", "provider:physical_network": "default"}
    )
    assert allocated["provider:segmentation_id"] == 101  # lowest free in 100-199


def test_member_cannot_set_provider_or_shared(api: Api) -> None:
    response = api.demo.post("/networks", json={"network": {"provider:network_type": "vxlan"}})
    error(response, 403, "PolicyNotAuthorized")
    error(
        api.demo.post("/networks", json={"network": {"shared": True}}), 403, "PolicyNotAuthorized"
    )


def test_visibility_private_shared_external(api: Api) -> None:
    private = api.admin.create("networks", name="private")
    shared = api.admin.create("networks", name="shared", shared=True)
    ext = api.admin.create("networks", name="ext", **{"router:external": True})
    error(api.demo.get(f"/networks/{private['id']}"), 404, "NetworkNotFound")
    names = {n["name"] for n in api.demo.get("/networks").json()["networks"]}
    assert names == {"shared", "ext"}
    assert api.demo.get(f"/networks/{shared['id']}").status_code == 200
    assert api.demo.delete(f"/networks/{shared['id']}").status_code in (403, 404)
    assert api.demo.put(f"/networks/{ext['id']}", json={"network": {"name": "x"}}).status_code in (
        403,
        404,
    )
    assert api.admin.get(f"/networks/{shared['id']}").json()["network"]["name"] == "shared"


def test_update_bumps_revision_and_if_match(api: Api) -> None:
    net = api.demo.create("networks", name="a")
    updated = api.demo.put(
        f"/networks/{net['id']}", json={"network": {"name": "b", "admin_state_up": False}}
    )
    assert updated.status_code == 200
    body = updated.json()["network"]
    assert body["name"] == "b" and body["admin_state_up"] is False and body["revision_number"] == 2
    stale = api.demo.put(
        f"/networks/{net['id']}",
        json={"network": {"name": "c"}},
        headers={"If-Match": "revision_number=1"},
    )
    error(stale, 412, "RevisionNumberConstraintFailed")
    fresh = api.demo.put(
        f"/networks/{net['id']}",
        json={"network": {"name": "c"}},
        headers={"If-Match": "revision_number=2"},
    )
    assert fresh.status_code == 200 and fresh.json()["network"]["revision_number"] == 3
    provider = api.admin.put(
        f"/networks/{net['id']}", json={"network": {"provider:segmentation_id": 7}}
    )
    error(provider, 400, "InvalidInput")


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"network": {"name": 5}}, "not a valid string"),
        ({"network": {"admin_state_up": "maybe"}}, "cannot be converted to boolean"),
        ({"network": {"colour": "red"}}, "Unrecognized attribute"),
        ({"net": {}}, "single key 'network'"),
        ({"network": {"id": "x"}}, "not allowed in POST"),
        ({"network": {"mtu": -1}}, "not in range"),
        (
            {"network": {"mtu": 1451}},
            "Requested MTU is too big, maximum is 1450",
        ),  # VXLAN's overhead
    ],
)
def test_bad_input_is_400_and_changes_nothing(api: Api, body: dict, fragment: str) -> None:
    response = api.demo.post("/networks", json=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["NeutronError"]["message"]
    assert api.demo.get("/networks").json()["networks"] == []


def test_mtu_within_the_physical_network_and_what_subnets_need(api: Api) -> None:
    tiny = api.demo.create("networks", mtu=67)
    assert tiny["mtu"] == 67
    v4 = {"network_id": tiny["id"], "cidr": "10.3.0.0/24", "ip_version": 4}
    message = error(api.demo.post("/subnets", json={"subnet": v4}), 409, "NetworkMTUSubnetConflict")
    assert message == f"MTU of {tiny['id']} is not valid, subnet requires a minimum of 68"
    api.demo.put(f"/networks/{tiny['id']}", json={"network": {"mtu": 1280}})
    api.demo.create("subnets", **v4)
    v6 = {"network_id": tiny["id"], "cidr": "fd00:3::/64", "ip_version": 6}
    api.demo.put(f"/networks/{tiny['id']}", json={"network": {"mtu": 1279}})
    error(api.demo.post("/subnets", json={"subnet": v6}), 409, "NetworkMTUSubnetConflict")
    api.demo.put(f"/networks/{tiny['id']}", json={"network": {"mtu": 1280}})
    api.demo.create("subnets", **v6)
    lowered = api.demo.put(f"/networks/{tiny['id']}", json={"network": {"mtu": 1279}})
    error(lowered, 409, "NetworkMTUSubnetConflict")
    vlan = api.admin.post(
        "/networks",
        json={
            "network": {
                "provider:network_type": "vlan",
                "provider:physical_network": "default",
                "mtu": 1501,
            }
        },
    )
    assert "maximum is 1500" in error(vlan, 400, "InvalidInput")


def test_malformed_json_is_400(api: Api) -> None:
    response = api.demo.post(
        "/networks", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert "Malformed JSON" in error(response, 400, "BadRequest")


def test_delete_network_in_use_is_409(api: Api) -> None:
    net = api.demo.create("networks")
    subnet = api.demo.create("subnets", network_id=net["id"], cidr="10.1.0.0/24", ip_version=4)
    port = api.demo.create("ports", network_id=net["id"])
    error(api.demo.delete(f"/networks/{net['id']}"), 409, "NetworkInUse")
    assert api.demo.delete(f"/ports/{port['id']}").status_code == 204
    assert (
        api.demo.delete(f"/networks/{net['id']}").status_code == 204
    )  # its DHCP port goes with it
    error(api.demo.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")
    error(api.demo.get(f"/subnets/{subnet['id']}"), 404, "SubnetNotFound")
    assert api.admin.get("/ports").json()["ports"] == []


def test_missing_or_bad_token_is_401(api: Api, http) -> None:  # type: ignore[no-untyped-def]
    response = http.get("/networking/v2.0/networks")
    assert response.status_code == 401
    bad = http.get("/networking/v2.0/networks", headers={"X-Auth-Token": "garbage"})
    assert bad.status_code == 401


def test_versions_and_extensions(api: Api, http) -> None:  # type: ignore[no-untyped-def]
    versions = http.get("/networking/").json()["versions"]
    assert versions[0]["id"] == "v2.0" and versions[0]["status"] == "CURRENT"
    aliases = {e["alias"] for e in api.demo.get("/extensions").json()["extensions"]}
    assert {"provider", "external-net", "pagination", "sorting", "standard-attr-tag"} <= aliases
    # Neutron offers these; here they would have nothing to act on, so they are not offered.
    assert not aliases & {"network_ha", "port-mac-override"}
    assert "subnet-external-network" in aliases
    assert api.demo.get("/extensions/provider").json()["extension"]["alias"] == "provider"


def test_a_network_of_one_segment_given_as_segments(api: Api) -> None:
    vlan = {"provider:network_type": "vlan", "provider:physical_network": "default"}
    net = api.admin.create("networks", segments=[{**vlan, "provider:segmentation_id": 150}])
    # One segment is shown as the provider attributes, as Neutron shows it.
    assert "segments" not in net
    assert (net["provider:network_type"], net["provider:segmentation_id"]) == ("vlan", 150)
    again = api.admin.post(
        "/networks",
        json={"network": {"segments": [{**vlan, "provider:segmentation_id": 150}]}},
    )
    error(again, 409, "VlanIdInUse")
    chosen = api.admin.create("networks", segments=[vlan])
    assert chosen["provider:segmentation_id"] == 100
    assert api.admin.create("networks", segments=[])["provider:network_type"] == "vxlan"


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        (
            {
                "segments": [{"provider:network_type": "vxlan"}],
                "provider:network_type": "vxlan",
            },
            400,
            "SegmentsSetInConjunctionWithProviders",
            "Segments and provider values cannot both be set.",
        ),
        (
            {"segments": [{"provider:physical_network": "default"}]},
            400,
            "InvalidInput",
            "Invalid input for operation: network_type required.",
        ),
        (
            {"segments": [{"provider:network_type": "vxlan", "provider:segmentation_id": 9}] * 2},
            400,
            "SegmentsContainDuplicateEntry",
            "Duplicate segment entry in request.",
        ),
        (
            {
                "segments": [
                    {"provider:network_type": "vxlan"},
                    {"provider:network_type": "flat", "provider:physical_network": "physnet2"},
                ]
            },
            400,
            "InvalidInput",
            "Invalid input for operation: a network has one segment here; 2 were given.",
        ),
        (
            {"segments": [{"provider:network_type": "vxlan", "vni": 1}]},
            400,
            "HTTPBadRequest",
            "Unrecognized attribute(s) 'vni'",
        ),
    ],
)
def test_segments_are_checked_as_neutron(
    api: Api, body: dict, status: int, kind: str, message: str
) -> None:
    before = api.admin.get("/networks").json()["networks"]
    assert error(api.admin.post("/networks", json={"network": body}), status, kind) == message
    assert api.admin.get("/networks").json()["networks"] == before


def test_segments_are_the_admins_and_fixed(api: Api) -> None:
    member = api.demo.post(
        "/networks", json={"network": {"segments": [{"provider:network_type": "vxlan"}]}}
    )
    assert error(member, 403, "PolicyNotAuthorized") == (
        "rule:create_network:segments is disallowed by policy"
    )
    net = api.admin.create("networks", name="n")
    update = api.admin.put(
        f"/networks/{net['id']}",
        json={"network": {"segments": [{"provider:network_type": "vxlan"}]}},
    )
    assert error(update, 400, "InvalidInput") == (
        "Invalid input for operation: Plugin does not support updating provider attributes."
    )
