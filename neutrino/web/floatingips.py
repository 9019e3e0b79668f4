"""Floating IPs: allocate from a pool, associate with an instance's port, disassociate, release."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web.networks import LAB, NET
from neutrino.web.probes import outside_hint
from neutrino.web.tables import Column, Listing, listed
from neutrino.web.ui import PREFIX, Dashboard, Done, Form, Ui, unambiguous


async def instance_names(ui: Ui, project_id: str) -> dict[str, str]:
    """The names of a project's instances, as far as the caller may see them."""
    instances = await ui.api.get(LAB, "/v1/instances", project_id=project_id, fields=["id", "name"])
    return {i["id"]: i["name"] or i["id"] for i in instances["instances"]}


async def project_ports(ui: Ui, project_id: str) -> list[dict[str, Any]]:
    fields = ["id", "name", "device_id", "device_owner", "fixed_ips"]
    found = await ui.api.get(NET, "/v2.0/ports", project_id=project_id, fields=fields)
    ports: list[dict[str, Any]] = found["ports"]
    return ports


async def floatingips_of(ui: Ui, port_id: str) -> list[dict[str, Any]]:
    """The floating IPs pointing at a port, whichever project holds them (all the caller may
    see: an administrator looking at another project's port sees that project's)."""
    found: list[dict[str, Any]] = (await ui.api.get(NET, "/v2.0/floatingips", port_id=port_id))[
        "floatingips"
    ]
    return found


def targets(ports: list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    """Ports a floating IP can point at, labelled as Horizon does: `instance: fixed IP`."""
    choices = []
    for port in ports:
        owner = port["device_owner"]
        if not (owner.startswith("compute:") or owner == "Octavia" or (not owner and port["name"])):
            continue
        owner_name = names.get(port["device_id"]) or port["name"] or port["id"][:8]
        for ip in port["fixed_ips"]:
            if ":" not in ip["ip_address"]:
                choices.append(
                    {
                        "value": f"{port['id']}_{ip['ip_address']}",
                        "label": f"{owner_name}: {ip['ip_address']}",
                    }
                )
    return sorted(choices, key=lambda c: c["label"])


FLOATINGIP_COLUMNS = [
    Column("IP address", "floating_ip_address"),
    Column("Mapped fixed IP", "fixed_ip_address"),
    Column("Instance / port"),
    Column("Pool", "floating_network_id"),
    Column("Status", "status"),
    Column(""),
]


def routes(d: Dashboard) -> list[BaseRoute]:
    async def floatingips_page(ui: Ui) -> Response:
        listing = Listing(
            NET,
            "/v2.0/floatingips",
            "floatingips",
            {"project_id": ui.project_id},
            text_filter="description",
            address_filter={"floating_ip_address": "{}"},
        )
        table, pools, names = await asyncio.gather(
            listed(
                ui,
                "floatingips",
                listing,
                FLOATINGIP_COLUMNS,
                deletable="floatingips",
                empty="No floating IPs allocated.",
                label="address, description",
            ),
            ui.api.get(NET, "/v2.0/networks", **{"router:external": "true"}),
            instance_names(ui, ui.project_id),
        )
        return ui.render(
            "floatingips.html",
            table=table,
            pools=pools["networks"],
            names=names,
            pool_names=unambiguous({p["id"]: p["name"] or p["id"][:8] for p in pools["networks"]}),
        )

    async def allocate(ui: Ui, form: Form) -> Done:
        body = {
            "floating_network_id": form.require("pool", "Pool"),
            "description": form.get("description"),
        }
        fip = (await ui.api.post(NET, "/v2.0/floatingips", {"floatingip": body}))["floatingip"]
        return Done(
            f"{PREFIX}/project/floating-ips/{fip['id']}",
            f"Allocated {fip['floating_ip_address']} to the project.",
        )

    async def floatingip_page(ui: Ui) -> Response:
        fip = (await ui.api.get(NET, f"/v2.0/floatingips/{ui.param('id')}"))["floatingip"]
        # Its project's instances, whoever looks (an administrator too): those it may lead to.
        pool, hint, ports, names = await asyncio.gather(
            ui.api.get(NET, f"/v2.0/networks/{fip['floating_network_id']}"),
            outside_hint(ui, fip["port_id"]),
            project_ports(ui, fip["project_id"]),
            instance_names(ui, fip["project_id"]),
        )
        return ui.render(
            "floatingip.html",
            fip=fip,
            pool=pool["network"],
            targets=targets(ports, names),
            names=names,
            outside_hint=hint,
        )

    def at(ui: Ui) -> str:
        return f"{PREFIX}/project/floating-ips/{ui.param('id')}"

    async def associate(ui: Ui, form: Form) -> Done:
        port_id, _, address = form.require("target", "Port to be associated").partition("_")
        body = {"port_id": port_id, "fixed_ip_address": address}
        fip = (await ui.api.put(NET, f"/v2.0/floatingips/{ui.param('id')}", {"floatingip": body}))[
            "floatingip"
        ]
        return Done(at(ui), f"Associated {fip['floating_ip_address']} with {address}.")

    async def disassociate(ui: Ui, _form: Form) -> Done:
        await ui.api.put(
            NET, f"/v2.0/floatingips/{ui.param('id')}", {"floatingip": {"port_id": None}}
        )
        return Done(at(ui), "Disassociated the floating IP.")

    async def release(ui: Ui, _form: Form) -> Done:
        await ui.api.delete(NET, f"/v2.0/floatingips/{ui.param('id')}")
        return Done(f"{PREFIX}/project/floating-ips", "Released the floating IP.")

    page = "/project/floating-ips/{id}"
    return [
        d.page("/project/floating-ips", floatingips_page),
        d.action("/project/floating-ips", floatingips_page, allocate, "allocate"),
        d.page(page, floatingip_page),
        d.action(page + "/associate", floatingip_page, associate, "associate"),
        d.action(page + "/disassociate", floatingip_page, disassociate, "associate"),
        d.action(page + "/release", floatingip_page, release, "release"),
    ]
