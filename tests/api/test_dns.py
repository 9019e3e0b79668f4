"""DNS integration: ports' dns_name, dns_domain and dns_assignment, networks' dns_domain, and
Neutron's checks of them, with the service's domain configured and with the default."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from neutrino.config import Settings
from tests.conftest import Api
from tests.conftest import expect_error as error

# The DNS domain is the application's setting: in-process on both backends.
pytestmark = pytest.mark.in_process


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, dns_domain="example.org")


@pytest.fixture
def network(api: Api) -> dict[str, Any]:
    net = api.demo.create("networks", name="net")
    api.demo.create("subnets", network_id=net["id"], cidr="10.9.0.0/24", ip_version=4)
    return net


def assigned(port: dict[str, Any]) -> list[tuple[str, str]]:
    """(hostname, fqdn) of each address, checking the address is the port's."""
    addresses = [ip["ip_address"] for ip in port["fixed_ips"]]
    assert [a["ip_address"] for a in port["dns_assignment"]] == addresses
    return [(a["hostname"], a["fqdn"]) for a in port["dns_assignment"]]


def user_ports(api: Api) -> list[dict[str, Any]]:
    """The demo project's ports but DHCP servers'."""
    return api.demo.get("/ports", params={"device_owner": ""}).json()["ports"]


def show(api: Api, port: dict[str, Any]) -> dict[str, Any]:
    shown = api.demo.get(f"/ports/{port['id']}").json()["port"]
    listed = api.demo.get("/ports", params={"id": port["id"]}).json()["ports"]
    assert listed == [shown]
    return shown


def test_network_dns_domain(api: Api) -> None:
    plain = api.demo.create("networks", name="plain")
    assert plain["dns_domain"] == ""
    net = api.demo.create("networks", name="net", dns_domain="Test.ORG.")
    assert net["dns_domain"] == "test.org."
    assert api.demo.get(f"/networks/{net['id']}").json()["network"]["dns_domain"] == "test.org."
    response = api.demo.put(f"/networks/{net['id']}", json={"network": {"dns_domain": "d.org."}})
    assert response.status_code == 200, response.text
    updated = response.json()["network"]
    assert updated["dns_domain"] == "d.org."
    assert updated["revision_number"] > net["revision_number"]
    cleared = api.demo.put(f"/networks/{net['id']}", json={"network": {"dns_domain": ""}})
    assert cleared.json()["network"]["dns_domain"] == ""


def test_ports_names_in_the_configured_domain(api: Api, network: dict[str, Any]) -> None:
    named = api.demo.create("ports", network_id=network["id"], dns_name="VM1")
    assert (named["dns_name"], named["dns_domain"]) == ("vm1", "")
    assert assigned(named) == [("vm1", "vm1.example.org.")]
    assert show(api, named) == named

    plain = api.demo.create("ports", network_id=network["id"])
    host = "host-" + plain["fixed_ips"][0]["ip_address"].replace(".", "-")
    assert (plain["dns_name"], plain["dns_domain"]) == ("", "")
    assert assigned(plain) == [(host, f"{host}.example.org.")]

    qualified = api.demo.create(
        "ports", network_id=network["id"], dns_name="vm2.example.org.", dns_domain="test.org."
    )
    assert (qualified["dns_name"], qualified["dns_domain"]) == ("vm2.example.org.", "test.org.")
    assert assigned(qualified) == [("vm2.example.org.", "vm2.example.org.")]

    two_labels = api.demo.create("ports", network_id=network["id"], dns_name="a.b")
    assert assigned(two_labels) == [("a.b", "a.b.example.org.")]

    # An update renames every address; an empty name gives them their host- names again.
    subnet = {"subnet_id": named["fixed_ips"][0]["subnet_id"]}
    body = {"dns_name": "vm3", "dns_domain": "d.org.", "fixed_ips": [subnet, subnet]}
    response = api.demo.put(f"/ports/{named['id']}", json={"port": body})
    assert response.status_code == 200, response.text
    renamed = response.json()["port"]
    assert (renamed["dns_name"], renamed["dns_domain"]) == ("vm3", "d.org.")
    assert assigned(renamed) == [("vm3", "vm3.example.org.")] * 2
    assert renamed["revision_number"] > named["revision_number"]
    assert show(api, renamed) == renamed
    response = api.demo.put(f"/ports/{named['id']}", json={"port": {"dns_name": ""}})
    hosts = [
        "host-" + ip["ip_address"].replace(".", "-") for ip in response.json()["port"]["fixed_ips"]
    ]
    assert assigned(response.json()["port"]) == [(h, f"{h}.example.org.") for h in hosts]
    assert response.json()["port"]["dns_domain"] == "d.org."


