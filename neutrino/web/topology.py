"""Network Topology: the project's external networks, routers, networks, instances and load
balancers.

The server sends the graph as plain data (nodes with a layer, edges); the
browser lays it out in layers (static/topology.js) and polls for changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web import loadbalancers
from neutrino.web.floatingips import LAB
from neutrino.web.networks import NET, project_networks
from neutrino.web.routers import INTERFACE_OWNERS
from neutrino.web.ui import PREFIX, Dashboard, Ui

LAYERS = {"external": 0, "router": 1, "network": 2, "instance": 3, "loadbalancer": 3}


def node(kind: str, item: dict[str, Any], url: str, detail: str = "") -> dict[str, Any]:
    return {
        "id": item["id"],
        "kind": kind,
        "layer": LAYERS[kind],
        "label": item.get("name") or item["id"][:8],
        "status": item.get("status") or item.get("operating_status", ""),
        "url": url,
        "detail": detail,
    }


async def graph(ui: Ui) -> dict[str, Any]:
    api, base = ui.api, PREFIX + "/project"
    networks, found_routers, found_ports, found_instances, balancers = await asyncio.gather(
        project_networks(ui),
        api.get(NET, "/v2.0/routers", project_id=ui.project_id),
        api.get(
            NET,
            "/v2.0/ports",
            project_id=ui.project_id,
            fields=["network_id", "device_id", "device_owner"],
        ),
        api.get(
            LAB,
            "/v1/instances",
            project_id=ui.project_id,
            fields=["id", "name", "status", "addresses"],
        ),
        loadbalancers.listing(ui),
    )
    routers, ports, instances = (
        found_routers["routers"],
        found_ports["ports"],
        found_instances["instances"],
    )
    cidrs: dict[str, list[str]] = {}
    if networks:
        for subnet in (
            await api.get(
                NET,
                "/v2.0/subnets",
                network_id=[n["id"] for n in networks],
                fields=["network_id", "cidr"],
            )
        )["subnets"]:
            cidrs.setdefault(subnet["network_id"], []).append(subnet["cidr"])

    nodes = [
        node(
            "external" if n.get("router:external") else "network",
            n,
            f"{base}/networks/{n['id']}",
            ", ".join(cidrs.get(n["id"], [])),
        )
        for n in networks
    ]
    nodes += [node("router", r, f"{base}/routers/{r['id']}") for r in routers]
    nodes += [
        node("instance", i, f"{base}/instances/{i['id']}", ", ".join(i["addresses"]))
        for i in instances
    ]
    nodes += [
        node("loadbalancer", lb, f"{base}/load-balancers/{lb['id']}", lb.get("vip_address") or "")
        for lb in balancers
    ]
    known = {n["id"] for n in nodes}
    edges = {
        (r["id"], r["external_gateway_info"]["network_id"])
        for r in routers
        if r["external_gateway_info"]
    }
    for port in ports:
        if port["device_owner"] in INTERFACE_OWNERS or port["device_owner"].startswith("compute:"):
            edges.add((port["device_id"], port["network_id"]))
    edges |= {(lb["id"], lb["vip_network_id"]) for lb in balancers if lb.get("vip_network_id")}
    return {"nodes": nodes, "edges": sorted([a, b] for a, b in edges if a in known and b in known)}


def routes(d: Dashboard) -> list[BaseRoute]:
    async def topology_page(ui: Ui) -> Response:
        return ui.render("topology.html")

    return [
        d.page("/project/topology", topology_page),
        d.json("/project/topology.json", graph),
    ]
