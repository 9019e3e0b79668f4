"""The dashboard at /dashboard: every scenario by clicking, over the public APIs only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from neutrino.web import (
    admin,
    agents,
    auth,
    explain,
    floatingips,
    identity,
    instances,
    loadbalancers,
    networks,
    probes,
    quotas,
    routers,
    security_groups,
    tables,
    terminal,
    topology,
)
from neutrino.web.ui import HERE, PREFIX, Dashboard


def routes(dashboard: Dashboard) -> list[BaseRoute]:
    async def home(_request: Request) -> Response:
        return RedirectResponse(PREFIX + "/project/topology", status_code=303)

    pages = [
        networks,
        routers,
        floatingips,
        security_groups,
        instances,
        terminal,
        loadbalancers,
        topology,
        admin,
        quotas,
        identity,
        agents,
        explain,
        tables,
        probes,
    ]
    return [
        Route("/", home),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="dashboard-static"),
        *auth.routes(dashboard),
        *[route for module in pages for route in module.routes(dashboard)],
    ]
