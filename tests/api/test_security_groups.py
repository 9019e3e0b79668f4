"""Security groups and rules: the default group, rule checks and normalization, ownership (S5)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, ApiClient
from tests.conftest import expect_error as error

MISSING = "8d2b1c7e-0000-4000-8000-000000000000"


def rule_body(group_id: str, **rule: Any) -> dict:
    return {"security_group_rule": {"security_group_id": group_id, "direction": "ingress", **rule}}


def add_rule(client: ApiClient, group_id: str, **rule: Any) -> Any:
    return client.post("/security-group-rules", json=rule_body(group_id, **rule))


@pytest.fixture
def group(api: Api) -> dict:
    return api.demo.create("security-groups", name="web", description="web servers")


def test_default_group_made_on_first_listing(api: Api) -> None:
    [default] = api.demo.get("/security-groups").json()["security_groups"]
    assert default["name"] == "default" and default["project_id"] == api.demo.project_id
    rules = {
        (r["direction"], r["ethertype"], r["remote_group_id"], r["remote_ip_prefix"], r["protocol"])
        for r in default["security_group_rules"]
    }
    assert rules == {
        ("egress", "IPv4", None, None, None),
        ("egress", "IPv6", None, None, None),
        ("ingress", "IPv4", default["id"], None, None),
        ("ingress", "IPv6", default["id"], None, None),
    }
    # Listing again makes no second one; a port without groups gets it.
    assert len(api.demo.get("/security-groups").json()["security_groups"]) == 1
    net = api.demo.create("networks", name="n")
    api.demo.create("subnets", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
    port = api.demo.create("ports", network_id=net["id"])
    assert port["security_groups"] == [default["id"]]


def test_default_group_cannot_go_or_be_renamed(api: Api) -> None:
    [default] = api.demo.get("/security-groups").json()["security_groups"]
    error(
        api.demo.delete(f"/security-groups/{default['id']}"),
        409,
        "SecurityGroupCannotRemoveDefault",
    )
    rename = api.demo.put(
        f"/security-groups/{default['id']}", json={"security_group": {"name": "x"}}
    )
    error(rename, 409, "SecurityGroupCannotUpdateDefault")
    described = api.demo.put(
        f"/security-groups/{default['id']}", json={"security_group": {"description": "d"}}
    )
    assert described.status_code == 200
    twin = api.demo.post("/security-groups", json={"security_group": {"name": "default"}})
    error(twin, 409, "SecurityGroupDefaultAlreadyExists")
    # The admin may remove it (Neutron's policy); it comes back on next use.
    assert api.admin.delete(f"/security-groups/{default['id']}").status_code == 204
    [again] = api.demo.get("/security-groups").json()["security_groups"]
    assert again["id"] != default["id"] and again["name"] == "default"


def test_new_group_has_egress_rules(api: Api, group: dict) -> None:
    assert group["name"] == "web" and group["description"] == "web servers"
    rules = {(r["direction"], r["ethertype"]) for r in group["security_group_rules"]}
    assert rules == {("egress", "IPv4"), ("egress", "IPv6")}
    names = sorted(g["name"] for g in api.demo.get("/security-groups").json()["security_groups"])
    assert names == ["default", "web"]


def test_rules_say_whether_they_belong_to_the_default_group(api: Api, group: dict) -> None:
    [default] = [
        g
        for g in api.demo.get("/security-groups").json()["security_groups"]
        if g["name"] == "default"
    ]
    by_group = {
        default["id"]: {r["id"] for r in default["security_group_rules"]},
        group["id"]: {r["id"] for r in group["security_group_rules"]},
    }
    for embedded in default["security_group_rules"]:
        assert embedded["belongs_to_default_sg"] is True
    added = add_rule(api.demo, group["id"], protocol="tcp").json()["security_group_rule"]
    assert added["belongs_to_default_sg"] is False
    by_group[group["id"]].add(added["id"])

    def listed(**filters: str) -> set[str]:
        rules = api.demo.get("/security-group-rules", params=filters).json()
        return {r["id"] for r in rules["security_group_rules"]}

    assert listed(belongs_to_default_sg="True") == by_group[default["id"]]
    assert listed(belongs_to_default_sg="false") == by_group[group["id"]]
    assert listed(belongs_to_default_sg="true", security_group_id=group["id"]) == set()
    shown = api.demo.get(f"/security-group-rules/{added['id']}", params={"fields": "id"}).json()
    assert shown == {"security_group_rule": {"id": added["id"]}}
    error(
        api.demo.get("/security-group-rules", params={"belongs_to_default_sg": "maybe"}),
        400,
        "InvalidInput",
    )
    refused = add_rule(api.demo, group["id"], protocol="udp", belongs_to_default_sg=True)
    error(refused, 400, "BadRequest")


def test_rule_shape_and_group_embedding(api: Api, group: dict) -> None:
    response = add_rule(
        api.demo,
        group["id"],
        protocol="TCP",
        port_range_min=80,
        port_range_max=80,
        remote_ip_prefix="192.168.1.7/24",
        description="http",
    )
    assert response.status_code == 201, response.text
    rule = response.json()["security_group_rule"]
    assert rule["protocol"] == "tcp" and rule["ethertype"] == "IPv4"
    assert rule["remote_ip_prefix"] == "192.168.1.7/24"
    assert rule["normalized_cidr"] == "192.168.1.0/24"
    assert rule["description"] == "http" and rule["security_group_id"] == group["id"]
    assert rule["project_id"] == api.demo.project_id and "name" not in rule
    embedded = api.demo.get(f"/security-groups/{group['id']}").json()["security_group"]
    assert rule["id"] in {r["id"] for r in embedded["security_group_rules"]}
    assert embedded["revision_number"] == 2
    assert api.demo.get(f"/security-group-rules/{rule['id']}").json()["security_group_rule"] == rule


@pytest.mark.parametrize(
    ("given", "stored"),
    [("6", "6"), (17, "17"), ("ICMP", "icmp"), ("any", None), ("vrrp", "vrrp"), ("255", "255")],
)
def test_protocol_normalization(api: Api, group: dict, given: Any, stored: str | None) -> None:
    rule = add_rule(api.demo, group["id"], protocol=given).json()["security_group_rule"]
    assert rule["protocol"] == stored


@pytest.mark.parametrize(
    ("rule", "status", "kind"),
    [
        ({"protocol": "bogus"}, 400, "SecurityGroupRuleInvalidProtocol"),
        ({"protocol": "256"}, 400, "SecurityGroupRuleInvalidProtocol"),
        (
            {"protocol": "tcp", "port_range_min": 90, "port_range_max": 80},
            400,
            "SecurityGroupInvalidPortRange",
        ),
        ({"protocol": "tcp", "port_range_min": 80}, 400, "SecurityGroupInvalidPortRange"),
        (
            {"protocol": "udp", "port_range_min": 0, "port_range_max": 10},
            400,
            "SecurityGroupInvalidPortValue",
        ),
        (
            {"protocol": "tcp", "port_range_min": 1, "port_range_max": 65536},
            400,
            "SecurityGroupInvalidPortValue",
        ),
        (
            {"port_range_min": 22, "port_range_max": 22},
            400,
            "SecurityGroupProtocolRequiredWithPorts",
        ),
        ({"protocol": "icmp", "port_range_min": 256}, 400, "SecurityGroupInvalidIcmpValue"),
        (
            {"protocol": "icmp", "port_range_min": 8, "port_range_max": 256},
            400,
            "SecurityGroupInvalidIcmpValue",
        ),
        ({"protocol": "icmp", "port_range_max": 0}, 400, "SecurityGroupMissingIcmpType"),
        (
            {"protocol": "gre", "port_range_min": 1, "port_range_max": 1},
            400,
            "SecurityGroupInvalidProtocolForPortRange",
        ),
        (
            {"protocol": "ipv6-icmp", "ethertype": "IPv4"},
            400,
            "SecurityGroupEthertypeConflictWithProtocol",
        ),
        ({"remote_ip_prefix": "fd00::/64"}, 400, "SecurityGroupRuleParameterConflict"),
        (
            {"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": MISSING},
            400,
            "SecurityGroupMultipleRemoteEntites",
        ),
        ({"remote_group_id": MISSING}, 404, "SecurityGroupNotFound"),
        ({"remote_group_id": "not-a-uuid"}, 404, "SecurityGroupNotFound"),
        (
            {"protocol": "tcp", "port_range_min": -16, "port_range_max": 80},
            400,
            "SecurityGroupInvalidPortValue",
        ),
        ({"remote_ip_prefix": "not-an-ip"}, 400, "InvalidInput"),
        ({"ethertype": "IPv5"}, 400, "SecurityGroupRuleInvalidEtherType"),
        ({"direction": "sideways"}, 400, "InvalidInput"),
    ],
)
def test_rule_validation(api: Api, group: dict, rule: dict, status: int, kind: str) -> None:
    error(add_rule(api.demo, group["id"], **rule), status, kind)


def test_valid_port_and_icmp_ranges(api: Api, group: dict) -> None:
    for rule in (
        {"protocol": "tcp", "port_range_min": 1, "port_range_max": 65535},
        {"protocol": "icmp", "port_range_min": 8, "port_range_max": 0},
        {"protocol": "icmp", "port_range_min": 3},
        {"protocol": "ipv6-icmp", "ethertype": "ipv6", "port_range_min": 128},
        {
            "protocol": "udp",
            "port_range_min": 53,
            "port_range_max": 53,
            "ethertype": "IPv6",
            "remote_ip_prefix": "fd00::1/64",
        },
    ):
        response = add_rule(api.demo, group["id"], **rule)
        assert response.status_code == 201, (rule, response.text)
    assert response.json()["security_group_rule"]["remote_ip_prefix"] == "fd00::1/64"
    assert response.json()["security_group_rule"]["normalized_cidr"] == "fd00::/64"


def test_remote_prefix_kept_as_sent(api: Api, group: dict) -> None:
    host = add_rule(api.demo, group["id"], remote_ip_prefix="10.1.2.3").json()[
        "security_group_rule"
    ]
    assert host["remote_ip_prefix"] == host["normalized_cidr"] == "10.1.2.3/32"
    same = add_rule(api.demo, group["id"], protocol="udp", remote_ip_prefix="10.1.0.0/16")
    assert same.status_code == 201
    twin = add_rule(api.demo, group["id"], protocol="udp", remote_ip_prefix="10.1.9.9/16")
    error(twin, 409, "SecurityGroupRuleExists")  # the same network, written differently


def test_invalid_port_names_the_port(api: Api, group: dict) -> None:
    response = add_rule(
        api.demo, group["id"], protocol="tcp", port_range_min=80, port_range_max=65536
    )
    assert error(response, 400, "SecurityGroupInvalidPortValue") == "Invalid value for port 65536"


def test_duplicate_rules(api: Api, group: dict) -> None:
    first = add_rule(
        api.demo, group["id"], protocol="tcp", port_range_min=22, port_range_max=22
    ).json()
    rule_id = first["security_group_rule"]["id"]
    # The same rule spelled differently: protocol by number, "anywhere" as a prefix.
    for spelling in (
        {"protocol": "tcp"},
        {"protocol": "6"},
        {"protocol": "tcp", "remote_ip_prefix": "0.0.0.0/0"},
    ):
        duplicate = add_rule(
            api.demo, group["id"], port_range_min=22, port_range_max=22, **spelling
        )
        assert rule_id in error(duplicate, 409, "SecurityGroupRuleExists")
    egress = add_rule(api.demo, group["id"], direction="egress")
    error(egress, 409, "SecurityGroupRuleExists")
    assert (
        add_rule(
            api.demo, group["id"], protocol="tcp", port_range_min=22, port_range_max=23
        ).status_code
        == 201
    )


def test_remote_group_and_its_deletion(api: Api, group: dict) -> None:
    peer = api.demo.create("security-groups", name="peer")
    rule = add_rule(api.demo, group["id"], remote_group_id=peer["id"]).json()["security_group_rule"]
    assert rule["remote_group_id"] == peer["id"] and rule["remote_ip_prefix"] is None
    assert api.demo.delete(f"/security-groups/{peer['id']}").status_code == 204
    # Rules naming a deleted group go with it.
    error(api.demo.get(f"/security-group-rules/{rule['id']}"), 404, "SecurityGroupRuleNotFound")


def test_group_in_use_by_a_port(api: Api, group: dict) -> None:
    net = api.demo.create("networks", name="n")
    api.demo.create("subnets", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
    port = api.demo.create("ports", network_id=net["id"], security_groups=[group["id"]])
    error(api.demo.delete(f"/security-groups/{group['id']}"), 409, "SecurityGroupInUse")
    api.demo.put(f"/ports/{port['id']}", json={"port": {"security_groups": []}})
    assert api.demo.delete(f"/security-groups/{group['id']}").status_code == 204
    assert api.demo.get(
        "/security-group-rules", params={"security_group_id": group["id"]}
    ).json() == {"security_group_rules": []}


def test_rule_update_and_delete(api: Api, group: dict) -> None:
    rule = add_rule(
        api.demo, group["id"], protocol="udp", port_range_min=53, port_range_max=53
    ).json()
    rule_id = rule["security_group_rule"]["id"]
    described = api.demo.put(
        f"/security-group-rules/{rule_id}", json={"security_group_rule": {"description": "dns"}}
    )
    assert described.json()["security_group_rule"]["description"] == "dns"
    not_allowed = api.demo.put(
        f"/security-group-rules/{rule_id}", json={"security_group_rule": {"protocol": "tcp"}}
    )
    error(not_allowed, 400, "BadRequest")
    assert api.demo.delete(f"/security-group-rules/{rule_id}").status_code == 204
    error(api.demo.delete(f"/security-group-rules/{rule_id}"), 404, "SecurityGroupRuleNotFound")


def test_rule_filters(api: Api, group: dict) -> None:
    add_rule(api.demo, group["id"], protocol="tcp", port_range_min=80, port_range_max=80)
    add_rule(api.demo, group["id"], protocol="icmp")

    def count(**params: Any) -> int:
        return len(
            api.demo.get(
                "/security-group-rules", params={"security_group_id": group["id"], **params}
            ).json()["security_group_rules"]
        )

    assert count() == 4
    assert (
        count(direction="ingress") == 2
        and count(protocol="tcp") == 1
        and count(port_range_min=80) == 1
    )
    assert count(ethertype="IPv6") == 1


def test_groups_are_private_to_their_project(api: Api, group: dict) -> None:
    error(api.demo2.get(f"/security-groups/{group['id']}"), 404, "SecurityGroupNotFound")
    assert "web" not in {
        g["name"] for g in api.demo2.get("/security-groups").json()["security_groups"]
    }
    error(add_rule(api.demo2, group["id"]), 404, "SecurityGroupNotFound")
    error(api.demo2.delete(f"/security-groups/{group['id']}"), 404, "SecurityGroupNotFound")
    demo_rule = group["security_group_rules"][0]["id"]
    error(api.demo2.get(f"/security-group-rules/{demo_rule}"), 404, "SecurityGroupRuleNotFound")
    error(api.demo2.delete(f"/security-group-rules/{demo_rule}"), 404, "SecurityGroupRuleNotFound")
    # Another project's group can be neither a remote group nor a port's group.
    own = api.demo2.create("security-groups", name="own")
    error(add_rule(api.demo2, own["id"], remote_group_id=group["id"]), 404, "SecurityGroupNotFound")
    net = api.demo2.create("networks", name="n")
    api.demo2.create("subnets", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
    stolen = api.demo2.post(
        "/ports", json={"port": {"network_id": net["id"], "security_groups": [group["id"]]}}
    )
    error(stolen, 404, "SecurityGroupNotFound")
    assert group["id"] in {
        g["id"] for g in api.admin.get("/security-groups").json()["security_groups"]
    }


def test_admin_rule_in_a_project_group_belongs_to_that_project(api: Api, group: dict) -> None:
    rule = add_rule(api.admin, group["id"], protocol="tcp", port_range_min=443, port_range_max=443)
    assert rule.json()["security_group_rule"]["project_id"] == api.demo.project_id
    assert (
        api.demo.get(
            f"/security-group-rules/{rule.json()['security_group_rule']['id']}"
        ).status_code
        == 200
    )


def test_group_and_rule_quotas(api: Api) -> None:
    api.admin.put(
        f"/quotas/{api.demo.project_id}",
        json={"quota": {"security_group": 2, "security_group_rule": 7}},
    )
    group = api.demo.create("security-groups", name="one")  # with default: 2 groups, 6 rules
    error(
        api.demo.post("/security-groups", json={"security_group": {"name": "two"}}),
        409,
        "OverQuota",
    )
    assert add_rule(api.demo, group["id"], protocol="tcp").status_code == 201
    error(add_rule(api.demo, group["id"], protocol="udp"), 409, "OverQuota")


def test_stateful_by_default_and_fixed_while_ports_use_it(api: Api) -> None:
    assert api.demo.create("security-groups", name="tracked")["stateful"] is True
    stateless = api.demo.create("security-groups", name="s", stateful=False)
    assert stateless["stateful"] is False
    listed = api.demo.get("/security-groups", params={"stateful": "false"}).json()
    assert [g["id"] for g in listed["security_groups"]] == [stateless["id"]]
    net = api.demo.create("networks", name="n")
    api.demo.create("subnets", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
    port = api.demo.create("ports", network_id=net["id"], security_groups=[stateless["id"]])
    change = {"security_group": {"stateful": True}}
    message = error(
        api.demo.put(f"/security-groups/{stateless['id']}", json=change), 409, "SecurityGroupInUse"
    )
    assert message == f"Security Group {stateless['id']} in use."
    api.demo.put(f"/ports/{port['id']}", json={"port": {"security_groups": []}})
    changed = api.demo.put(f"/security-groups/{stateless['id']}", json=change)
    assert changed.json()["security_group"]["stateful"] is True


def test_a_port_takes_stateful_or_stateless_groups_not_both(api: Api) -> None:
    tracked = api.demo.create("security-groups", name="tracked")
    stateless = api.demo.create("security-groups", name="s", stateful=False)
    net = api.demo.create("networks", name="n")
    api.demo.create("subnets", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
    both = {"network_id": net["id"], "security_groups": [tracked["id"], stateless["id"]]}
    message = error(api.demo.post("/ports", json={"port": both}), 409, "SecurityGroupConflict")
    assert message == (
        "Error Cannot apply both stateful and stateless security groups on the same port at "
        "the same time while attempting the operation."
    )
    ports = api.demo.get("/ports", params={"device_owner": ""}).json()["ports"]
    assert ports == []


def test_default_group_does_not_use_up_the_quota(api: Api) -> None:
    project = api.demo2.project_id

    def groups() -> set[str]:
        listed = api.admin.get("/security-groups", params={"project_id": project}).json()
        return {g["name"] for g in listed["security_groups"]}

    api.admin.put(f"/quotas/{project}", json={"quota": {"security_group": 1}})
    api.admin.create("security-groups", name="one", project_id=project)  # the default one too
    assert groups() == {"default", "one"}
    over = api.admin.post(
        "/security-groups", json={"security_group": {"name": "two", "project_id": project}}
    )
    error(over, 409, "OverQuota")


def test_a_group_needs_room_for_its_egress_rules(api: Api) -> None:
    api.demo.get("/security-groups")  # the default group and its rules exist before the limit
    api.admin.put(f"/quotas/{api.demo.project_id}", json={"quota": {"security_group_rule": 5}})
    one_more = {"security_group": {"name": "g"}}
    error(api.demo.post("/security-groups", json=one_more), 409, "OverQuota")
    api.admin.put(f"/quotas/{api.demo.project_id}", json={"quota": {"security_group_rule": 6}})
    assert api.demo.post("/security-groups", json=one_more).status_code == 201


def test_ports_filtered_by_security_groups(api: Api) -> None:
    web, db = (api.demo.create("security-groups", name=name) for name in ("web", "db"))
    net = api.demo.create("networks", name="n")
    api.demo.create("subnets", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
    front = api.demo.create("ports", network_id=net["id"], security_groups=[web["id"]])
    back = api.demo.create("ports", network_id=net["id"], security_groups=[web["id"], db["id"]])

    def found(*groups: str) -> set[str]:
        listed = api.demo.get("/ports", params={"security_groups": list(groups)}).json()
        return {p["id"] for p in listed["ports"]}

    assert found(web["id"]) == {front["id"], back["id"]}
    assert found(db["id"]) == {back["id"]}
    assert found("8d2b1c7e-0000-4000-8000-000000000000") == set()
    aliases = {e["alias"] for e in api.demo.get("/extensions").json()["extensions"]}
    assert "port-security-groups-filtering" in aliases


def test_default_statefulness_per_project_then_system_wide(api: Api) -> None:
    path = "/security-groups-default-statefulness"
    member = "security_groups_default_statefulness"

    def new_group(client: ApiClient, name: str) -> bool:
        return client.create("security-groups", name=name)["stateful"]

    everywhere = api.admin.post(path, json={member: {"project_id": None, "stateful": False}})
    assert everywhere.status_code == 201, everywhere.text
    setting = everywhere.json()[member]
    assert (setting["project_id"], setting["stateful"]) == (None, False)
    demo = api.admin.post(path, json={member: {"project_id": api.demo.project_id}}).json()[member]
    assert demo["stateful"] is True
    assert new_group(api.demo, "a") is True and new_group(api.demo2, "b") is False
    explicit = api.demo2.create("security-groups", name="c", stateful=True)
    assert explicit["stateful"] is True
    [default] = api.demo2.get("/security-groups", params={"name": "default"}).json()[
        "security_groups"
    ]
    assert default["stateful"] is True  # the default group is always stateful

    again = api.admin.post(path, json={member: {"project_id": None}})
    message = error(again, 409, "SecurityGroupDefaultStatefulnessAlreadyExists")
    assert message == (
        "A security group default statefulness setting already exists for project 'system-wide'."
    )
    # A project's readers see its own setting; only admins change them.
    assert [s["id"] for s in api.demo.get(path).json()[member]] == [demo["id"]]
    assert api.demo2.get(path).json()[member] == []
    message = error(
        api.demo2.get(f"{path}/{demo['id']}"), 404, "SecurityGroupDefaultStatefulnessNotFound"
    )
    assert message == f"Security group default statefulness {demo['id']} could not be found."
    change = {member: {"stateful": False}}
    message = error(api.demo.put(f"{path}/{demo['id']}", json=change), 403, "PolicyNotAuthorized")
    assert message == "rule:update_security_groups_default_statefulness is disallowed by policy"
    error(api.demo.post(path, json={member: {}}), 403, "PolicyNotAuthorized")
    assert api.admin.put(f"{path}/{demo['id']}", json=change).json()[member]["stateful"] is False
    assert new_group(api.demo, "d") is False
    assert api.admin.delete(f"{path}/{setting['id']}").status_code == 204
    assert new_group(api.demo2, "e") is True
