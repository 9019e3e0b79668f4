"""SCENARIOS.md S6 through the load balancer wizard, checked with real HTTP through the VIP's
floating IP: the page's Check from outside, then round robin seen by the outside world."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.browser.clicks import (
    address_of,
    allow,
    check_from_outside,
    create_network,
    create_router,
    launch,
    open_form,
    run_in_console,
    submit,
)
from tests.browser.conftest import Cloud, screenshot, sign_in
from tests.conftest import ADMIN_PASSWORD, ApiClient, add_member_project, eventually, login

WEB_PORT = "8000"
LBAAS = "/load-balancer/v2/lbaas"


def test_s6_load_balancer_wizard(cloud: Cloud, admin_page: Any, tmp_path: Path) -> None:
    page = admin_page
    create_network(page, cloud, "ext_net", "10.10.30.0/24", type="flat", external="yes")
    create_network(page, cloud, "web-net", "192.168.60.0/24")
    create_router(page, cloud, "web-router", "ext_net", "web-net")

    # WEB1 and WEB2, each a web server answering its own name, started from the console panel.
    for name in ("WEB1", "WEB2"):
        launch(page, cloud, name, "web-net")
        root = tmp_path / name
        root.mkdir()
        (root / "index.html").write_text(name + "\n")
        run_in_console(page, f"busybox httpd -p {WEB_PORT} -h {root}")
        assert address_of(page).startswith("192.168.60.")

    # The wizard: subnet -> listener -> pool with algorithm -> members picked from instances ->
    # monitor.
    page.goto(cloud.dashboard + "/project/load-balancers")
    open_form(page, "Create Load Balancer")
    page.fill("input[name=name]", "s6-lb")
    option = page.locator("select[name=subnet_id] option", has_text="web-net: ")
    page.select_option("select[name=subnet_id]", value=option.get_attribute("value"))
    page.select_option("select[name=protocol]", "HTTP")
    page.fill("input[name=protocol_port]", "80")
    page.fill("input[name=pool_name]", "web servers")
    page.select_option("select[name=lb_algorithm]", "ROUND_ROBIN")
    for name in ("WEB1", "WEB2"):
        page.locator("fieldset.choices label.check", has_text=f"{name} (").locator("input").check()
    page.fill("input[name=member_port]", WEB_PORT)
    page.select_option("select[name=monitor_type]", "HTTP")
    page.fill("input[name=delay]", "1")
    submit(page, "Create Load Balancer", r"/project/load-balancers/[0-9a-f-]{36}$")

    # The members' default group keeps the load balancer out: the page says so until a rule for
    # the members' port lets it in.
    hint = page.locator("#members-hint").inner_text()
    assert re.match(
        rf"Security group default of members (WEB1, WEB2|WEB2, WEB1) lets nothing in on TCP port "
        rf"{WEB_PORT} from outside",
        hint,
    )
    created = page.url
    allow(page, cloud, "tcp", WEB_PORT)
    page.goto(created)
    assert page.locator("#members-hint").count() == 0

    # Progress: the status tree with live provisioning and operating status.
    status = page.locator("[data-status]")
    page.wait_for_function(
        "el => el.dataset.settled === 'yes'", arg=status.element_handle(), timeout=60_000
    )
    tree = status.locator(".tree")
    assert eventually(lambda: tree.inner_text().count("ONLINE") >= 5, seconds=20), tree.inner_text()

    # Project -> Floating IPs -> Allocate, associated with the VIP: outside clients get round robin.
    page.select_option("select[name=pool]", label="ext_net")
    notice = submit(page, "Associate", r"/project/load-balancers/[0-9a-f-]{36}$")
    fip = re.search(r"Associated (\S+) with the VIP", notice).group(1)  # type: ignore[union-attr]
    balancer_page = page.url
    result = check_from_outside(page, "http", "80", "/")
    assert re.search(r"Reachable: HTTP 200 in [0-9.]+ ms\.\s+WEB[12]\n", result.inner_text())

    def answers() -> list[str]:
        return [
            cloud.outside("curl", "-s", "-m", "2", f"http://{fip}/").stdout.strip()
            for _ in range(4)
        ]

    assert eventually(lambda: set(answers()) == {"WEB1", "WEB2"}, seconds=20)
    # The page counts them: haproxy's counters, reported by the agent with its next sync.
    page.goto(balancer_page)
    traffic = status.locator(".traffic")
    assert eventually(lambda: int(traffic.get_attribute("data-connections") or 0) >= 4, seconds=20)
    assert "in all" in traffic.inner_text()
    # How it works: haproxy in the load balancer's namespace, and both members as it sees them.
    how = page.locator("#how-it-works")
    how.locator("section.explained", has_text="Members").wait_for()
    assert how.inner_text().count(f":{WEB_PORT}") >= 2 and "UP" in how.inner_text()
    screenshot(page, "14-load-balancer")

    page.goto(cloud.dashboard + "/project/topology")
    page.wait_for_selector("a.node[data-kind=loadbalancer]")
    screenshot(page, "15-topology-with-load-balancer")

    # Edited afterwards: the pool keeps sessions by an application cookie, WEB1 takes no more
    # connections (weight 0); each change realized before the next, as Octavia allows.
    def settled() -> None:
        page.wait_for_function(
            "el => el.dataset.settled === 'yes'", arg=status.element_handle(), timeout=60_000
        )

    page.goto(balancer_page)
    pool = page.locator("section.pool", has_text="web servers")
    pool.locator("summary:text-is('Edit Pool')").click()
    pool.locator("select[name=persistence_type]").select_option("APP_COOKIE")
    pool.locator("input[name=cookie_name]").fill("SESSIONID")
    assert submit(page, "Save Pool", balancer_page) == "Saved the pool's session persistence."
    assert "APP_COOKIE (cookie SESSIONID)" in pool.inner_text()
    settled()
    web1 = pool.locator("tr[data-member=WEB1]")
    web1.locator("input[name=weight]").fill("0")
    with page.expect_navigation():
        web1.locator("button:text-is('Save Member')").click()
    assert page.locator(".notice").inner_text() == "Saved the member's weight."
    settled()
    with httpx.Client(base_url=cloud.url) as http:
        admin = login(http, "admin", ADMIN_PASSWORD, "admin")
        lbaas = ApiClient(http, admin.token, admin.project_id, admin.user_id, LBAAS)
        [shown] = lbaas.get("/pools", params={"name": "web servers"}).json()["pools"]
        assert shown["session_persistence"]["type"] == "APP_COOKIE"
        assert shown["session_persistence"]["cookie_name"] == "SESSIONID"
        members = lbaas.get(f"/pools/{shown['id']}/members").json()["members"]
        assert {m["name"]: m["weight"] for m in members} == {"WEB1": 0, "WEB2": 1}

    # A second pool, on no listener, added and deleted again.
    open_form(page, "Add Pool")
    page.fill("details:has(summary:text-is('Add Pool')) input[name=name]", "spare")
    assert submit(page, "Add Pool", balancer_page) == "Adding the pool."
    spare = page.locator("section.pool", has_text="Pool spare")
    assert "HTTP, ROUND_ROBIN" in spare.inner_text()
    settled()
    with page.expect_navigation():
        spare.locator("button:text-is('Delete Pool')").click()
    assert page.locator(".notice").inner_text().startswith("Deleting the pool")
    settled()
    page.goto(balancer_page)
    assert page.locator("section.pool").count() == 1


def test_the_topology_shows_what_connects_to_what(
    browser: Any, cloud: Cloud, admin_page: Any
) -> None:
    """S6's project with a floating IP on WEB1 as well: the topology shows it on WEB1, the
    router's gateway address, WEB1 and WEB2 side by side, and the load balancer's links to
    both, in the drawing and in the list of links. A new project is guided to its first
    network, made from the page."""
    with httpx.Client(base_url=cloud.url) as http:
        admin = login(http, "admin", ADMIN_PASSWORD, "admin")
        listed = http.get("/lab/v1/instances", headers={"X-Auth-Token": admin.token}).json()
        web = {i["name"]: i for i in listed["instances"] if i["name"] in ("WEB1", "WEB2")}
        ext = admin.get("/networks", params={"name": "ext_net"}).json()["networks"][0]
        fip = admin.create(
            "floatingips", floating_network_id=ext["id"], port_id=web["WEB1"]["port_ids"][0]
        )["floating_ip_address"]
        router = admin.get("/routers", params={"name": "web-router"}).json()["routers"][0]
        gateway = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
        newcomer, password = add_member_project(admin, "topology-newcomer")

    page = admin_page
    page.goto(cloud.dashboard + "/project/topology")
    web1, web2 = (page.locator(f"a.node[data-id='{web[name]['id']}']") for name in ("WEB1", "WEB2"))
    assert web1.locator(".fip").text_content() == f"FIP {fip}"
    balancer = page.locator("a.node[data-kind=loadbalancer]")
    assert balancer.locator(".fip").text_content().startswith("FIP 10.10.30.")  # S6's, on the VIP
    lb = balancer.get_attribute("data-id")
    members = page.locator(f"path.edge[data-kind=member][data-from='{lb}']")
    assert {m.get_attribute("data-to") for m in members.all()} == {i["id"] for i in web.values()}
    assert page.locator(".edge-label.l-gateway").text_content() == gateway
    one, two = web1.bounding_box(), web2.bounding_box()
    assert one["y"] == two["y"] and abs(one["x"] - two["x"]) >= one["width"]  # side by side
    told = "\n".join(page.locator("#topology-links li").all_text_contents())
    assert f"instance WEB1 is reached at the floating IP {fip} of external network ext_net" in told
    assert f"router web-router has its gateway {gateway} on external network ext_net" in told
    assert "load balancer s6-lb forwards HTTP 80 to instance WEB2 at 192.168.60." in told
    screenshot(page, "19-topology-floating-ips-and-members")

    # A project with nothing yet: a guide to its first network instead of an empty drawing.
    page = sign_in(browser, cloud, newcomer, password, newcomer)
    guide = page.locator("#first-network")
    assert "no network yet" in guide.inner_text() and page.locator(".topology").count() == 0
    screenshot(page, "20-topology-first-network-guide")
    guide.locator("input[name=name]").fill("first-net")
    guide.locator("input[name=cidr]").fill("192.168.70.0/24")
    assert submit(page, "Create Network", r"/project/topology$") == "Created network first-net."
    page.wait_for_selector("a.node[data-kind=network]:has-text('first-net')")
    assert "192.168.70.0/24" in page.locator("a.node[data-kind=network]").text_content()
    page.context.close()
