"""How it works: the kernel objects behind a router, floating IP, port or load balancer, and
packet traces.

Both come from the lab API's kernel tools (`/lab/v1/inspect/...`,
`/lab/v1/trace`), called with the user's own token: they read the kernel of
this machine's agents and are for administrators, so a member sees why they
are not shown rather than someone else's rules.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web.clients import ApiError
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


def nat_elements(fip: dict[str, Any]) -> list[str]:
    """A floating IP's DNAT and SNAT map elements as sentences (the tutorial's analysis)."""
    nat, data = fip.get("nat") or {}, fip.get("floatingip") or {}
    address, fixed = data.get("floating_ip_address"), data.get("fixed_ip_address")
    lines = []
    for name, value in nat.items():
        if value is None:
            lines.append(f"{name}: no element (nothing mapped in the kernel)")
        elif "dnat" in name:
            lines.append(
                f"{name}: {address} : {value}  (DNAT: inbound to {address} goes to {value})"
            )
        else:
            lines.append(
                f"{name}: {fixed} : {value}  (SNAT: outbound from {fixed} leaves as {value})"
            )
    return lines


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
            summary=nat_elements(how["data"]) if kind == "floatingip" and "data" in how else [],
        )

    async def trace(ui: Ui, form: dict[str, Any]) -> Any:
        """The trace form: {"source", "destination", "protocol", "port"} in, the path hop by hop
        out."""
        body: dict[str, Any] = {
            "from": str(form.get("source", "")),
            "to": str(form.get("destination", "")),
            "protocol": str(form.get("protocol") or "icmp"),
        }
        if str(form.get("port", "")).isdigit():
            body["port"] = int(form["port"])
        try:
            result = await ui.api.post(LAB, "/v1/trace", body)
        except ApiError as error:
            raise ApiError(error.status, explained(error)) from error
        return {**result, "hops": [describe(hop) for hop in result["hops"]]}

    return [d.json_action("/explain/trace", trace), d.page("/explain/{kind}/{id}", how_page)]


def describe(hop: dict[str, Any]) -> dict[str, Any]:
    kind = hop.get("hop", "?")
    details = ", ".join(f"{k} {v}" for k, v in hop.items() if k != "hop" and not k.endswith("_id"))
    return {
        **hop,
        "text": f"{kind}: {details}" if details else kind,
        "verdict": "drop" if kind == "drop" else "pass",
    }
