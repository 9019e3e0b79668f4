"""What a new user met first: forms that forget, errors in Python, a wizard that half-builds,
statuses that never refresh, a dashboard too wide for a phone, text too faint to read."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser.clicks import create_network, launch, open_form, resource_id, submit
from tests.browser.conftest import Cloud, screenshot, sign_in
from tests.conftest import ADMIN_PASSWORD, add_member_project, cloud_password, login

LB_FORM = "details:has(> summary:has-text('Create Load Balancer'))"


def test_a_failed_form_keeps_every_field_and_its_url_shows_the_form(
    cloud: Cloud, admin_page: Any
) -> None:
    page = admin_page
    page.goto(cloud.dashboard + "/admin/networks")
    open_form(page, "Create Network")
    page.fill("input[name=name]", "kept")
    page.select_option("select[name=network_type]", "vlan")
    page.fill("input[name=physical_network]", "default")
    page.fill("input[name=segmentation_id]", "300")
    page.check("input[name=shared]")
    page.check("input[name=external]")
    page.uncheck("input[name=enable_dhcp]")
    page.fill("input[name=cidr]", "300.1.1.0/24")
    page.click("button:text-is('Create Network')")
    assert "is not a valid IP subnet" in page.locator("p.error").inner_text()
    # Fixing the one wrong field and submitting again makes the network that was asked for.
    assert page.input_value("select[name=network_type]") == "vlan"
    assert page.is_checked("input[name=shared]") and page.is_checked("input[name=external]")
    assert not page.is_checked("input[name=enable_dhcp]")
    assert page.input_value("input[name=segmentation_id]") == "300"
    page.fill("input[name=cidr]", "172.16.30.0/24")
    submit(page, "Create Network", r"/project/networks/[0-9a-f-]{36}$")
    attrs = page.locator("#network-attrs").inner_text()
    assert "vlan" in attrs and "300" in attrs and "Yes / Yes" in attrs

    # A failed form on the network's page is shown at the URL it was sent to; opening that URL
    # again shows the page with its form, not an error.
    open_form(page, "Create Subnet")
    page.fill("details:has(> summary:has-text('Create Subnet')) input[name=cidr]", "nonsense")
    page.click("button:text-is('Create Subnet')")
    page.wait_for_selector("details:has(> summary:has-text('Create Subnet')) p.error")
    assert page.url.endswith("/subnets")
    again = page.goto(page.url)
    assert again is not None and again.status == 200
    assert page.locator("summary:has-text('Create Subnet')").count() == 1


def test_errors_are_sentences_that_name_things(browser: Any, cloud: Cloud) -> None:
    page = sign_in(browser, cloud, "demo", cloud_password(cloud.state_dir, "neutrino-demo"), "demo")
    page.goto(cloud.dashboard + "/project/networks")
    open_form(page, "Create Network")
    page.fill("input[name=name]", "web")
    page.fill("input[name=cidr]", "192.168.80.0/24")
    submit(page, "Create Network", r"/project/networks/[0-9a-f-]{36}$")
    network = resource_id(page)
    for name in ("holder", "second"):
        page.goto(cloud.dashboard + f"/project/networks/{network}")
        open_form(page, "Create Port")
        page.fill("details:has(> summary:has-text('Create Port')) input[name=name]", name)
        page.fill("input[name=ip_address]", "192.168.80.10")
        page.click("button:text-is('Create Port')")
    # The address's holder is named, not a subnet's UUID.
    error = page.locator("p.error").inner_text()
    assert error == "The address 192.168.80.10 is already used by port holder.", error
    # A UUID the user may see becomes the resource's name.
    page.goto(cloud.dashboard + f"/project/networks/{network}")
    page.click("button:text-is('Delete Network')")
    error = page.locator("p.error").inner_text()
    assert "network web" in error and network not in error, error

    # A quota in words, not a Python list.
    with httpx.Client(base_url=cloud.url) as http:
        admin = login(http, "admin", ADMIN_PASSWORD, "admin")
        demo = http.get(
            "/identity/v3/projects", headers={"X-Auth-Token": admin.token}, params={"name": "demo"}
        ).json()["projects"][0]["id"]
        quota = admin.put(f"/quotas/{demo}", json={"quota": {"network": 1}})
        assert quota.status_code == 200, quota.text
        try:
            page.goto(cloud.dashboard + "/project/networks")
            open_form(page, "Create Network")
            page.fill("input[name=name]", "one too many")
            page.click("button:text-is('Create Network')")
            error = page.locator("p.error").inner_text()
        finally:
            admin.delete(f"/quotas/{demo}")
    assert error.startswith("The project has no quota left for more networks"), error
    assert "[" not in error
    page.context.close()


def test_the_load_balancer_wizard_checks_everything_before_it_creates(
    cloud: Cloud, admin_page: Any
) -> None:
    page = admin_page
    # Two networks called twin with the same addresses, and three instances called WEB1.
    create_network(page, cloud, "twin", "192.168.90.0/24")
    create_network(page, cloud, "twin", "192.168.90.0/24")
    create_network(page, cloud, "lb-net", "192.168.91.0/24")
    for _ in range(3):
        launch(page, cloud, "WEB1", "lb-net")
    twins = page.locator("fieldset:has(legend:text-is('Networks')) label", has_text="twin")
    page.goto(cloud.dashboard + "/project/instances")
    assert len(set(twins.all_text_contents())) == 2, twins.all_text_contents()
    page.goto(cloud.dashboard + "/project/load-balancers")
    open_form(page, "Create Load Balancer")
    subnets = page.locator("select[name=subnet_id] option", has_text="twin: ").all_inner_texts()
    assert len(subnets) == 2 and len(set(subnets)) == 2, subnets
    members = page.locator(f"{LB_FORM} label.check", has_text="WEB1")
    assert members.count() == 3 and len(set(members.all_inner_texts())) == 3
    page.fill("input[name=name]", "half")
    page.select_option("select[name=protocol]", "TCP")
    page.fill("input[name=protocol_port]", "99999")
    for box in members.locator("input").all():
        box.check()
    page.select_option("select[name=monitor_type]", "TCP")

    def create() -> str:
        page.click("button:text-is('Create Load Balancer')")
        return str(page.locator(f"{LB_FORM} p.error").inner_text())

    assert create() == "Listener port must be a number from 1 to 65535."
    assert page.input_value("select[name=protocol]") == "TCP"
    assert members.locator("input:checked").count() == 3
    # What only the API knows is checked before anything is made too.
    page.fill("input[name=protocol_port]", "80")
    page.fill("input[name=max_retries]", "11")
    error = create()
    assert error.startswith("Max retries '11' is not valid"), error
    assert page.locator("#loadbalancers", has_text="half").count() == 0
    page.fill("input[name=max_retries]", "2")
    submit(page, "Create Load Balancer", r"/project/load-balancers/[0-9a-f-]{36}$")
    tree = page.locator("[data-status] .tree")
    page.wait_for_function("el => el.textContent.includes('listener')", arg=tree.element_handle())
    assert tree.inner_text().count("member WEB1") == 3


def test_statuses_change_on_the_page_without_reload(cloud: Cloud, admin_page: Any) -> None:
    page = admin_page
    # Its network taken from its DHCP agent, an instance stays BUILD: no DHCP answers it.
    with httpx.Client(base_url=cloud.url) as http:
        admin = login(http, "admin", ADMIN_PASSWORD, "admin")
        network = admin.create("networks", name="live-net")
        admin.create("subnets", network_id=network["id"], ip_version=4, cidr="192.168.92.0/24")
        (agent,) = admin.get(f"/networks/{network['id']}/dhcp-agents").json()["agents"]
        served = f"/agents/{agent['id']}/dhcp-networks"
        assert admin.delete(f"{served}/{network['id']}").status_code == 204
        page.goto(cloud.dashboard + "/project/instances")
        open_form(page, "Launch Instance")
        page.fill("input[name=name]", "live")
        page.locator("label.check", has_text="live-net").locator("input").check()
        submit(page, "Launch", r"/project/instances/[0-9a-f-]{36}$")
        page.goto(cloud.dashboard + "/project/instances")
        row = page.locator("#instances tr", has_text="live")
        assert row.locator(".status").inner_text() == "BUILD"
        page.evaluate("window.loadedOnce = true")
        # Once DHCP answers, the list opened before shows the instance ACTIVE by itself.
        given_back = admin.post(served, json={"network_id": network["id"]})
        assert given_back.status_code == 201, given_back.text
    row.locator(".status:text-is('ACTIVE')").wait_for(timeout=60_000)
    assert page.evaluate("window.loadedOnce === true")  # no reload: the same page


PHONE = {"width": 390, "height": 844}
PAGES = (
    "/project/topology",
    "/project/networks",
    "/admin/networks",
    "/project/routers",
    "/project/floating-ips",
    "/project/security-groups",
    "/project/load-balancers",
    "/project/instances",
    "/admin/resources",
    "/admin/quotas",
    "/admin/identity",
    "/admin/agents",
)


def test_a_phone_has_a_menu_and_tables_that_scroll_in_place(cloud: Cloud, admin_page: Any) -> None:
    """(That no page scrolls sideways is checked for every page in test_every_page.)"""
    page = admin_page
    create_network(page, cloud, "phone-net", "192.168.93.0/24")
    page.set_viewport_size(PHONE)
    # The sections are behind the menu button.
    page.goto(cloud.dashboard + "/admin/networks")
    assert not page.locator("nav.side").is_visible()
    page.click("button.menu")
    assert page.locator("nav.side a:text-is('Routers')").is_visible()
    screenshot(page, "17-phone-menu")
    assert page.get_attribute("button.menu", "aria-expanded") == "true"
    # A table wider than the phone scrolls inside itself.
    table = page.locator("#networks")
    assert table.evaluate("el => el.scrollWidth > el.clientWidth")
    assert table.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    page.goto(cloud.dashboard + "/project/topology")
    page.wait_for_selector("a.node")
    assert page.locator(".topology svg").bounding_box()["width"] <= PHONE["width"]
    screenshot(page, "18-phone-topology")


# The contrast of each element's own text with the background it is drawn on (WCAG 2).
CONTRASTS = """() => {
  const rgb = (color) => color.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => [r, g, b].map((c) => c / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
    .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const color = rgb(getComputedStyle(el).backgroundColor);
      if (color.length < 4 || color[3] > 0) return color;
    }
    return [255, 255, 255];
  };
  const found = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.closest("svg") || !el.getClientRects().length || el.disabled) continue;
    const [a, b] = [luminance(rgb(getComputedStyle(el).color)), luminance(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const text = el.textContent.trim().slice(0, 30);
    if (ratio < 4.5) found.push(`${el.tagName}.${el.className} "${text}" ${ratio.toFixed(2)}`);
  }
  return found;
}"""


def test_text_is_readable_and_the_topology_is_told_in_words(cloud: Cloud, admin_page: Any) -> None:
    page = admin_page
    for path in PAGES:
        page.goto(cloud.dashboard + path)
        closed = page.locator("details:not([open]) > summary")  # one fewer with each click
        while closed.count():
            closed.first.click()
        assert page.evaluate(CONTRASTS) == [], path
    # A keyboard's first stop skips the header and the sections.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # The topology has a title, a description and its links as a list a screen reader reads.
    network = create_network(page, cloud, "told-net", "192.168.94.0/24")
    with httpx.Client(base_url=cloud.url) as http:
        admin = login(http, "admin", ADMIN_PASSWORD, "admin")
        router = admin.create("routers", name="told-router")
        subnet = admin.get("/subnets", params={"network_id": network}).json()["subnets"][0]
        added = admin.put(
            f"/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]}
        )
        assert added.status_code == 200, added.text
    page.goto(cloud.dashboard + "/project/topology")
    page.wait_for_selector("a.node")
    assert page.get_by_role("group", name="Network topology").count() == 1
    assert "networks" in page.locator(".topology svg desc").text_content()
    page.click("summary:has-text('Links as a list')")
    link = page.locator("#topology-links li", has_text="told-router")
    assert (
        link.inner_text() == "router told-router has the interface 192.168.94.1 on network told-net"
    )
    assert link.get_by_role("link").count() == 2


def test_a_long_list_filters_sorts_pages_and_deletes_several_at_once(
    browser: Any, cloud: Cloud
) -> None:
    with httpx.Client(base_url=cloud.url) as http:
        admin = login(http, "admin", ADMIN_PASSWORD, "admin")
        user, password = add_member_project(admin, "lister")
        owner = login(http, user, password, user)
        made = {f"t{i:02d}": owner.create("networks", name=f"t{i:02d}")["id"] for i in range(25)}
        owner.create("ports", network_id=made["t00"], name="holds-t00")
        # Another project's shared network is shown after the project's own on the first page.
        shared = admin.create("networks", name="a-shared", shared=True)
        page = sign_in(browser, cloud, user, password, user)
        page.goto(cloud.dashboard + "/project/networks")
        names = page.locator("#networks tbody tr td:nth-child(2)")
        with page.expect_navigation():
            page.click("#networks th a:text-is('Name')")
        shown = names.all_inner_texts()
        assert shown[:20] == [f"t{i:02d}" for i in range(20)] and "a-shared" in shown[20:]
        with page.expect_navigation():
            page.click("a[rel=next]")
        assert names.all_inner_texts() == [f"t{i:02d}" for i in range(20, 25)]
        assert page.locator("a[rel=next]").count() == 0
        with page.expect_navigation():
            page.click("a[rel=prev]")
        assert names.all_inner_texts()[:20] == [f"t{i:02d}" for i in range(20)]
        assert page.locator("a[rel=prev]").count() == 0
        with page.expect_navigation():
            page.click("#networks th a:text-is('Name')")
        assert names.first.inner_text() == "t24"
        assert page.get_attribute("#networks th:has-text('Name')", "aria-sort") == "descending"
        # Typing narrows the shown rows; Enter asks the API (across pages).
        page.fill("input[data-filter=networks]", "t2")
        assert page.locator("#networks tbody tr:visible").count() == 5
        page.fill("input[data-filter=networks]", "t03")
        with page.expect_navigation():
            page.press("input[data-filter=networks]", "Enter")
        assert names.all_inner_texts() == ["t03"]
        # Delete selected: one goes, one in use stays, and the page says which and why.
        page.goto(cloud.dashboard + "/project/networks?sort=name")
        for name in ("t00", "t01"):
            page.check(f"#networks tr:has(a:text-is('{name}')) input[name=id]")
        with page.expect_navigation():
            page.click("button:text-is('Delete selected (2)')")
        assert page.locator(".notice").inner_text() == (
            "Deleted network t01.\nCould not delete network t00: Unable to complete operation on "
            "network t00. There are one or more ports still in use on the network."
        )
        assert names.first.inner_text() == "t00"
        assert owner.get(f"/networks/{made['t01']}").status_code == 404
        page.context.close()
        admin.delete(f"/networks/{shared['id']}")


def test_admin_pages_set_quotas_make_projects_and_users_and_turn_agents_down(
    browser: Any, cloud: Cloud, admin_page: Any
) -> None:
    page = admin_page
    page.goto(cloud.dashboard + "/admin/identity")
    open_form(page, "Create Project")
    page.fill("details:has(> summary:has-text('Create Project')) input[name=name]", "newcomers")
    assert submit(page, "Create Project", r"/admin/identity$") == "Created project newcomers."
    open_form(page, "Create User")
    form = page.locator("details:has(> summary:has-text('Create User'))")
    form.locator("input[name=name]").fill("newbie")
    form.locator("input[name=password]").fill("newbie-secret-1")
    form.locator("select[name=project_id]").select_option(label="newcomers")
    form.locator("select[name=role]").select_option("member")
    assert submit(page, "Create User", r"/admin/identity$") == (
        "Created user newbie (member of the project)."
    )
    assert "newcomers" in page.locator("#users tr", has_text="newbie").inner_text()
    newbie = sign_in(browser, cloud, "newbie", "newbie-secret-1", "newcomers")
    assert newbie.locator("nav.side h2:text-is('Admin')").count() == 0
    assert newbie.goto(cloud.dashboard + "/admin/quotas").status == 403
    newbie.context.close()

    page.goto(cloud.dashboard + "/admin/quotas")
    page.click("#quotas a:text-is('newcomers')")
    project = page.url.rsplit("/", 1)[1]
    page.fill("input[name=network-network]", "7")
    page.fill("input[name=lb-load_balancer]", "3")
    assert submit(page, "Save Quotas", r"/admin/quotas/\w+$") == "Saved the quotas."
    page.goto(cloud.dashboard + "/admin/quotas")
    assert "0 of 7" in page.locator("#quotas tr", has_text="newcomers").inner_text()
    with httpx.Client(base_url=cloud.url) as http:
        admin = login(http, "admin", ADMIN_PASSWORD, "admin")
        assert admin.get(f"/quotas/{project}").json()["quota"]["network"] == 7
        balancers = http.get(
            f"/load-balancer/v2/lbaas/quotas/{project}", headers={"X-Auth-Token": admin.token}
        )
        assert balancers.json()["quota"]["load_balancer"] == 3

        page.goto(cloud.dashboard + "/admin/agents")
        agent = page.locator("#agents tbody tr").first
        host, kind = (
            agent.locator("td").nth(0).inner_text(),
            agent.locator("td").nth(1).inner_text(),
        )
        found = admin.get("/agents", params={"host": host, "agent_type": kind}).json()["agents"][0]
        try:
            assert submit(page, "Set admin state down", r"/admin/agents") == (
                f"The {kind} on {host} is administratively down."
            )
            assert admin.get(f"/agents/{found['id']}").json()["agent"]["admin_state_up"] is False
            assert (
                page.locator("#agents tbody tr").first.locator("td").nth(3).inner_text() == "DOWN"
            )
            submit(page, "Set admin state up", r"/admin/agents")
        finally:
            admin.put(f"/agents/{found['id']}", json={"agent": {"admin_state_up": True}})
