"""The change feed agents follow, their reports, and the lab instances API (no kernel involved)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import func, select

from neutrino.app import Neutrino
from neutrino.config import Settings
from neutrino.db import schema
from neutrino.services import common, feed
from tests.conftest import Api, cloud_password, dashboard_login
from tests.conftest import expect_error as error


def internal(api: Api, path: str, **kwargs):  # type: ignore[no-untyped-def]
    return api.admin.http.request(
        kwargs.pop("method", "GET"),
        f"/internal/v1{path}",
        headers={"X-Auth-Token": kwargs.pop("token", api.admin.token)},
        **kwargs,
    )


def lab(api: Api, method: str, path: str = "", who: str = "demo", **kwargs):  # type: ignore[no-untyped-def]
    client = getattr(api, who)
    return client.http.request(
        method, f"/lab/v1/instances{path}", headers={"X-Auth-Token": client.token}, **kwargs
    )


def test_snapshot_then_changes_carry_current_bodies(api: Api) -> None:
    net = api.demo.create("networks", name="a")
    snapshot = internal(api, "/snapshot").json()
    assert [n["id"] for n in snapshot["networks"]] == [net["id"]]
    assert snapshot["networks"][0]["provider:network_type"] == "vxlan"  # the admin view
    assert {"subnets", "ports", "security_groups", "routers", "floatingips", "instances"} <= set(
        snapshot
    )
    since = snapshot["revision"]
    api.demo.put(f"/networks/{net['id']}", json={"network": {"name": "b"}})
    other = api.demo.create("networks", name="c")
    api.demo.delete(f"/networks/{other['id']}")
    delta = internal(api, "/changes", params={"since": since}).json()
    assert delta["revision"] > since
    bodies = {c["id"]: c["resource"] for c in delta["changes"]}
    assert bodies[net["id"]]["name"] == "b"
    assert bodies[other["id"]] is None  # deleted: only the fact remains
    assert internal(api, "/changes", params={"since": delta["revision"]}).json()["changes"] == []


def test_agents_learn_each_hosts_vtep_from_its_reports(api: Api) -> None:
    """The VTEP a host's agent reports (`tunneling_ip`) reaches every agent, and follows it."""

    def report(host: str, vtep: str | None) -> None:
        l2 = {"tunnel_types": ["vxlan"] if vtep else [], "tunneling_ip": vtep}
        body = {"revision": 1, "ports": {}, "agents": {"Linux bridge agent": l2}}
        assert internal(api, f"/agents/{host}/report", method="POST", json=body).status_code == 204

    report("h1", "192.0.2.1")
    report("h2", None)  # no tunnels there: no peer of anyone
    snapshot = internal(api, "/snapshot").json()
    [h1] = snapshot["vxlan_endpoints"]
    assert (h1["host"], h1["ip_address"]) == ("h1", "192.0.2.1")
    since = snapshot["revision"]
    report("h1", "192.0.2.1")  # a heartbeat like any other: nothing for agents
    assert internal(api, "/changes", params={"since": since}).json()["changes"] == []
    report("h1", "192.0.2.11")
    report("h2", "192.0.2.2")
    delta = internal(api, "/changes", params={"since": since}).json()
    moved = {c["resource"]["host"]: c["resource"]["ip_address"] for c in delta["changes"]}
    assert moved == {"h1": "192.0.2.11", "h2": "192.0.2.2"}
    assert api.admin.delete(f"/agents/{h1['id']}").status_code == 204
    gone = internal(api, "/changes", params={"since": delta["revision"]}).json()["changes"]
    assert [(c["type"], c["id"], c["resource"]) for c in gone] == [
        ("vxlan_endpoint", h1["id"], None)
    ]


