"""`POST /lab/v1/probes` without a data plane: what it refuses, and to whom.

The probes themselves, with real packets, are in tests/netns/test_routers_api.py.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Api, ApiClient, expect_error


def probe(client: ApiClient, body: Any) -> httpx.Response:
    return client.http.post("/lab/v1/probes", headers={"X-Auth-Token": client.token}, json=body)


def test_a_probe_is_refused_with_a_reason_and_changes_nothing(api: Api) -> None:
    ext = api.admin.create(
        "networks",
        name="ext",
        **{
            "router:external": True,
            "provider:network_type": "flat",
            "provider:physical_network": "default",
        },
    )
    api.admin.create("subnets", network_id=ext["id"], ip_version=4, cidr="10.10.10.0/24")
    fip = api.demo.create("floatingips", floating_network_id=ext["id"])
    address = fip["floating_ip_address"]
    before = api.demo.get("/floatingips").json()

    def invalid(message: str) -> tuple[str, str]:
        return "InvalidInput", f"Invalid input for operation: {message}."

    def bad(message: str) -> tuple[str, str]:
        return "BadRequest", f"Bad probe request: {message}."

    own = {"floating_ip_address": address}
    for wanted, (kind, message) in (
        ({**own, "kind": "traceroute"},
         invalid("'traceroute' is not a kind of probe: use ping, tcp or http")),
        ({**own, "kind": "tcp", "port": 0},
         invalid("'0' is not a TCP port: use a number from 1 to 65535")),
        ({**own, "kind": "tcp", "port": 70000},
         invalid("'70000' is not a TCP port: use a number from 1 to 65535")),
        ({**own, "kind": "http", "path": "index.html"},
         invalid("'index.html' is not a path: it starts with '/' and has no spaces")),
        ({**own, "kind": "http", "path": "/a b"},
         invalid("'/a b' is not a path: it starts with '/' and has no spaces")),
        ({**own, "command": ["sh"]}, invalid("Unrecognized attribute(s) 'command'")),
        ({"kind": "ping"}, bad("give either floating_ip_address or floating_ip_id")),
        ({**own, "kind": "tcp"}, bad("a tcp probe needs a port")),
        ({**own, "path": "/"}, bad("only an http probe has a path")),
    ):  # fmt: skip
        assert expect_error(probe(api.demo, {"probe": wanted}), 400, kind) == message
    assert expect_error(probe(api.demo, own), 400, "BadRequest") == (
        'Bad probe request: expected {"probe": {"floating_ip_address": ..., "kind": ...}}.'
    )
    assert api.demo.get("/floatingips").json() == before

    # Another project's floating IP is not found, exactly as one that does not exist.
    for key, value in (("floating_ip_address", address), ("floating_ip_id", fip["id"])):
        message = expect_error(probe(api.demo2, {"probe": {key: value}}), 404, "FloatingIPNotFound")
        assert message == f"Floating IP {value} could not be found"
    unknown = {"floating_ip_id": "0" * 8 + "-0000-4000-8000-" + "0" * 12}
    assert (
        expect_error(probe(api.demo2, {"probe": unknown}), 404, "FloatingIPNotFound")
        == f"Floating IP {unknown['floating_ip_id']} could not be found"
    )

    # Its own floating IP, with no agent reporting an outside (as outside the isolated mode).
    assert expect_error(
        probe(api.demo, {"probe": {"floating_ip_address": address}}), 409, "Conflict"
    ) == (
        "No agent reports an outside namespace for physical network default "
        "(it exists only in the isolated mode)."
    )
    overlay = api.admin.create(
        "networks",
        name="overlay-ext",
        **{"router:external": True, "provider:network_type": "vxlan"},
    )
    api.admin.create("subnets", network_id=overlay["id"], ip_version=4, cidr="10.20.0.0/24")
    floating = api.demo.create("floatingips", floating_network_id=overlay["id"])
    assert (
        expect_error(
            probe(api.demo, {"probe": {"floating_ip_id": floating["id"]}}), 409, "Conflict"
        )
        == "External network overlay-ext is on no physical network: "
        "there is no outside to probe from."
    )
