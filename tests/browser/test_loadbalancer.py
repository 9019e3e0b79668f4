"""SCENARIOS.md S6 through the load balancer wizard, checked with real HTTP through the VIP's
floating IP: the page's Check from outside, then round robin seen by the outside world."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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
from tests.browser.conftest import Cloud, screenshot
from tests.conftest import eventually

WEB_PORT = "8000"


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
    how.locator("details", has_text="servers").wait_for()
    assert how.inner_text().count(f":{WEB_PORT}") >= 2 and "UP" in how.inner_text()
    screenshot(page, "14-load-balancer")

    page.goto(cloud.dashboard + "/project/topology")
    page.wait_for_selector("a.node[data-kind=loadbalancer]")
    screenshot(page, "15-topology-with-load-balancer")
