"""Default security group rules: the templates every new group takes its rules from."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, ApiClient
from tests.conftest import expect_error as error

KEYS = (
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
)


def templates(client: ApiClient, **filters: Any) -> list[dict[str, Any]]:
    listed = client.get("/default-security-group-rules", params=filters)
    assert listed.status_code == 200, listed.text
    return listed.json()["default_security_group_rules"]


def shape(rule: dict[str, Any]) -> tuple:
    return tuple(rule[key] for key in KEYS)


def template(**values: Any) -> dict[str, Any]:
    return {"default_security_group_rule": values}


def test_neutrons_templates_to_begin_with(api: Api) -> None:
    found = {
        (*shape(t), t["used_in_default_sg"], t["used_in_non_default_sg"], t["description"])
        for t in templates(api.demo)
    }
    egress, ingress = (
        "Legacy default SG rule for egress traffic",
        "Legacy default SG rule for ingress traffic",
    )
    nothing = (None,) * 5
    assert found == {
        ("egress", "IPv4", *nothing, None, True, True, egress),
        ("egress", "IPv6", *nothing, None, True, True, egress),
        ("ingress", "IPv4", *nothing[:4], "PARENT", None, True, False, ingress),
        ("ingress", "IPv6", *nothing[:4], "PARENT", None, True, False, ingress),
    }
    assert len(templates(api.demo, used_in_non_default_sg="true")) == 2


def test_new_groups_take_their_rules_from_the_templates(api: Api) -> None:
    http = api.admin.create(
        "default-security-group-rules",
        direction="ingress",
        protocol="tcp",
        port_range_min=80,
        port_range_max=80,
        used_in_default_sg=False,
        used_in_non_default_sg=True,
        description="web",
    )
    assert (http["used_in_default_sg"], http["used_in_non_default_sg"]) == (False, True)
    assert shape(http) == ("ingress", "IPv4", "tcp", 80, 80, None, None, None)
    ssh = api.admin.create(
        "default-security-group-rules",
        direction="ingress",
        protocol="tcp",
        port_range_min=22,
        port_range_max=22,
        remote_ip_prefix="192.0.2.0/24",
        used_in_default_sg=True,
        used_in_non_default_sg=False,
    )
    assert api.admin.get(f"/default-security-group-rules/{ssh['id']}").json() == {
        "default_security_group_rule": ssh
    }
    group = api.demo2.create("security-groups", name="web")
    listed = api.demo2.get("/security-groups", params={"name": "default"}).json()
    [default] = listed["security_groups"]
    rules = {shape(r) for r in group["security_group_rules"]}
    assert rules == {
        ("egress", "IPv4", *(None,) * 6),
        ("egress", "IPv6", *(None,) * 6),
        ("ingress", "IPv4", "tcp", 80, 80, None, None, None),
    }
    assert {shape(r) for r in default["security_group_rules"]} == {
        ("egress", "IPv4", *(None,) * 6),
        ("egress", "IPv6", *(None,) * 6),
        ("ingress", "IPv4", None, None, None, None, default["id"], None),
        ("ingress", "IPv6", None, None, None, None, default["id"], None),
        ("ingress", "IPv4", "tcp", 22, 22, "192.0.2.0/24", None, None),
    }
    # Groups made before a template goes keep their rules; later ones do without it.
    assert api.admin.delete(f"/default-security-group-rules/{http['id']}").status_code == 204
    message = error(
        api.admin.get(f"/default-security-group-rules/{http['id']}"),
        404,
        "DefaultSecurityGroupRuleNotFound",
    )
    assert message == f"Default Security Group rule {http['id']} does not exist"
    later = api.demo2.create("security-groups", name="later")
    assert {shape(r)[0] for r in later["security_group_rules"]} == {"egress"}
    assert (
        len(
            api.demo2.get(f"/security-groups/{group['id']}").json()["security_group"][
                "security_group_rules"
            ]
        )
        == 3
    )


def test_the_same_template_twice_for_one_kind_of_group(api: Api) -> None:
    rule = {"direction": "ingress", "protocol": "udp", "port_range_min": 53, "port_range_max": 53}
    first = api.admin.create(
        "default-security-group-rules", **rule, used_in_default_sg=True, used_in_non_default_sg=True
    )
    for kinds in ((True, False), (False, True)):
        again = api.admin.post(
            "/default-security-group-rules",
            json=template(**rule, used_in_default_sg=kinds[0], used_in_non_default_sg=kinds[1]),
        )
        message = error(again, 409, "DefaultSecurityGroupRuleExists")
        assert message == (f"Default Security group rule already exists. Rule id is {first['id']}.")
    api.admin.delete(f"/default-security-group-rules/{first['id']}")
    for kinds in ((True, False), (False, True)):
        api.admin.create(
            "default-security-group-rules",
            **rule,
            used_in_default_sg=kinds[0],
            used_in_non_default_sg=kinds[1],
        )


def test_only_admins_write_templates_and_bad_ones_are_refused(api: Api) -> None:
    body = template(direction="egress", used_in_default_sg=False, used_in_non_default_sg=True)
    message = error(
        api.demo.post("/default-security-group-rules", json=body), 403, "PolicyNotAuthorized"
    )
    assert message == "rule:create_default_security_group_rule is disallowed by policy"
    [one, *_] = templates(api.demo)
    error(api.demo.delete(f"/default-security-group-rules/{one['id']}"), 403, "PolicyNotAuthorized")
    missing = api.admin.post(
        "/default-security-group-rules", json=template(direction="egress", used_in_default_sg=True)
    )
    message = error(missing, 400, "BadRequest")
    assert message == (
        "Bad default_security_group_rule request: Failed to parse request. Required attribute "
        "'used_in_non_default_sg' not specified."
    )
    both = template(
        direction="ingress",
        remote_ip_prefix="10.0.0.0/8",
        remote_group_id="PARENT",
        used_in_default_sg=True,
        used_in_non_default_sg=True,
    )
    error(
        api.admin.post("/default-security-group-rules", json=both),
        400,
        "SecurityGroupMultipleRemoteEntites",
    )
    ports = template(
        direction="ingress",
        protocol="tcp",
        port_range_min=90,
        port_range_max=80,
        used_in_default_sg=True,
        used_in_non_default_sg=True,
    )
    error(
        api.admin.post("/default-security-group-rules", json=ports),
        400,
        "SecurityGroupInvalidPortRange",
    )
    assert len(templates(api.admin)) == 4
