"""Load balancers: a wizard (subnet, listener, pool, members, health monitor), a live status tree,
and a floating IP for the VIP.

The wizard makes one request, Octavia's fully populated create: the API checks
the whole tree with its own rules before it creates anything, and creates all
of it or nothing, so a refused form leaves no half-built load balancer behind.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web.clients import ApiError
from neutrino.web.floatingips import floatingips_of
from neutrino.web.networks import LAB, NET, project_networks
from neutrino.web.probes import members_hint, outside_hint
from neutrino.web.tables import Column, Listing, listed
from neutrino.web.ui import PREFIX, Dashboard, Done, Form, Ui, unambiguous

LB = "load-balancer"
LBAAS = "/v2/lbaas"
PROTOCOLS = ("HTTP", "TCP", "UDP", "SCTP")
ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP")
MONITORS = ("HTTP", "TCP", "PING", "UDP-CONNECT", "SCTP")
PERSISTENCE = ("SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE")
PORTS = range(1, 65536)
WEIGHTS = range(257)
BALANCER_COLUMNS = [
    Column("Name", "name"),
    Column("VIP", "vip_address"),
    Column("Provisioning", "provisioning_status"),
    Column("Operating", "operating_status"),
]


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


async def member_choices(ui: Ui, project_id: str) -> dict[str, dict[str, str]]:
    """The project's instances' IPv4 addresses, each a choice of member keyed by instance id and
    address (names need not be unique): value -> name, address, subnet_id, label."""
    instances = (await ui.api.get(LAB, "/v1/instances", project_id=project_id))["instances"]
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


async def parts_of(ui: Ui, lb: dict[str, Any]) -> dict[str, Any]:
    """The load balancer's listeners and pools, each pool with its members and health
    monitor, as the page edits them."""

    async def get(path: str, member: str) -> Any:
        return (await ui.api.get(LB, LBAAS + path))[member]

    listeners, pools = await asyncio.gather(
        asyncio.gather(*[get(f"/listeners/{ref['id']}", "listener") for ref in lb["listeners"]]),
        asyncio.gather(*[get(f"/pools/{ref['id']}", "pool") for ref in lb["pools"]]),
    )
    members, monitors = await asyncio.gather(
        asyncio.gather(*[get(f"/pools/{pool['id']}/members", "members") for pool in pools]),
        asyncio.gather(
            *[
                get(f"/healthmonitors/{pool['healthmonitor_id']}", "healthmonitor")
                for pool in pools
                if pool["healthmonitor_id"]
            ]
        ),
    )
    by_pool = {monitor["pools"][0]["id"]: monitor for monitor in monitors}
    return {
        "listeners": sorted(listeners, key=lambda item: item["protocol_port"]),
        "pools": [
            {
                **pool,
                # The edit form's fields of the session persistence.
                "persistence_type": (pool["session_persistence"] or {}).get("type", ""),
                "cookie_name": (pool["session_persistence"] or {}).get("cookie_name") or "",
                "member_list": found,
                "monitor": by_pool.get(pool["id"]),
            }
            for pool, found in zip(pools, members, strict=True)
        ],
    }


def persistence(form: Form, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """The pool's session persistence the form asks for; the current one where it would not
    change (its other attributes kept)."""
    kind = form.get("persistence_type")
    if not kind:
        return None
    wanted = {"type": kind, "cookie_name": None}
    if kind == "APP_COOKIE":
        wanted["cookie_name"] = form.require("cookie_name", "Cookie name")
    if current and {key: current.get(key) for key in wanted} == wanted:
        return current
    return wanted


def routes(d: Dashboard) -> list[BaseRoute]:
    async def balancers_page(ui: Ui) -> Response:
        if not await enabled(ui):
            return ui.render("loadbalancers.html", available=False, subnets=[], members={})
        usable = await project_networks(ui, ui.project_id)
        networks = [n for n in usable if not n.get("router:external")]
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
            table=await listed(
                ui,
                "loadbalancers",
                Listing(
                    LB,
                    LBAAS + "/loadbalancers",
                    "loadbalancers",
                    {"project_id": ui.project_id},
                    address_filter={"vip_address": "{}"},
                ),
                BALANCER_COLUMNS,
                deletable="loadbalancers",
                empty="No load balancers.",
                label="name, VIP address",
            ),
            subnets=unambiguous(
                {s["id"]: f"{names[s['network_id']]}: {s['cidr']}" for s in subnets}
            ),
            members=await member_choices(ui, ui.project_id),
            protocols=PROTOCOLS,
            algorithms=ALGORITHMS,
            monitors=MONITORS,
        )

    async def create_balancer(ui: Ui, form: Form) -> Done:
        body = {"loadbalancer": tree_of(form, await member_choices(ui, ui.project_id))}
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
        # The load balancer's project's floating IPs, whoever looks (an administrator too).
        vip_fips, free_fips, pools, parts, members = await asyncio.gather(
            floatingips_of(ui, lb["vip_port_id"]),
            ui.api.get(NET, "/v2.0/floatingips", project_id=lb["project_id"]),
            ui.api.get(NET, "/v2.0/networks", **{"router:external": "true"}),
            parts_of(ui, lb),
            member_choices(ui, lb["project_id"]),
        )
        return ui.render(
            "loadbalancer.html",
            lb=lb,
            state=state,
            pools=pools["networks"],
            vip_fips=vip_fips,
            free_fips=[f for f in free_fips["floatingips"] if not f["port_id"]],
            listeners=parts["listeners"],
            lb_pools=parts["pools"],
            pool_names={pool["id"]: pool["name"] or pool["id"][:8] for pool in parts["pools"]},
            members=members,
            protocols=PROTOCOLS,
            algorithms=ALGORITHMS,
            persistence_types=PERSISTENCE,
            monitors=MONITORS,
            outside_hint=await outside_hint(ui, lb["vip_port_id"]) if vip_fips else None,
            members_hint=await members_hint(ui, state["tree"]),
        )

    async def associate_vip(ui: Ui, form: Form) -> Done:
        lb = (await ui.api.get(LB, f"{LBAAS}/loadbalancers/{ui.param('id')}"))["loadbalancer"]
        fip_id = form.get("floatingip_id")
        if not fip_id:
            body = {"floating_network_id": form.require("pool", "Pool")}
            if lb["project_id"] != ui.project_id:  # an administrator's, for the VIP's project
                body["project_id"] = lb["project_id"]
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

    def at(ui: Ui) -> str:
        return f"{PREFIX}/project/load-balancers/{ui.param('id')}"

    async def update_balancer(ui: Ui, form: Form) -> Done:
        wanted = {
            "name": form.get("name"),
            "description": form.get("description"),
            "admin_state_up": form.flag("admin_state_up"),
        }
        path = f"{LBAAS}/loadbalancers/{ui.param('id')}"
        return Done(at(ui), await ui.edit(LB, path, "loadbalancer", wanted, "load balancer"))

    def listener_values(form: Form) -> dict[str, Any]:
        return {
            "name": form.get("name"),
            "connection_limit": -1  # unlimited
            if form.get("connection_limit") in ("", "-1")
            else form.number("connection_limit", "Connection limit"),
            "default_pool_id": form.get("default_pool_id") or None,
        }

    async def add_listener(ui: Ui, form: Form) -> Done:
        body = {
            **listener_values(form),
            "loadbalancer_id": ui.param("id"),
            "protocol": form.require("protocol", "Protocol"),
            "protocol_port": form.number("protocol_port", "Port", between=PORTS),
        }
        await ui.api.post(LB, LBAAS + "/listeners", {"listener": body})
        return Done(at(ui), "Adding the listener.")

    async def update_listener(ui: Ui, form: Form) -> Done:
        wanted = {**listener_values(form), "admin_state_up": form.flag("admin_state_up")}
        path = f"{LBAAS}/listeners/{form.require('id', 'Listener')}"
        return Done(at(ui), await ui.edit(LB, path, "listener", wanted))

    async def delete_listener(ui: Ui, form: Form) -> Done:
        await ui.api.delete(LB, f"{LBAAS}/listeners/{form.require('id', 'Listener')}")
        return Done(at(ui), "Deleting the listener.")

    async def add_pool(ui: Ui, form: Form) -> Done:
        body = {
            "name": form.get("name"),
            "loadbalancer_id": ui.param("id"),
            "protocol": form.require("protocol", "Protocol"),
            "lb_algorithm": form.require("lb_algorithm", "Algorithm"),
        }
        if listener := form.get("listener_id"):  # the pool becomes its default pool
            body["listener_id"] = listener
        await ui.api.post(LB, LBAAS + "/pools", {"pool": body})
        return Done(at(ui), "Adding the pool.")

    async def delete_pool(ui: Ui, form: Form) -> Done:
        await ui.api.delete(LB, f"{LBAAS}/pools/{form.require('id', 'Pool')}")
        return Done(at(ui), "Deleting the pool, its members and its health monitor.")

    async def update_pool(ui: Ui, form: Form) -> Done:
        path = f"{LBAAS}/pools/{form.require('id', 'Pool')}"
        pool = (await ui.api.get(LB, path))["pool"]
        wanted = {
            "name": form.get("name"),
            "lb_algorithm": form.require("lb_algorithm", "Algorithm"),
            "session_persistence": persistence(form, pool["session_persistence"]),
            "admin_state_up": form.flag("admin_state_up"),
        }
        return Done(at(ui), await ui.edit(LB, path, "pool", wanted))

    async def add_member(ui: Ui, form: Form) -> Done:
        lb = (await ui.api.get(LB, f"{LBAAS}/loadbalancers/{ui.param('id')}"))["loadbalancer"]
        choices = await member_choices(ui, lb["project_id"])
        chosen = choices.get(form.require("member", "Member"))
        if chosen is None:
            raise ApiError(400, "That member is no longer an instance of this project.")
        body = {
            "name": chosen["name"],
            "address": chosen["address"],
            "subnet_id": chosen["subnet_id"],
            "protocol_port": form.number("protocol_port", "Member port", between=PORTS),
            "weight": form.number("weight", "Weight", default=1, between=WEIGHTS),
        }
        pool_id = form.require("pool_id", "Pool")
        await ui.api.post(LB, f"{LBAAS}/pools/{pool_id}/members", {"member": body})
        return Done(at(ui), f"Adding member {chosen['label']}.")

    def member_path(form: Form) -> str:
        pool_id, member_id = form.require("pool_id", "Pool"), form.require("id", "Member")
        return f"{LBAAS}/pools/{pool_id}/members/{member_id}"

    async def update_member(ui: Ui, form: Form) -> Done:
        wanted = {
            "weight": form.number("weight", "Weight", between=WEIGHTS),
            "admin_state_up": form.flag("admin_state_up"),
        }
        return Done(at(ui), await ui.edit(LB, member_path(form), "member", wanted))

    async def delete_member(ui: Ui, form: Form) -> Done:
        await ui.api.delete(LB, member_path(form))
        return Done(at(ui), "Removing the member.")

    def monitor_values(form: Form) -> dict[str, Any]:
        values: dict[str, Any] = {
            "delay": form.number("delay", "Delay"),
            "timeout": form.number("timeout", "Timeout"),
            "max_retries": form.number("max_retries", "Max retries", between=range(1, 11)),
        }
        if form.get("url_path"):
            values["url_path"] = form.get("url_path")
        return values

    async def add_monitor(ui: Ui, form: Form) -> Done:
        body = {
            **monitor_values(form),
            "pool_id": form.require("pool_id", "Pool"),
            "type": form.require("type", "Type"),
        }
        await ui.api.post(LB, LBAAS + "/healthmonitors", {"healthmonitor": body})
        return Done(at(ui), "Adding the health monitor.")

    async def update_monitor(ui: Ui, form: Form) -> Done:
        path = f"{LBAAS}/healthmonitors/{form.require('id', 'Health monitor')}"
        return Done(
            at(ui), await ui.edit(LB, path, "healthmonitor", monitor_values(form), "health monitor")
        )

    async def delete_monitor(ui: Ui, form: Form) -> Done:
        await ui.api.delete(LB, f"{LBAAS}/healthmonitors/{form.require('id', 'Health monitor')}")
        return Done(at(ui), "Deleting the health monitor.")

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
        d.action(page + "/edit", balancer_page, update_balancer, "edit-lb"),
        d.action(page + "/listeners", balancer_page, add_listener, "add-listener"),
        d.action(page + "/listeners/edit", balancer_page, update_listener, "edit-listener"),
        d.action(page + "/listeners/delete", balancer_page, delete_listener, "listeners"),
        d.action(page + "/pools", balancer_page, add_pool, "add-pool"),
        d.action(page + "/pools/edit", balancer_page, update_pool, "edit-pool"),
        d.action(page + "/pools/delete", balancer_page, delete_pool, "edit-pool"),
        d.action(page + "/members", balancer_page, add_member, "add-member"),
        d.action(page + "/members/edit", balancer_page, update_member, "edit-member"),
        d.action(page + "/members/delete", balancer_page, delete_member, "edit-member"),
        d.action(page + "/healthmonitor", balancer_page, add_monitor, "add-monitor"),
        d.action(page + "/healthmonitor/edit", balancer_page, update_monitor, "edit-monitor"),
        d.action(page + "/healthmonitor/delete", balancer_page, delete_monitor, "edit-monitor"),
    ]