def test_compaction_changes_no_answer_and_sends_agents_behind_it_to_resync(
    api: Api, core: Neutrino
) -> None:
    start = internal(api, "/snapshot").json()["revision"]
    net = api.demo.create("networks", name="a")
    for name in ("b", "c", "d"):
        api.demo.put(f"/networks/{net['id']}", json={"network": {"name": name}})
    gone = api.demo.create("networks", name="gone")
    middle = internal(api, "/snapshot").json()["revision"]
    api.demo.delete(f"/networks/{gone['id']}")
    answers = {
        since: internal(api, "/changes", params={"since": since}).json()
        for since in (start, middle)
    }

    compactor = feed.Compactor()
    assert compactor.compact(core.db) >= 4  # net's create and first updates, gone's create
    assert {
        since: internal(api, "/changes", params={"since": since}).json() for since in answers
    } == answers
    C = schema.changes
    with core.db.read() as conn:
        entries = conn.execute(select(func.count()).select_from(C)).scalar_one()
        named = conn.execute(
            select(func.count()).select_from(
                select(C.c.resource_type, C.c.resource_id).distinct().subquery()
            )
        ).scalar_one()
    assert entries == named  # one entry per resource
    assert compactor.compact(core.db) == 0  # nothing new since

    # Later the deletion's entry goes too: an agent from before it must read a snapshot again.
    compactor.compact(core.db, now=common.now() + feed.DELETIONS_KEPT + timedelta(minutes=1))
    head = answers[middle]["revision"]
    for since in (start, middle):
        behind = internal(api, "/changes", params={"since": since})
        assert (behind.status_code, behind.json()) == (410, {"revision": head, "resync": True})
    assert internal(api, "/changes", params={"since": head}).json() == {
        "revision": head,
        "changes": [],
    }


def test_long_poll_wakes_on_a_write(api: Api) -> None:
    head = internal(api, "/snapshot").json()["revision"]
    late = threading.Timer(0.3, lambda: api.admin.create("networks", name="late"))
    late.start()
    started = time.monotonic()
    delta = internal(api, "/changes", params={"since": head, "timeout": 10}).json()
    waited = time.monotonic() - started
    # The poll wakes at the write's commit, before its answer is read: read it before the
    # test's client goes.
    late.join()
    assert [c["resource"]["name"] for c in delta["changes"]] == ["late"]
    assert 0.2 < waited < 5


def test_unknown_revision_asks_for_a_resync_and_members_are_refused(api: Api) -> None:
    head = internal(api, "/snapshot").json()["revision"]
    assert internal(api, "/changes", params={"since": head + 100}).status_code == 410
    error(internal(api, "/snapshot", token=api.demo.token), 403, "PolicyNotAuthorized")
    error(internal(api, "/changes", params={"since": "x"}), 400, "HTTPBadRequest")


def test_reports_move_port_status(api: Api) -> None:
    """A port turns ACTIVE once the host it is bound to has applied it and plugged it."""
    net = api.demo.create("networks")
    api.demo.create(
        "subnets", network_id=net["id"], cidr="10.90.0.0/24", ip_version=4, enable_dhcp=False
    )
    before = internal(api, "/snapshot").json()["revision"]
    port = api.admin.create("ports", network_id=net["id"], **{"binding:host_id": "h1"})
    assert port["status"] == "DOWN"

    def report(host: str, revision: int, status: str = "ACTIVE") -> dict:
        body = {"revision": revision, "ports": {port["id"]: status}, "errors": []}
        assert internal(api, f"/agents/{host}/report", method="POST", json=body).status_code == 204
        return dict(api.demo.get(f"/ports/{port['id']}").json()["port"])

    assert report("h1", before)["status"] == "DOWN"  # plugged, but not applied yet
    assert report("h2", internal(api, "/snapshot").json()["revision"])["status"] == "DOWN"
    other = api.admin.create("ports", network_id=net["id"], **{"binding:host_id": "h1"})
    shown = report("h1", internal(api, "/snapshot").json()["revision"])
    assert shown["status"] == "ACTIVE" and shown["revision_number"] == 2
    # A port the host does not speak of keeps its status; one it reports down goes DOWN.
    assert api.demo.get(f"/ports/{other['id']}").json()["port"]["status"] == "DOWN"
    shown = report("h1", internal(api, "/snapshot").json()["revision"], "DOWN")
    assert shown["status"] == "DOWN" and shown["revision_number"] == 3


