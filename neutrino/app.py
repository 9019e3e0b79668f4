"""The ASGI application: identity, networking and the internal feed behind one listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Generic, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from neutrino import errors
from neutrino.api import errors as api_errors
from neutrino.api import identity as identity_api
from neutrino.api import keymanager as keymanager_api
from neutrino.api import octavia as octavia_api
from neutrino.api import octavia_admin
from neutrino.api.errors import json_response
from neutrino.api.middleware import ErrorFormats, FrontDoor
from neutrino.api.v2 import Collection, collection_routes
from neutrino.api.v2.agents import AGENT, AVAILABILITY_ZONES, scheduler_routes
from neutrino.api.v2.auto_allocated_topology import auto_allocated_topology_routes
from neutrino.api.v2.computed import computed_routes
from neutrino.api.v2.conntrack_helpers import CONNTRACK_HELPER
from neutrino.api.v2.extensions import extension_list
from neutrino.api.v2.flavors import FLAVOR, SERVICE_PROFILE, flavor_profile_routes
from neutrino.api.v2.floatingip_pools import FLOATINGIP_POOLS
from neutrino.api.v2.ip_availability import NETWORK_IP_AVAILABILITY
from neutrino.api.v2.metering import METERING_LABEL, METERING_LABEL_RULE
from neutrino.api.v2.network_segment_ranges import NETWORK_SEGMENT_RANGE
from neutrino.api.v2.networks import NETWORK, PORT, SUBNET
from neutrino.api.v2.port_bindings import binding_routes
from neutrino.api.v2.port_forwardings import PORT_FORWARDING
from neutrino.api.v2.qos import POLICY, qos_routes
from neutrino.api.v2.quotas import quota_routes
from neutrino.api.v2.rbac import RBAC_POLICY
from neutrino.api.v2.routers import FLOATINGIP, ROUTER, router_actions
from neutrino.api.v2.security_groups import (
    ADDRESS_GROUP,
    DEFAULT_SECURITY_GROUP_RULE,
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
    SECURITY_GROUPS_DEFAULT_STATEFULNESS,
)
from neutrino.api.v2.service_providers import SERVICE_PROVIDERS
from neutrino.api.v2.subnetpools import ADDRESS_SCOPE, SUBNETPOOL, subnetpool_actions
from neutrino.api.v2.trunks import TRUNK, trunk_actions
from neutrino.config import Settings
from neutrino.context import Context
from neutrino.db import Database
from neutrino.identity.service import Identity
from neutrino.services import (
    agents,
    dns,
    feed,
    lbaas_tls,
    liveness,
    loadbalancers,
    quotas,
    segment_ranges,
)
from neutrino.services.address_groups import AddressGroups
from neutrino.services.address_scopes import AddressScopes
from neutrino.services.auto_allocate import AutoAllocatedTopologies
from neutrino.services.conntrack_helpers import ConntrackHelpers
from neutrino.services.flavors import Flavors, ServiceProfiles
from neutrino.services.floatingips import FloatingIPs, remove_on_network
from neutrino.services.keymanager import KeyManager, Sealer
from neutrino.services.metering import MeteringLabelRules, MeteringLabels
from neutrino.services.networks import Networks
from neutrino.services.port_forwardings import PortForwardings
from neutrino.services.ports import Ports
from neutrino.services.qos import Policies
from neutrino.services.rbac import RbacPolicies
from neutrino.services.routers import Routers
from neutrino.services.security_groups import (
    DefaultSecurityGroupRules,
    SecurityGroupRules,
    SecurityGroups,
    SecurityGroupsDefaultStatefulness,
)
from neutrino.services.segment_ranges import NetworkSegmentRanges
from neutrino.services.subnetpools import SubnetPools
from neutrino.services.subnets import Subnets
from neutrino.services.trunks import Trunks

if TYPE_CHECKING:
    from neutrino.web.ui import Dashboard

log = logging.getLogger("neutrino")
CHORES_TICK = 1.0  # seconds between looks at what is due
T = TypeVar("T")
S = TypeVar("S")


@dataclass
class Neutrino:
    """Everything a running service holds; built once, shared by all requests."""

    settings: Settings
    db: Database
    identity: Identity
    key_manager: KeyManager
    collections: list[Collection] = field(default_factory=list)

    def service(self, name: str, kind: type[S]) -> S:
        """The service of collection `name`, a `kind`."""
        found = next(c.service for c in self.collections if c.name == name)
        assert isinstance(found, kind), name
        return found

    async def authenticate(self, request: Request) -> Context:
        token = request.headers.get("x-auth-token")
        if not token:
            raise errors.KeystoneError(
                401, "Unauthorized", "The request you have made requires authentication."
            )
        # A token checked moments ago is a dictionary lookup; checking one anew reads the
        # database, which is no work for the event loop.
        context = self.identity.recently_checked(token)
        if context is None:
            context = await run_in_threadpool(self.identity.validate, token)
        return context


class OnFirstUse(Generic[T]):
    """What `make()` returns, made once, when first asked for rather than at start: a start
    does not pay for what it imports and builds."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self.made: T | None = None

    def __call__(self) -> T:
        with self._lock:
            if self.made is None:
                self.made = self._make()
            return self.made


