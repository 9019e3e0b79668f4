"""`/v2.0/ports/{id}/bindings` (binding-extended): list, show, create, update and delete a
port's bindings by host, and `PUT /v2.0/ports/{id}/bindings/{host}/activate`."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino.api import Authenticate
from neutrino.api.errors import json_response
from neutrino.api.v2 import Collection, collection_routes
from neutrino.api.v2.attrs import REQUIRED, Attr, project_id, string
from neutrino.api.v2.networks import PORT
from neutrino.db import Database
from neutrino.services.port_bindings import PortBindings

BINDING = {
    "host": Attr(string(), default=REQUIRED, sort=True),
    "vif_type": Attr(post=False, sort=True),
    "vif_details": Attr(post=False, filter=False),
    "vnic_type": Attr(PORT["binding:vnic_type"].convert, put=True, sort=True),
    "profile": Attr(PORT["binding:profile"].convert, put=True, filter=False),
    "status": Attr(post=False, sort=True),
    "project_id": Attr(project_id, filter=False),  # asked for by Neutron's policy, not shown
}


def binding_routes(db: Database, authenticate: Authenticate, max_limit: int) -> list[BaseRoute]:
    """Before the ports' own routes, whose /{id}/{action} would take these."""
    bindings = Collection(
        "bindings", "binding", BINDING, PortBindings(), parent="ports", key="host"
    )

    async def activate(request: Request) -> Response:
        ctx = await authenticate(request)
        service = PortBindings(request.path_params["port_id"])
        # Neutron answers a member action with what its plugin returns: the bare binding.
        item = await run_in_threadpool(service.activate, db, ctx, request.path_params["host"])
        return json_response(item)

    return [
        Route("/v2.0/ports/{port_id}/bindings/{host}/activate", activate, methods=["PUT"]),
        *collection_routes(bindings, db, authenticate, max_limit),
    ]
