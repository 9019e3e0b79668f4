"""Security groups and their rules."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web.networks import NET
from neutrino.web.tables import Column, Listing, listed
from neutrino.web.ui import PREFIX, Dashboard, Done, Form, Ui, unambiguous

GROUP_COLUMNS = [Column("Name", "name"), Column("Description"), Column("Rules")]


def rule_body(form: Form, group_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "security_group_id": group_id,
        "direction": form.get("direction", "ingress"),
        "ethertype": "IPv4",
    }
    if protocol := form.get("protocol"):
        body["protocol"] = protocol
    if form.get("port_min"):
        low = form.number("port_min", "Port from")
        body["port_range_min"], body["port_range_max"] = (
            low,
            form.number("port_max", "Port to", default=low),
        )
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
        d.action(page + "/rules", group_page, add_rule, "add-rule"),
        d.action(page + "/rules/delete", group_page, delete_rule, "rules"),
        d.action(page + "/delete", group_page, delete_group, "delete-group"),
    ]
