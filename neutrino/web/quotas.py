"""Admin: every project's quotas and what it uses of them, and a form to change the limits
(the networking API's quotas, and the load-balancer API's where it is served)."""

from __future__ import annotations

import asyncio
import re

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web import loadbalancers
from neutrino.web.messages import COUNTED
from neutrino.web.networks import NET
from neutrino.web.tables import Column, Listing, listed
from neutrino.web.ui import PREFIX, Dashboard, Done, Form, Ui

LB_QUOTAS = loadbalancers.LBAAS + "/quotas/"
# What the list shows of each project (the edit page shows every limit).
SHOWN = ("network", "subnet", "port", "router", "floatingip", "security_group")
BALANCED = {
    "load_balancer": "load balancers",
    "listener": "listeners",
    "pool": "pools",
    "member": "members",
    "health_monitor": "health monitors",
    "l7policy": "L7 policies",
    "l7rule": "L7 rules",
}


def limit_value(text: str) -> int | str:
    """A limit as typed: a whole number (-1: no limit); anything else goes to the API as it is,
    which refuses it in its own words."""
    return int(text) if re.fullmatch(r"-?\d+", text) else text


async def details(ui: Ui, project_id: str) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = (
        await ui.api.get(NET, f"/v2.0/quotas/{project_id}/details")
    )["quota"]
    return found


async def balancer_limits(ui: Ui, project_id: str) -> dict[str, int | None] | None:
    """The project's load-balancer limits, None where that API is not served."""
    if not await loadbalancers.enabled(ui):
        return None
    found: dict[str, int | None] = (await ui.api.get(loadbalancers.LB, LB_QUOTAS + project_id))[
        "quota"
    ]
    return found


def routes(d: Dashboard) -> list[BaseRoute]:
    async def quotas_page(ui: Ui) -> Response:
        projects = await listed(
            ui,
            "quotas",
            Listing("identity", "/v3/projects", "projects", paged=False),
            [Column("Project"), *[Column(COUNTED[r][:1].upper() + COUNTED[r][1:]) for r in SHOWN]],
            empty="No projects.",
        )
        usage = await asyncio.gather(*[details(ui, p["id"]) for p in projects.rows])
        return ui.render(
            "quotas.html",
            table=projects,
            usage={p["id"]: u for p, u in zip(projects.rows, usage)},
            shown=SHOWN,
        )

    async def quota_page(ui: Ui) -> Response:
        project = (await ui.api.get("identity", f"/v3/projects/{ui.param('id')}"))["project"]
        network, balancer = await asyncio.gather(
            details(ui, project["id"]), balancer_limits(ui, project["id"])
        )
        return ui.render(
            "quota.html",
            project=project,
            network=network,
            balancer=balancer,
            counted=COUNTED,
            balanced=BALANCED,
        )

    async def update(ui: Ui, form: Form) -> Done:
        project_id = ui.param("id")
        network = {
            resource: limit_value(form.get("network-" + resource))
            for resource in COUNTED
            if form.get("network-" + resource)
        }
        await ui.api.put(NET, f"/v2.0/quotas/{project_id}", {"quota": network})
        if any(name.startswith("lb-") for name, _ in form.pairs):
            # An empty limit is the default's (null, as Octavia takes it).
            balancer = {
                resource: limit_value(form.get("lb-" + resource))
                if form.get("lb-" + resource)
                else None
                for resource in BALANCED
            }
            await ui.api.put(loadbalancers.LB, LB_QUOTAS + project_id, {"quota": balancer})
        return Done(f"{PREFIX}/admin/quotas/{project_id}", "Saved the quotas.")

    page = "/admin/quotas/{id}"
    return [
        d.page("/admin/quotas", quotas_page, admin=True),
        d.page(page, quota_page, admin=True),
        d.action(page, quota_page, update, "quotas"),
    ]
