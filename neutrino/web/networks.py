"""Networks (with their subnets in the same wizard), subnets and ports."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web.clients import ApiError
from neutrino.web.tables import Column, Listing, Table, api_query, listed
from neutrino.web.ui import PREFIX, Dashboard, Done, Form, Ui, unambiguous

NET = "network"
LAB = "lab"


NETWORK_COLUMNS = [
    Column("Subnets"),
    Column("Shared"),
    Column("External"),
    Column("Status", "status"),
]
SUBNET_COLUMNS = [
    Column("Name", "name"),
    Column("CIDR", "cidr"),
    Column("Gateway", "gateway_ip"),
    Column("DHCP", "enable_dhcp"),
    Column("Allocation pools"),
    Column(""),
]
PORT_COLUMNS = [
    Column("Name / ID", "name"),
    Column("Fixed IPs"),
    Column("MAC", "mac_address"),
    Column("Attached device", "device_owner"),
    Column("Status", "status"),
]
ADMIN_COLUMNS = [
    Column("Project", "project_id"),
    Column("Type"),
    Column("Physical network"),
    Column("Segment"),
]


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


async def project_networks(ui: Ui, project_id: str) -> list[dict[str, Any]]:
    """A project's own networks plus the shared and external ones it may use (as Horizon
    lists them), as far as the caller may see them."""
    queries = ({"project_id": project_id}, {"shared": "true"}, {"router:external": "true"})
    answers = await asyncio.gather(
        *[ui.api.get(NET, "/v2.0/networks", **query) for query in queries]
    )
    found = {net["id"]: net for answer in answers for net in answer["networks"]}
    return sorted(found.values(), key=lambda n: (n["name"], n["id"]))


async def usable_elsewhere(ui: Ui, table: Table) -> list[dict[str, Any]]:
    """Other projects' shared and external networks matching the table's filter, which Horizon
    shows after the project's own on the first page."""
    if table.view.marker:
        return []
    query = api_query(table.view, table.columns)
    del query["limit"]
    answers = await asyncio.gather(
        *[
            ui.api.get(NET, "/v2.0/networks", **query, **usable)
            for usable in ({"shared": "true"}, {"router:external": "true"})
        ]
    )
    shown = {n["id"] for n in table.rows}
    found = {
        net["id"]: net
        for answer in answers
        for net in answer["networks"]
        if net["project_id"] != ui.project_id and net["id"] not in shown
    }
    return list(found.values())


