"""SCENARIOS.md S1-S5 built by clicking only, checked with real packets; errors; project isolation.

Every step is a click or a keystroke in the dashboard; the checks use real
packets from instances (typed into their console, a terminal) and from the outside world
(the floating IP page's Check from outside), and read the topology and "How it works" as a
person would. Screenshots of the main pages go to artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.browser.clicks import (
    address_of,
    check_from_outside,
    create_network,
    create_router,
    launch,
    launched,
    open_form,
    resource_id,
    run_in_console,
    submit,
    type_in_console,
)
from tests.browser.conftest import Cloud, screenshot, sign_in
from tests.conftest import ADMIN_PASSWORD, cloud_password, login


def test_s1_flat_provider_network(cloud: Cloud, admin_page: Any) -> None:
    """First of the module: a physical network carries one flat network, which S3's external
    network takes next."""
    page = admin_page
    page.goto(cloud.dashboard + "/admin/networks")
    open_form(page, "Create Network")
    page.fill("input[name=name]", "flat_net")
    page.select_option("select[name=network_type]", "flat")
    page.fill("input[name=physical_network]", "nowhere")
    page.fill("input[name=cidr]", "172.16.1.0/24")
    with page.expect_navigation():
        page.click("button:text-is('Create Network')")
    refused = page.locator("p.error").inner_text()
    assert "nowhere" in refused, refused
    assert page.input_value("input[name=physical_network]") == "nowhere"  # the form kept

    create_network(page, cloud, "flat_net", "172.16.1.0/24", type="flat")
    launch(page, cloud, "flat-vm1", "flat_net")
    vm1_page = page.url
    launch(page, cloud, "flat-vm2", "flat_net")
    vm2_ip = address_of(page)
    assert vm2_ip.startswith("172.16.1.")
    page.goto(vm1_page)
    shown = run_in_console(page, f"ping -c1 -W2 {vm2_ip}")
    assert "1 received" in shown and "[exit 0]" in shown, shown
    screenshot(page, "00-flat-network-ping")
    cloud.neutrino("instance", "delete", "flat-vm1", "flat-vm2")
    cloud.cli("network", "delete", "flat_net", output=False)


def test_s2_s3_s4_by_clicking(cloud: Cloud, admin_page: Any) -> None:
    page = admin_page
    screenshot(page, "01-topology-empty")
    ext = create_network(page, cloud, "ext_net", "10.10.10.0/24", type="flat", external="yes")
    net100 = create_network(page, cloud, "vlan100", "172.16.100.0/24", type="vlan", segment="100")
    net101 = create_network(page, cloud, "vlan101", "172.16.101.0/24", type="vlan", segment="101")
    page.goto(cloud.dashboard + "/admin/networks")
    assert (
        page.locator("#networks tr", has_text="vlan101").locator("td").nth(5).inner_text() == "101"
    )
    screenshot(page, "02-admin-networks")

    # Project -> Network -> Routers -> Create Router, Set Gateway, Add Interface x2.
    router = create_router(page, cloud, "router_100_101", "ext_net", "vlan100", "vlan101")
    assert "ext_net (10.10.10." in page.locator("#router-attrs").inner_text()
    interfaces = page.locator("#interfaces").inner_text()
    assert "172.16.100.1" in interfaces and "172.16.101.1" in interfaces
    screenshot(page, "03-router")

    # Two instances, one on each VLAN; S2: they reach each other through the router.
    # Meanwhile the topology, open in another tab, shows them as they come.
    topology = page.context.new_page()
    topology.goto(cloud.dashboard + "/project/topology")
    topology.wait_for_selector(f"a.node[data-id='{router}']")
    launch(page, cloud, "cirros-vm1", "vlan100")
    vm1_page = page.url
    vm3 = launch(page, cloud, "cirros-vm3", "vlan101")
    topology.wait_for_selector(f"a.node[data-id='{vm3}']")
    topology.close()
    vm3_ip = address_of(page)
    assert vm3_ip.startswith("172.16.101.")
    page.goto(vm1_page)
    # The console is a shell in cirros-vm1, on a terminal: its address, then its gateway's
    # replies as they come, until Ctrl-C stops the ping.
    shown = run_in_console(page, "ip -4 -o addr show eth0 | awk '{print $4}'")
    assert re.search(r"^172\.16\.100\.\d+/24$", shown, re.MULTILINE), shown
    rows = type_in_console(page, "ping -i 0.2 172.16.100.1\n")
    page.wait_for_function(
        "rows => rows.innerText.split('bytes from 172.16.100.1').length > 3",
        arg=rows.element_handle(),
    )
    page.keyboard.press("Control+C")
    page.wait_for_function(
        "rows => rows.innerText.includes('packets transmitted')", arg=rows.element_handle()
    )
    assert run_in_console(page, f"ping -c1 -W2 {vm3_ip}").endswith("[exit 0]")
    screenshot(page, "04-instance-console")

    # S4: Allocate IP To Project from ext_net, Associate it with cirros-vm3.
    page.goto(cloud.dashboard + "/project/floating-ips")
    page.select_option("select[name=pool]", label="ext_net")
    notice = submit(page, "Allocate IP", r"/project/floating-ips/[0-9a-f-]{36}$")
    fip = re.search(r"Allocated (\S+) ", notice).group(1)  # type: ignore[union-attr]
    page.select_option("select[name=target]", label=f"cirros-vm3: {vm3_ip}")
    submit(page, "Associate", r"/project/floating-ips/[0-9a-f-]{36}$")
    assert vm3_ip in page.locator("#fip-attrs").inner_text()
    fip_page = page.url

    # Real packets from the outside world reach cirros-vm3 through the floating IP once the
    # default security group lets ICMP in: the page says so, Check from outside names the group
    # that drops the ping, and its button adds exactly that rule and checks again.
    assert "Security group default" in page.locator("#outside-hint").inner_text()
    result = check_from_outside(page, "ping")
    assert "dropped by security group default (no rule allows ICMP in)" in result.inner_text()
    result.get_by_role("button", name="Allow ICMP in security group default").click()
    result.locator("p.reachable").wait_for()
    assert f"Sent: ping {fip} from 10.10.10.1" in result.inner_text()
    assert page.locator("#outside-hint").count() == 0
    screenshot(page, "17-check-from-outside")

    # S3: cirros-vm1 (no floating IP) reaches the outside through the router's source NAT.
    page.goto(vm1_page)
    assert run_in_console(page, "ping -c1 -W2 10.10.10.1").endswith("[exit 0]")

    # The topology shows the router linked to both networks and the external network.
    page.goto(cloud.dashboard + "/project/topology")
    for network in (net100, net101, ext):
        page.wait_for_selector(
            f"path.edge[data-from='{router}'][data-to='{network}']", state="attached"
        )
    page.wait_for_selector(f"a.node[data-id='{vm3}']")
    screenshot(page, "06-topology")
    page.click(f"a.node[data-id='{router}']")
    page.wait_for_url(re.compile(router))

    # How it works: the DNAT and SNAT map elements of this floating IP, read from the kernel,
    # and a packet traced from cirros-vm1 to the outside, hop by hop.
    page.goto(fip_page)
    nat = page.locator("#how-it-works section:has(h3:text-is('NAT')) tbody tr")
    nat.wait_for()
    assert nat.inner_text() == f"{fip}\tto {fip} → {vm3_ip}\tfrom {vm3_ip} → {fip}"
    answering = page.locator("#how-it-works .facts div:has(dt:text-is('Answered on')) dd")
    assert re.fullmatch(r"qg-\S+ \(a local route\)", answering.inner_text())
    screenshot(page, "05-floating-ip-how-it-works")
    page.fill("form.trace input[name=source]", "cirros-vm1")
    page.fill("form.trace input[name=destination]", "10.10.10.1")
    with page.expect_navigation():
        page.click("form.trace button:has-text('Trace')")
    assert page.locator("#verdict").inner_text().startswith("Delivered: ping 10.10.10.1")
    assert "Router gateway" in page.locator("#hops").inner_text()
    screenshot(page, "05-trace")

    for name, path in (
        ("07-networks", "/project/networks"),
        ("08-floating-ips", "/project/floating-ips"),
        ("09-instances", "/project/instances"),
        ("10-security-groups", "/project/security-groups"),
        ("11-admin-resources", "/admin/resources"),
    ):
        page.goto(cloud.dashboard + path)
        screenshot(page, name)

    # A static route on the router, added and removed on its page.
    page.goto(cloud.dashboard + f"/project/routers/{router}")
    open_form(page, "Add Static Route")
    page.fill("input[name=destination]", "192.168.99.0/24")
    page.fill("input[name=nexthop]", "172.16.100.254")
    submit(page, "Add", router)
    assert "172.16.100.254" in page.locator("#static-routes").inner_text()
    page.locator("#static-routes").get_by_role("button", name="Remove").click()
    page.wait_for_selector(".notice:has-text('Removed the static route')")
    assert "192.168.99.0/24" not in page.locator("#static-routes").inner_text()

    # Disassociate: the outside reaches cirros-vm3 no more; Release gives the address back.
    page.goto(fip_page)
    submit(page, "Disassociate", fip_page)
    result = check_from_outside(page, "ping")
    assert "Not reachable: the floating IP is not associated with a port." in result.inner_text()
    submit(page, "Release Floating IP", r"/project/floating-ips$")
    assert fip not in page.locator("#floatingips").inner_text()


def test_s5_port_with_a_chosen_ip(cloud: Cloud, admin_page: Any) -> None:
    """Create a port with a chosen fixed IP on vlan101, launch an instance on it: it gets
    that IP."""
    page = admin_page
    page.goto(cloud.dashboard + "/project/networks")
    page.click("#networks a:text-is('vlan101')")
    open_form(page, "Create Port")
    page.fill("details:has(> summary:has-text('Create Port')) input[name=name]", "static-port")
    page.fill("input[name=ip_address]", "172.16.101.10")
    submit(page, "Create Port", r"/project/ports/[0-9a-f-]{36}$")
    page.fill("form[action$='/project/instances'] input[name=name]", "cirros-vm10")
    launched(page)
    assert address_of(page) == "172.16.101.10"
    page.click("table a[href*='/project/ports/']")  # the instance's port: what implements it
    page.wait_for_url(re.compile(r"/project/ports/"))
    page.locator("#how-it-works details").first.wait_for()
    assert "172.16.101.10" in page.locator("#how-it-works").inner_text()
    screenshot(page, "16-port-how-it-works")


def test_editing_subnets_ports_groups_and_routers_after_creation(
    cloud: Cloud, admin_page: Any
) -> None:
    page = admin_page
    network = create_network(page, cloud, "edit-net", "10.77.0.0/24")
    with httpx.Client(base_url=cloud.url) as http:
        api = login(http, "admin", ADMIN_PASSWORD, "admin")

        # A subnet's pools, name servers and host routes, an item a line.
        subnet_form = "details.edit-subnet"
        open_form(page, "Edit Subnet")
        page.fill(f"{subnet_form} textarea[name=allocation_pools]", "10.77.0.10, 10.77.0.99")
        page.fill(f"{subnet_form} textarea[name=dns_nameservers]", "192.0.2.53\n192.0.2.54")
        page.fill(f"{subnet_form} textarea[name=host_routes]", "192.168.88.0/24, 10.77.0.254")
        notice = submit(page, "Save Subnet", network)
        assert notice == ("Saved the subnet's dns nameservers, allocation pools, host routes.")
        assert "10.77.0.10 – 10.77.0.99" in page.locator("#subnets").inner_text()
        [subnet] = api.get("/subnets", params={"network_id": network}).json()["subnets"]
        assert subnet["allocation_pools"] == [{"start": "10.77.0.10", "end": "10.77.0.99"}]
        assert subnet["dns_nameservers"] == ["192.0.2.53", "192.0.2.54"]
        assert subnet["host_routes"] == [
            {"destination": "192.168.88.0/24", "nexthop": "10.77.0.254"}
        ]

        # A group renamed, and a rule from a preset for IPv6.
        page.goto(cloud.dashboard + "/project/security-groups")
        open_form(page, "Create Security Group")
        page.fill("input[name=name]", "edit-sg")
        submit(page, "Create Security Group", r"/project/security-groups/[0-9a-f-]{36}$")
        group = resource_id(page)
        open_form(page, "Edit Security Group")
        page.fill("details:has(> summary:has-text('Edit Security Group')) input[name=name]", "web")
        submit(page, "Save Security Group", group)
        assert page.locator("h1").inner_text() == "Security group web"
        open_form(page, "Add Rule")
        page.select_option("select[name=preset]", label="SSH")
        page.select_option("select[name=ethertype]", "IPv6")
        page.fill("input[name=remote_ip_prefix]", "2001:db8::/64")
        submit(page, "Add Rule", group)
        assert "ingress IPv6 tcp 22 2001:db8::/64" in page.locator("#rules").inner_text().replace(
            "\t", " "
        )
        rules = api.get(f"/security-groups/{group}").json()["security_group"]
        assert {
            (r["ethertype"], r["protocol"], r["port_range_min"], r["port_range_max"])
            for r in rules["security_group_rules"]
            if r["direction"] == "ingress"
        } == {("IPv6", "tcp", 22, 22)}

        # A port's groups, address pairs and port security; off, it takes no group.
        page.goto(cloud.dashboard + f"/project/networks/{network}")
        open_form(page, "Create Port")
        page.fill("details:has(> summary:has-text('Create Port')) input[name=name]", "edit-port")
        submit(page, "Create Port", r"/project/ports/[0-9a-f-]{36}$")
        port = resource_id(page)
        edit_port = "details:has(> summary:has-text('Edit Port'))"
        open_form(page, "Edit Port")
        page.select_option(f"{edit_port} select[name=security_groups]", label=["default", "web"])
        pairs = "10.77.0.200\n10.77.0.0/28, fa:16:3e:00:00:77"
        page.fill(f"{edit_port} textarea[name=allowed_address_pairs]", pairs)
        submit(page, "Save Port", port)
        attrs = page.locator("#port-attrs").inner_text()
        groups_shown = page.locator("#port-attrs tr:has(th:text('Security groups')) td")
        assert sorted(groups_shown.inner_text().split()) == ["default", "web"]
        assert "10.77.0.0/28 (fa:16:3e:00:00:77)" in attrs
        shown = api.get(f"/ports/{port}").json()["port"]
        assert len(shown["security_groups"]) == 2 and group in shown["security_groups"]
        assert [p["ip_address"] for p in shown["allowed_address_pairs"]] == [
            "10.77.0.200",
            "10.77.0.0/28",
        ]
        open_form(page, "Edit Port")
        page.uncheck(f"{edit_port} input[name=port_security_enabled]")
        pairs = page.input_value(f"{edit_port} textarea[name=allowed_address_pairs]")
        assert pairs.endswith("10.77.0.0/28, fa:16:3e:00:00:77")  # the port's, a pair a line
        page.click("button:text-is('Save Port')")
        assert page.locator(f"{edit_port} p.error").inner_text() == (
            "Port has security group associated. Cannot disable port security or ip address "
            "until security group is removed"
        )
        assert page.input_value(f"{edit_port} textarea[name=allowed_address_pairs]") == pairs
        assert not page.is_checked(f"{edit_port} input[name=port_security_enabled]")
        page.select_option(f"{edit_port} select[name=security_groups]", [])
        page.fill(f"{edit_port} textarea[name=allowed_address_pairs]", "")
        submit(page, "Save Port", port)
        shown = api.get(f"/ports/{port}").json()["port"]
        assert (shown["port_security_enabled"], shown["security_groups"]) == (False, [])
        assert "disabled" in page.locator("#port-attrs").inner_text()

        # A router renamed, set down, and given a gateway without SNAT.
        page.goto(cloud.dashboard + "/project/routers")
        open_form(page, "Create Router")
        page.fill("input[name=name]", "edit-router")
        submit(page, "Create Router", r"/project/routers/[0-9a-f-]{36}$")
        router = resource_id(page)
        open_form(page, "Edit Router")
        page.fill("details:has(> summary:has-text('Edit Router')) input[name=name]", "renamed")
        page.uncheck("input[name=admin_state_up]")
        assert submit(page, "Save Router", router) == "Saved the router's name, admin state up."
        assert page.locator("h1").inner_text().startswith("Router renamed")
        shown = api.get(f"/routers/{router}").json()["router"]
        assert (shown["name"], shown["admin_state_up"]) == ("renamed", False)
        # Its gateway on S3's external network, without source NAT (an administrator may).
        page.select_option("#gateway select[name=external_network_id]", label="ext_net")
        page.uncheck("#gateway input[name=enable_snat]")
        submit(page, "Set Gateway", router)
        assert "SNAT off" in page.locator("#router-attrs").inner_text()
        gateway = api.get(f"/routers/{router}").json()["router"]["external_gateway_info"]
        assert gateway["enable_snat"] is False

        # Launch Instance with the group chosen: its port is in that group only.
        page.goto(cloud.dashboard + "/project/instances")
        open_form(page, "Launch Instance")
        page.fill("input[name=name]", "edit-vm")
        page.locator(
            "fieldset:has(legend:text-is('Networks')) label.check", has_text="edit-net"
        ).locator("input").check()
        groups = page.locator("fieldset:has(legend:text-is('Security Groups'))")
        assert groups.locator("label.check", has_text="default").locator("input").is_checked()
        groups.locator("label.check", has_text="default").locator("input").uncheck()
        groups.locator("label.check", has_text="web").locator("input").check()
        submit(page, "Launch", r"/project/instances/[0-9a-f-]{36}$")
        instance = resource_id(page)
        assert (
            "web"
            == page.locator("#instance-attrs tr:has(th:text('Security groups')) td").inner_text()
        )
        [made] = api.get("/ports", params={"device_id": instance}).json()["ports"]
        assert made["security_groups"] == [group]


def test_errors_are_shown_next_to_the_form(cloud: Cloud, admin_page: Any) -> None:
    page = admin_page
    page.goto(cloud.dashboard + "/project/networks")
    open_form(page, "Create Network")
    page.fill("input[name=name]", "broken")
    page.fill("input[name=cidr]", "300.1.1.0/24")
    page.click("button:text-is('Create Network')")
    error = page.locator("details:has(> summary:has-text('Create Network')) p.error")
    assert "is not a valid IP subnet" in error.inner_text()
    assert (
        page.input_value("input[name=cidr]") == "300.1.1.0/24"
    )  # what was typed is kept to correct it
    assert "Traceback" not in page.content()
    assert page.locator("#networks", has_text="broken").count() == 0  # the wizard is all or nothing
    page.goto(cloud.dashboard + "/project/security-groups")
    page.click("#groups a:text-is('default')")
    open_form(page, "Add Rule")
    page.select_option("select[name=protocol]", "tcp")
    page.fill("input[name=port_min]", "eighty")
    page.click("button:text-is('Add Rule')")
    assert (
        page.locator("details:has(> summary:has-text('Add Rule')) p.error").inner_text()
        == "Port from must be a number."
    )
    screenshot(page, "12-form-error")


def test_a_member_sees_only_its_project(browser: Any, cloud: Cloud, admin_page: Any) -> None:
    create_network(admin_page, cloud, "admin-secret-net", "192.168.77.0/24")
    admin_page.goto(cloud.dashboard + "/project/routers")
    open_form(admin_page, "Create Router")
    admin_page.fill("input[name=name]", "admin-secret-router")
    submit(admin_page, "Create Router", r"/project/routers/[0-9a-f-]{36}$")
    foreign_router = admin_page.url

    demo = sign_in(browser, cloud, "demo", cloud_password(cloud.state_dir, "neutrino-demo"), "demo")
    demo.goto(cloud.dashboard + "/project/networks")
    open_form(demo, "Create Network")
    demo.fill("input[name=name]", "demo-private")
    demo.fill("input[name=cidr]", "192.168.50.0/24")
    submit(demo, "Create Network", r"/project/networks/[0-9a-f-]{36}$")
    for path in (
        "/project/networks",
        "/project/routers",
        "/project/floating-ips",
        "/project/instances",
        "/project/security-groups",
        "/project/load-balancers",
        "/project/topology",
    ):
        demo.goto(cloud.dashboard + path)
        for foreign in (
            "admin-secret-net",
            "admin-secret-router",
            "vlan100",
            "router_100_101",
            "cirros-vm3",
        ):
            assert foreign not in demo.content(), (path, foreign)
    topology = demo.request.get(cloud.dashboard + "/project/topology.json").json()
    assert "admin-secret-net" not in {n["label"] for n in topology["nodes"]}
    assert "demo-private" in {n["label"] for n in topology["nodes"]}
    demo.goto(foreign_router)  # a link to another project's router shows an error, not the router
    assert "could not be found" in demo.locator("p.error").inner_text()
    demo.goto(cloud.dashboard + "/admin/networks")
    assert "for administrators" in demo.locator("p.error").inner_text()
    screenshot(demo, "13-member-view")
    # The console's WebSocket: another project's instance is not found; another site's page
    # cannot open one with the user's cookie, nor anyone without it.
    admin_page.goto(cloud.dashboard + "/project/instances")
    vm3 = admin_page.locator("#instances a", has_text="cirros-vm3").get_attribute("href")
    url = f"{cloud.url.replace('http', 'ws', 1)}{vm3}/terminal"
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in demo.context.cookies())
    with connect(url, additional_headers={"Cookie": cookie, "Origin": cloud.url}) as terminal:
        refused = json.loads(terminal.recv(timeout=20))
    assert refused["status"] == 404 and "could not be found" in refused["error"], refused
    elsewhere = {"Cookie": cookie, "Origin": "http://elsewhere.example"}
    for headers in (elsewhere, {"Origin": cloud.url}):
        with pytest.raises(InvalidStatus) as refused_here:
            connect(url, additional_headers=headers)
        assert refused_here.value.response.status_code == 403
    demo.context.close()

    admin_page.goto(cloud.dashboard + "/project/networks")
    assert "demo-private" not in admin_page.content()  # project pages show the current project
    admin_page.goto(cloud.dashboard + "/admin/networks")
    assert "demo-private" in admin_page.content()

    # Given a role on demo, the admin switches to it with the project switcher.
    with httpx.Client(base_url=cloud.url) as http:
        admin = login(http, "admin", ADMIN_PASSWORD, "admin")
        headers = {"X-Auth-Token": admin.token}
        demo_project = http.get(
            "/identity/v3/projects", headers=headers, params={"name": "demo"}
        ).json()
        role = http.get("/identity/v3/roles", headers=headers, params={"name": "member"}).json()[
            "roles"
        ][0]
        http.put(
            f"/identity/v3/projects/{demo_project['projects'][0]['id']}/users/{admin.user_id}/roles/"
            f"{role['id']}",
            headers=headers,
        ).raise_for_status()
    switcher = sign_in(browser, cloud, "admin", ADMIN_PASSWORD, "admin")
    switcher.select_option("select[name=project_id]", label="demo")
    switcher.wait_for_selector(".notice:has-text('Now working in project demo')")
    switcher.goto(cloud.dashboard + "/project/networks")
    assert "demo-private" in switcher.content() and "admin-secret-net" not in switcher.content()
    switcher.context.close()
