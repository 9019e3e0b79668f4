"""Load balancers: a wizard (subnet, listener, pool, members, health monitor), a live status tree,
and a floating IP for the VIP.

The wizard makes one request, Octavia's fully populated create: the API checks
the whole tree with its own rules before it creates anything, and creates all
of it or nothing, so a refused form leaves no half-built load balancer behind.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web.clients import ApiError
from neutrino.web.networks import LAB, NET, project_networks
from neutrino.web.probes import members_hint, outside_hint
from neutrino.web.ui import PREFIX, Dashboard, Done, Form, Ui, unambiguous

LB = "load-balancer"
LBAAS = "/v2/lbaas"
PROTOCOLS = ("HTTP", "TCP", "UDP", "SCTP")
ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP")
MONITORS = ("HTTP", "TCP", "PING", "UDP-CONNECT", "SCTP")
PORTS = range(1, 65536)


async def enabled(ui: Ui) -> bool:
    return await ui.api.available(LB, LBAAS + "/loadbalancers")


async def listing(ui: Ui) -> list[dict[str, Any]]:
    if not await enabled(ui):
        return []
    found: list[dict[str, Any]] = (
        await ui.api.get(LB, LBAAS + "/loadbalancers", project_id=ui.project_id)
    )["loadbalancers"]
    return found


def tree_of(form: Form, members: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The wizard's form as one fully populated load balancer."""
    port = form.number("protocol_port", "Listener port", between=PORTS)
    member_port = form.number("member_port", "Member port", default=port, between=PORTS)
    protocol = form.get("protocol", "HTTP")
    chosen = form.getlist("member")
    if unknown := [value for value in chosen if value not in members]:
        raise ApiError(400, f"The member {unknown[0]} is no longer an instance of this project.")
    pool: dict[str, Any] = {
        "name": form.get("pool_name"),
        "protocol": protocol,
        "lb_algorithm": form.get("lb_algorithm", "ROUND_ROBIN"),
        "members": [
            {
                "name": members[value]["name"],
                "address": members[value]["address"],
                "subnet_id": members[value]["subnet_id"],
                "protocol_port": member_port,
            }
            for value in chosen
        ],
    }
    if kind := form.get("monitor_type"):
        pool["healthmonitor"] = {
            "type": kind,
            "delay": form.number("delay", "Delay", 2),
            "timeout": form.number("timeout", "Timeout", 1),
            "max_retries": form.number("max_retries", "Max retries", 2),
        }
        if kind == "HTTP":
            pool["healthmonitor"]["url_path"] = form.get("url_path") or "/"
    listener = {
        "name": form.get("listener_name"),
        "protocol": protocol,
        "protocol_port": port,
        "default_pool": pool,
    }
    return {
        "name": form.get("name"),
        "vip_subnet_id": form.require("subnet_id", "Subnet"),
        "listeners": [listener],
    }


async def member_choices(ui: Ui) -> dict[str, dict[str, str]]:
    """The project's instances' IPv4 addresses, each a choice of member keyed by instance id and
    address (names need not be unique): value -> name, address, subnet_id, label."""
    instances = (await ui.api.get(LAB, "/v1/instances", project_id=ui.project_id))["instances"]
    names = {i["id"]: i["name"] or i["id"][:8] for i in instances}
    port_ids = [port for i in instances for port in i["port_ids"]]
    ports = (
        (await ui.api.get(NET, "/v2.0/ports", id=port_ids, fields=["device_id", "fixed_ips"]))[
            "ports"
        ]
        if port_ids
        else []
    )
    choices = {
        f"{port['device_id']}_{ip['ip_address']}": {
            "name": names[port["device_id"]],
            "address": ip["ip_address"],
            "subnet_id": ip["subnet_id"],
            "label": f"{names[port['device_id']]} ({ip['ip_address']})",
        }
        for port in ports
        if port["device_id"] in names
        for ip in port["fixed_ips"]
        if ":" not in ip["ip_address"]
    }
    return dict(sorted(choices.items(), key=lambda choice: choice[1]["label"]))