def test_instances_own_or_adopt_ports(api: Api) -> None:
    net = api.demo.create("networks", name="n")
    sub = api.demo.create("subnets", network_id=net["id"], cidr="10.91.0.0/24", ip_version=4)
    adopted = api.demo.create(
        "ports", network_id=net["id"], fixed_ips=[{"ip_address": "10.91.0.10"}]
    )
    body = {
        "name": "vm1",
        "networks": [{"network_id": net["id"], "fixed_ip": "10.91.0.20"}],
        "ports": [adopted["id"]],
    }
    # As Nova's forced host, choosing the host is an administrator's.
    forced = lab(api, "POST", json={"instance": {**body, "host": "h1"}})
    assert error(forced, 403, "PolicyNotAuthorized") == (
        "rule:create_instance:host is disallowed by policy"
    )
    assert lab(api, "GET").json()["instances"] == []
    assert api.demo.get(f"/ports/{adopted['id']}").json()["port"]["device_id"] == ""
    created = lab(api, "POST", json={"instance": body})
    assert created.status_code == 201, created.text
    vm = created.json()["instance"]
    host = vm["host"]  # the server's own, where its embedded agent runs
    assert vm["status"] == "BUILD" and host and len(vm["port_ids"]) == 2
    ports = {
        p["id"]: p for p in api.admin.get("/ports", params={"device_id": vm["id"]}).json()["ports"]
    }
    assert {p["device_owner"] for p in ports.values()} == {
        "compute:nova"
    }  # as Nova owns a server's
    assert sorted(p["name"] for p in ports.values()) == [
        "",
        "vm1-eth0",
    ]  # the adopted one keeps its name
    assert {p["binding:host_id"] for p in ports.values()} == {host}
    assert {p["fixed_ips"][0]["ip_address"] for p in ports.values()} == {"10.91.0.10", "10.91.0.20"}
    assert lab(api, "GET", "/vm1").json()["instance"]["id"] == vm["id"]  # by name too
    assert lab(api, "GET", f"/{vm['id']}", who="demo2").status_code == 404
    busy = lab(api, "POST", json={"instance": {"name": "vm2", "ports": [adopted["id"]]}})
    error(busy, 409, "PortInUse")
    not_running = lab(api, "POST", f"/{vm['id']}/exec", json={"command": ["true"]})
    assert "not running" in error(not_running, 409, "Conflict")

    report = {
        "revision": 1,
        "ports": {},
        "instances": {vm["id"]: {"netns": "ns-x", "addresses": ["10.91.0.10/24", "10.91.0.20/24"]}},
    }
    internal(api, f"/agents/{host}/report", method="POST", json=report)
    assert lab(api, "GET", f"/{vm['id']}").json()["instance"]["status"] == "ACTIVE"

    assert lab(api, "DELETE", f"/{vm['id']}").status_code == 204
    remaining = api.demo.get("/ports", params={"network_id": net["id"], "device_owner": ""}).json()[
        "ports"
    ]
    assert [p["id"] for p in remaining] == [
        adopted["id"]
    ]  # its own port went, the adopted one stays
    assert sub["id"] in {f["subnet_id"] for f in remaining[0]["fixed_ips"]}


def test_an_instance_is_active_with_the_addresses_dhcp_gives(api: Api) -> None:
    """ACTIVE once its agent reports every fixed IPv4 address DHCP gives it; on a subnet
    without DHCP, as a VM whose image sets none, it has none, and is ACTIVE without."""
    served = api.demo.create("networks", name="served")
    api.demo.create("subnets", network_id=served["id"], cidr="10.93.0.0/24", ip_version=4)
    static = api.demo.create("networks", name="static")
    api.demo.create(
        "subnets", network_id=static["id"], cidr="10.94.0.0/24", ip_version=4, enable_dhcp=False
    )

    def status_after(vm: dict, addresses: list[str]) -> str:
        instance = {"netns": "ns-x", "addresses": addresses}
        body = {"revision": 1, "ports": {}, "instances": {vm["id"]: instance}}
        internal(api, f"/agents/{vm['host']}/report", method="POST", json=body)
        return str(lab(api, "GET", f"/{vm['id']}").json()["instance"]["status"])

    networks = [{"network_id": served["id"]}, {"network_id": static["id"]}]
    both = lab(api, "POST", json={"instance": {"name": "both", "networks": networks}})
    assert both.status_code == 201, both.text
    vm = both.json()["instance"]
    ports = api.demo.get("/ports", params={"device_id": vm["id"]}).json()["ports"]
    (given,) = [p["fixed_ips"][0]["ip_address"] for p in ports if p["network_id"] == served["id"]]
    assert status_after(vm, []) == "BUILD"
    assert status_after(vm, [f"{given}/24"]) == "ACTIVE"
    alone = lab(api, "POST", json={"instance": {"name": "alone", "networks": networks[1:]}})
    assert status_after(alone.json()["instance"], []) == "ACTIVE"


