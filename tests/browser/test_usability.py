"""What a new user met first: forms that forget, errors in Python, a wizard that half-builds,
statuses that never refresh, a dashboard too wide for a phone, text too faint to read."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser.clicks import open_form, resource_id, submit
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
