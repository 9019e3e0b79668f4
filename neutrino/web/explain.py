"""How it works: the kernel objects behind a router, floating IP, port or load balancer, and
packet traces.

Both come from the lab API's kernel tools (`/lab/v1/inspect/...`,
`/lab/v1/trace`), called with the user's own token: they read the kernel of
this machine's agents and are for administrators, so a member sees why they
are not shown rather than someone else's rules.

What the kernel says is shown as a few sections, each a compact table (the
kind's own reading of the answer: `SECTIONS`), rendered the same way for
every kind; raw kernel output (nft tables, conntrack entries) stays folded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web.clients import ApiError
from neutrino.web.networks import NET
from neutrino.web.ui import Dashboard, Ui

LAB = "lab"
INSPECTED = {
    "router": "routers",
    "floatingip": "floatingips",
    "port": "ports",
    "loadbalancer": "loadbalancers",
}
LABELS = {
    "router": "router",
    "floatingip": "floating IP",
    "port": "port",
    "loadbalancer": "load balancer",
}
INTERFACE_COLUMNS = ("Role", "Device", "Addresses", "Subnet", "State")
ROUTE_COLUMNS = ("Destination", "Via", "Device", "Kind")
NAT_COLUMNS = ("Floating IP", "Inbound (DNAT)", "Outbound (SNAT)")
Data = dict[str, Any]


@dataclass
class Section:
    """One table of what the kernel holds; `raw` is the kernel's own words, folded."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    note: str = ""
    raw: str = ""
    empty: str = "None."