def test_instances_make_ports_as_their_project_may(api: Api) -> None:
    """An instance's new port on another project's network follows a port create's rules."""
    ext = api.admin.create("networks", name="ext", **{"router:external": True})
    api.admin.create("subnets", network_id=ext["id"], cidr="198.51.100.0/24", ip_version=4)
    shared = api.admin.create("networks", name="shared", shared=True)
    api.admin.create("subnets", network_id=shared["id"], cidr="10.92.0.0/24", ip_version=4)
    for network_id, address in ((ext["id"], None), (shared["id"], "10.92.0.20")):
        port = api.demo.post(
            "/ports",
            json={
                "port": {
                    "network_id": network_id,
                    **({"fixed_ips": [{"ip_address": address}]} if address else {}),
                }
            },
        )
        instance = lab(
            api,
            "POST",
            json={
                "instance": {
                    "name": "vm",
                    "networks": [
                        {"network_id": network_id, **({"fixed_ip": address} if address else {})}
                    ],
                }
            },
        )
        refused = error(port, 403, "PolicyNotAuthorized")
        assert error(instance, 403, "PolicyNotAuthorized") == refused
    assert lab(api, "GET").json()["instances"] == []
    on_shared = lab(
        api, "POST", json={"instance": {"name": "vm", "networks": [{"network_id": shared["id"]}]}}
    )
    assert on_shared.status_code == 201, on_shared.text


def test_instances_put_the_ports_they_make_in_the_groups_they_name(api: Api) -> None:
    """As Nova's `security_groups`: by name or ID, among the groups the project sees; an adopted
    port keeps its own."""
    net = api.demo.create("networks", name="n")
    api.demo.create("subnets", network_id=net["id"], cidr="10.93.0.0/24", ip_version=4)
    web = api.demo.create("security-groups", name="web")
    ssh = api.demo.create("security-groups", name="ssh")
    adopted = api.demo.create("ports", network_id=net["id"])
    other = api.demo2.create("security-groups", name="theirs")
    api.demo.create("security-groups", name="twin")
    api.demo.create("security-groups", name="twin")
    launch = {"name": "vm", "networks": [{"network_id": net["id"]}]}
    for wanted, status in ((other["id"], 400), ("nothing", 400), ("twin", 409)):
        refused = lab(
            api, "POST", json={"instance": {**launch, "security_groups": [{"name": wanted}]}}
        )
        assert refused.status_code == status, refused.text
    assert "Multiple security groups found matching 'twin'" in refused.text
    assert lab(api, "GET").json()["instances"] == []
    named = [{"name": "web"}, {"name": ssh["id"]}]
    created = lab(
        api,
        "POST",
        json={"instance": {**launch, "ports": [adopted["id"]], "security_groups": named}},
    )
    assert created.status_code == 201, created.text
    vm = created.json()["instance"]
    groups = {
        p["name"]: p["security_groups"]
        for p in api.demo.get("/ports", params={"device_id": vm["id"]}).json()["ports"]
    }
    assert sorted(groups["vm-eth0"]) == sorted([web["id"], ssh["id"]])
    assert groups[""] == adopted["security_groups"]  # the project's default group
    shown = lab(api, "GET", f"/{vm['id']}").json()["instance"]["security_groups"]
    assert shown == [{"name": "default"}, {"name": "ssh"}, {"name": "web"}]


def test_the_dashboard_shows_an_instance_port_attached_to_the_instance(
    api: Api, settings: Settings
) -> None:
    net = api.demo.create("networks", name="shown")
    api.demo.create("subnets", network_id=net["id"], cidr="10.92.0.0/24", ip_version=4)
    vm = lab(
        api, "POST", json={"instance": {"name": "web1", "networks": [{"network_id": net["id"]}]}}
    )
    vm = vm.json()["instance"]
    [port] = api.demo.get("/ports", params={"device_id": vm["id"]}).json()["ports"]
    assert (port["name"], port["device_owner"]) == ("web1-eth0", "compute:nova")

    dashboard = api.demo.http
    dashboard_login(dashboard, "demo", cloud_password(settings.state_dir, "neutrino-demo"), "demo")
    link = f'<a href="/dashboard/project/instances/{vm["id"]}">web1</a>'
    network_page = dashboard.get(f"/dashboard/project/networks/{net['id']}")
    assert network_page.status_code == 200 and link in network_page.text
    port_page = dashboard.get(f"/dashboard/project/ports/{port['id']}")
    assert f"instance {link} (compute:nova)" in port_page.text


