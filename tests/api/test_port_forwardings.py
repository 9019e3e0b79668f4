"""Port forwardings of floating IPs: their shapes, rules and errors as Neutron has them."""

from __future__ import annotations

import pytest

from tests.api.l3 import Topology, private_subnet, routed_topology
from tests.conftest import Api
from tests.conftest import expect_error as error

FIELDS = {
    "id",
    "external_port",
    "internal_port",
    "internal_ip_address",
    "protocol",
    "internal_port_id",
    "description",
    "external_port_range",
    "internal_port_range",
}


@pytest.fixture
def topo(api: Api) -> Topology:
    return routed_topology(api)


def fip_of(api: Api, topo: Topology) -> dict:
    return api.demo.create("floatingips", floating_network_id=topo.ext_net["id"])


def forward(api: Api, fip_id: str, port: dict, **body: object) -> object:
    pf = {
        "protocol": "tcp",
        "internal_port_id": port["id"],
        "internal_ip_address": port["fixed_ips"][0]["ip_address"],
        **body,
    }
    return api.demo.post(f"/floatingips/{fip_id}/port_forwardings", json={"port_forwarding": pf})


def test_life_cycle(api: Api, topo: Topology) -> None:
    fip = fip_of(api, topo)
    assert fip["port_forwardings"] == [] and fip["router_id"] is None
    answer = forward(api, fip["id"], topo.port, internal_port=22, external_port=2222)
    assert answer.status_code == 201, answer.text
    pf = answer.json()["port_forwarding"]
    ip = topo.port["fixed_ips"][0]["ip_address"]
    assert pf == {
        "id": pf["id"],
        "external_port": 2222,
        "internal_port": 22,
        "internal_ip_address": ip,
        "protocol": "tcp",
        "internal_port_id": topo.port["id"],
        "description": "",
        "external_port_range": "2222:2222",
        "internal_port_range": "22:22",
    }
    base = f"/floatingips/{fip['id']}/port_forwardings"
    shown = api.demo.get(f"/floatingips/{fip['id']}").json()["floatingip"]
    # The floating IP takes the router joining the internal subnet to its network.
    assert shown["router_id"] == topo.router["id"] and shown["port_id"] is None
    assert shown["port_forwardings"] == [
        {
            "id": pf["id"],
            "internal_ip_address": ip,
            "protocol": "tcp",
            "internal_port_id": topo.port["id"],
            "external_port": 2222,
            "internal_port": 22,
        }
    ]
    assert api.demo.get(f"{base}/{pf['id']}").json()["port_forwarding"] == pf
    assert api.demo.get(base).json()["port_forwardings"] == [pf]
    updated = api.demo.put(
        f"{base}/{pf['id']}", json={"port_forwarding": {"internal_port": 2022, "description": "d"}}
    ).json()["port_forwarding"]
    assert (updated["internal_port"], updated["description"]) == (2022, "d")
    # In use: the floating IP cannot go, nor be associated with a port.
    assert error(api.demo.delete(f"/floatingips/{fip['id']}"), 409, "FipInUseByPortForwarding") == (
        f"Floating IP {fip['id']} in use by Port Forwarding resources."
    )
    error(
        api.demo.put(
            f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": topo.port["id"]}}
        ),
        409,
        "FipInUseByPortForwarding",
    )
    assert api.demo.delete(f"{base}/{pf['id']}").status_code == 204
    assert error(api.demo.get(f"{base}/{pf['id']}"), 404, "PortForwardingNotFound") == (
        f"Port Forwarding {pf['id']} could not be found."
    )
    shown = api.demo.get(f"/floatingips/{fip['id']}").json()["floatingip"]
    assert shown["port_forwardings"] == [] and shown["router_id"] is None
    assert api.demo.delete(f"/floatingips/{fip['id']}").status_code == 204


