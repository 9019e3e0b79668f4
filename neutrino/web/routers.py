"""Routers: create, gateway, interfaces, static routes."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web.networks import NET, project_networks
from neutrino.web.tables import Column, Listing, listed
from neutrino.web.ui import PREFIX, Dashboard, Done, Form, Ui, unambiguous

ROUTER_COLUMNS = [
    Column("Name", "name"),
    Column("Status", "status"),
    Column("External network"),
    Column("Gateway IP"),
    Column("Admin state", "admin_state_up"),
]
INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed")


def routes(d: Dashboard) -> list[BaseRoute]:
    async def routers_page(ui: Ui) -> Response:
        listing = Listing(NET, "/v2.0/routers", "routers", {"project_id": ui.project_id})
        table = await listed(
            ui, "routers", listing, ROUTER_COLUMNS, deletable="routers", empty="No routers yet."
        )
        externals = (await ui.api.get(NET, "/v2.0/networks", **{"router:external": "true"}))[
            "networks"
        ]
        return ui.render(
            "routers.html",
            table=table,
            externals=externals,
            network_names=unambiguous({n["id"]: n["name"] or n["id"][:8] for n in externals}),
        )

    async def create_router(ui: Ui, form: Form) -> Done:
        body: dict[str, Any] = {
            "name": form.get("name"),
            "admin_state_up": not form.flag("admin_down"),
        }
        if external := form.get("external_network_id"):
            body["external_gateway_info"] = {"network_id": external}
        router = (await ui.api.post(NET, "/v2.0/routers", {"router": body}))["router"]
        return Done(
            f"{PREFIX}/project/routers/{router['id']}",
            f"Created router {router['name'] or router['id']}.",
        )

    async def router_page(ui: Ui) -> Response:
        router = (await ui.api.get(NET, f"/v2.0/routers/{ui.param('id')}"))["router"]
        # Its project's networks, whoever looks (an administrator too): the subnets it has and may
        # have interfaces on.
        found, networks = await asyncio.gather(
            ui.api.get(NET, "/v2.0/ports", device_id=router["id"]),
            project_networks(ui, router["project_id"]),
        )
        ports = found["ports"]
        subnets = (
            (await ui.api.get(NET, "/v2.0/subnets", network_id=[n["id"] for n in networks]))[
                "subnets"
            ]
            if networks
            else []
        )
        attached = {
            ip["subnet_id"]
            for p in ports
            for ip in p["fixed_ips"]
            if p["device_owner"] in INTERFACE_OWNERS
        }
        names = unambiguous({n["id"]: n["name"] or n["id"][:8] for n in networks})
        externals = [n for n in networks if n.get("router:external")]
        external_ids = {n["id"] for n in externals}
        internal = [
            s for s in subnets if s["id"] not in attached and s["network_id"] not in external_ids
        ]
        return ui.render(
            "router.html",
            router=router,
            ports=ports,
            network_names=names,
            subnet_names={
                s["id"]: f"{names.get(s['network_id'], '')}: {s['cidr']}" for s in subnets
            },
            free_subnets=internal,
            externals=externals,
            interface_owners=INTERFACE_OWNERS,
        )

    def at(ui: Ui) -> str:
        return f"{PREFIX}/project/routers/{ui.param('id')}"

    async def update_router(ui: Ui, form: Form) -> Done:
        wanted = {"name": form.get("name"), "admin_state_up": form.flag("admin_state_up")}
        return Done(at(ui), await ui.edit(NET, f"/v2.0/routers/{ui.param('id')}", "router", wanted))

    async def set_gateway(ui: Ui, form: Form) -> Done:
        router = (await ui.api.get(NET, f"/v2.0/routers/{ui.param('id')}"))["router"]
        current = router["external_gateway_info"] or {}
        info: dict[str, Any] = {
            "network_id": form.require("external_network_id", "External network")
        }
        snat = form.flag("enable_snat")
        if (current.get("network_id"), current.get("enable_snat")) == (info["network_id"], snat):
            return Done(at(ui), "Nothing changed.")
        if not snat:  # left out, it is on: the policy leaves enable_snat to administrators
            info["enable_snat"] = False
        await ui.api.put(
            NET, f"/v2.0/routers/{router['id']}", {"router": {"external_gateway_info": info}}
        )
        return Done(at(ui), "Set the gateway.")

    async def clear_gateway(ui: Ui, _form: Form) -> Done:
        await ui.api.put(
            NET, f"/v2.0/routers/{ui.param('id')}", {"router": {"external_gateway_info": None}}
        )
        return Done(at(ui), "Cleared the gateway.")

    async def add_interface(ui: Ui, form: Form) -> Done:
        body = {"subnet_id": form.require("subnet_id", "Subnet")}
        if address := form.get(
            "ip_address"
        ):  # a port with a chosen address instead of the subnet's gateway
            subnet = (await ui.api.get(NET, f"/v2.0/subnets/{body['subnet_id']}"))["subnet"]
            fixed = [{"subnet_id": subnet["id"], "ip_address": address}]
            port = await ui.api.post(
                NET,
                "/v2.0/ports",
                {"port": {"network_id": subnet["network_id"], "fixed_ips": fixed}},
            )
            body = {"port_id": port["port"]["id"]}
        await ui.api.put(NET, f"/v2.0/routers/{ui.param('id')}/add_router_interface", body)
        return Done(at(ui), "Added the interface.")

    async def remove_interface(ui: Ui, form: Form) -> Done:
        body = {"port_id": form.require("port_id", "Interface")}
        await ui.api.put(NET, f"/v2.0/routers/{ui.param('id')}/remove_router_interface", body)
        return Done(at(ui), "Removed the interface.")

    async def change_routes(ui: Ui, form: Form, add: bool) -> Done:
        router = (await ui.api.get(NET, f"/v2.0/routers/{ui.param('id')}"))["router"]
        route = {
            "destination": form.require("destination", "Destination CIDR"),
            "nexthop": form.require("nexthop", "Next hop"),
        }
        current = [r for r in router["routes"] if r != route]
        await ui.api.put(
            NET,
            f"/v2.0/routers/{router['id']}",
            {"router": {"routes": [*current, route] if add else current}},
        )
        return Done(at(ui), "Added the static route." if add else "Removed the static route.")

    async def add_route(ui: Ui, form: Form) -> Done:
        return await change_routes(ui, form, add=True)

    async def remove_route(ui: Ui, form: Form) -> Done:
        return await change_routes(ui, form, add=False)

    async def delete_router(ui: Ui, _form: Form) -> Done:
        await ui.api.delete(NET, f"/v2.0/routers/{ui.param('id')}")
        return Done(f"{PREFIX}/project/routers", "Deleted the router.")

    page = "/project/routers/{id}"
    return [
        d.page("/project/routers", routers_page),
        d.action("/project/routers", routers_page, create_router, "create-router"),
        d.page(page, router_page),
        d.action(page + "/edit", router_page, update_router, "edit-router"),
        d.action(page + "/gateway", router_page, set_gateway, "gateway"),
        d.action(page + "/gateway/clear", router_page, clear_gateway, "gateway"),
        d.action(page + "/interfaces", router_page, add_interface, "add-interface"),
        d.action(page + "/interfaces/remove", router_page, remove_interface, "interfaces"),
        d.action(page + "/routes", router_page, add_route, "routes"),
        d.action(page + "/routes/remove", router_page, remove_route, "routes"),
        d.action(page + "/delete", router_page, delete_router, "delete-router"),
    ]
