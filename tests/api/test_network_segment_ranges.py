"""Network segment ranges: the configuration's defaults, administrators' ranges, and networks
taking their segmentation IDs from them, as Neutron's network-segment-range extension."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, ApiClient
from tests.conftest import expect_error as error

URL = "/network-segment-ranges"


def segment_range(admin: ApiClient, **attrs: Any) -> Any:
    return admin.create("network-segment-ranges", **attrs)


def project_range(admin: ApiClient, project_id: str, **attrs: Any) -> Any:
    return segment_range(
        admin, name="r", shared=False, project_id=project_id, network_type="vxlan", **attrs
    )


def network_for(admin: ApiClient, project_id: str, **provider: Any) -> Any:
    """A network of `project_id` made by an administrator (who may give provider attributes)."""
    return admin.create(
        "networks",
        name="n",
        project_id=project_id,
        **{f"provider:{key}": value for key, value in provider.items()},
    )


def segmentation_id(admin: ApiClient, network: Any) -> int:
    return int(
        admin.get(f"/networks/{network['id']}").json()["network"]["provider:segmentation_id"]
    )


def test_the_configured_ranges_are_the_defaults_and_read_only(api: Api) -> None:
    ranges = api.admin.get(URL).json()["network_segment_ranges"]
    # The test settings: --physnet default:100:199 --physnet physnet2, VNIs 1-65535.
    assert sorted(
        (r["network_type"], r["physical_network"], r["minimum"], r["maximum"]) for r in ranges
    ) == [("vlan", "default", 100, 199), ("vlan", "physnet2", 1, 4094), ("vxlan", "", 1, 65535)]
    vxlan = next(r for r in ranges if r["network_type"] == "vxlan")
    assert vxlan == {
        "id": vxlan["id"],
        "name": None,
        "description": "",
        "default": True,
        "shared": True,
        "project_id": None,
        "tenant_id": None,
        "network_type": "vxlan",
        "physical_network": "",
        "minimum": 1,
        "maximum": 65535,
        "available": list(range(1, 65536)),
        "used": {},
        "created_at": vxlan["created_at"],
        "updated_at": vxlan["updated_at"],
        "revision_number": 1,
        "tags": [],
    }
    network = api.demo.create("networks", name="n")
    shown = api.admin.get(f"{URL}/{vxlan['id']}").json()["network_segment_range"]
    assert shown["used"] == {"1": api.demo.project_id}
    assert shown["available"][:2] == [2, 3]
    assert segmentation_id(api.admin, network) == 1
    for refused in (
        api.admin.put(f"{URL}/{vxlan['id']}", json={"network_segment_range": {"maximum": 10}}),
        api.admin.delete(f"{URL}/{vxlan['id']}"),
    ):
        message = error(refused, 400, "NetworkSegmentRangeDefaultReadOnly")
        assert message == (
            f"Network Segment Range {vxlan['id']} is a default segment range which could not "
            "be updated or deleted."
        )


def test_a_range_is_made_shown_and_changed_as_in_neutron(api: Api) -> None:
    created = project_range(api.admin, api.demo2.project_id, minimum=1100, maximum=1105)
    assert created == {
        "id": created["id"],
        "name": "r",
        "description": "",
        "default": False,
        "shared": False,
        "project_id": api.demo2.project_id,
        "tenant_id": api.demo2.project_id,
        "network_type": "vxlan",
        "physical_network": "",
        "minimum": 1100,
        "maximum": 1105,
        "available": [1100, 1101, 1102, 1103, 1104, 1105],
        "used": {},
        "created_at": created["created_at"],
        "updated_at": created["updated_at"],
        "revision_number": 1,
        "tags": [],
    }
    shared = segment_range(
        api.admin, network_type="vlan", physical_network="physnet2", minimum=10, maximum=20
    )
    assert (shared["shared"], shared["project_id"], shared["name"]) == (True, None, "")
    url = f"{URL}/{created['id']}"
    changed = api.admin.put(url, json={"network_segment_range": {"name": "new", "minimum": 1050}})
    assert changed.status_code == 200, changed.text
    body = changed.json()["network_segment_range"]
    assert (body["name"], body["minimum"], body["maximum"], body["revision_number"]) == (
        "new",
        1050,
        1105,
        2,
    )
    listed = api.admin.get(URL, params={"id": created["id"]}).json()["network_segment_ranges"]
    assert listed == [api.admin.get(url).json()["network_segment_range"]]
    assert api.admin.get(URL, params={"id": "33"}).json() == {"network_segment_ranges": []}
    assert api.admin.put(f"{url}/tags/blue").status_code == 201
    assert api.admin.get(url).json()["network_segment_range"]["tags"] == ["blue"]
    assert api.admin.delete(url).status_code == 204
    message = error(api.admin.get(url), 404, "NetworkSegmentRangeNotFound")
    assert message == f"Network Segment Range {created['id']} could not be found."


def test_bad_ranges_are_refused_as_neutron_words_it(api: Api) -> None:
    def refused(status: int, kind: str, **attrs: Any) -> str:
        body = {"network_segment_range": {"name": "r", "minimum": 10, "maximum": 20, **attrs}}
        return error(api.admin.post(URL, json=body), status, kind)

    assert refused(400, "NetworkSegmentRangeNetTypeNotSupported", network_type="gre") == (
        "Network type gre does not support network segment ranges."
    )
    assert refused(400, "InvalidInput", network_type="flat") == (
        "Invalid input for operation: 'flat' is not in ['vlan', 'vxlan', 'gre', 'geneve']."
    )
    assert refused(400, "BadRequest", network_type="vlan") == (
        "Bad network_segment_range request: Network type vlan requires 'physical_network' to be "
        "specified while creating new range."
    )
    assert refused(
        400,
        "NetworkVlanRangeError",
        network_type="vlan",
        physical_network="physnet2",
        maximum=5000,
    ) == ("Invalid network VLAN range: '10:5000' - '5000 is not a valid VLAN tag'.")
    assert refused(400, "NetworkTunnelRangeError", network_type="vxlan", minimum=30) == (
        "Invalid network tunnel range: '30:20' - End of tunnel range is less than start of "
        "tunnel range."
    )
    assert refused(400, "NetworkTunnelRangeError", network_type="vxlan", maximum=2**24) == (
        "Invalid network tunnel range: '10:16777216' - 16777216 is not a valid vxlan identifier."
    )
    assert refused(400, "InvalidInput", network_type="vxlan", minimum=0) == (
        "Invalid input for operation: '0' is not in range 1 through 4294967295."
    )
    first = segment_range(api.admin, network_type="vxlan", minimum=100, maximum=200)
    assert refused(409, "NetworkSegmentRangeOverlaps", network_type="vxlan", maximum=100) == (
        f"Network segment range overlaps with range(s) with id {first['id']}"
    )
    second = segment_range(api.admin, network_type="vxlan", minimum=300, maximum=400)
    message = error(
        api.admin.put(f"{URL}/{second['id']}", json={"network_segment_range": {"minimum": 150}}),
        409,
        "NetworkSegmentRangeOverlaps",
    )
    assert message == f"Network segment range overlaps with range(s) with id {first['id']}"
    # The same IDs on another physical network, or under a default range, are no overlap.
    segment_range(
        api.admin, network_type="vlan", physical_network="physnet2", minimum=100, maximum=200
    )
    assert len(api.admin.get(URL).json()["network_segment_ranges"]) == 3 + 3


def test_only_administrators_see_and_write_ranges(api: Api) -> None:
    made = segment_range(api.admin, network_type="vxlan", minimum=100, maximum=200)
    body = {"network_segment_range": {"network_type": "vxlan", "minimum": 1, "maximum": 2}}
    message = error(api.demo.post(URL, json=body), 403, "PolicyNotAuthorized")
    assert message == "rule:create_network_segment_range is disallowed by policy"
    assert api.demo.get(URL).json() == {"network_segment_ranges": []}
    url = f"{URL}/{made['id']}"
    for answer in (
        api.demo.get(url),
        api.demo.put(url, json={"network_segment_range": {"name": "x"}}),
        api.demo.delete(url),
        api.demo.put(f"{url}/tags/blue"),
    ):
        assert error(answer, 404, "HTTPNotFound") == "The resource could not be found."
    assert api.admin.get(url).json()["network_segment_range"] == made


def test_a_projects_range_serves_its_networks_first_and_no_one_elses(api: Api) -> None:
    admin, demo, demo2 = api.admin, api.demo.project_id, api.demo2.project_id
    own = project_range(admin, demo2, minimum=1, maximum=2)
    taken = [segmentation_id(admin, network_for(admin, demo2)) for _ in range(2)]
    assert taken == [1, 2]
    # Its range full, the project's networks come from the shared ones.
    assert segmentation_id(admin, network_for(admin, demo2)) == 3
    # Another project's networks never take IDs of demo2's range.
    assert segmentation_id(admin, network_for(admin, demo)) == 4
    shown = admin.get(f"{URL}/{own['id']}").json()["network_segment_range"]
    assert (shown["used"], shown["available"]) == ({"1": demo2, "2": demo2}, [])
    # A network given its segmentation ID takes it, in a range or not.
    given = network_for(admin, demo, network_type="vxlan", segmentation_id=1100)
    assert segmentation_id(admin, given) == 1100


def test_the_ids_of_deleted_networks_are_handed_out_again_lowest_first(api: Api) -> None:
    admin, demo2 = api.admin, api.demo2.project_id
    project_range(admin, demo2, minimum=1200, maximum=1205)
    # One given explicitly, before the others: never handed out while a network has it.
    given = network_for(admin, demo2, network_type="vxlan", segmentation_id=1202)
    networks = {segmentation_id(admin, n): n for n in (network_for(admin, demo2) for _ in range(5))}
    assert list(networks) == [1200, 1201, 1203, 1204, 1205]
    # Freed between two taken, beside a freed one above, below, and between two.
    for vni in (1201, 1204, 1203, 1200, 1205):
        assert admin.delete(f"/networks/{networks[vni]['id']}").status_code == 204
    assert admin.delete(f"/networks/{given['id']}").status_code == 204
    again = [segmentation_id(admin, network_for(admin, demo2)) for _ in range(6)]
    assert again == [1200, 1201, 1202, 1203, 1204, 1205]
    # The project's range is full: the next comes from the shared ones.
    assert segmentation_id(admin, network_for(admin, demo2)) == 1


def test_every_range_exhausted_is_no_network_available(api: Api) -> None:
    admin, demo, demo2 = api.admin, api.demo.project_id, api.demo2.project_id
    vlan = {"network_type": "vlan", "physical_network": "default"}
    # demo2 holds all but two of the default VLANs 100-199.
    segment_range(admin, name="r", shared=False, project_id=demo2, minimum=102, maximum=199, **vlan)
    assert [segmentation_id(admin, network_for(admin, demo, **vlan)) for _ in range(2)] == [
        100,
        101,
    ]
    before = admin.get("/networks").json()["networks"]
    answer = admin.post(
        "/networks",
        json={
            "network": {
                "project_id": demo,
                "provider:network_type": "vlan",
                "provider:physical_network": "default",
            }
        },
    )
    message = error(answer, 503, "NoNetworkAvailable")
    assert message == "Unable to create the network. No tenant network is available for allocation."
    assert admin.get("/networks").json()["networks"] == before
    assert segmentation_id(admin, network_for(admin, demo2, **vlan)) == 102


def test_a_range_keeps_the_segments_its_networks_have(api: Api) -> None:
    admin, demo2 = api.admin, api.demo2.project_id
    made = project_range(admin, demo2, minimum=1100, maximum=1105)
    network = network_for(admin, demo2, network_type="vxlan")
    assert segmentation_id(admin, network) == 1100
    url = f"{URL}/{made['id']}"
    in_use = f"Network Segment Range {made['id']} is referenced by one or more project networks."
    for bounds in ({"minimum": 1101}, {"minimum": 1000, "maximum": 1099}):
        answer = admin.put(url, json={"network_segment_range": bounds})
        assert error(answer, 409, "NetworkSegmentRangeReferencedByProject") == in_use
    kept = admin.put(url, json={"network_segment_range": {"minimum": 1100, "maximum": 1155}})
    assert kept.status_code == 200, kept.text
    assert error(admin.delete(url), 409, "NetworkSegmentRangeReferencedByProject") == in_use
    assert admin.delete(f"/networks/{network['id']}").status_code == 204
    assert admin.delete(url).status_code == 204
    assert admin.get(URL, params={"id": made["id"]}).json() == {"network_segment_ranges": []}