def follow(model: dict, delta: dict) -> dict:  # type: ignore[type-arg]
    """`model` after `delta`, as an agent applies it."""
    items = {key: {i["id"]: i for i in model[key]} for key in feed_keys()}
    for change in delta["changes"]:
        collection = items[feed.RESOURCES[change["type"]][0]]
        collection.pop(change["id"], None)
        if change["resource"] is not None:
            collection[change["id"]] = change["resource"]
    keyed = {key: sorted(found.values(), key=lambda i: i["id"]) for key, found in items.items()}
    return {"revision": delta["revision"], "anchors": delta["anchors"], **keyed}


def feed_keys() -> list[str]:
    return [key for key, _table, _render in feed.RESOURCES.values()]


def share_at_head(api: Api, host: str) -> dict:  # type: ignore[type-arg]
    found = internal(api, "/snapshot", params={"host": host}).json()
    return {
        key: sorted(value, key=lambda i: i["id"]) if key in feed_keys() else value
        for key, value in found.items()
    }


def test_a_host_receives_its_share_and_what_enters_and_leaves_it(api: Api) -> None:
    """An agent's model, followed through the host's changes, is the host's share at the head:
    a port bound on a new network brings that network's ports and subnets, unbinding takes
    them away; ports of networks the host has nothing on never come."""
    ours, theirs = api.demo.create("networks", name="ours"), api.admin.create("networks")
    for net, cidr in ((ours, "10.0.0.0/24"), (theirs, "10.1.0.0/24")):
        api.admin.create("subnets", network_id=net["id"], ip_version=4, cidr=cidr)
    bound_here = api.admin.create(
        "ports", network_id=ours["id"], project_id=api.demo.project_id, **{"binding:host_id": "h1"}
    )
    elsewhere = api.admin.create("ports", network_id=theirs["id"], **{"binding:host_id": "h2"})

    model = share_at_head(api, "h1")
    assert bound_here in model["ports"]
    assert {p["network_id"] for p in model["ports"]} == {ours["id"]}  # with its DHCP port
    assert [n["id"] for n in model["networks"]] == [ours["id"]]
    assert {s["network_id"] for s in model["subnets"]} == {ours["id"]}
    whole = internal(api, "/snapshot").json()
    assert {bound_here["id"], elsewhere["id"]} <= {p["id"] for p in whole["ports"]}

    def changes(since: int, anchors: dict) -> dict:  # type: ignore[type-arg]
        params = {"since": since, "host": "h1"}
        response = internal(
            api, "/changes", method="POST", params=params, json={"anchors": anchors}
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    joining = api.admin.create("ports", network_id=theirs["id"], **{"binding:host_id": "h1"})
    delta = changes(model["revision"], model["anchors"])
    entered = {c["id"] for c in delta["changes"] if c["resource"] is not None}
    assert {elsewhere["id"], theirs["id"], joining["id"]} <= entered  # unchanged, yet new here
    model = follow(model, delta)
    assert model == share_at_head(api, "h1")
    assert elsewhere["id"] in {p["id"] for p in model["ports"]}

    api.admin.put(f"/ports/{joining['id']}", json={"port": {"binding:host_id": "h2"}})
    delta = changes(model["revision"], model["anchors"])
    left = {c["id"] for c in delta["changes"] if c["resource"] is None}
    assert {elsewhere["id"], theirs["id"], joining["id"]} <= left
    model = follow(model, delta)
    assert model == share_at_head(api, "h1")
    assert {p["network_id"] for p in model["ports"]} == {ours["id"]}
    assert changes(model["revision"], model["anchors"])["changes"] == []


def test_a_hosts_changes_need_the_anchors_of_its_last_answer(api: Api) -> None:
    share = internal(api, "/snapshot", params={"host": "h1"}).json()
    since = {"since": share["revision"], "host": "h1"}
    assert internal(api, "/changes", params=since).status_code == 410  # none echoed: resync
    ahead = {**since, "since": share["revision"] + 100}
    echo = {"anchors": share["anchors"]}
    assert internal(api, "/changes", method="POST", params=ahead, json=echo).status_code == 410
    malformed: list[object] = [{"anchors": {"networks": "x"}}, [], {"anchors": None}]
    for bad in malformed:
        response = internal(api, "/changes", method="POST", params=since, json=bad)
        error(response, 400, "HTTPBadRequest")