@dataclass
class Explained:
    facts: list[tuple[str, Any]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


def explained(error: ApiError) -> str:
    if error.status == 403:
        return "Only administrators may read the kernel's view (the lab's inspect and trace tools)."
    return str(error)


async def inspect(ui: Ui, kind: str, resource_id: str) -> dict[str, Any]:
    """{"data": what the kernel holds} or {"error": why it can't be shown}."""
    try:
        return {"data": await ui.api.get(LAB, f"/v1/inspect/{INSPECTED[kind]}/{resource_id}")}
    except ApiError as error:
        return {"error": explained(error)}


def interface_row(role: str, link: Data | None, subnet: str = "") -> tuple[Any, ...]:
    if link is None:
        return (role, "missing", "", subnet, "")
    addresses = list(link["addresses"])
    # On IPv6, a router's link-local address is its hosts' default route.
    if link.get("link_local") and any(":" in a for a in addresses):
        addresses.append(f"{link['link_local']} (link-local)")
    return (role, link["name"], ", ".join(addresses) or "—", subnet, link["state"])


def nat_row(floating: str, fixed: str | None, snat: str | None) -> tuple[Any, ...]:
    """A floating IP's pair of map elements, as what happens to packets."""
    inbound = f"to {floating} → {fixed}" if fixed else "no element"
    outbound = f"from {fixed or '?'} → {snat}" if snat else "no element"
    return (floating, inbound, outbound)


def connections(entries: list[str]) -> Section:
    protocols = Counter(line.split()[0] for line in entries)
    counted = ", ".join(f"{n} {protocol}" for protocol, n in protocols.most_common())
    return Section(
        "Connections (conntrack)",
        (),
        [],
        note=f"{len(entries)} {'entry' if len(entries) == 1 else 'entries'}"
        + (f": {counted}." if counted else "."),
        raw="\n".join(entries),
    )


def route_kind(route: Data, extra: list[Data]) -> str:
    if any(
        r["destination"] == route["destination"] and r["nexthop"] == route["via"] for r in extra
    ):
        return "extra route"
    if route["destination"] == "default":
        return "default"
    return "connected" if route["protocol"] == "kernel" else str(route["protocol"] or "")


def routes_section(found: list[Data], extra: list[Data]) -> Section:
    return Section(
        "Routes",
        ROUTE_COLUMNS,
        [(r["destination"], r["via"] or "—", r["device"], route_kind(r, extra)) for r in found],
    )


async def subnet_names(ui: Ui, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    subnets = (await ui.api.get(NET, "/v2.0/subnets", id=ids))["subnets"]
    return {s["id"]: f"{s['name']} {s['cidr']}".strip() for s in subnets}


async def router(ui: Ui, data: Data) -> Explained:
    rtr = data["router"]
    gateway = rtr.get("external_gateway_info") or {}
    names = await subnet_names(ui, sorted({s for i in data["interfaces"] for s in i["subnet_ids"]}))
    nat = data["nat"]
    gateway_ips = [ip["ip_address"] for ip in gateway.get("external_fixed_ips", [])]
    if not gateway:
        snat = "No gateway: nothing leaves for the outside."
    elif gateway.get("enable_snat", True):
        snat = (
            "SNAT: other traffic from the internal subnets leaves as "
            f"{', '.join(gateway_ips)} (the gateway's address)."
        )
    else:
        snat = "SNAT is off: traffic leaves with its fixed address."
    sections = [
        Section(
            "Interfaces",
            INTERFACE_COLUMNS,
            [
                interface_row(
                    i["role"],
                    i["link"],
                    ", ".join(names.get(s, s[:8]) for s in i["subnet_ids"]),
                )
                for i in data["interfaces"]
            ],
        ),
        routes_section(data["routes"], rtr.get("routes") or []),
        Section(
            "NAT",
            NAT_COLUMNS,
            [
                nat_row(f["floating_ip_address"], f["fixed_ip_address"], f.get("snat_address"))
                for f in nat["floatingips"]
            ],
            note=snat,
            raw=nat["table"],
            empty="No floating IPs.",
        ),
    ]
    if data["metering"]:
        sections.append(
            Section(
                "Metering",
                ("Label", "Packets", "Bytes"),
                [(m["name"], m["packets"], m["bytes"]) for m in data["metering"]],
            )
        )
    sections.append(connections(data["conntrack"]))
    forwarded = [v for v, key in (("IPv4", "forwarding"), ("IPv6", "ipv6_forwarding")) if data[key]]
    return Explained([("IP forwarding", " and ".join(forwarded) or "off")], sections)


async def floatingip(_ui: Ui, data: Data) -> Explained:
    if not data["associated"]:
        return Explained([("Associated", "no: no router holds it, nothing translates it")], [])
    fip, nat = data["floatingip"], data["nat"]
    dnat, snat = (nat[name] for name in sorted(nat))  # its elements in fip_dnat, fip_snat
    route = data["local_route"]  # what makes the router answer ARP for it and take its packets
    return Explained(
        [("Answered on", f"{route} (a local route)" if route else "no interface: no local route")],
        [
            Section(
                "NAT",
                NAT_COLUMNS,
                [nat_row(fip["floating_ip_address"], dnat, snat)],
            ),
            Section(
                "Interfaces",
                INTERFACE_COLUMNS,
                [interface_row("gateway", data["gateway_interface"])],
            ),
            connections(data["conntrack"]),
        ],
    )


async def port(ui: Ui, data: Data) -> Explained:
    port, side, far = data["port"], data["host_side"], data["far_end"] or {}
    groups = (
        (await ui.api.get(NET, "/v2.0/security-groups", id=port["security_groups"]))[
            "security_groups"
        ]
        if port["security_groups"]
        else []
    )
    addresses = ", ".join(ip["ip_address"] for ip in port["fixed_ips"]) or "—"
    far_role = "instance" if "instance_id" in far else "router"
    firewall = data["firewall"] or {}
    return Explained(
        [
            ("MAC", port["mac_address"]),
            ("Fixed IPs", addresses),
            ("Bridge", side["bridge"]),
            ("Port security", "on" if port["port_security_enabled"] else "off"),
        ],
        [
            Section(
                "Interfaces",
                INTERFACE_COLUMNS,
                [interface_row("host side", side["link"])]
                + [interface_row(far_role, link) for link in far.get("links", [])],
            ),
            Section(
                "Firewall",
                (),
                [],
                note=(
                    f"Chains {', '.join(sorted(firewall))} of security groups "
                    f"{', '.join(g['name'] or g['id'][:8] for g in groups) or '(none)'}."
                    if firewall
                    else "No firewall: port security is off or the port is a service port."
                ),
                raw="\n".join(firewall.values()),
            ),
            Section(
                "Floating IPs",
                ("Floating IP", "Fixed IP"),
                [(f["floating_ip_address"], f["fixed_ip_address"]) for f in data["floatingips"]],
            ),
        ],
    )


async def loadbalancer(_ui: Ui, data: Data) -> Explained:
    process = data["haproxy"] or {}
    raw = "\n".join(t for t in (data["udp_sctp_balancing"], data["udp_sctp_counting"]) if t)
    return Explained(
        [
            ("Listening", ", ".join(data["listening"]) or "nothing"),
            ("haproxy", f"pid {process['pid']}" if process.get("pid") else "not running"),
        ],
        [
            Section("Interfaces", INTERFACE_COLUMNS, [interface_row("VIP", data["vip_interface"])]),
            routes_section(data["routes"], []),
            Section(
                "Listeners",
                ("Listener", "State", "Open", "Total"),
                [
                    (f["listener_id"][:8], f["state"], f["open_connections"], f["connections"])
                    for f in data["frontends"]
                ],
                raw=raw,
            ),
            Section(
                "Members",
                ("Member", "Address", "State", "Last check"),
                [
                    (s["member_id"][:8], s["address"] or "—", s["state"], s["last_check"] or "—")
                    for s in data["servers"]
                ],
            ),
        ],
    )


SECTIONS: dict[str, Callable[[Ui, Data], Awaitable[Explained]]] = {
    "router": router,
    "floatingip": floatingip,
    "port": port,
    "loadbalancer": loadbalancer,
}


def refusal(trace: Data) -> Data | None:
    """The hop that dropped the packet, if it did."""
    return next((hop for hop in trace["hops"] if hop["hop"] == "drop"), None)


def what(trace: Data) -> str:
    """The packet in words: "TCP 80" or "ICMP"."""
    if trace["protocol"] == "tcp":
        return f"TCP {trace['port'] or 80}"
    return str(trace["protocol"]).upper()


def routes(d: Dashboard) -> list[BaseRoute]:
    async def how_page(ui: Ui) -> Response:
        """The "How it works" section of a resource's page, loaded after the page (reading the
        kernel takes a while)."""
        kind = ui.param("kind")
        if kind not in INSPECTED:
            raise ApiError(404, f"Nothing to explain about a {kind}.")
        how = await inspect(ui, kind, ui.param("id"))
        return ui.render(
            "how.html",
            how=how,
            label=LABELS[kind],
            source=ui.request.query_params.get("source", ""),
            explained=await SECTIONS[kind](ui, how["data"]) if "data" in how else None,
        )

    async def trace_page(ui: Ui) -> Response:
        """A packet's path from an instance to an address, with its verdict; the form alone
        until it is filled in."""
        asked = {k: v.strip() for k, v in ui.request.query_params.items()}
        trace, error = None, ""
        if asked.get("source") and asked.get("destination"):
            body: dict[str, Any] = {
                "from": asked["source"],
                "to": asked["destination"],
                "protocol": asked.get("protocol") or "icmp",
            }
            if asked.get("port", "").isdigit():
                body["port"] = int(asked["port"])
            try:
                trace = await ui.api.post(LAB, "/v1/trace", body)
            except ApiError as failed:
                error = explained(failed)
        return ui.render(
            "trace.html",
            asked=asked,
            trace=trace,
            error=error,
            refused=refusal(trace) if trace else None,
            packet=what(trace) if trace else "",
        )

    return [d.page("/explain/trace", trace_page), d.page("/explain/{kind}/{id}", how_page)]
