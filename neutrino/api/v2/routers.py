"""Request shapes of routers and floating IPs, and the router's interface actions."""

from __future__ import annotations

from typing import Any

from neutrino import errors
from neutrino.api.v2 import Action
from neutrino.api.v2.agents import AVAILABILITY_ZONE_ATTRS
from neutrino.api.v2.attrs import (
    REQUIRED,
    Attr,
    boolean,
    boolean_if_not_none,
    dict_of,
    ip_address,
    list_of,
    none_as_empty,
    standard,
    string,
    uuid_str,
)
from neutrino.api.v2.networks import FIXED_IP, HOST_ROUTE
from neutrino.context import Context
from neutrino.db import Database
from neutrino.services.routers import Routers

GATEWAY_INFO = dict_of(
    {
        "network_id": (uuid_str(), False),
        "enable_snat": (boolean, False),
        "external_fixed_ips": (list_of(FIXED_IP), False),
    }
)


def gateway_info(value: Any) -> dict[str, Any] | None:
    """`null` or `{}` clears the gateway (the openstack CLI's `router unset` sends `{}`)."""
    return None if value is None else GATEWAY_INFO(value)


ROUTER = {
    **standard(),
    "admin_state_up": Attr(boolean, default=True, put=True, sort=True),
    "status": Attr(post=False, sort=True),
    "external_gateway_info": Attr(gateway_info, put=True, filter=False),
    **AVAILABILITY_ZONE_ATTRS,
    "routes": Attr(
        none_as_empty(list_of(HOST_ROUTE, unique=True)), post=False, put=True, filter=False
    ),
    "ha": Attr(boolean_if_not_none, put=True, admin_only=True, filter=False),
    "distributed": Attr(boolean_if_not_none, put=True, admin_only=True, filter=False),
    "flavor_id": Attr(string(allow_none=True), sort=True, filter=False),
    "conntrack_helpers": Attr(post=False, filter=False),
}

FLOATINGIP = {
    **{key: attr for key, attr in standard().items() if key != "name"},
    "floating_network_id": Attr(uuid_str(), default=REQUIRED, sort=True),
    "floating_ip_address": Attr(ip_address(), admin_only=True, sort=True),
    "subnet_id": Attr(uuid_str(allow_none=True), filter=False),
    "port_id": Attr(uuid_str(allow_none=True), put=True, sort=True),
    "fixed_ip_address": Attr(ip_address(allow_none=True), put=True, sort=True),
    "router_id": Attr(uuid_str(allow_none=True), put=True, sort=True),
    "status": Attr(post=False, sort=True),
    "port_details": Attr(post=False, filter=False),
    "port_forwardings": Attr(post=False, filter=False),
}


def interface_request(body: Any, *, both_allowed: bool) -> tuple[str | None, str | None]:
    """(subnet_id, port_id) of an add/remove_router_interface body."""
    if not isinstance(body, dict) or set(body) - {"subnet_id", "port_id"}:
        raise errors.BadRequest(
            resource="router", msg="The body must be an object with subnet_id or port_id"
        )
    subnet_id = uuid_str(allow_none=True)(body.get("subnet_id"))
    port_id = uuid_str(allow_none=True)(body.get("port_id"))
    if subnet_id is None and port_id is None:
        raise errors.BadRequest(
            resource="router", msg="Either subnet_id or port_id must be specified"
        )
    if subnet_id is not None and port_id is not None and not both_allowed:
        raise errors.BadRequest(resource="router", msg="Cannot specify both subnet-id and port-id")
    return subnet_id, port_id


def routes_request(body: Any) -> list[dict[str, str]]:
    """The routes of an add/remove_extraroutes body: `{"router": {"routes": [...]}}`."""
    if (
        not isinstance(body, dict)
        or set(body) != {"router"}
        or not isinstance(body["router"], dict)
        or set(body["router"]) != {"routes"}
    ):
        raise errors.BadRequest(
            resource="router", msg='The body must be {"router": {"routes": [...]}}'
        )
    routes: list[dict[str, str]] = ROUTER["routes"].convert(body["router"]["routes"])
    return routes


def router_actions(service: Routers) -> dict[str, Action]:
    def add_interface(db: Database, ctx: Context, router_id: str, body: Any) -> dict[str, Any]:
        return service.add_interface(
            db, ctx, router_id, *interface_request(body, both_allowed=False)
        )

    def remove_interface(db: Database, ctx: Context, router_id: str, body: Any) -> dict[str, Any]:
        return service.remove_interface(
            db, ctx, router_id, *interface_request(body, both_allowed=True)
        )

    def add_routes(db: Database, ctx: Context, router_id: str, body: Any) -> dict[str, Any]:
        return {"router": service.change_routes(db, ctx, router_id, routes_request(body), add=True)}

    def remove_routes(db: Database, ctx: Context, router_id: str, body: Any) -> dict[str, Any]:
        return {
            "router": service.change_routes(db, ctx, router_id, routes_request(body), add=False)
        }

    return {
        "add_router_interface": add_interface,
        "remove_router_interface": remove_interface,
        "add_extraroutes": add_routes,
        "remove_extraroutes": remove_routes,
    }