def test_port_ranges(api: Api, topo: Topology) -> None:
    fip = fip_of(api, topo)
    pf = forward(
        api, fip["id"], topo.port, external_port_range="3000:3009", internal_port_range="4000:4009"
    ).json()["port_forwarding"]
    assert pf["external_port"] is None and pf["internal_port"] is None
    assert (pf["external_port_range"], pf["internal_port_range"]) == ("3000:3009", "4000:4009")
    many_to_one = forward(
        api, fip["id"], topo.port, protocol="udp", external_port_range="53:60", internal_port=53
    )
    assert many_to_one.json()["port_forwarding"]["internal_port_range"] == "53:53"
    message = error(
        forward(
            api, fip["id"], topo.port, external_port_range="5000:5009", internal_port_range="1:2"
        ),
        400,
        "BadRequest",
    )
    assert message == (
        "Bad port_forwarding request: Invalid ranges of internal and/or external ports. "
        "The relation between internal and external ports must be N-N or 1-N."
    )
    message = error(
        forward(api, fip["id"], topo.port, external_port_range="3005:3100", internal_port=80),
        400,
        "BadRequest",
    )
    assert message == (
        "Bad port_forwarding request: There is a port collision with the external_port_range. "
        "The following ranges collide: 3000:3009 and 3005:3100."
    )
    error(
        forward(api, fip["id"], topo.port, external_port_range="9:8", internal_port=80),
        400,
        "InvalidInput",
    )
    ranges = api.demo.get(
        f"/floatingips/{fip['id']}/port_forwardings", params={"external_port_range": "53:60"}
    ).json()["port_forwardings"]
    assert [p["protocol"] for p in ranges] == ["udp"]
    # Both show in the floating IP, the range without single ports.
    shown = api.demo.get(f"/floatingips/{fip['id']}").json()["floatingip"]["port_forwardings"]
    assert {p["protocol"]: "external_port" in p for p in shown} == {"tcp": False, "udp": False}


def test_conflicts(api: Api, topo: Topology) -> None:
    fip = fip_of(api, topo)
    other = api.demo.create("ports", network_id=topo.net["id"])
    assert (
        forward(api, fip["id"], topo.port, internal_port=80, external_port=8080).status_code == 201
    )
    # The same external port of the same protocol, to another destination.
    assert error(
        forward(api, fip["id"], other, internal_port=81, external_port=8080), 400, "BadRequest"
    ) == (
        "Bad port_forwarding request: There is a port collision with the external_port_range. "
        "The following ranges collide: 8080:8080 and 8080:8080."
    )
    # The same destination from another external port.
    assert error(
        forward(api, fip["id"], topo.port, internal_port=80, external_port=8081), 400, "BadRequest"
    ) == (
        "Bad port_forwarding request: There is a port collision with the internal_port_range. "
        "The following ranges collide: 80:80 and 80:80."
    )
    # Another protocol is another forwarding.
    assert (
        forward(
            api, fip["id"], topo.port, protocol="udp", internal_port=80, external_port=8080
        ).status_code
        == 201
    )
    # A floating IP associated with a fixed IP takes no forwarding, and a port with a
    # floating IP is no destination.
    fixed = api.demo.create(
        "floatingips", floating_network_id=topo.ext_net["id"], port_id=other["id"]
    )
    other_ip = other["fixed_ips"][0]["ip_address"]
    spare = api.demo.create("ports", network_id=topo.net["id"])
    assert error(
        forward(api, fixed["id"], spare, internal_port=1, external_port=1),
        409,
        "FloatingIPPortAlreadyAssociated",
    ) == (
        f"Cannot associate floating IP {fixed['floating_ip_address']} ({fixed['id']}) with port "
        f"{spare['id']} using fixed IP {spare['fixed_ips'][0]['ip_address']}, as that fixed IP "
        f"already has a floating IP on external network {topo.ext_net['id']}."
    )
    fip2 = fip_of(api, topo)
    assert error(
        forward(api, fip2["id"], other, internal_port=1, external_port=1),
        409,
        "PortHasBindingFloatingIP",
    ) == (
        f"Cannot create port forwarding to floating IP {fixed['floating_ip_address']} "
        f"({fixed['id']}) with port {other['id']} using fixed IP {other_ip}, as that port already "
        "has a binding floating IP."
    )


