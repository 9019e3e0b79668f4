"""Request shapes and routes of QoS: rules under their policy, by ID alone, and rule types.

Policies are a plain `Collection` (`/v2.0/qos/policies`). Rules are
sub-resources, `/v2.0/qos/policies/{policy_id}/<type>_rules[/{id}]`, and by ID
alone under `/v2.0/qos/alias_<type>_rules/{id}` (qos-rules-alias: show, update,
delete). `/v2.0/qos/rule-types` lists what this data plane applies; the details
of one are for admins, as in Neutron.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from neutrino import errors
from neutrino.api import Authenticate
from neutrino.api.errors import json_response
from neutrino.api.v2 import page_links, project_fields, read_json
from neutrino.api.v2.attrs import (
    REQUIRED,
    Attr,
    Converter,
    boolean,
    integer,
    invalid,
    one_of,
    parse_body,
    standard,
)
from neutrino.api.v2.query import parse_list_query
from neutrino.context import Context
from neutrino.db import Database
from neutrino.services import qos
from neutrino.services.qos import RULE_TYPES, SUPPORTED, Rules, RuleType

POLICY = {
    **standard(),
    "shared": Attr(boolean, default=False, put=True),
    "is_default": Attr(boolean, default=False, put=True),
    "rules": Attr(post=False, filter=False),
}


def int_range(low: int, high: int) -> Converter:
    """neutron-lib's convert_to_int, then its type:range check, with their messages."""

    def convert(value: Any) -> int:
        number = integer(value)
        if number < low:
            raise invalid(f"'{number}' is too small - must be at least '{low}'")
        if number > high:
            raise invalid(f"'{number}' is too large - must be no larger than '{high}'")
        return number

    return convert


def int_choice(choices: list[int]) -> Converter:
    return lambda value: one_of(*choices)(integer(value))


KBPS = int_range(0, qos.INTEGER_MAX)
DIRECTION = one_of(*qos.DIRECTIONS)


def rule_attrs(**values: Attr) -> dict[str, Attr]:
    return {"id": Attr(post=False, sort=True, filter_convert=str), **values}


RULE_ATTRS: dict[str, dict[str, Attr]] = {
    "bandwidth_limit": rule_attrs(
        max_kbps=Attr(KBPS, default=REQUIRED, put=True, sort=True, filter_convert=KBPS),
        max_burst_kbps=Attr(KBPS, default=0, put=True, sort=True, filter_convert=KBPS),
        direction=Attr(DIRECTION, default="egress", put=True, sort=True),
    ),
    "dscp_marking": rule_attrs(
        dscp_mark=Attr(
            int_choice(qos.VALID_DSCP_MARKS),
            default=REQUIRED,
            put=True,
            sort=True,
            filter_convert=integer,
        ),
    ),
    "minimum_bandwidth": rule_attrs(
        min_kbps=Attr(KBPS, default=REQUIRED, put=True, sort=True, filter_convert=KBPS),
        direction=Attr(one_of("egress"), default="egress", put=True, sort=True),
    ),
}


class RulesCollection:
    """What parse_list_query needs of a collection: its attributes."""

    def __init__(self, rule_type: RuleType) -> None:
        self.attributes = RULE_ATTRS[rule_type.name]


def rule_routes(
    rule_type: RuleType, db: Database, authenticate: Authenticate, max_limit: int
) -> list[BaseRoute]:
    service = Rules(rule_type)
    attrs = RULE_ATTRS[rule_type.name]
    member, plural = rule_type.member, rule_type.collection

    async def index(request: Request) -> Response:
        ctx = await authenticate(request)
        policy_id = request.path_params["policy_id"]
        if request.method == "POST":
            values = parse_body(
                await read_json(request), member, attrs, create=True, is_admin=ctx.is_admin
            )
            item = await run_in_threadpool(service.create, db, ctx, policy_id, values)
            return json_response({member: item}, 201)
        query = parse_list_query(request.query_params, RulesCollection(rule_type), max_limit)
        items, _ = await run_in_threadpool(service.list, db, ctx, policy_id, query)
        body: dict[str, Any] = {plural: [project_fields(i, query.fields) for i in items]}
        links = page_links(request, items, query)
        if links:
            body[f"{plural}_links"] = links
        return json_response(body)

    async def one(request: Request, ctx: Context, policy_id: str, key: str) -> Response:
        rule_id = request.path_params["id"]
        if request.method == "GET":
            fields = [f for v in request.query_params.getlist("fields") for f in v.split(",") if f]
            item = await run_in_threadpool(service.get, db, ctx, policy_id, rule_id)
            return json_response({key: project_fields(item, fields)})
        if request.method == "PUT":
            values = parse_body(
                await read_json(request), key, attrs, create=False, is_admin=ctx.is_admin
            )
            item = await run_in_threadpool(service.update, db, ctx, policy_id, rule_id, values)
            return json_response({key: item})
        await run_in_threadpool(service.delete, db, ctx, policy_id, rule_id)
        return Response(status_code=204)

    async def nested(request: Request) -> Response:
        ctx = await authenticate(request)
        return await one(request, ctx, request.path_params["policy_id"], member)

    async def alias(request: Request) -> Response:
        ctx = await authenticate(request)
        policy_id = await run_in_threadpool(service.policy_of, db, request.path_params["id"])
        return await one(request, ctx, policy_id, f"alias_{member}")

    base = f"/v2.0/qos/policies/{{policy_id}}/{plural}"
    return [
        Route(base, index, methods=["GET", "POST"]),
        Route(base + "/{id}", nested, methods=["GET", "PUT", "DELETE"]),
        Route(f"/v2.0/qos/alias_{plural}/{{id}}", alias, methods=["GET", "PUT", "DELETE"]),
    ]


def qos_routes(db: Database, authenticate: Authenticate, max_limit: int) -> list[BaseRoute]:
    """Rules and rule types; they go before the policies' own routes, which would take
    `/qos/policies/{id}/<anything>` for an action."""

    async def rule_types(request: Request) -> Response:
        await authenticate(request)
        return json_response({"rule_types": [{"type": name} for name in SUPPORTED]})

    async def show_rule_type(request: Request) -> Response:
        ctx = await authenticate(request)
        if not ctx.is_admin:
            raise errors.NotAuthorized()
        name = request.path_params["type"]
        if name not in RULE_TYPES:
            raise errors.NotFound(f"QoS rule type {name} could not be found.")
        return json_response({"rule_type": {"type": name, "drivers": qos.rule_type_details(name)}})

    routes: list[BaseRoute] = [
        Route("/v2.0/qos/rule-types", rule_types, methods=["GET"]),
        Route("/v2.0/qos/rule-types/{type}", show_rule_type, methods=["GET"]),
    ]
    for rule_type in RULE_TYPES.values():
        routes += rule_routes(rule_type, db, authenticate, max_limit)
    return routes