def mount_on_first_request(path: str, routes: Callable[[], list[BaseRoute]]) -> Mount:
    """`Mount(path, routes=routes())`, with `routes()` called at the first request under `path`,
    in a worker thread: the event loop goes on serving meanwhile."""
    router = OnFirstUse(lambda: Router(routes()))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        made = router.made if router.made is not None else await run_in_threadpool(router)
        await made(scope, receive, send)

    return Mount(path, app=app)


def build(settings: Settings) -> Neutrino:
    db = Database(settings.database_url)
    agents.DOWN_TIME = timedelta(seconds=settings.agent_down_time)
    dns.configure(settings.dns_domain)
    quotas.configure(settings.default_quotas)
    loadbalancers.configure_quotas(settings.default_lb_quotas)
    key_manager = KeyManager(
        db, Sealer.from_state_dir(settings.state_dir), settings.public_url + "/key-manager"
    )
    lbaas_tls.configure(key_manager)
    core = Neutrino(settings, db, Identity(db, settings), key_manager)
    core.collections = [
        Collection(
            "networks", "network", NETWORK, Networks(settings, on_delete=[remove_on_network])
        ),
        Collection("subnets", "subnet", SUBNET, Subnets()),
        Collection("ports", "port", PORT, Ports()),
        Collection(
            "routers", "router", ROUTER, routers := Routers(), actions=router_actions(routers)
        ),
        Collection("floatingips", "floatingip", FLOATINGIP, FloatingIPs()),
        Collection(
            "subnetpools",
            "subnetpool",
            SUBNETPOOL,
            pools := SubnetPools(),
            actions=subnetpool_actions(pools),
        ),
        Collection(
            "address_scopes", "address_scope", ADDRESS_SCOPE, AddressScopes(), path="address-scopes"
        ),
        Collection(
            "security_groups",
            "security_group",
            SECURITY_GROUP,
            SecurityGroups(),
            path="security-groups",
        ),
        Collection(
            "security_group_rules",
            "security_group_rule",
            SECURITY_GROUP_RULE,
            SecurityGroupRules(),
            path="security-group-rules",
        ),
        Collection(
            "rbac_policies",
            "rbac_policy",
            RBAC_POLICY,
            RbacPolicies(),
            path="rbac-policies",
            tagged=False,
        ),
        Collection(
            "default_security_group_rules",
            "default_security_group_rule",
            DEFAULT_SECURITY_GROUP_RULE,
            DefaultSecurityGroupRules(),
            path="default-security-group-rules",
            tagged=False,
        ),
        Collection(
            "security_groups_default_statefulness",
            "security_groups_default_statefulness",
            SECURITY_GROUPS_DEFAULT_STATEFULNESS,
            SecurityGroupsDefaultStatefulness(),
            path="security-groups-default-statefulness",
            tagged=False,
        ),
        Collection(
            "address_groups",
            "address_group",
            ADDRESS_GROUP,
            address_groups := AddressGroups(),
            actions={
                "add_addresses": address_groups.add_addresses,
                "remove_addresses": address_groups.remove_addresses,
            },
            path="address-groups",
        ),
        Collection("trunks", "trunk", TRUNK, trunks := Trunks(), actions=trunk_actions(trunks)),
        Collection("agents", "agent", AGENT, agents.Agents()),
        Collection("policies", "policy", POLICY, Policies(), path="qos/policies"),
        Collection("flavors", "flavor", FLAVOR, Flavors(), tagged=False),
        Collection(
            "service_profiles", "service_profile", SERVICE_PROFILE, ServiceProfiles(), tagged=False
        ),
        Collection(
            "metering_labels",
            "metering_label",
            METERING_LABEL,
            MeteringLabels(),
            path="metering/metering-labels",
            tagged=False,
        ),
        Collection(
            "metering_label_rules",
            "metering_label_rule",
            METERING_LABEL_RULE,
            MeteringLabelRules(),
            path="metering/metering-label-rules",
            tagged=False,
        ),
        Collection(
            "network_segment_ranges",
            "network_segment_range",
            NETWORK_SEGMENT_RANGE,
            NetworkSegmentRanges(),
            path="network-segment-ranges",
        ),
    ]
    return core


