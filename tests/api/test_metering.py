"""Metering labels and their rules, as Neutron's metering extension serves them."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, ApiClient
from tests.conftest import expect_error as error

LABELS, RULES = "/metering/metering-labels", "/metering/metering-label-rules"
UNKNOWN = "9efe63d0-836f-4cc2-b00c-468e63aa614e"


def label(client: ApiClient, **body: Any) -> dict[str, Any]:
    response = client.post(LABELS, json={"metering_label": {"name": "l", **body}})
    assert response.status_code == 201, response.text
    return response.json()["metering_label"]


def add_rule(client: ApiClient, label_id: str, **body: Any) -> Any:
    wanted = {"metering_label_id": label_id, "direction": "ingress", **body}
    return client.post(RULES, json={"metering_label_rule": wanted})


def rule(client: ApiClient, label_id: str, **body: Any) -> dict[str, Any]:
    response = add_rule(client, label_id, **body)
    assert response.status_code == 201, response.text
    return response.json()["metering_label_rule"]


def test_labels_are_made_shown_listed_and_deleted_with_their_rules(api: Api) -> None:
    made = label(api.admin, description="all of it")
    assert made == {
        "id": made["id"],
        "name": "l",
        "description": "all of it",
        "shared": False,
        "project_id": api.admin.project_id,
        "tenant_id": api.admin.project_id,
    }
    assert api.admin.get(f"{LABELS}/{made['id']}").json() == {"metering_label": made}
    assert api.admin.get(f"{LABELS}?name=l").json() == {"metering_labels": [made]}
    assert api.admin.get(f"{LABELS}?id=33").json() == {"metering_labels": []}

    counted = rule(api.admin, made["id"], remote_ip_prefix="10.0.0.0/24")
    assert counted == {
        "id": counted["id"],
        "metering_label_id": made["id"],
        "direction": "ingress",
        "remote_ip_prefix": "10.0.0.0/24",
        "source_ip_prefix": None,
        "destination_ip_prefix": None,
        "excluded": False,
    }
    assert api.admin.get(f"{RULES}/{counted['id']}").json() == {"metering_label_rule": counted}
    listed = api.admin.get(f"{RULES}?metering_label_id={made['id']}").json()
    assert listed == {"metering_label_rules": [counted]}

    assert api.admin.delete(f"{LABELS}/{made['id']}").status_code == 204
    message = error(api.admin.get(f"{LABELS}/{made['id']}"), 404, "MeteringLabelNotFound")
    assert message == f"Metering label '{made['id']}' does not exist."
    message = error(api.admin.get(f"{RULES}/{counted['id']}"), 404, "MeteringLabelRuleNotFound")
    assert message == f"Metering label rule '{counted['id']}' does not exist."
    error(api.admin.delete(f"{LABELS}/{made['id']}"), 404, "MeteringLabelNotFound")


def test_rules_by_source_and_destination_and_their_prefixes_as_neutron_stores_them(
    api: Api,
) -> None:
    made = label(api.admin, shared=True)
    both = rule(
        api.admin,
        made["id"],
        direction="egress",
        source_ip_prefix="10.0.0.5/24",
        destination_ip_prefix="fd00::1",
        excluded=True,
    )
    assert (both["source_ip_prefix"], both["destination_ip_prefix"]) == (
        "10.0.0.5/24",
        "fd00::1/128",
    )
    assert (both["remote_ip_prefix"], both["direction"], both["excluded"]) == (None, "egress", True)
    assert api.admin.delete(f"{RULES}/{both['id']}").status_code == 204
    error(api.admin.delete(f"{RULES}/{both['id']}"), 404, "MeteringLabelRuleNotFound")


def test_bad_rules_are_refused_with_neutrons_words(api: Api) -> None:
    made = label(api.admin)
    message = error(
        add_rule(api.admin, made["id"], remote_ip_prefix="10.0.0.0/24", source_ip_prefix="1.2.3.4"),
        400,
        "Invalid",
    )
    assert message == (
        "Cannot use 'remote-ip-prefix' in conjunction "
        "with 'source-ip-prefix' or 'destination-ip-prefix'."
    )
    message = error(add_rule(api.admin, made["id"]), 400, "Invalid")
    assert message == (
        "You must define at least one of the following parameters "
        "'remote_ip_prefix', or 'source_ip_prefix' or 'destination_ip_prefix'."
    )
    message = error(add_rule(api.admin, made["id"], source_ip_prefix="10.0.0.0/33"), 400, "Invalid")
    assert message == (
        "source_ip_prefix: 10.0.0.0/33 is invalid "
        "['10.0.0.0/33' does not appear to be an IPv4 or IPv6 interface]."
    )
    message = error(
        add_rule(api.admin, made["id"], destination_ip_prefix="fe80::1%eth0/64"),
        400,
        "AddrFormatError",
    )
    assert message == "invalid IPNetwork fe80::1%eth0/64"
    message = error(
        add_rule(api.admin, made["id"], remote_ip_prefix="1.2.3.4", direction="sideways"),
        400,
        "InvalidInput",
    )
    assert message == "Invalid input for operation: 'sideways' is not in ['ingress', 'egress']."
    message = error(add_rule(api.admin, "nope", remote_ip_prefix="1.2.3.4"), 400, "InvalidInput")
    assert message == "Invalid input for operation: 'nope' is not a valid UUID."
    message = error(
        add_rule(api.admin, UNKNOWN, remote_ip_prefix="1.2.3.4"), 404, "MeteringLabelNotFound"
    )
    assert message == f"Metering label '{UNKNOWN}' does not exist."
    long_name = api.admin.post(LABELS, json={"metering_label": {"name": "x" * 256}})
    error(long_name, 400, "InvalidInput")
    assert api.admin.get(f"{RULES}?metering_label_id={made['id']}").json() == {
        "metering_label_rules": []
    }


def test_a_remote_prefix_may_not_overlap_another_of_the_same_direction_and_kind(api: Api) -> None:
    made = label(api.admin)
    rule(api.admin, made["id"], remote_ip_prefix="10.0.0.0/16")
    message = error(
        add_rule(api.admin, made["id"], remote_ip_prefix="10.0.3.0/24"),
        409,
        "MeteringLabelRuleOverlaps",
    )
    assert message == "Metering label rule with remote_ip_prefix '10.0.3.0/24' overlaps another."
    # An excluded part of it, the other direction, another label, or IPv6: all fine.
    rule(api.admin, made["id"], remote_ip_prefix="10.0.3.0/24", excluded=True)
    rule(api.admin, made["id"], remote_ip_prefix="10.0.3.0/24", direction="egress")
    rule(api.admin, label(api.admin)["id"], remote_ip_prefix="10.0.3.0/24")
    rule(api.admin, made["id"], remote_ip_prefix="::/0")


def test_nothing_of_a_label_or_a_rule_can_change(api: Api) -> None:
    made = label(api.admin)
    response = api.admin.put(f"{LABELS}/{made['id']}", json={"metering_label": {"name": "m"}})
    message = error(response, 400, "BadRequest")
    assert (
        message
        == "Bad metering_label request: Attribute 'name' not allowed in PUT; it cannot be updated."
    )
    assert api.admin.get(f"{LABELS}/{made['id']}").json()["metering_label"]["name"] == "l"


def test_members_may_not_meter_and_see_only_their_projects_labels(api: Api) -> None:
    refused = api.demo.post(LABELS, json={"metering_label": {"name": "mine"}})
    message = error(refused, 403, "PolicyNotAuthorized")
    assert message == "rule:create_metering_label is disallowed by policy"

    own = label(api.admin, project_id=api.demo.project_id)
    other = label(api.admin, shared=True)
    own_rule = rule(api.admin, own["id"], remote_ip_prefix="10.0.0.0/24")
    other_rule = rule(api.admin, other["id"], remote_ip_prefix="10.0.0.0/24")

    assert api.demo.get(LABELS).json() == {"metering_labels": [own]}
    assert api.demo.get(RULES).json() == {"metering_label_rules": [own_rule]}
    assert api.demo2.get(LABELS).json() == {"metering_labels": []}
    error(api.demo.get(f"{LABELS}/{other['id']}"), 404, "MeteringLabelNotFound")
    error(api.demo.get(f"{RULES}/{other_rule['id']}"), 404, "MeteringLabelRuleNotFound")

    message = error(api.demo.delete(f"{LABELS}/{own['id']}"), 403, "PolicyNotAuthorized")
    assert message == "rule:delete_metering_label is disallowed by policy"
    message = error(api.demo.delete(f"{RULES}/{own_rule['id']}"), 403, "PolicyNotAuthorized")
    assert message == "rule:delete_metering_label_rule is disallowed by policy"
    message = error(
        add_rule(api.demo, own["id"], remote_ip_prefix="10.1.0.0/24"), 403, "PolicyNotAuthorized"
    )
    assert message == "rule:create_metering_label_rule is disallowed by policy"
    error(api.demo.delete(f"{LABELS}/{other['id']}"), 404, "MeteringLabelNotFound")
    assert api.admin.get(f"{LABELS}/{own['id']}").status_code == 200


def test_metering_is_offered(api: Api) -> None:
    aliases = {e["alias"] for e in api.demo.get("/extensions").json()["extensions"]}
    assert {"metering", "metering_source_and_destination_fields"} <= aliases
