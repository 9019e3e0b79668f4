"""Lab instances: launch on networks or ports, delete; their console is web.terminal."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web.clients import ApiError
from neutrino.web.networks import LAB, NET, project_networks
from neutrino.web.tables import Column, Listing, listed
from neutrino.web.ui import PREFIX, Dashboard, Done, Form, Ui, unambiguous

FREE_PORTS_SHOWN = (
    50  # enough for a choice; every free port has a "Launch Instance" form on its own page
)
INSTANCE_COLUMNS = [
    Column("Name", "name"),
    Column("IP addresses"),
    Column("Host", "host"),
    Column("Status", "status"),
    Column("Created"),
]


async def launch_choices(ui: Ui) -> dict[str, Any]:
    """What the Launch Instance form offers: the networks an instance may join, the project's
    free ports and its security groups; and every usable network (`usable`, named in
    `network_names`), which the page's other forms offer."""
    usable, free, groups = await asyncio.gather(
        project_networks(ui, ui.project_id),
        ui.api.get(
            NET,
            "/v2.0/ports",
            project_id=ui.project_id,
            device_owner="",
            limit=FREE_PORTS_SHOWN,
            fields=["id", "name", "fixed_ips", "network_id"],
        ),
        ui.api.get(NET, "/v2.0/security-groups", project_id=ui.project_id, fields=["id", "name"]),
    )
    return {
        "usable": usable,
        "networks": [n for n in usable if not n.get("router:external") or n["shared"]],
        "network_names": unambiguous({n["id"]: n["name"] or n["id"][:8] for n in usable}),
        "free_ports": free["ports"],
        "more_ports": len(free["ports"]) == FREE_PORTS_SHOWN,
        "groups": unambiguous(
            {g["id"]: g["name"] or g["id"][:8] for g in groups["security_groups"]}
        ),
    }


def routes(d: Dashboard) -> list[BaseRoute]:
    async def instances_page(ui: Ui) -> Response:
        listing = Listing(LAB, "/v1/instances", "instances", {"project_id": ui.project_id})
        table, choices = await asyncio.gather(
            listed(
                ui,
                "instances",
                listing,
                INSTANCE_COLUMNS,
                deletable="instances",
                empty="No instances.",
            ),
            launch_choices(ui),
        )
        return ui.render("instances.html", table=table, **choices)

    async def launch(ui: Ui, form: Form) -> Done:
        body: dict[str, Any] = {
            "name": form.require("name", "Instance name"),
            "networks": [{"network_id": n} for n in form.getlist("network_id")],
            "ports": form.getlist("port_id"),
        }
        # For the ports made on `networks` (ports given keep their own); none chosen, the
        # project's default, as Nova gives.
        if groups := form.getlist("security_group"):
            body["security_groups"] = [{"name": group} for group in groups]
        if not body["networks"] and not body["ports"]:
            raise ApiError(400, "Choose at least one network or port.")
        instance = (await ui.api.post(LAB, "/v1/instances", {"instance": body}))["instance"]
        return Done(
            f"{PREFIX}/project/instances/{instance['id']}", f"Launching {instance['name']}."
        )

    async def instance_page(ui: Ui) -> Response:
        instance = (await ui.api.get(LAB, f"/v1/instances/{ui.param('id')}"))["instance"]
        ports = (
            (await ui.api.get(NET, "/v2.0/ports", id=instance["port_ids"]))["ports"]
            if instance["port_ids"]
            else []
        )
        return ui.render("instance.html", instance=instance, ports=ports)

    async def delete_instance(ui: Ui, _form: Form) -> Done:
        await ui.api.delete(LAB, f"/v1/instances/{ui.param('id')}")
        return Done(f"{PREFIX}/project/instances", "Deleted the instance.")

    page = "/project/instances/{id}"
    return [
        d.page("/project/instances", instances_page),
        d.action("/project/instances", instances_page, launch, "launch"),
        d.page(page, instance_page),
        d.action(page + "/delete", instance_page, delete_instance, "delete-instance"),
    ]
