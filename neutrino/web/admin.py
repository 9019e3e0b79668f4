"""Admin: every project's resources in one place (the project pages show one project each)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web import loadbalancers
from neutrino.web.networks import LAB, NET
from neutrino.web.tables import Column, Listing, Table, listed
from neutrino.web.ui import Dashboard, Ui

COLUMNS = [
    Column("Project", "project_id"),
    Column("Name", "name"),
    Column("Details"),
    Column("Status", "status"),
]


def row(
    item: dict[str, Any], href: str, detail: str = "", status: str | None = None
) -> dict[str, Any]:
    return {
        "id": item["id"],
        "project_id": item.get("project_id", ""),
        "name": item.get("name") or item["id"],
        "href": href,
        "detail": detail,
        "status": status if status is not None else item.get("status", ""),
    }


def routes(d: Dashboard) -> list[BaseRoute]:
    async def section(
        ui: Ui, kind: str, listing: Listing, columns: list[Column] = COLUMNS, **shown: Any
    ) -> Table:
        """One section's table; its URL parameters start with its kind."""
        return await listed(
            ui, "admin-" + kind, listing, columns, kind + "-", deletable=kind, **shown
        )

    async def resources_page(ui: Ui) -> Response:
        routers = await section(ui, "routers", Listing(NET, "/v2.0/routers", "routers"))
        routers.rows = [row(r, f"/project/routers/{r['id']}") for r in routers.rows]
        fips = await section(
            ui,
            "floatingips",
            Listing(
                NET,
                "/v2.0/floatingips",
                "floatingips",
                text_filter="description",
                address_filter={"floating_ip_address": "{}"},
            ),
            [
                Column("Project", "project_id"),
                Column("Address", "floating_ip_address"),
                *COLUMNS[2:],
            ],
            label="address, description",
        )
        fips.rows = [
            row(
                {**f, "name": f["floating_ip_address"]},
                f"/project/floating-ips/{f['id']}",
                f"-> {f['fixed_ip_address'] or 'nothing'}",
            )
            for f in fips.rows
        ]
        instances = await section(ui, "instances", Listing(LAB, "/v1/instances", "instances"))
        instances.rows = [
            row(i, f"/project/instances/{i['id']}", ", ".join(i["addresses"]))
            for i in instances.rows
        ]
        sections = [("Routers", routers), ("Floating IPs", fips), ("Instances", instances)]
        if await loadbalancers.enabled(ui):
            balancers = await section(
                ui,
                "loadbalancers",
                Listing(
                    loadbalancers.LB,
                    loadbalancers.LBAAS + "/loadbalancers",
                    "loadbalancers",
                    address_filter={"vip_address": "{}"},
                ),
                [*COLUMNS[:3], Column("Status", "operating_status")],
            )
            balancers.rows = [
                row(
                    lb,
                    f"/project/load-balancers/{lb['id']}",
                    lb["vip_address"],
                    lb["operating_status"],
                )
                for lb in balancers.rows
            ]
            sections.append(("Load balancers", balancers))
        listed_projects = await ui.api.get("identity", "/v3/projects")
        return ui.render(
            "admin_resources.html",
            sections=sections,
            projects={p["id"]: p["name"] for p in listed_projects["projects"]},
        )

    return [d.page("/admin/resources", resources_page, admin=True)]