def test_internal_address_must_be_the_ports(api: Api, topo: Topology) -> None:
    fip = fip_of(api, topo)
    port_id = topo.port["id"]
    ip = topo.port["fixed_ips"][0]["ip_address"]
    subnet_id = topo.port["fixed_ips"][0]["subnet_id"]
    message = error(
        forward(
            api,
            fip["id"],
            topo.port,
            internal_ip_address="172.16.101.250",
            internal_port=1,
            external_port=1,
        ),
        400,
        "BadRequest",
    )
    assert message == (
        "Bad port_forwarding request: Requested internal IP address 172.16.101.250 is not "
        f"suitable for internal neutron port {port_id}, as its fixed_ips are "
        f"[{{'subnet_id': '{subnet_id}', 'ip_address': '{ip}'}}]."
    )
    pf = forward(api, fip["id"], topo.port, internal_port=1, external_port=1).json()
    message = error(
        api.demo.put(
            f"/floatingips/{fip['id']}/port_forwardings/{pf['port_forwarding']['id']}",
            json={"port_forwarding": {"internal_ip_address": "172.16.101.251"}},
        ),
        400,
        "BadRequest",
    )
    assert message == (
        "Bad port_forwarding request: The internal IP does not correspond to an address on "
        f"the internal port, which has fixed_ips [{{'subnet_id': '{subnet_id}', "
        f"'ip_address': '{ip}'}}]."
    )
    # A subnet with no router to the floating IP's network.
    net, _ = private_subnet(api.demo, "10.77.0.0/24")
    lonely = api.demo.create("ports", network_id=net["id"])
    message = error(
        forward(api, fip_of(api, topo)["id"], lonely, internal_port=1, external_port=1),
        400,
        "BadRequest",
    )
    assert message.startswith(f"Bad port_forwarding request: External network {topo.ext_net['id']}")


def test_bad_input(api: Api, topo: Topology) -> None:
    fip = fip_of(api, topo)
    assert (
        error(
            forward(api, fip["id"], topo.port, internal_port=1, external_port=70000),
            400,
            "InvalidInput",
        )
        == "Invalid input for operation: '70000' is too large - must be no larger than '65535'."
    )
    error(
        forward(api, fip["id"], topo.port, protocol="icmp", internal_port=1, external_port=1),
        400,
        "InvalidInput",
    )
    error(forward(api, fip["id"], topo.port, internal_port=1), 400, "BadRequest")
    assert api.demo.get(f"/floatingips/{fip['id']}/port_forwardings").json() == {
        "port_forwardings": []
    }


def test_another_projects_floating_ip_is_missing(api: Api, topo: Topology) -> None:
    fip = fip_of(api, topo)
    pf = forward(api, fip["id"], topo.port, internal_port=1, external_port=1).json()
    base = f"/floatingips/{fip['id']}/port_forwardings"
    expected = f"Floating IP {fip['id']} could not be found"
    for answer in (
        api.demo2.get(base),
        api.demo2.get(f"{base}/{pf['port_forwarding']['id']}"),
        api.demo2.delete(f"{base}/{pf['port_forwarding']['id']}"),
        api.demo2.post(
            base,
            json={
                "port_forwarding": {
                    "protocol": "tcp",
                    "internal_port_id": topo.port["id"],
                    "internal_ip_address": "172.16.101.9",
                    "internal_port": 5,
                    "external_port": 5,
                }
            },
        ),
    ):
        assert error(answer, 404, "FloatingIPNotFound") == expected
    assert len(api.demo.get(base).json()["port_forwardings"]) == 1


def test_forwardings_go_with_the_internal_address(api: Api, topo: Topology) -> None:
    fip = fip_of(api, topo)
    forward(api, fip["id"], topo.port, internal_port=1, external_port=1)
    subnet_id = topo.subnet["id"]
    # A second address keeps the forwarding; losing its address removes it.
    api.demo.put(
        f"/ports/{topo.port['id']}",
        json={"port": {"fixed_ips": [*topo.port["fixed_ips"], {"subnet_id": subnet_id}]}},
    )
    assert (
        len(api.demo.get(f"/floatingips/{fip['id']}/port_forwardings").json()["port_forwardings"])
        == 1
    )
    api.demo.put(
        f"/ports/{topo.port['id']}",
        json={"port": {"fixed_ips": [{"subnet_id": subnet_id, "ip_address": "172.16.101.99"}]}},
    )
    shown = api.demo.get(f"/floatingips/{fip['id']}").json()["floatingip"]
    assert shown["port_forwardings"] == [] and shown["router_id"] is None
    other = api.demo.create("ports", network_id=topo.net["id"])
    forward(api, fip["id"], other, internal_port=1, external_port=1)
    assert api.demo.delete(f"/ports/{other['id']}").status_code == 204
    shown = api.demo.get(f"/floatingips/{fip['id']}").json()["floatingip"]
    assert shown["port_forwardings"] == [] and shown["router_id"] is None