def test_fields_and_filters(api: Api, network: dict[str, Any]) -> None:
    port = api.demo.create("ports", network_id=network["id"], dns_name="vm1")
    listed = api.demo.get(
        "/ports", params={"id": port["id"], "fields": ["dns_assignment", "dns_name"]}
    ).json()["ports"]
    assert listed == [{"dns_assignment": port["dns_assignment"], "dns_name": "vm1"}]
    for resource, attr in (
        ("ports", "dns_name"),
        ("ports", "dns_domain"),
        ("networks", "dns_domain"),
    ):
        message = error(api.demo.get(f"/{resource}", params={attr: "x"}), 400, "HTTPBadRequest")
        assert message == f"{attr} is invalid attribute for filtering"


def test_a_port_without_addresses_has_no_assignment(api: Api) -> None:
    net = api.demo.create("networks", name="bare")
    port = api.demo.create("ports", network_id=net["id"], dns_name="vm1")
    assert (port["dns_name"], port["dns_assignment"]) == ("vm1", [])


def test_one_name_on_several_ports(api: Api, network: dict[str, Any]) -> None:
    """Neutron lets ports of one network share a dns_name: each address answers to it."""
    first = api.demo.create("ports", network_id=network["id"], dns_name="web")
    second = api.demo.create("ports", network_id=network["id"], dns_name="web")
    assert assigned(first) == assigned(second) == [("web", "web.example.org.")]


def test_an_instance_s_port_is_named_after_it(api: Api, network: dict[str, Any]) -> None:
    """As Nova names a server's ports: its hostname, made of its name."""
    created = api.demo.http.post(
        "/lab/v1/instances",
        headers={"X-Auth-Token": api.demo.token},
        json={"instance": {"name": "Web_Server.1 é", "networks": [{"network_id": network["id"]}]}},
    )
    assert created.status_code == 201, created.text
    [port_id] = created.json()["instance"]["port_ids"]
    port = api.demo.get(f"/ports/{port_id}").json()["port"]
    assert port["dns_name"] == "web-server-1"
    assert assigned(port) == [("web-server-1", "web-server-1.example.org.")]


def test_agents_learn_the_domain_with_each_network(api: Api, network: dict[str, Any]) -> None:
    snapshot = api.admin.http.get(
        "/internal/v1/snapshot", headers={"X-Auth-Token": api.admin.token}
    ).json()
    assert [n["dhcp_domain"] for n in snapshot["networks"]] == ["example.org"]


LABEL = "Name '{}' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen"
NAME_ERRORS = [
    ("-vm", "Name '-vm' must not start or end with a hyphen"),
    ("vm.a-", "Name 'a-' must not start or end with a hyphen"),
    ("a..b", "Encountered an empty component"),
    ("vm_1", LABEL.format("vm_1")),
    ("b_c.-a", LABEL.format("b_c")),
    ("x" * 64, LABEL.format("x" * 64)),
    ("vm.123", "TLD '123' must not be all numeric"),
    ("<project_id>", LABEL.format("<project_id>")),
    ("a" * 256 + ".", f"'{'a' * 256}' exceeds the 255 character FQDN limit"),
]


@pytest.mark.parametrize(("value", "reason"), NAME_ERRORS)
def test_names_neutron_refuses(api: Api, network: dict[str, Any], value: str, reason: str) -> None:
    expected = (
        f"Invalid input for dns_name. Reason: '{value}' not a valid PQDN or FQDN. Reason: {reason}."
    )
    create = api.demo.post(
        "/ports", json={"port": {"network_id": network["id"], "dns_name": value}}
    )
    assert error(create, 400, "HTTPBadRequest") == expected
    port = api.demo.create("ports", network_id=network["id"], dns_name="keep")
    update = api.demo.put(f"/ports/{port['id']}", json={"port": {"dns_name": value}})
    assert error(update, 400, "HTTPBadRequest") == expected
    assert show(api, port) == port
    assert len(user_ports(api)) == 1


