"""What a new user met first: forms that forget, errors in Python, a wizard that half-builds,
statuses that never refresh, a dashboard too wide for a phone, text too faint to read."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser.clicks import create_network, launch, open_form, resource_id, submit
from tests.browser.conftest import Cloud, sign_in
from tests.conftest import ADMIN_PASSWORD, cloud_password, login

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
    create_network(page, cloud, "live-net", "192.168.92.0/24")
    page.goto(cloud.dashboard + "/project/instances")
    open_form(page, "Launch Instance")
    page.fill("input[name=name]", "live")
    page.locator("label.check", has_text="live-net").locator("input").check()
    submit(page, "Launch", r"/project/instances/[0-9a-f-]{36}$")
    # The list, opened while the instance is still being built, shows it ACTIVE once it is.
    page.goto(cloud.dashboard + "/project/instances")
    badge = page.locator("#instances tr", has_text="live").locator("[data-state]")
    assert badge.get_attribute("data-state") == "BUILD"
    page.evaluate("window.loadedOnce = true")
    page.locator("#instances tr", has_text="live").locator("[data-state=ACTIVE]").wait_for(
        timeout=60_000
    )
    assert badge.inner_text() == "ACTIVE"
    assert page.evaluate("window.loadedOnce === true")  # no reload: the same page
