"""What a person does in the dashboard, as reusable steps for the browser tests."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.browser.conftest import Cloud

ID = r"([0-9a-f-]{36})"


def resource_id(page: Any) -> str:
    found = re.search(ID + r"$", page.url)
    assert found, page.url
    return found.group(1)


def submit(page: Any, button: str, landing: str) -> str:
    """Click `button`, wait for the page it leads to (URL matching `landing`) and its notice."""
    with page.expect_navigation():
        page.click(f"button:text-is('{button}')")
    assert re.search(landing, page.url), page.url
    errors = page.locator("p.error").all_inner_texts()
    assert not errors, errors
    return page.locator(".notice").inner_text()


def open_form(page: Any, summary: str) -> None:
    details = page.locator(f"details:has(> summary:has-text('{summary}'))")
    if details.get_attribute("open") is None:
        details.locator("summary").click()


def create_network(page: Any, cloud: Cloud, name: str, cidr: str, **provider: str) -> str:
    page.goto(cloud.dashboard + "/admin/networks")
    open_form(page, "Create Network")
    page.fill("input[name=name]", name)
    if kind := provider.get("type"):
        page.select_option("select[name=network_type]", kind)
        page.fill("input[name=physical_network]", "default")
        page.fill("input[name=segmentation_id]", provider.get("segment", ""))
    if provider.get("external"):
        page.check("input[name=external]")
    page.fill("input[name=cidr]", cidr)
    submit(page, "Create Network", r"/project/networks/[0-9a-f-]{36}$")
    return resource_id(page)


def create_router(page: Any, cloud: Cloud, name: str, gateway: str, *networks: str) -> str:
    """Create Router, Set Gateway to the external network `gateway`.

    Then Add Interface on each network's subnet.
    """
    page.goto(cloud.dashboard + "/project/routers")
    open_form(page, "Create Router")
    page.fill("input[name=name]", name)
    submit(page, "Create Router", r"/project/routers/[0-9a-f-]{36}$")
    router = resource_id(page)
    page.select_option("#gateway select[name=external_network_id]", label=gateway)
    submit(page, "Set Gateway", router)
    for network in networks:
        open_form(page, "Add Interface")
        option = page.locator("select[name=subnet_id] option", has_text=f"{network}: ")
        page.select_option("select[name=subnet_id]", value=option.get_attribute("value"))
        submit(page, "Add Interface", router)
    return router


def launch(page: Any, cloud: Cloud, name: str, network: str) -> str:
    """Launch Instance on a network (by name); waits until it is ACTIVE (has its addresses)."""
    page.goto(cloud.dashboard + "/project/instances")
    open_form(page, "Launch Instance")
    page.fill("input[name=name]", name)
    networks = page.locator(
        "fieldset:has(legend:text-is('Networks')) label.check", has_text=network
    )
    networks.locator("input").check()
    return launched(page)


def launched(page: Any) -> str:
    """Click Launch; the new instance's id once it is ACTIVE."""
    submit(page, "Launch", r"/project/instances/[0-9a-f-]{36}$")
    page.wait_for_selector("#instance-status .s-active", timeout=60_000)
    return resource_id(page)


def address_of(page: Any) -> str:
    text = page.locator("#instance-attrs tr:has(th:text('Addresses')) td").inner_text()
    return text.split("/")[0]


def run_in_console(page: Any, command: str) -> str:
    """Type a command into the instance's terminal once its shell is there; what it printed,
    up to its exit status shown as `[exit N]`."""
    marker = uuid.uuid4().hex[:8]  # the shell's line is told apart from the command's output
    terminal = type_in_console(page, f'{command}; echo "[exit $?]" {marker}\n')
    shown = page.wait_for_function(
        r"""([rows, marker]) => {
          const text = rows.innerText.replace(/\u00a0/g, " ");
          const end = [...text.matchAll(/\[exit \d+\] (\w+)/g)].find((m) => m[1] === marker);
          if (!end) return false;
          const start = text.lastIndexOf(marker, end.index) + marker.length;
          return text.slice(start, end.index + end[0].length - marker.length).trim();
        }""",
        arg=[terminal.element_handle(), marker],
        timeout=30_000,
    )
    return str(shown.json_value())


def type_in_console(page: Any, keys: str) -> Any:
    """Type into the instance's terminal once its shell shows a prompt; the terminal's rows."""
    rows = page.locator(".console .xterm-rows")
    page.wait_for_function(
        r"rows => /[#$] *$/m.test(rows.innerText.replace(/\u00a0/g, ' '))",
        arg=rows.element_handle(),
        timeout=60_000,
    )
    page.locator(".console .xterm").click()
    page.keyboard.type(keys)
    return rows


def allow(page: Any, cloud: Cloud, protocol: str, port: str = "") -> None:
    """Add an ingress rule from anywhere to the project's default security group."""
    page.goto(cloud.dashboard + "/project/security-groups")
    page.click("#groups a:text-is('default')")
    open_form(page, "Add Rule")
    page.select_option("select[name=protocol]", protocol)
    page.fill("input[name=port_min]", port)
    page.fill("input[name=remote_ip_prefix]", "0.0.0.0/0")
    submit(page, "Add Rule", r"/project/security-groups/[0-9a-f-]{36}$")


def check_from_outside(page: Any, kind: str, port: str = "", path: str = "") -> Any:
    """Check from outside, on a floating IP's or load balancer's page; the result once shown."""
    form = page.locator("form[data-probe]")
    form.locator("select[name=kind]").select_option(kind)
    form.locator("input[name=port]").fill(port)
    form.locator("input[name=path]").fill(path)
    form.get_by_role("button", name="Check").click()
    result = form.locator(".result")
    result.locator("p.reachable, p.error").wait_for()
    return result
