"""The dashboard at /dashboard: every scenario by clicking, over the public APIs only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from neutrino.web import (
    admin,
    auth,
    explain,
    floatingips,
    instances,
    loadbalancers,
    networks,
    probes,
    routers,
    security_groups,
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
        loadbalancers,
        topology,
        admin,
        explain,
        probes,
    ]
    return [
        Route("/", home),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="dashboard-static"),
        *auth.routes(dashboard),
        *[route for module in pages for route in module.routes(dashboard)],
    ]
