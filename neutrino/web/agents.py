"""Admin: the networking API's agents (host, type, alive, admin state, zone, last heartbeat)
and turning one's admin state up or down."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web.networks import NET
from neutrino.web.tables import Column, Listing, listed
from neutrino.web.ui import Dashboard, Done, Form, Ui, safe_next

AGENT_COLUMNS = [
    Column("Host", "host"),
    Column("Type", "agent_type"),
    Column("Alive", "alive"),
    Column("Admin state", "admin_state_up"),
    Column("Availability zone", "availability_zone"),
    Column("Last heartbeat", "heartbeat_timestamp"),
    Column(""),
]


def routes(d: Dashboard) -> list[BaseRoute]:
    async def agents_page(ui: Ui) -> Response:
        table = await listed(
            ui,
            "agents",
            Listing(NET, "/v2.0/agents", "agents", text_filter="host"),
            AGENT_COLUMNS,
            empty="No agents.",
            label="host",
        )
        return ui.render("agents.html", table=table)

    async def set_admin_state(ui: Ui, form: Form) -> Done:
        up = form.require("admin_state", "Admin state") == "up"
        agent = (
            await ui.api.put(
                NET, f"/v2.0/agents/{ui.param('id')}", {"agent": {"admin_state_up": up}}
            )
        )["agent"]
        return Done(
            safe_next(form.get("next")),
            f"The {agent['agent_type']} on {agent['host']} is administratively "
            f"{'up' if up else 'down'}.",
        )

    return [
        d.page("/admin/agents", agents_page, admin=True),
        d.action("/admin/agents/{id}/admin-state", agents_page, set_admin_state, "agents"),
    ]