def networking_routes(core: Neutrino) -> list[BaseRoute]:
    base = core.settings.public_url + "/networking"

    async def versions(_request: Request) -> Response:
        return json_response(
            {
                "versions": [
                    {
                        "id": "v2.0",
                        "status": "CURRENT",
                        "links": [{"rel": "self", "href": base + "/v2.0/"}],
                    }
                ]
            }
        )

    async def root(request: Request) -> Response:
        await core.authenticate(request)
        resources = [
            {
                "name": c.member,
                "collection": c.url,
                "links": [{"rel": "self", "href": f"{base}/v2.0/{c.url}"}],
            }
            for c in core.collections
        ]
        return json_response({"resources": resources})

    async def extensions(request: Request) -> Response:
        await core.authenticate(request)
        return json_response({"extensions": extension_list()})

    async def extension(request: Request) -> Response:
        await core.authenticate(request)
        found = [e for e in extension_list() if e["alias"] == request.path_params["alias"]]
        if not found:
            raise errors.NotFound(
                f"Extension with alias {request.path_params['alias']} does not exist"
            )
        return json_response({"extension": found[0]})

    routes: list[BaseRoute] = [
        Route("/", versions),
        Route("/v2.0", root),
        Route("/v2.0/", root),
        Route("/v2.0/extensions", extensions),
        Route("/v2.0/extensions/{alias}", extension),
        *qos_routes(core.db, core.authenticate, core.settings.pagination_max_limit),
    ]
    services = {c.name: c.service for c in core.collections}
    routes.extend(
        scheduler_routes(
            core.db, core.authenticate, services["networks"].get, services["routers"].get
        )
    )
    routes.extend(binding_routes(core.db, core.authenticate, core.settings.pagination_max_limit))
    # Before the flavors' own routes, whose /{id}/{action} would take POST.
    routes.extend(flavor_profile_routes(core.db, core.authenticate, Flavors()))
    # Before their parents' own routes, whose /{id}/{action} would take these.
    children = [
        Collection(
            "port_forwardings",
            "port_forwarding",
            PORT_FORWARDING,
            PortForwardings(),
            parent="floatingips",
        ),
        Collection(
            "conntrack_helpers",
            "conntrack_helper",
            CONNTRACK_HELPER,
            ConntrackHelpers(),
            parent="routers",
        ),
    ]
    for collection in [*children, *core.collections]:
        routes.extend(
            collection_routes(
                collection, core.db, core.authenticate, core.settings.pagination_max_limit
            )
        )
    routes.extend(quota_routes(core.db, core.authenticate))
    topologies = AutoAllocatedTopologies(
        core.service("networks", Networks),
        core.service("subnets", Subnets),
        core.service("routers", Routers),
    )
    routes.extend(auto_allocated_topology_routes(core.db, core.authenticate, topologies))
    for computed in (
        NETWORK_IP_AVAILABILITY,
        FLOATINGIP_POOLS,
        AVAILABILITY_ZONES,
        SERVICE_PROVIDERS,
    ):
        routes.extend(
            computed_routes(
                computed, core.db, core.authenticate, core.settings.pagination_max_limit
            )
        )
    return routes


def internal_routes(core: Neutrino) -> list[BaseRoute]:
    # Imported at an agent's first call: the change feed renders with much of the agent's plan.
    from neutrino.api import internal

    return internal.routes(core.db, core.authenticate)


def lab_routes(core: Neutrino) -> list[BaseRoute]:
    # Imported at the lab's first request, with the client of the agents that carry it out.
    from neutrino.api import lab, lab_tools
    from neutrino.api.agent_link import AgentLink

    link = AgentLink(core.db, core.identity)
    return [
        *lab.routes(core.db, core.authenticate, link),
        *collection_routes(
            lab.collection(core.settings.host, link),
            core.db,
            core.authenticate,
            core.settings.pagination_max_limit,
            prefix="/v1",
        ),
        *lab_tools.routes(core.db, core.authenticate, core.settings.host, link),
    ]