async def attached_instances(ui: Ui, ports: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The instances, as the caller sees them, that `ports` are plugged into, by ID."""
    ids = sorted({p["device_id"] for p in ports if p["device_owner"].startswith("compute:")})
    if not ids:
        return {}
    return by_id(
        (await ui.api.get(LAB, "/v1/instances", id=ids, fields=["id", "name"]))["instances"]
    )


async def subnets_of(ui: Ui, networks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    if not networks:
        return {}
    ids = [n["id"] for n in networks]
    return by_id((await ui.api.get(NET, "/v2.0/subnets", network_id=ids))["subnets"])


def provider_values(form: Form) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if kind := form.get("network_type"):
        values["provider:network_type"] = kind
        if physnet := form.get("physical_network"):
            values["provider:physical_network"] = physnet
        if form.get("segmentation_id"):
            values["provider:segmentation_id"] = form.number("segmentation_id", "Segmentation ID")
    return values


def subnet_body(form: Form, network_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "network_id": network_id,
        "ip_version": 4,
        "name": form.get("subnet_name"),
        "cidr": form.require("cidr", "Network address"),
        "enable_dhcp": form.flag("enable_dhcp") or not form.get("dhcp_choice"),
    }
    if form.flag("no_gateway"):
        body["gateway_ip"] = None
    elif gateway := form.get("gateway_ip"):
        body["gateway_ip"] = gateway
    if dns := form.getlist("dns"):
        body["dns_nameservers"] = [d for line in dns for d in line.replace(",", " ").split()]
    return body


def routes(d: Dashboard) -> list[BaseRoute]:
    async def networks_page(ui: Ui, admin: bool = False) -> Response:
        columns = [Column("Name", "name"), *(ADMIN_COLUMNS if admin else []), *NETWORK_COLUMNS]
        listing = Listing(NET, "/v2.0/networks", "networks")
        if not admin:
            listing.filters["project_id"] = ui.project_id
        table = await listed(
            ui, "networks", listing, columns, deletable="networks", empty="No networks yet."
        )
        if not admin:
            table.rows += await usable_elsewhere(ui, table)
        subnets = await subnets_of(ui, table.rows)
        known = (
            (await ui.api.get("identity", "/v3/projects"))["projects"]
            if admin
            else ui.session.projects
        )
        projects = {p["id"]: p["name"] for p in sorted(known, key=lambda p: p["name"])}
        return ui.render(
            "networks.html", table=table, subnets=subnets, admin=admin, projects=projects
        )

    async def admin_networks_page(ui: Ui) -> Response:
        return await networks_page(ui, admin=True)

    async def create_network(ui: Ui, form: Form) -> Done:
        body: dict[str, Any] = {
            "name": form.get("name"),
            "admin_state_up": not form.flag("admin_down"),
        }
        if ui.session.is_admin:
            body.update(provider_values(form))
            body["shared"] = form.flag("shared")
            body["router:external"] = form.flag("external")
            if project := form.get("project_id"):
                body["project_id"] = project
        net = (await ui.api.post(NET, "/v2.0/networks", {"network": body}))["network"]
        if form.get("cidr"):
            try:
                await ui.api.post(NET, "/v2.0/subnets", {"subnet": subnet_body(form, net["id"])})
            except ApiError as error:
                await ui.api.delete(
                    NET, f"/v2.0/networks/{net['id']}"
                )  # the wizard is all or nothing
                raise ApiError(error.status, f"Subnet: {error}") from error
        return Done(
            f"{PREFIX}/project/networks/{net['id']}", f"Created network {net['name'] or net['id']}."
        )

    async def network_page(ui: Ui) -> Response:
        net = (await ui.api.get(NET, f"/v2.0/networks/{ui.param('id')}"))["network"]
        of_network = {"network_id": net["id"]}
        subnets = (await ui.api.get(NET, "/v2.0/subnets", **of_network))["subnets"]
        subnet_table, port_table = await asyncio.gather(
            listed(
                ui,
                "subnets",
                Listing(NET, "/v2.0/subnets", "subnets", of_network, text_filter="name"),
                SUBNET_COLUMNS,
                "subnets-",
                deletable="subnets",
                empty="No subnets.",
            ),
            listed(
                ui,
                "ports",
                Listing(
                    NET,
                    "/v2.0/ports",
                    "ports",
                    of_network,
                    address_filter={"fixed_ips": "ip_address={}"},
                ),
                PORT_COLUMNS,
                "ports-",
                deletable="ports",
                empty="No ports.",
                label="name, address",
            ),
        )
        return ui.render(
            "network.html",
            network=net,
            mtu_writable=await ui.api.available(NET, "/v2.0/extensions/net-mtu-writable"),
            subnets=subnets,
            subnet_table=subnet_table,
            port_table=port_table,
            instances=await attached_instances(ui, port_table.rows),
            subnet_names={s["id"]: s["name"] or s["cidr"] for s in subnets},
        )

    async def update_network(ui: Ui, form: Form) -> Done:
        wanted: dict[str, Any] = {
            "name": form.get("name"),
            "admin_state_up": form.flag("admin_state_up"),
        }
        if form.get("mtu"):
            wanted["mtu"] = form.number("mtu", "MTU")
        if ui.session.is_admin:
            wanted["shared"] = form.flag("shared")
            wanted["router:external"] = form.flag("router:external")
        path = f"/v2.0/networks/{ui.param('id')}"
        return Done(
            f"{PREFIX}/project/networks/{ui.param('id')}",
            await ui.edit(NET, path, "network", wanted),
        )

    async def delete_network(ui: Ui, _form: Form) -> Done:
        await ui.api.delete(NET, f"/v2.0/networks/{ui.param('id')}")
        return Done(f"{PREFIX}/project/networks", "Deleted the network.")

    async def create_subnet(ui: Ui, form: Form) -> Done:
        await ui.api.post(NET, "/v2.0/subnets", {"subnet": subnet_body(form, ui.param("id"))})
        return Done(f"{PREFIX}/project/networks/{ui.param('id')}", "Created the subnet.")

    async def update_subnet(ui: Ui, form: Form) -> Done:
        wanted: dict[str, Any] = {
            "name": form.get("name"),
            "enable_dhcp": form.flag("enable_dhcp"),
            "dns_nameservers": [
                d for line in form.lines("dns_nameservers") for d in line.replace(",", " ").split()
            ],
            "allocation_pools": form.records(
                "allocation_pools", "Allocation pools", "start", "end", required=2
            ),
            "host_routes": form.records(
                "host_routes", "Host routes", "destination", "nexthop", required=2
            ),
        }
        if form.flag("no_gateway"):
            wanted["gateway_ip"] = None
        elif gateway := form.get("gateway_ip"):
            wanted["gateway_ip"] = gateway
        path = f"/v2.0/subnets/{form.require('id', 'Subnet')}"
        return Done(
            f"{PREFIX}/project/networks/{ui.param('id')}",
            await ui.edit(NET, path, "subnet", wanted),
        )

    async def delete_subnet(ui: Ui, form: Form) -> Done:
        await ui.api.delete(NET, f"/v2.0/subnets/{form.require('subnet_id', 'Subnet')}")
        return Done(f"{PREFIX}/project/networks/{ui.param('id')}", "Deleted the subnet.")

    async def create_port(ui: Ui, form: Form) -> Done:
        body: dict[str, Any] = {"network_id": ui.param("id"), "name": form.get("name")}
        if address := form.get("ip_address"):
            fixed: dict[str, str] = {"ip_address": address}
            if subnet := form.get("subnet_id"):
                fixed["subnet_id"] = subnet
            body["fixed_ips"] = [fixed]
        port = (await ui.api.post(NET, "/v2.0/ports", {"port": body}))["port"]
        return Done(f"{PREFIX}/project/ports/{port['id']}", "Created the port.")

    async def port_page(ui: Ui) -> Response:
        port = (await ui.api.get(NET, f"/v2.0/ports/{ui.param('id')}"))["port"]
        fields = ["id", "name"]
        network, groups, instances = await asyncio.gather(
            ui.api.get(NET, f"/v2.0/networks/{port['network_id']}"),
            ui.api.get(NET, "/v2.0/security-groups", project_id=port["project_id"], fields=fields),
            attached_instances(ui, [port]),
        )
        found = groups["security_groups"]
        # Those it is in beyond its project's own (shared with it) stay choices too.
        if others := sorted(set(port["security_groups"]) - {g["id"] for g in found}):
            found += (await ui.api.get(NET, "/v2.0/security-groups", id=others, fields=fields))[
                "security_groups"
            ]
        choices = unambiguous({g["id"]: g["name"] or g["id"][:8] for g in found})
        return ui.render(
            "port.html",
            port=port,
            network=network["network"],
            group_names=choices,
            instance=instances.get(port["device_id"]),
        )

    async def update_port(ui: Ui, form: Form) -> Done:
        wanted = {
            "name": form.get("name"),
            "admin_state_up": form.flag("admin_state_up"),
            "port_security_enabled": form.flag("port_security_enabled"),
            "security_groups": sorted(form.getlist("security_groups")),
            "allowed_address_pairs": [
                {key: value for key, value in pair.items() if value}
                for pair in form.records(
                    "allowed_address_pairs",
                    "Allowed address pairs",
                    "ip_address",
                    "mac_address",
                    required=1,
                )
            ],
        }
        path = f"/v2.0/ports/{ui.param('id')}"
        return Done(
            f"{PREFIX}/project/ports/{ui.param('id')}", await ui.edit(NET, path, "port", wanted)
        )

    async def delete_port(ui: Ui, _form: Form) -> Done:
        port = (await ui.api.get(NET, f"/v2.0/ports/{ui.param('id')}"))["port"]
        await ui.api.delete(NET, f"/v2.0/ports/{port['id']}")
        return Done(f"{PREFIX}/project/networks/{port['network_id']}", "Deleted the port.")

    net_page = "/project/networks/{id}"
    return [
        d.page("/project/networks", networks_page),
        d.page("/admin/networks", admin_networks_page, admin=True),
        d.action("/project/networks", networks_page, create_network, "create-network"),
        d.action("/admin/networks", admin_networks_page, create_network, "create-network"),
        d.page(net_page, network_page),
        d.action(net_page + "/edit", network_page, update_network, "edit-network"),
        d.action(net_page + "/delete", network_page, delete_network, "delete-network"),
        d.action(net_page + "/subnets", network_page, create_subnet, "create-subnet"),
        d.action(net_page + "/subnets/delete", network_page, delete_subnet, "subnets"),
        d.action(net_page + "/subnets/edit", network_page, update_subnet, "edit-subnet"),
        d.action(net_page + "/ports", network_page, create_port, "create-port"),
        d.page("/project/ports/{id}", port_page),
        d.action("/project/ports/{id}/edit", port_page, update_port, "edit-port"),
        d.action("/project/ports/{id}/delete", port_page, delete_port, "delete-port"),
    ]
