"""QoS policies, their rules, rule types, and the policies of networks and ports, as in Neutron."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, ApiClient
from tests.conftest import expect_error as error

UNKNOWN = "9efe63d0-836f-4cc2-b00c-468e63aa614e"


def policy(api: Api, **body: Any) -> dict[str, Any]:
    response = api.admin.post("/qos/policies", json={"policy": {"name": "p", **body}})
    assert response.status_code == 201, response.text
    return response.json()["policy"]


def rule(client: ApiClient, policy_id: str, kind: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/qos/policies/{policy_id}/{kind}_rules", json={f"{kind}_rule": body})
    assert response.status_code == 201, response.text
    return response.json()[f"{kind}_rule"]


def shown(client: ApiClient, path: str, key: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()[key]


def test_policy_create_show_update_delete(api: Api) -> None:
    made = policy(api, description="10 Mbit/s")
    assert {k: v for k, v in made.items() if k not in ("id", "created_at", "updated_at")} == {
        "name": "p",
        "description": "10 Mbit/s",
        "project_id": api.admin.project_id,
        "tenant_id": api.admin.project_id,
        "shared": False,
        "is_default": False,
        "rules": [],
        "tags": [],
        "revision_number": 1,
    }
    assert shown(api.admin, f"/qos/policies/{made['id']}", "policy") == made
    listed = shown(api.admin, "/qos/policies?name=p", "policies")
    assert [p["id"] for p in listed] == [made["id"]]

    response = api.admin.put(
        f"/qos/policies/{made['id']}", json={"policy": {"shared": True, "name": "q"}}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["policy"]["shared"], response.json()["policy"]["name"]) == (True, "q")
    assert response.json()["policy"]["revision_number"] == 2

    assert api.admin.delete(f"/qos/policies/{made['id']}").status_code == 204
    message = error(api.admin.get(f"/qos/policies/{made['id']}"), 404, "QosPolicyNotFound")
    assert message == f"QoS policy {made['id']} could not be found."


def test_only_admins_write_policies_and_projects_see_their_own_and_shared(api: Api) -> None:
    refused = api.demo.post("/qos/policies", json={"policy": {"name": "mine"}})
    assert (
        error(refused, 403, "PolicyNotAuthorized") == "rule:create_policy is disallowed by policy"
    )
    # Bad input is a 400 before the policy check, as in Neutron.
    error(api.demo.post("/qos/policies", json={"policy": {"name": "n" * 256}}), 400, "InvalidInput")

    own = policy(api, project_id=api.demo.project_id)
    private = policy(api)
    shared = policy(api, shared=True)
    seen = {p["id"] for p in shown(api.demo, "/qos/policies", "policies")}
    assert seen == {own["id"], shared["id"]}

    update = {"policy": {"description": "x"}}
    message = error(
        api.demo.put(f"/qos/policies/{own['id']}", json=update), 403, "PolicyNotAuthorized"
    )
    assert message == "rule:update_policy is disallowed by policy"
    error(api.demo.put(f"/qos/policies/{private['id']}", json=update), 404, "QosPolicyNotFound")
    error(api.demo.delete(f"/qos/policies/{shared['id']}"), 403, "PolicyNotAuthorized")
    error(api.demo.get(f"/qos/policies/{private['id']}"), 404, "QosPolicyNotFound")
    assert shown(api.admin, f"/qos/policies/{own['id']}", "policy")["description"] == ""
    # A marker it cannot see lists from the start, as Neutron's versioned objects do.
    page = api.demo.get("/qos/policies", params={"limit": 1, "marker": private["id"]})
    assert [p["id"] for p in page.json()["policies"]] == sorted([own["id"], shared["id"]])[:1]


def test_bandwidth_limit_rules(api: Api) -> None:
    made = policy(api)
    pid = made["id"]
    egress = rule(api.admin, pid, "bandwidth_limit", max_kbps=10000)
    assert set(egress) == {"id", "max_kbps", "max_burst_kbps", "direction"}
    assert (egress["max_kbps"], egress["max_burst_kbps"], egress["direction"]) == (
        10000,
        0,
        "egress",
    )
    ingress = rule(api.admin, pid, "bandwidth_limit", max_kbps="200", direction="ingress")

    again = api.admin.post(
        f"/qos/policies/{pid}/bandwidth_limit_rules",
        json={"bandwidth_limit_rule": {"max_kbps": 1, "direction": "ingress"}},
    )
    assert error(again, 409, "QoSRulesConflict") == (
        f"Rule bandwidth_limit conflicts with rule {ingress['id']} which already exists in "
        f"QoS Policy {pid}."
    )
    too_big = api.admin.post(
        f"/qos/policies/{pid}/bandwidth_limit_rules",
        json={"bandwidth_limit_rule": {"max_kbps": 2**31}},
    )
    assert error(too_big, 400, "InvalidInput") == (
        "Invalid input for operation: '2147483648' is too large - must be no larger than "
        "'2147483647'."
    )

    listed = shown(api.admin, f"/qos/policies/{pid}/bandwidth_limit_rules", "bandwidth_limit_rules")
    assert sorted(r["id"] for r in listed) == sorted([egress["id"], ingress["id"]])
    body = shown(api.admin, f"/qos/policies/{pid}", "policy")
    assert body["revision_number"] == 3  # each rule is a change of its policy
    assert {r["id"]: (r["type"], r["qos_policy_id"], r["direction"]) for r in body["rules"]} == {
        egress["id"]: ("bandwidth_limit", pid, "egress"),
        ingress["id"]: ("bandwidth_limit", pid, "ingress"),
    }

    path = f"/qos/policies/{pid}/bandwidth_limit_rules/{egress['id']}"
    changed = api.admin.put(path, json={"bandwidth_limit_rule": {"max_burst_kbps": 800}})
    assert changed.json()["bandwidth_limit_rule"]["max_burst_kbps"] == 800
    clash = api.admin.put(path, json={"bandwidth_limit_rule": {"direction": "ingress"}})
    error(clash, 409, "QoSRulesConflict")
    assert api.admin.delete(path).status_code == 204
    message = error(api.admin.get(path), 404, "QosRuleNotFound")
    assert message == f"QoS rule {egress['id']} for policy {pid} could not be found."
    message = error(
        api.admin.post(
            f"/qos/policies/{UNKNOWN}/bandwidth_limit_rules",
            json={"bandwidth_limit_rule": {"max_kbps": 1}},
        ),
        404,
        "QosPolicyNotFound",
    )
    assert message == f"QoS policy {UNKNOWN} could not be found."


def test_rules_are_for_admins_to_write_and_for_those_who_see_the_policy_to_read(api: Api) -> None:
    own = policy(api, project_id=api.demo.project_id)
    limit = rule(api.admin, own["id"], "bandwidth_limit", max_kbps=1)
    refused = api.demo.post(
        f"/qos/policies/{own['id']}/dscp_marking_rules",
        json={"dscp_marking_rule": {"dscp_mark": 8}},
    )
    message = error(refused, 403, "PolicyNotAuthorized")
    assert message == "rule:create_policy_dscp_marking_rule is disallowed by policy"
    path = f"/qos/policies/{own['id']}/bandwidth_limit_rules/{limit['id']}"
    assert shown(api.demo, path, "bandwidth_limit_rule") == limit
    error(
        api.demo.put(path, json={"bandwidth_limit_rule": {"max_kbps": 2}}),
        403,
        "PolicyNotAuthorized",
    )
    error(api.demo2.get(path), 404, "QosPolicyNotFound")


def test_dscp_marks_are_neutrons_valid_ones(api: Api) -> None:
    pid = policy(api)["id"]
    made = rule(api.admin, pid, "dscp_marking", dscp_mark=26)
    assert made == {"id": made["id"], "dscp_mark": 26}
    path = f"/qos/policies/{pid}/dscp_marking_rules/{made['id']}"
    bad = api.admin.put(path, json={"dscp_marking_rule": {"dscp_mark": 58}})
    assert error(bad, 400, "InvalidInput") == (
        "Invalid input for operation: '58' is not in "
        "[0, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 44, 46, 48, 56]."
    )
    assert shown(api.admin, path, "dscp_marking_rule")["dscp_mark"] == 26
    second = api.admin.post(
        f"/qos/policies/{pid}/dscp_marking_rules", json={"dscp_marking_rule": {"dscp_mark": 8}}
    )
    error(second, 409, "QoSRulesConflict")


def test_rules_by_id_alone(api: Api) -> None:
    pid = policy(api)["id"]
    made = rule(api.admin, pid, "bandwidth_limit", max_kbps=100)
    path = f"/qos/alias_bandwidth_limit_rules/{made['id']}"
    assert shown(api.admin, path, "alias_bandwidth_limit_rule") == made
    changed = api.admin.put(path, json={"alias_bandwidth_limit_rule": {"max_kbps": 300}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["alias_bandwidth_limit_rule"]["max_kbps"] == 300
    assert shown(api.admin, f"/qos/policies/{pid}", "policy")["rules"][0]["max_kbps"] == 300
    # Another type's alias does not find it; a member who cannot see the policy neither.
    message = error(
        api.admin.get(f"/qos/alias_dscp_marking_rules/{made['id']}"), 404, "QosRuleNotFound"
    )
    assert message == f"QoS rule {made['id']} for policy  could not be found."
    error(api.demo.get(path), 404, "QosPolicyNotFound")
    assert api.admin.delete(path).status_code == 204
    assert shown(api.admin, f"/qos/policies/{pid}", "policy")["rules"] == []


def test_rule_types_are_what_the_data_plane_applies(api: Api) -> None:
    expected = [{"type": "bandwidth_limit"}, {"type": "dscp_marking"}]
    assert shown(api.demo, "/qos/rule-types", "rule_types") == expected
    error(api.demo.get("/qos/rule-types/bandwidth_limit"), 403, "NotAuthorized")
    assert shown(api.admin, "/qos/rule-types/bandwidth_limit", "rule_type") == {
        "type": "bandwidth_limit",
        "drivers": [
            {
                "name": "neutrino",
                "supported_parameters": [
                    {
                        "parameter_name": "max_kbps",
                        "parameter_values": {"start": 0, "end": 2147483647},
                        "parameter_type": "range",
                    },
                    {
                        "parameter_name": "max_burst_kbps",
                        "parameter_values": {"start": 0, "end": 2147483647},
                        "parameter_type": "range",
                    },
                    {
                        "parameter_name": "direction",
                        "parameter_values": ["ingress", "egress"],
                        "parameter_type": "choices",
                    },
                ],
            }
        ],
    }
    minimum = shown(api.admin, "/qos/rule-types/minimum_bandwidth", "rule_type")
    assert minimum == {"type": "minimum_bandwidth", "drivers": []}


def test_networks_and_ports_take_policies(api: Api) -> None:
    shared = policy(api, shared=True)
    private = policy(api)
    net = api.demo.create("networks", name="n", qos_policy_id=shared["id"])
    assert net["qos_policy_id"] == shared["id"]
    port = api.demo.create("ports", network_id=net["id"])
    assert (port["qos_policy_id"], port["qos_network_policy_id"]) == (None, shared["id"])
    foreign = {"port": {"network_id": net["id"], "qos_policy_id": private["id"]}}
    error(api.demo.post("/ports", json=foreign), 404, "QosPolicyNotFound")
    own = api.demo.put(f"/ports/{port['id']}", json={"port": {"qos_policy_id": shared["id"]}})
    assert own.json()["port"]["qos_policy_id"] == shared["id"]

    message = error(api.admin.delete(f"/qos/policies/{shared['id']}"), 409, "QosPolicyInUse")
    assert message == f"QoS Policy {shared['id']} is used by network {net['id']}."
    api.demo.put(f"/networks/{net['id']}", json={"network": {"qos_policy_id": None}})
    message = error(api.admin.delete(f"/qos/policies/{shared['id']}"), 409, "QosPolicyInUse")
    assert message == f"QoS Policy {shared['id']} is used by port {port['id']}."
    shown_port = shown(api.demo, f"/ports/{port['id']}", "port")
    assert (shown_port["qos_policy_id"], shown_port["qos_network_policy_id"]) == (
        shared["id"],
        None,
    )


def test_a_policy_that_is_not_the_callers_stays_unless_an_admin_removes_it(api: Api) -> None:
    private = policy(api)
    net = api.demo.create("networks", name="n")
    moved = api.admin.put(
        f"/networks/{net['id']}", json={"network": {"qos_policy_id": private["id"]}}
    )
    assert moved.status_code == 200, moved.text
    removal = api.demo.put(f"/networks/{net['id']}", json={"network": {"qos_policy_id": None}})
    assert error(removal, 403, "PolicyRemoveAuthorizationError") == (
        f"Failed to remove provided policy {private['id']} because you are not authorized."
    )
    assert shown(api.admin, f"/networks/{net['id']}", "network")["qos_policy_id"] == private["id"]


def test_a_projects_default_policy_goes_to_its_new_networks(api: Api) -> None:
    default = policy(api, project_id=api.demo.project_id, is_default=True)
    assert default["is_default"] is True
    second = api.admin.post(
        "/qos/policies",
        json={"policy": {"name": "d2", "project_id": api.demo.project_id, "is_default": True}},
    )
    message = error(second, 409, "QoSPolicyDefaultAlreadyExists")
    assert message == f"A default QoS policy exists for project {api.demo.project_id}."
    assert api.demo.create("networks", name="n")["qos_policy_id"] == default["id"]
    other = policy(api, project_id=api.demo.project_id)
    chosen = api.demo.create("networks", name="m", qos_policy_id=other["id"])
    assert chosen["qos_policy_id"] == other["id"]
    assert api.demo2.create("networks", name="n")["qos_policy_id"] is None
    listed = shown(api.admin, "/qos/policies?is_default=true", "policies")
    assert [p["id"] for p in listed] == [default["id"]]

    api.admin.put(f"/qos/policies/{default['id']}", json={"policy": {"is_default": False}})
    assert api.demo.create("networks", name="o")["qos_policy_id"] is None


def test_minimum_bandwidth_is_refused_where_it_would_apply(api: Api) -> None:
    """No Linux bridge can guarantee a rate: as Neutron with a driver that lacks the rule."""
    pid = policy(api, shared=True)["id"]
    minimum = rule(api.admin, pid, "minimum_bandwidth", min_kbps=1000)
    assert minimum == {"id": minimum["id"], "min_kbps": 1000, "direction": "egress"}
    net = api.demo.create("networks", name="n")
    port = api.demo.create("ports", network_id=net["id"])
    refused = api.demo.put(f"/ports/{port['id']}", json={"port": {"qos_policy_id": pid}})
    message = error(refused, 409, "QosRuleNotSupported")
    assert message == f"Rule minimum_bandwidth is not supported by port {port['id']}"
    assert shown(api.demo, f"/ports/{port['id']}", "port")["qos_policy_id"] is None
    refused = api.demo.put(f"/networks/{net['id']}", json={"network": {"qos_policy_id": pid}})
    message = error(refused, 409, "QosRuleNotSupportedByNetwork")
    assert message == f"Rule minimum_bandwidth is not supported by network {net['id']}"

    # A policy in use does not take the rule either, and stays as it was.
    used = policy(api, shared=True)["id"]
    api.demo.put(f"/ports/{port['id']}", json={"port": {"qos_policy_id": used}})
    added = api.admin.post(
        f"/qos/policies/{used}/minimum_bandwidth_rules",
        json={"minimum_bandwidth_rule": {"min_kbps": 10}},
    )
    error(added, 409, "QosRuleNotSupported")
    assert shown(api.admin, f"/qos/policies/{used}", "policy")["rules"] == []
    limit = rule(api.admin, pid, "bandwidth_limit", max_kbps=5000)
    conflict = api.admin.put(
        f"/qos/policies/{pid}/bandwidth_limit_rules/{limit['id']}",
        json={"bandwidth_limit_rule": {"max_kbps": 999}},
    )
    assert error(conflict, 409, "QoSRuleParameterConflict") == (
        f"Unable to add the rule with value 999 to the policy {pid} as the existing rule of "
        "type minimum_bandwidth has value 1000."
    )


def test_policy_tags_are_at_policies_as_neutron_names_them(api: Api) -> None:
    tagged, other = policy(api), policy(api)
    path = f"/policies/{tagged['id']}/tags"
    response = api.admin.put(path, json={"tags": ["red", "blue"]})
    assert response.status_code == 200, response.text
    assert api.admin.put(f"{path}/green").status_code == 201
    assert sorted(shown(api.admin, path, "tags")) == ["blue", "green", "red"]
    listed = shown(api.admin, "/qos/policies?tags=red", "policies")
    assert [p["id"] for p in listed] == [tagged["id"]]
    assert other["id"] in [
        p["id"] for p in shown(api.admin, "/qos/policies?not-tags=red", "policies")
    ]
    error(
        api.admin.put(f"/qos/policies/{tagged['id']}/tags", json={"tags": []}),
        404,
        "ResourceNotFound",
    )