def test_names_must_go_with_the_configured_domain(api: Api, network: dict[str, Any]) -> None:
    def refused(name: str) -> str:
        response = api.demo.post(
            "/ports", json={"port": {"network_id": network["id"], "dns_name": name}}
        )
        return error(response, 400, "HTTPBadRequest")

    fqdn_reason = (
        "The dns_name passed is a FQDN. Its higher level labels must be equal to the dns_domain "
        "option in neutron.conf, that has been set to 'example.org'. It must also include one "
        "or more valid DNS labels to the left of 'example.org'"
    )
    for name in ("vm.other.org.", "example.org.", "vmexample.org."):
        assert refused(name) == f"Invalid input for dns_name. Reason: {fqdn_reason}."
    long_name = ".".join(["a" * 60] * 4)  # 243 characters, 256 with ".example.org."
    assert refused(long_name) == (
        "Invalid input for dns_name. Reason: The dns_name passed is a PQDN and its size is "
        "'243'. The dns_domain option in neutron.conf is set to example.org, with a length of "
        "'13'. When the two are concatenated to form a FQDN (with a '.' at the end), the "
        "resulting length exceeds the maximum size of '255'."
    )
    fits = api.demo.create("ports", network_id=network["id"], dns_name=long_name[:-1])
    assert assigned(fits) == [(long_name[:-1], f"{long_name[:-1]}.example.org.")]
    assert len(user_ports(api)) == 1


LONG_DOMAIN = ".".join(["a" * 63] * 4) + "."
DOMAIN_ERRORS = [
    ("test.org", "'test.org' is not a FQDN"),
    (
        "-a.org.",
        "'-a.org.' not a valid PQDN or FQDN. Reason: Name '-a' must not start or end with a hyphen",
    ),
    (
        LONG_DOMAIN,
        (
            f"'{LONG_DOMAIN}' contains 256 characters. Adding a sub-domain will cause it to "
            "exceed the maximum length of a FQDN of '255'"
        ),
    ),
]


@pytest.mark.parametrize(("value", "reason"), DOMAIN_ERRORS)
def test_domains_neutron_refuses(
    api: Api, network: dict[str, Any], value: str, reason: str
) -> None:
    expected = f"Invalid input for dns_domain. Reason: {reason}."
    for resource, body in (
        ("networks", {"name": "n"}),
        ("ports", {"network_id": network["id"]}),
    ):
        response = api.demo.post(
            f"/{resource}", json={resource[:-1]: {**body, "dns_domain": value}}
        )
        assert error(response, 400, "HTTPBadRequest") == expected
    response = api.demo.put(f"/networks/{network['id']}", json={"network": {"dns_domain": value}})
    assert error(response, 400, "HTTPBadRequest") == expected
    assert api.demo.get(f"/networks/{network['id']}").json()["network"]["dns_domain"] == ""


def test_strings_only_and_no_assignment_given(api: Api, network: dict[str, Any]) -> None:
    for attr, value in (("dns_name", 5), ("dns_domain", None), ("dns_name", ["a"])):
        response = api.demo.post(
            "/ports", json={"port": {"network_id": network["id"], attr: value}}
        )
        message = error(response, 400, "InvalidInput")
        assert message == f"Invalid input for operation: Input value {value} must be string type."
    response = api.demo.post(
        "/ports", json={"port": {"network_id": network["id"], "dns_assignment": []}}
    )
    error(response, 400, "BadRequest")
    assert user_ports(api) == []


class TestDefaultDomain:
    """With Neutron's default domain, ports keep no dns_name or dns_domain; names are still
    checked, and networks keep theirs."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return dataclasses.replace(settings, dns_domain="openstacklocal")

    def test_names_are_dropped(self, api: Api, network: dict[str, Any]) -> None:
        port = api.demo.create(
            "ports", network_id=network["id"], dns_name="vm1", dns_domain="test.org."
        )
        host = "host-" + port["fixed_ips"][0]["ip_address"].replace(".", "-")
        assert (port["dns_name"], port["dns_domain"]) == ("", "")
        assert assigned(port) == [(host, f"{host}.openstacklocal.")]
        # Any domain goes: there is no configured one to end in.
        response = api.demo.put(
            f"/ports/{port['id']}", json={"port": {"dns_name": "vm.other.org."}}
        )
        assert response.status_code == 200, response.text
        assert response.json()["port"]["dns_name"] == ""
        assert show(api, port)["dns_assignment"] == port["dns_assignment"]
        response = api.demo.put(f"/ports/{port['id']}", json={"port": {"dns_name": "-a"}})
        error(response, 400, "HTTPBadRequest")
        net = api.demo.create("networks", name="n", dns_domain="test.org.")
        assert net["dns_domain"] == "test.org."
