"""Every page of the dashboard, as an administrator and as a project's member, on a phone and on
a desktop: nothing scrolls sideways, and axe-core finds no serious or critical violation.

The pages are the dashboard's own GET routes, so a new page is checked as soon as it exists;
a page with an id in its path is shown for the resource of its kind made here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from neutrino.web import routes
from neutrino.web.ui import Dashboard
from tests.browser.conftest import Cloud, screenshot, sign_in
from tests.conftest import ADMIN_PASSWORD, ApiClient, cloud_password, eventually, login

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = {"phone": (390, 844), "desktop": (1440, 900)}
# Shown inside the pages they belong to (the "How it works" sections), not on their own.
FRAGMENTS = ("/explain/{kind}/{id}",)
SERIOUS = """async () => {
  const found = await axe.run(document, { resultTypes: ["violations"] });
  return found.violations.filter((v) => ["serious", "critical"].includes(v.impact))
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).slice(0, 5).join(", ")}`);
}"""


@dataclass
class Made:
    """One of each kind of resource, in the demo project: both users see them."""

    ids: dict[str, str]  # a page's collection path -> the id its {id} stands for
    source: str  # an instance, and the address of another one whose group admits nothing
    closed: str
    router_address: str
    floating_ip: str
    fixed_ip: str


def lab(client: ApiClient, method: str, path: str, **body: Any) -> Any:
    response = client.http.request(
        method, "/lab/v1" + path, headers={"X-Auth-Token": client.token}, json=body or None
    )
    assert response.status_code < 300, response.text
    return response.json()


@pytest.fixture(scope="module")
def made(cloud: Cloud) -> Iterator[Made]:
    with httpx.Client(base_url=cloud.url, timeout=60) as http:
        admin = login(http, "admin", ADMIN_PASSWORD, "admin")
        demo = login(http, "demo", cloud_password(cloud.state_dir, "neutrino-demo"), "demo")
        public = admin.create("networks", name="public", **{"router:external": True})
        admin.create("subnets", network_id=public["id"], ip_version=4, cidr="10.10.40.0/24")
        net = demo.create("networks", name="app-net")
        subnet = demo.create("subnets", network_id=net["id"], ip_version=4, cidr="10.0.7.0/24")
        router = demo.create(
            "routers", name="app-router", external_gateway_info={"network_id": public["id"]}
        )
        added = demo.put(
            f"/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]}
        )
        assert added.status_code == 200, added.text
        web = demo.create("security-groups", name="web")
        networks = [{"network_id": net["id"]}]
        vms = [
            lab(demo, "POST", "/instances", instance={"name": name, "networks": networks})[
                "instance"
            ]
            for name in ("vm1", "vm2")
        ]
        ports = {vm["name"]: vm["port_ids"][0] for vm in vms}
        closed = demo.put(f"/ports/{ports['vm2']}", json={"port": {"security_groups": [web["id"]]}})
        assert closed.status_code == 200, closed.text
        fip = demo.create("floatingips", floating_network_id=public["id"], port_id=ports["vm1"])
        balancer = http.post(
            "/load-balancer/v2/lbaas/loadbalancers",
            headers={"X-Auth-Token": demo.token},
            json={"loadbalancer": {"name": "app-lb", "vip_subnet_id": subnet["id"]}},
        )
        assert balancer.status_code == 201, balancer.text

        def addresses() -> dict[str, str]:
            found = {}
            for vm in vms:
                port = demo.get(f"/ports/{ports[vm['name']]}").json()["port"]
                status = lab(demo, "GET", f"/instances/{vm['id']}")["instance"]["status"]
                if status == "ACTIVE":
                    found[vm["name"]] = port["fixed_ips"][0]["ip_address"]
            return found

        assert eventually(lambda: len(addresses()) == 2, seconds=60)
        fixed = addresses()
        yield Made(
            ids={
                "/project/networks": net["id"],
                "/project/ports": ports["vm1"],
                "/project/routers": router["id"],
                "/project/floating-ips": fip["id"],
                "/project/security-groups": web["id"],
                "/project/instances": vms[0]["id"],
                "/project/load-balancers": balancer.json()["loadbalancer"]["id"],
                "/admin/quotas": demo.project_id,
            },
            source="vm1",
            closed=fixed["vm2"],
            router_address=subnet["gateway_ip"],
            floating_ip=fip["floating_ip_address"],
            fixed_ip=fixed["vm1"],
        )


def pages(made: Made) -> list[str]:
    """Every page the dashboard serves, its {id} the resource made for its kind."""
    found = []
    for route in routes(Dashboard(None)):  # type: ignore[arg-type]  # read, never served
        if not isinstance(route, Route) or route.methods != {"GET", "HEAD"}:
            continue  # actions answer GET with their page: seen at the page's own path
        if route.path.endswith(".json") or route.path in FRAGMENTS:
            continue
        collection, _, rest = route.path.partition("/{id}")
        if rest or "{" in collection:
            raise AssertionError(f"no resource made for the page {route.path}")
        found.append(collection + (f"/{made.ids[collection]}" if route.path != collection else ""))
    return ["/login", *found]


def problems(page: Any) -> list[str]:
    """What a user of this page, at this width, runs into."""
    found = []
    overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    if overflow > 0:
        found.append(f"scrolls sideways by {overflow}px")
    return found + page.evaluate(SERIOUS)


def checking(context: Any) -> Any:
    """Every page `context` opens from now on comes with axe-core (loaded with the page: much
    quicker than adding it to each page afterwards)."""
    context.add_init_script(path=str(AXE))
    return context


def shown(page: Any, url: str) -> None:
    """Open `url` and wait for what the page loads after itself (How it works)."""
    page.goto(url)
    how = page.locator("#how-it-works")
    if how.count():
        page.wait_for_function(
            "el => !el.textContent.includes('Reading the kernel')",
            arg=how.element_handle(),
            timeout=30_000,
        )
        assert not how.locator(".error").count(), how.inner_text()


@pytest.mark.parametrize("who", ["admin", "member"])
def test_every_page_fits_a_phone_and_a_desktop_and_passes_axe(
    browser: Any, cloud: Cloud, made: Made, who: str
) -> None:
    if who == "admin":
        page = sign_in(browser, cloud, "admin", ADMIN_PASSWORD, "admin")
    else:
        password = cloud_password(cloud.state_dir, "neutrino-demo")
        page = sign_in(browser, cloud, "demo", password, "demo")
    checking(page.context)
    found = {}
    for width, (x, y) in WIDTHS.items():
        page.set_viewport_size({"width": x, "height": y})
        seen = set()
        for path in pages(made):
            if path == "/login":  # signed out, in a context of its own: once is enough
                if who == "admin":
                    signed_out = checking(browser.new_context(viewport={"width": x, "height": y}))
                    login = signed_out.new_page()
                    shown(login, cloud.dashboard + path)
                    found[(width, path)] = problems(login)
                    screenshot(login, f"every-{width}-login")
                    signed_out.close()
                continue
            shown(page, cloud.dashboard + path)
            path = page.url.removeprefix(cloud.dashboard)
            if path in seen:  # a redirect to a page already checked
                continue
            seen.add(path)
            found[(width, path)] = problems(page)
            name = re.sub(r"[0-9a-f-]{36}", "id", path).strip("/").replace("/", "-")
            if who == "admin":
                screenshot(page, f"every-{width}-{name}")
    page.context.close()
    failing = [
        f"{width} {path}: {error}" for (width, path), errors in found.items() for error in errors
    ]
    assert not failing, "\n".join(failing)


def test_a_dropped_packet_names_the_security_group_and_where(
    cloud: Cloud, made: Made, admin_page: Any
) -> None:
    page = admin_page
    checking(page.context)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(cloud.dashboard + "/explain/trace")
    page.fill("input[name=source]", made.source)
    page.fill("input[name=destination]", made.closed)
    page.select_option("select[name=protocol]", "tcp")
    page.fill("input[name=port]", "80")
    with page.expect_navigation():
        page.click("button:text-is('Trace')")
    verdict = page.locator("#verdict")
    assert verdict.count() == 1, page.locator("main").inner_text()
    assert re.fullmatch(
        r"Dropped by security group web on port [0-9a-f]{8} \(instance vm2\): "
        r"no rule allows TCP 80 in\.",
        " ".join(verdict.inner_text().split()),
    ), verdict.inner_text()
    assert verdict.get_by_role("link", name="web").get_attribute("href") == (
        f"/dashboard/project/security-groups/{made.ids['/project/security-groups']}"
    )
    # The hop where it happened stands out; the kernel's own lines wait behind a disclosure.
    assert page.locator("#hops li.drop").inner_text().startswith("Dropped here")
    assert not page.locator("details:has(summary:has-text('nft trace')) pre").is_visible()
    assert problems(page) == []
    screenshot(page, "trace-dropped-phone")

    # Delivered: the path as hops, from the instance to the router that answered.
    page.goto(
        cloud.dashboard + f"/explain/trace?source={made.source}&destination={made.router_address}"
    )
    verdict_text = page.locator("#verdict").inner_text()
    assert verdict_text == f"Delivered: ping {made.router_address} from vm1 was answered."
    hops = page.locator("#hops li").all_inner_texts()
    assert [hop.split()[0] for hop in hops] == ["Instance", "Tap", "Bridge", "Tap"], hops


def test_the_router_explains_itself_in_short_sections(
    cloud: Cloud, made: Made, admin_page: Any
) -> None:
    page = admin_page
    page.set_viewport_size({"width": 1440, "height": 900})
    shown(page, cloud.dashboard + f"/project/routers/{made.ids['/project/routers']}")
    how = page.locator("#how-it-works")
    assert how.locator("h3").all_inner_texts() == [
        "Interfaces",
        "Routes",
        "NAT",
        "Connections (conntrack)",
        "Trace a packet",
    ]
    nat = how.locator("section:has(h3:text-is('NAT')) tbody tr").all_inner_texts()
    ip, fixed = made.floating_ip, made.fixed_ip
    assert nat == [f"{ip}\tto {ip} → {fixed}\tfrom {fixed} → {ip}"], nat
    assert "10.0.7.0/24" in how.locator("section:has(h3:text-is('Interfaces'))").inner_text()
    # The kernel's raw NAT table is there, folded.
    assert not how.locator("section:has(h3:text-is('NAT')) pre").is_visible()
    height = page.evaluate("document.scrollingElement.scrollHeight")
    assert height < 2000, height
    screenshot(page, "router-how-it-works")


def test_an_administrator_is_offered_the_floating_ips_own_instances(
    browser: Any, cloud: Cloud, made: Made, admin_page: Any
) -> None:
    """On a floating IP of the demo project, the administrator sees and is offered demo's
    instances, as demo is, not those of the project it is signed in to."""
    page = admin_page
    page.set_viewport_size({"width": 1440, "height": 900})
    shown(page, cloud.dashboard + f"/project/floating-ips/{made.ids['/project/floating-ips']}")
    mapped = page.locator("#fip-attrs tr:has(th:text-is('Mapped to')) td").inner_text()
    assert f"{made.fixed_ip} on instance {made.source}," in mapped, mapped
    trace = page.locator("#how-it-works form.trace")
    assert trace.locator("input[name=source]").input_value() == made.source

    password = cloud_password(cloud.state_dir, "neutrino-demo")
    with httpx.Client(base_url=cloud.url) as http:
        demo = login(http, "demo", password, "demo")
        [public] = demo.get("/networks", params={"name": "public"}).json()["networks"]
        free = demo.create("floatingips", floating_network_id=public["id"])
        try:
            choices = "select[name=target] option:not([value=''])"
            page.goto(cloud.dashboard + f"/project/floating-ips/{free['id']}")
            offered = page.locator(choices).all_inner_texts()
            assert f"{made.source}: {made.fixed_ip}" in offered, offered
            owner = sign_in(browser, cloud, "demo", password, "demo")
            owner.goto(page.url)
            assert offered == owner.locator(choices).all_inner_texts()
            owner.context.close()
        finally:
            assert demo.delete(f"/floatingips/{free['id']}").status_code == 204


def test_an_administrator_sees_the_routers_subnets_by_name(
    cloud: Cloud, made: Made, admin_page: Any
) -> None:
    page = admin_page
    page.goto(cloud.dashboard + f"/project/routers/{made.ids['/project/routers']}")
    interface = page.locator("#interfaces tr", has_text="Internal interface")
    assert interface.locator("td").nth(2).inner_text() == "app-net: 10.0.7.0/24"