def make_dashboard(core: Neutrino) -> Dashboard:
    # Imported at its first page, with its templates and the client of the APIs it calls.
    from neutrino.web.ui import Dashboard

    return Dashboard(core.db)


def dashboard_routes(dashboard: Dashboard) -> list[BaseRoute]:
    from neutrino.web import routes

    return routes(dashboard)


def create_app(settings: Settings, core: Neutrino, run_chores: bool = True) -> Starlette:
    """The application around a prepared `core`; whoever made the core disposes of it. Without
    `run_chores`, another process does them (one of several workers). What no client of the
    APIs needs at once (the agents' feed, the lab, the dashboard) is made at its first request."""

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    # The dashboard keeps only its sessions: what it is given goes to the APIs.
    dashboard = OnFirstUse(lambda: make_dashboard(core))

    def dashboard_error(request: Request, status: int, message: str) -> Response:
        return dashboard().error_page(request, status, message)

    formats = ErrorFormats(
        [
            ("/load-balancer", octavia_api.render_error),
            ("/key-manager", keymanager_api.render_error),
            ("/identity", identity_api.render_error),
            ("/dashboard", dashboard_error),
        ],
        default=api_errors.render_error,
    )
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Mount("/identity", routes=identity_api.routes(core.identity, settings)),
            Mount("/networking", routes=networking_routes(core)),
            mount_on_first_request("/internal", lambda: internal_routes(core)),
            mount_on_first_request("/lab", lambda: lab_routes(core)),
            mount_on_first_request("/dashboard", lambda: dashboard_routes(dashboard())),
            Mount(
                "/load-balancer",
                routes=[
                    *octavia_api.routes(
                        core.db,
                        core.authenticate,
                        settings.public_url,
                        settings.pagination_max_limit,
                    ),
                    *octavia_admin.routes(
                        core.db, core.authenticate, settings.pagination_max_limit
                    ),
                ],
            ),
            Mount(
                "/key-manager", routes=keymanager_api.routes(core.key_manager, core.authenticate)
            ),
        ],
        middleware=[
            Middleware(
                FrontDoor,
                formats=formats,
                max_body=settings.max_request_body_size,
                body_timeout=settings.client_timeout,
                access_log=settings.access_log,
            )
        ],
        lifespan=(lambda _app: chores(core.db)) if run_chores else None,
        exception_handlers={
            errors.NeutronError: api_errors.handle_neutron_error,
            errors.KeystoneError: identity_api.keystone_exception_handler(settings),
            HTTPException: api_errors.http_exception_handler(formats),
            IntegrityError: api_errors.database_error_handler(formats),
            OperationalError: api_errors.database_error_handler(formats),
        },
    )
    app.state.core = core
    return app


def prepare(settings: Settings) -> Neutrino:
    """Migrate the schema and bootstrap identity: everything before serving."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    core = build(settings)
    core.db.migrate()
    core.identity.bootstrap()
    segment_ranges.sync_defaults(core.db, settings)
    return core


def start_chores(db: Database) -> threading.Thread:
    """The chores in a thread of their own, in a process that serves no request."""

    async def forever() -> None:
        async with chores(db):
            await asyncio.Event().wait()

    thread = threading.Thread(target=asyncio.run, args=(forever(),), name="chores", daemon=True)
    thread.start()
    return thread


@contextlib.asynccontextmanager
async def chores(db: Database) -> AsyncIterator[None]:
    """What the server does on its own while it serves, each in a worker thread when due:
    finish or fail load balancers left pending (every 5 s), fail over dead hosts (every quarter
    of the agent down time), compact the change feed (every 60 s)."""
    jobs: list[tuple[float, Callable[[Database], object]]] = [
        (5.0, loadbalancers.housekeeping),
        (agents.DOWN_TIME.total_seconds() / 4, liveness.Liveness().check),
        (60.0, feed.Compactor().compact),
    ]
    due = [time.monotonic() + every for every, _ in jobs]

    async def loop() -> None:
        while True:
            await asyncio.sleep(CHORES_TICK)
            for index, (every, job) in enumerate(jobs):
                if time.monotonic() < due[index]:
                    continue
                due[index] = time.monotonic() + every
                try:
                    await run_in_threadpool(job, db)
                except Exception:
                    log.exception("%s failed", getattr(job, "__qualname__", job))

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        # Cancelling waits for a job in its worker thread to end, so that its database
        # connection is back in the pool before whoever made the core disposes of it.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
