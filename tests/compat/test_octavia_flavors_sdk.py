"""Unchanged openstacksdk's load_balancer proxy against a live neutrino: flavor profiles, flavors,
availability zone profiles and zones written by the administrator, a member's load balancer
created with a flavor and a zone."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openstack import exceptions

from tests.conftest import LiveServer

pytestmark = pytest.mark.compat


def test_flavors_and_zones_with_a_load_balancer(admin: Any, demo: Any) -> None:
    lbaas = admin.load_balancer
    capabilities = [c.name for c in lbaas.provider_flavor_capabilities("amphora")]
    assert capabilities == ["loadbalancer_topology", "default_connection_limit"]
    data = json.dumps({"loadbalancer_topology": "SINGLE", "default_connection_limit": 1000})
    profile = lbaas.create_flavor_profile(name="sdk-fp", provider_name="amphora", flavor_data=data)
    assert (profile.name, profile.provider_name, profile.flavor_data) == ("sdk-fp", "amphora", data)
    flavor = lbaas.create_flavor(
        name="sdk-small", flavor_profile_id=profile.id, description="one haproxy", is_enabled=True
    )
    zone_profile = lbaas.create_availability_zone_profile(
        name="sdk-azp",
        provider_name="amphora",
        availability_zone_data=json.dumps({"compute_zone": "nova"}),
    )
    zone = lbaas.create_availability_zone(
        name="sdk-east", availability_zone_profile_id=zone_profile.id, is_enabled=True
    )
    assert (zone.name, zone.is_enabled) == ("sdk-east", True)

    with pytest.raises(exceptions.ForbiddenException):
        demo.load_balancer.create_flavor(name="mine", flavor_profile_id=profile.id)
    with pytest.raises(exceptions.HttpException) as unsupported:
        lbaas.create_flavor_profile(
            name="sdk-ha",
            provider_name="amphora",
            flavor_data=json.dumps({"loadbalancer_topology": "ACTIVE_ACTIVE"}),
        )
    assert unsupported.value.status_code == 400
    assert "is not one of ['ACTIVE_STANDBY', 'SINGLE']" in str(unsupported.value)

    # A member sees the flavors and zones (not their profiles) and uses them.
    assert demo.load_balancer.find_flavor("sdk-small").id == flavor.id
    assert [z.name for z in demo.load_balancer.availability_zones()] == ["sdk-east"]
    net = demo.network.create_network(name="sdk-lb-net")
    subnet = demo.network.create_subnet(
        network_id=net.id, cidr="192.168.71.0/24", ip_version=4, name="sdk-lb-sub"
    )
    lb = demo.load_balancer.create_load_balancer(
        name="sdk-lb", vip_subnet_id=subnet.id, flavor_id=flavor.id, availability_zone="sdk-east"
    )
    assert (lb.flavor_id, lb.availability_zone) == (flavor.id, "sdk-east")
    listed = {item.id: item for item in demo.load_balancer.load_balancers(name="sdk-lb")}
    assert listed[lb.id].flavor_id == flavor.id

    assert [p.id for p in lbaas.flavor_profiles()] == [profile.id]
    assert [f.name for f in lbaas.flavors()] == ["sdk-small"]
    assert [p.name for p in lbaas.availability_zone_profiles()] == ["sdk-azp"]
    lbaas.update_flavor(flavor, is_enabled=False)
    with pytest.raises(exceptions.BadRequestException) as disabled:
        demo.load_balancer.create_load_balancer(vip_subnet_id=subnet.id, flavor_id=flavor.id)
    assert f"The selected flavor is not allowed in this deployment: {flavor.id}" in str(
        disabled.value
    )
    with pytest.raises(exceptions.ConflictException):
        lbaas.delete_flavor(flavor)
    with pytest.raises(exceptions.ConflictException):
        lbaas.delete_flavor_profile(profile)


def test_the_readme_commands(live_server: LiveServer) -> None:
    """The README's flavor example, with the unchanged `openstack loadbalancer` commands."""
    data = json.dumps({"default_connection_limit": 1000})
    profile = live_server.cli(
        "loadbalancer",
        "flavorprofile",
        "create",
        "--name",
        "cli-fp",
        "--provider",
        "amphora",
        "--flavor-data",
        data,
    )
    assert (profile["provider_name"], profile["flavor_data"]) == ("amphora", data)
    flavor = live_server.cli(
        "loadbalancer",
        "flavor",
        "create",
        "--name",
        "cli-small",
        "--flavorprofile",
        "cli-fp",
        "--enable",
    )
    assert (flavor["flavor_profile_id"], flavor["enabled"]) == (profile["id"], True)
    live_server.cli("network", "create", "cli-lb-net", cloud="neutrino-demo")
    live_server.cli(
        "subnet",
        "create",
        "cli-lb-sub",
        "--network",
        "cli-lb-net",
        "--subnet-range",
        "192.168.72.0/24",
        cloud="neutrino-demo",
    )
    lb = live_server.cli(
        "loadbalancer",
        "create",
        "--vip-subnet-id",
        "cli-lb-sub",
        "--flavor",
        "cli-small",
        cloud="neutrino-demo",
    )
    assert lb["flavor_id"] == flavor["id"]
    refused = live_server.run_cli("loadbalancer", "flavor", "delete", "cli-small")
    assert refused.returncode != 0
    assert f"Flavor {flavor['id']} is in use and cannot be modified." in refused.stderr
