"""Admin: every project's resources in one place (the project pages show one project each)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web import loadbalancers
from neutrino.web.networks import LAB, NET
from neutrino.web.ui import Dashboard, Ui


def row(
    item: dict[str, Any], href: str, detail: str = "", status: str | None = None
) -> dict[str, Any]:
    return {
        "project_id": item.get("project_id", ""),
        "name": item.get("name") or item["id"],
        "href": href,
        "detail": detail,
        "status": status if status is not None else item.get("status", ""),
    }


def routes(d: Dashboard) -> list[BaseRoute]:
    async def resources_page(ui: Ui) -> Response:
        api = ui.api
        routers = (await api.get(NET, "/v2.0/routers"))["routers"]
        fips = (await api.get(NET, "/v2.0/floatingips"))["floatingips"]
        instances = (await api.get(LAB, "/v1/instances"))["instances"]
        balancers = (
            (await api.get(loadbalancers.LB, loadbalancers.LBAAS + "/loadbalancers"))[
                "loadbalancers"
            ]
            if await loadbalancers.enabled(ui)
            else []
        )
        listed = await api.get("identity", "/v3/projects")
        sections = [
            ("Routers", [row(r, f"/project/routers/{r['id']}") for r in routers]),
            (
                "Floating IPs",
                [
                    row(
                        {**f, "name": f["floating_ip_address"]},
                        f"/project/floating-ips/{f['id']}",
                        f"-> {f['fixed_ip_address'] or 'nothing'}",
                    )
                    for f in fips
                ],
            ),
            (
                "Instances",
                [
                    row(i, f"/project/instances/{i['id']}", ", ".join(i["addresses"]))
                    for i in instances
                ],
            ),
            (
                "Load balancers",
                [
                    row(
                        lb,
                        f"/project/load-balancers/{lb['id']}",
                        lb["vip_address"],
                        lb["operating_status"],
                    )
                    for lb in balancers
                ],
            ),
        ]
        return ui.render(
            "admin_resources.html",
            sections=sections,
            projects={p["id"]: p["name"] for p in listed["projects"]},
        )

    return [d.page("/admin/resources", resources_page, admin=True)]
