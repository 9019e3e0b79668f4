"""Security groups and their rules."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web.clients import ApiError
from neutrino.web.networks import NET
from neutrino.web.tables import Column, Listing, listed
from neutrino.web.ui import PREFIX, Dashboard, Done, Form, Ui, unambiguous

# Horizon's rule presets: label, protocol, port range (ICMP: type and code). "custom" and
# "icmp" take the protocol and ports (type and code) from the form.
PRESETS: dict[str, tuple[str, str | None, int | None, int | None]] = {
    "custom": ("Custom rule", None, None, None),
    "ssh": ("SSH", "tcp", 22, 22),
    "http": ("HTTP", "tcp", 80, 80),
    "https": ("HTTPS", "tcp", 443, 443),
    "icmp": ("ICMP (type, code)", "icmp", None, None),
    "all_icmp": ("All ICMP", "icmp", None, None),
    "dns": ("DNS", "tcp", 53, 53),
    "rdp": ("RDP", "tcp", 3389, 3389),
    "all_tcp": ("All TCP", "tcp", 1, 65535),
    "all_udp": ("All UDP", "udp", 1, 65535),
}

GROUP_COLUMNS = [Column("Name", "name"), Column("Description"), Column("Rules")]


def rule_body(form: Form, group_id: str) -> dict[str, Any]:
    ethertype = form.get("ethertype", "IPv4")
    body: dict[str, Any] = {
        "security_group_id": group_id,
        "direction": form.get("direction", "ingress"),
        "ethertype": ethertype,
    }
    preset = form.get("preset", "custom")
    if preset not in PRESETS:
        raise ApiError(400, f"There is no rule preset {preset}.")
    _, protocol, low, high = PRESETS[preset]
    protocol = protocol or form.get("protocol")
    if protocol == "icmp" and ethertype == "IPv6":
        protocol = "ipv6-icmp"
    if protocol:
        body["protocol"] = protocol
    if low is not None:
        body["port_range_min"], body["port_range_max"] = low, high
    elif preset == "icmp" and form.get("port_min"):
        body["port_range_min"] = form.number("port_min", "ICMP type")
        if form.get("port_max"):  # without a code, any code of the type
            body["port_range_max"] = form.number("port_max", "ICMP code")
    elif preset == "custom" and form.get("port_min"):
        low = form.number("port_min", "Port from")
        body["port_range_min"] = low
        body["port_range_max"] = form.number("port_max", "Port to", default=low)
    if remote_group := form.get("remote_group_id"):
        body["remote_group_id"] = remote_group
    elif cidr := form.get("remote_ip_prefix"):
        body["remote_ip_prefix"] = cidr
    return body


def routes(d: Dashboard) -> list[BaseRoute]:
    async def groups_page(ui: Ui) -> Response:
        listing = Listing(
            NET, "/v2.0/security-groups", "security_groups", {"project_id": ui.project_id}
        )
        table = await listed(
            ui,
            "groups",
            listing,
            GROUP_COLUMNS,
            deletable="security-groups",
            empty="No security groups.",
        )
        return ui.render("security_groups.html", table=table)

    async def create_group(ui: Ui, form: Form) -> Done:
        body = {"name": form.require("name", "Name"), "description": form.get("description")}
        group = (await ui.api.post(NET, "/v2.0/security-groups", {"security_group": body}))[
            "security_group"
        ]
        return Done(
            f"{PREFIX}/project/security-groups/{group['id']}",
            f"Created security group {group['name']}.",
        )

    async def group_page(ui: Ui) -> Response:
        group = (await ui.api.get(NET, f"/v2.0/security-groups/{ui.param('id')}"))["security_group"]
        groups = (
            await ui.api.get(
                NET, "/v2.0/security-groups", project_id=group["project_id"], fields=["id", "name"]
            )
        )["security_groups"]
        return ui.render(
            "security_group.html",
            group=group,
            groups=groups,
            group_names=unambiguous({g["id"]: g["name"] or g["id"][:8] for g in groups}),
            presets={key: label for key, (label, *_) in PRESETS.items()},
        )

    def at(ui: Ui) -> str:
        return f"{PREFIX}/project/security-groups/{ui.param('id')}"

    async def add_rule(ui: Ui, form: Form) -> Done:
        await ui.api.post(
            NET,
            "/v2.0/security-group-rules",
            {"security_group_rule": rule_body(form, ui.param("id"))},
        )
        return Done(at(ui), "Added the rule.")

    async def update_group(ui: Ui, form: Form) -> Done:
        wanted = {"name": form.require("name", "Name"), "description": form.get("description")}
        path = f"/v2.0/security-groups/{ui.param('id')}"
        return Done(at(ui), await ui.edit(NET, path, "security_group", wanted))

    async def delete_rule(ui: Ui, form: Form) -> Done:
        await ui.api.delete(NET, f"/v2.0/security-group-rules/{form.require('rule_id', 'Rule')}")
        return Done(at(ui), "Deleted the rule.")

    async def delete_group(ui: Ui, _form: Form) -> Done:
        await ui.api.delete(NET, f"/v2.0/security-groups/{ui.param('id')}")
        return Done(f"{PREFIX}/project/security-groups", "Deleted the security group.")

    page = "/project/security-groups/{id}"
    return [
        d.page("/project/security-groups", groups_page),
        d.action("/project/security-groups", groups_page, create_group, "create-group"),
        d.page(page, group_page),
        d.action(page + "/edit", group_page, update_group, "edit-group"),
        d.action(page + "/rules", group_page, add_rule, "add-rule"),
        d.action(page + "/rules/delete", group_page, delete_rule, "rules"),
        d.action(page + "/delete", group_page, delete_group, "delete-group"),
    ]
