"""Network Topology: the project's external networks, routers, networks, instances, load
balancers and floating IPs, drawn the way they connect.

`build` turns the API's answers into a graph: nodes, and links that each say what they are
in a sentence (a router's interface and its address, a gateway, an instance's address, a
load balancer's VIP and the members it forwards to, a floating IP). `layout` places it,
deterministically and without a browser: each router makes a block, the networks it connects
side by side under it, and under each network its instances and load balancers side by side
(a new line of them every few); a network without a router is a block of its own. Blocks are
packed into rows to suit the window's shape, and each row has, on top, the external networks
its routers use (an external network may so appear once per row), so no link crosses another
row.
The browser (static/topology.js) only draws the boxes and lines it is given, and asks again
every few seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web import loadbalancers
from neutrino.web.instances import launch_choices
from neutrino.web.loadbalancers import LB, LBAAS
from neutrino.web.networks import LAB, NET, project_networks
from neutrino.web.routers import INTERFACE_OWNERS
from neutrino.web.ui import PREFIX, Dashboard, Ui

BOX_W, BOX_H = 160, 64  # an instance, a load balancer, a member address
ROUTER_H = 40
BAR_H = 34  # a network
GAP = 24
PER_LINE = 5  # instances and load balancers side by side under a network
EXTERNAL_Y, ROUTER_Y, NETWORK_Y, LEAF_Y = 0, 100, 200, 270
LEAF_PITCH = BOX_H + 64  # room under a line for the links to members and their labels
ROW_GAP = 40
TRIES = 48  # row widths tried when packing blocks into rows
LEAVES = ("loadbalancer", "instance", "member")
DRAWN_ON_NODE = ("floatingip",)  # told on the node it belongs to, not drawn as a line

Json = dict[str, Any]


def node(kind: str, item: Json, url: str, detail: str = "", status: str = "") -> Json:
    return {
        "id": item["id"],
        "kind": kind,
        "label": item.get("name") or item.get("address") or item["id"][:8],
        "status": status or item.get("status", ""),
        "url": url,
        "detail": detail,
        "floating_ips": [],
    }


def link(a: str, b: str, kind: str, label: str, text: str) -> Json:
    """A link from node `a` to node `b`; `text` names them as {a} and {b}."""
    return {"from": a, "to": b, "kind": kind, "label": label, "text": text}


def joined(addresses: Iterable[str]) -> str:
    return ", ".join(addresses)


def build(
    networks: list[Json],
    subnets: list[Json],
    routers: list[Json],
    ports: list[Json],
    instances: list[Json],
    balancers: list[Json],
    listeners: list[Json],
    pools: list[Json],
    members: dict[str, list[Json]],
    floatingips: list[Json],
) -> Json:
    """The graph of what the API answered (`members` by pool id)."""
    base = PREFIX + "/project"
    cidrs: dict[str, list[str]] = defaultdict(list)
    network_of_subnet = {}
    for subnet in subnets:
        cidrs[subnet["network_id"]].append(subnet["cidr"])
        network_of_subnet[subnet["id"]] = subnet["network_id"]
    nodes = [
        node(
            "external" if n.get("router:external") else "network",
            n,
            f"{base}/networks/{n['id']}",
            joined(cidrs[n["id"]]),
        )
        for n in networks
    ]
    nodes += [node("router", r, f"{base}/routers/{r['id']}") for r in routers]
    nodes += [node("instance", i, f"{base}/instances/{i['id']}") for i in instances]
    nodes += [
        node(
            "loadbalancer",
            lb,
            f"{base}/load-balancers/{lb['id']}",
            lb.get("vip_address") or "",
            # Being built or changed tells more than being online.
            lb["operating_status"]
            if lb["provisioning_status"] == "ACTIVE"
            else lb["provisioning_status"],
        )
        for lb in balancers
    ]
    by_id = {n["id"]: n for n in nodes}
    links = []

    for r in routers:
        gateway = r.get("external_gateway_info")
        if gateway and gateway["network_id"] in by_id:
            at = joined(ip["ip_address"] for ip in gateway.get("external_fixed_ips") or [])
            links.append(
                link(
                    r["id"],
                    gateway["network_id"],
                    "gateway",
                    at,
                    f"{{a}} has its gateway {at} on {{b}}" if at else "{a} has its gateway on {b}",
                )
            )

    # Ports: router interfaces and instances' addresses, one link per device and network.
    plugged: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    holder: dict[tuple[str, str], str] = {}  # (subnet, address) -> instance
    for port in ports:
        owner = port["device_owner"]
        kind = (
            "interface"
            if owner in INTERFACE_OWNERS
            else "port"
            if owner.startswith("compute:")
            else ""
        )
        if not kind or port["device_id"] not in by_id or port["network_id"] not in by_id:
            continue
        addresses = [ip["ip_address"] for ip in port["fixed_ips"]]
        plugged[(port["device_id"], port["network_id"], kind)] += addresses
        if kind == "port":
            holder.update(
                {(ip["subnet_id"], ip["ip_address"]): port["device_id"] for ip in port["fixed_ips"]}
            )
    for (device, network, kind), addresses in sorted(plugged.items()):
        at = joined(addresses)
        text = "{a} has the interface " if kind == "interface" else "{a} has the address "
        links.append(link(device, network, kind, at, text + f"{at} on {{b}}"))
        if kind == "port":
            by_id[device]["detail"] = joined(filter(None, [by_id[device]["detail"], at]))

    for lb in balancers:
        if lb.get("vip_network_id") in by_id:
            links.append(
                link(
                    lb["id"],
                    lb["vip_network_id"],
                    "vip",
                    lb["vip_address"],
                    f"{{a}} has its VIP {lb['vip_address']} on {{b}}",
                )
            )

    # Members: to the instance that holds the address, or an address of their own; a member
    # without a subnet is on its load balancer's VIP subnet.
    listened = {li["default_pool_id"]: li for li in listeners if li.get("default_pool_id")}
    vip_subnets = {lb["id"]: lb.get("vip_subnet_id") or "" for lb in balancers}
    for pool in pools:
        lb_id = next((lb["id"] for lb in pool.get("loadbalancers", [])), "")
        if lb_id not in by_id:
            continue
        listener = listened.get(pool["id"])
        front = (
            f"{listener['protocol']} {listener['protocol_port']}" if listener else pool["protocol"]
        )
        for member in members.get(pool["id"], []):
            address, port = member["address"], member["protocol_port"]
            on_subnet = member.get("subnet_id") or vip_subnets[lb_id]
            target = holder.get((on_subnet, address))
            if target is None:
                target = member["id"]  # its page is its load balancer's
                nodes.append(node("member", member, by_id[lb_id]["url"], f"{address} port {port}"))
                by_id[target] = nodes[-1]
                home = network_of_subnet.get(on_subnet)
                if home is not None and home in by_id:
                    links.append(link(target, home, "address", address, "{a} is on {b}"))
            links.append(
                link(
                    lb_id,
                    target,
                    "member",
                    f"{front}→{port}",
                    f"{{a}} forwards {front} to {{b}}"
                    + (f" at {address}" if by_id[target]["kind"] == "instance" else "")
                    + f" port {port}",
                )
            )

    # Floating IPs: on the instance or the load balancer (by its VIP) their port belongs to.
    bearers = {p["id"]: p["device_id"] for p in ports}
    bearers.update({lb["vip_port_id"]: lb["id"] for lb in balancers if lb.get("vip_port_id")})
    for fip in floatingips:
        bearer = bearers.get(fip["port_id"] or "", "")
        if by_id.get(bearer, {}).get("kind") in ("instance", "loadbalancer"):
            address = fip["floating_ip_address"]
            by_id[bearer]["floating_ips"].append(address)
            if fip["floating_network_id"] in by_id:
                links.append(
                    link(
                        bearer,
                        fip["floating_network_id"],
                        "floatingip",
                        address,
                        f"{{a}} is reached at the floating IP {address} of {{b}}",
                    )
                )
    return {"nodes": nodes, "links": links}


def lines_of_leaves(count: int) -> int:
    return max(1, math.ceil(count / PER_LINE))


def group_width(count: int) -> int:
    return max(BOX_W, min(count, PER_LINE) * (BOX_W + GAP) - GAP)


def layout(graph: Json, aspect: float = 1.6) -> Json:
    """Where each node is drawn (boxes: top-left corner and size) and which boxes each drawn
    link joins (lines); an external network's box key is `id@row`, every other's its id."""
    nodes = {n["id"]: n for n in graph["nodes"]}
    drawn = [li for li in graph["links"] if li["kind"] not in DRAWN_ON_NODE]
    linked: dict[str, list[str]] = defaultdict(list)
    for li in drawn:
        linked[li["from"]].append(li["to"])
        linked[li["to"]].append(li["from"])

    def of_kind(*kinds: str) -> list[Json]:
        order = {kind: i for i, kind in enumerate(kinds)}
        found = [n for n in graph["nodes"] if n["kind"] in order]
        return sorted(found, key=lambda n: (order[n["kind"]], n["label"], n["id"]))

    networks = of_kind("network")
    leaves: dict[str | None, list[Json]] = {n["id"]: [] for n in networks}
    leaves[None] = []  # those on no network of the project's own
    for leaf in of_kind(*LEAVES):
        home = next((i for i in linked[leaf["id"]] if nodes[i]["kind"] == "network"), None)
        leaves[home].append(leaf)

    owner: dict[str, str] = {}
    routers = of_kind("router")
    for r in routers:
        for i in linked[r["id"]]:
            if nodes[i]["kind"] == "network":
                owner.setdefault(i, r["id"])
    blocks: list[tuple[Json | None, list[str | None]]] = [
        (r, [n["id"] for n in networks if owner.get(n["id"]) == r["id"]]) for r in routers
    ]
    # A network without a router, and what is on none, are blocks of their own.
    alone: list[str | None] = [n["id"] for n in networks if n["id"] not in owner]
    blocks += [(None, [group]) for group in alone + ([None] if leaves[None] else [])]

    def width(groups: list[str | None]) -> int:
        return sum(group_width(len(leaves[g])) + GAP for g in groups) - GAP if groups else BOX_W

    def height(groups: list[str | None]) -> int:
        deepest = max((lines_of_leaves(len(leaves[g])) for g in groups), default=0)
        return LEAF_Y + deepest * LEAF_PITCH

    sizes = [(width(groups), height(groups)) for _, groups in blocks]

    def pack(row_width: float) -> list[list[int]]:
        """The blocks (by index) in rows no wider than `row_width`."""
        rows: list[list[int]] = []
        x = 0
        for i, (w, _) in enumerate(sizes):
            if not rows or (x > 0 and x + w > row_width):
                rows.append([])
                x = 0
            rows[-1].append(i)
            x += w + GAP
        return rows

    def scale(rows: list[list[int]]) -> float:
        """How large the rows can be drawn in a window of this shape (its height being 1)."""
        wide = max(sum(sizes[i][0] + GAP for i in row) for row in rows)
        high = sum(max(sizes[i][1] for i in row) + ROW_GAP for row in rows)
        return min(aspect / wide, 1 / high)

    # The rows that fill the window best, each at most as wide as some first blocks (a few
    # dozen tries at most, however many blocks).
    widths = list(itertools.accumulate(w + GAP for w, _ in sizes))
    tried = widths[:: max(1, len(widths) // TRIES)]
    rows = [[blocks[i] for i in row] for row in max(map(pack, tried), key=scale, default=[])]

    boxes: dict[str, Json] = {}
    row_of: dict[str, int] = {}

    def place(key: str, n: Json, x: float, y: float, w: float, h: float, row: int) -> None:
        boxes[key] = {"key": key, "id": n["id"], "x": round(x), "y": y, "w": w, "h": h}
        row_of[key] = row

    top = 0
    for row, placed in enumerate(rows):
        x = 0
        for router, groups in placed:
            left = x
            for group in groups:
                items = leaves[group]
                w = group_width(len(items))
                if group is not None:
                    place(group, nodes[group], x, top + NETWORK_Y, w, BAR_H, row)
                for k, leaf in enumerate(items):
                    line, column = divmod(k, PER_LINE)
                    y = top + LEAF_Y + line * LEAF_PITCH
                    place(leaf["id"], leaf, x + column * (BOX_W + GAP), y, BOX_W, BOX_H, row)
                x += w + GAP
            if router is not None:
                centre = (left + x - GAP) / 2 if groups else left + BOX_W / 2
                place(
                    router["id"], router, centre - BOX_W / 2, top + ROUTER_Y, BOX_W, ROUTER_H, row
                )
                x = max(x, left + BOX_W + GAP)
        # The external networks linked to this row's nodes, over the middle of them, apart.
        here = [b for b in boxes.values() if row_of.get(b["key"]) == row]
        wanted = []
        for e in of_kind("external"):
            xs = [b["x"] + b["w"] / 2 for b in here if b["id"] in linked[e["id"]]]
            if xs or (row == 0 and not linked[e["id"]]):
                wanted.append((sum(xs) / len(xs) if xs else 0, e))
        after = -math.inf
        for centre, e in sorted(wanted, key=lambda w: w[0]):
            at = max(centre - BOX_W / 2, after)
            place(f"{e['id']}@{row}", e, at, top + EXTERNAL_Y, BOX_W, BAR_H, row)
            after = at + BOX_W + GAP
        top += max(height(g) for _, g in placed) + ROW_GAP

    def key(end: str, other: str) -> str | None:
        if end in boxes:
            return end
        copy = f"{end}@{row_of.get(other, 0)}"  # `other` is never an external network
        return copy if copy in boxes else None

    lines = []
    for li in drawn:
        a, b = key(li["from"], li["to"]), key(li["to"], li["from"])
        if a and b:
            lines.append({"from": a, "to": b, "kind": li["kind"], "label": li["label"]})
    found = list(boxes.values())
    return {
        "width": max((b["x"] + b["w"] for b in found), default=0),
        "height": max((b["y"] + b["h"] for b in found), default=0),
        "boxes": found,
        "lines": lines,
    }


async def graph(ui: Ui) -> Json:
    api = ui.api
    (
        networks,
        found_routers,
        found_ports,
        found_instances,
        balancers,
        found_fips,
    ) = await asyncio.gather(
        project_networks(ui, ui.project_id),
        api.get(NET, "/v2.0/routers", project_id=ui.project_id),
        api.get(
            NET,
            "/v2.0/ports",
            project_id=ui.project_id,
            fields=["id", "network_id", "device_id", "device_owner", "fixed_ips"],
        ),
        api.get(LAB, "/v1/instances", project_id=ui.project_id, fields=["id", "name", "status"]),
        loadbalancers.listing(ui),
        api.get(NET, "/v2.0/floatingips", project_id=ui.project_id),
    )
    subnets: list[Json] = (
        (
            await api.get(
                NET,
                "/v2.0/subnets",
                network_id=[n["id"] for n in networks],
                fields=["id", "network_id", "cidr"],
            )
        )["subnets"]
        if networks
        else []
    )
    listeners: list[Json] = []
    pools: list[Json] = []
    members: dict[str, list[Json]] = {}
    if balancers:
        found_listeners, found_pools = await asyncio.gather(
            api.get(LB, LBAAS + "/listeners", project_id=ui.project_id),
            api.get(LB, LBAAS + "/pools", project_id=ui.project_id),
        )
        listeners, pools = found_listeners["listeners"], found_pools["pools"]
        answers = await asyncio.gather(
            *[api.get(LB, f"{LBAAS}/pools/{p['id']}/members") for p in pools if p["members"]]
        )
        members = {
            p["id"]: answer["members"]
            for p, answer in zip([p for p in pools if p["members"]], answers, strict=True)
        }
    drawn = build(
        networks,
        subnets,
        found_routers["routers"],
        found_ports["ports"],
        found_instances["instances"],
        balancers,
        listeners,
        pools,
        members,
        found_fips["floatingips"],
    )
    return {**drawn, "layout": layout(drawn, shape(ui.request.query_params.get("aspect", "")))}


def shape(aspect: str) -> float:
    """The window's width over its height, as the page sends it; a sensible one if not."""
    try:
        value = float(aspect)
    except ValueError:
        return 1.6
    return min(max(value, 0.2), 5.0) if math.isfinite(value) else 1.6


def routes(d: Dashboard) -> list[BaseRoute]:
    async def topology_page(ui: Ui) -> Response:
        choices, routers, instances = await asyncio.gather(
            launch_choices(ui),
            ui.api.get(NET, "/v2.0/routers", project_id=ui.project_id, fields=["id"]),
            ui.api.get(LAB, "/v1/instances", project_id=ui.project_id, fields=["id"]),
        )
        own = [n for n in choices["usable"] if n["project_id"] == ui.project_id]
        return ui.render(
            "topology.html",
            empty=not (own or routers["routers"] or instances["instances"]),
            externals=[n for n in choices["usable"] if n.get("router:external")],
            **choices,
        )

    return [
        d.page("/project/topology", topology_page),
        d.json("/project/topology.json", graph),
    ]