def routes(d: Dashboard) -> list[BaseRoute]:
    async def balancers_page(ui: Ui) -> Response:
        if not await enabled(ui):
            return ui.render(
                "loadbalancers.html", available=False, balancers=[], subnets=[], members={}
            )
        networks = [n for n in await project_networks(ui) if not n.get("router:external")]
        subnets = (
            (await ui.api.get(NET, "/v2.0/subnets", network_id=[n["id"] for n in networks]))[
                "subnets"
            ]
            if networks
            else []
        )
        names = {n["id"]: n["name"] for n in networks}
        return ui.render(
            "loadbalancers.html",
            available=True,
            balancers=await listing(ui),
            subnets=unambiguous(
                {s["id"]: f"{names[s['network_id']]}: {s['cidr']}" for s in subnets}
            ),
            members=await member_choices(ui),
            protocols=PROTOCOLS,
            algorithms=ALGORITHMS,
            monitors=MONITORS,
        )

    async def create_balancer(ui: Ui, form: Form) -> Done:
        body = {"loadbalancer": tree_of(form, await member_choices(ui))}
        lb = (await ui.api.post(LB, LBAAS + "/loadbalancers", body))["loadbalancer"]
        return Done(
            f"{PREFIX}/project/load-balancers/{lb['id']}",
            f"Provisioning load balancer {lb['name']}.",
        )

    async def status_tree(ui: Ui) -> dict[str, Any]:
        lb_id = ui.param("id")
        lb = (await ui.api.get(LB, f"{LBAAS}/loadbalancers/{lb_id}"))["loadbalancer"]
        tree = (await ui.api.get(LB, f"{LBAAS}/loadbalancers/{lb_id}/status"))["statuses"][
            "loadbalancer"
        ]
        stats = (await ui.api.get(LB, f"{LBAAS}/loadbalancers/{lb_id}/stats"))["stats"]
        return {"loadbalancer": lb, "tree": tree, "stats": stats}

    async def balancer_page(ui: Ui) -> Response:
        state = await status_tree(ui)
        lb = state["loadbalancer"]
        fips = (await ui.api.get(NET, "/v2.0/floatingips", project_id=ui.project_id))["floatingips"]
        pools = (await ui.api.get(NET, "/v2.0/networks", **{"router:external": "true"}))["networks"]
        vip_fips = [f for f in fips if f["port_id"] == lb["vip_port_id"]]
        return ui.render(
            "loadbalancer.html",
            lb=lb,
            state=state,
            pools=pools,
            vip_fips=vip_fips,
            free_fips=[f for f in fips if not f["port_id"]],
            outside_hint=await outside_hint(ui, lb["vip_port_id"]) if vip_fips else None,
            members_hint=await members_hint(ui, state["tree"]),
        )

    async def associate_vip(ui: Ui, form: Form) -> Done:
        lb = (await ui.api.get(LB, f"{LBAAS}/loadbalancers/{ui.param('id')}"))["loadbalancer"]
        fip_id = form.get("floatingip_id")
        if not fip_id:
            body = {"floating_network_id": form.require("pool", "Pool")}
            fip_id = (await ui.api.post(NET, "/v2.0/floatingips", {"floatingip": body}))[
                "floatingip"
            ]["id"]
        fip = (
            await ui.api.put(
                NET, f"/v2.0/floatingips/{fip_id}", {"floatingip": {"port_id": lb["vip_port_id"]}}
            )
        )["floatingip"]
        return Done(
            f"{PREFIX}/project/load-balancers/{lb['id']}",
            f"Associated {fip['floating_ip_address']} with the VIP {lb['vip_address']}.",
        )

    async def delete_balancer(ui: Ui, _form: Form) -> Done:
        await ui.api.request(
            "DELETE", LB, f"{LBAAS}/loadbalancers/{ui.param('id')}", params={"cascade": "true"}
        )
        return Done(f"{PREFIX}/project/load-balancers", "Deleting the load balancer.")

    page = "/project/load-balancers/{id}"
    return [
        d.page("/project/load-balancers", balancers_page),
        d.action("/project/load-balancers", balancers_page, create_balancer, "create-lb"),
        d.page(page, balancer_page),
        d.json(page + "/status.json", status_tree),
        d.action(page + "/floating-ip", balancer_page, associate_vip, "vip-fip"),
        d.action(page + "/delete", balancer_page, delete_balancer, "delete-lb"),
    ]
