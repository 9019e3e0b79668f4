"""Load balancers: a wizard (subnet, listener, pool, members, health monitor), a live status tree,
and a floating IP for the VIP.

Octavia accepts a child (listener, pool, member, monitor) only while its load
balancer is ACTIVE, so the wizard creates the load balancer, answers at once
and builds the rest in the background step by step, each after the load
balancer is ACTIVE again; the load balancer's page shows those steps and the
provisioning and operating statuses as they change.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from neutrino.web.clients import Api, ApiError
from neutrino.web.floatingips import LAB
from neutrino.web.networks import NET, project_networks
from neutrino.web.ui import PREFIX, Dashboard, Done, Form, Ui

LB = "load-balancer"
LBAAS = "/v2/lbaas"
ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP")


async def enabled(ui: Ui) -> bool:
    return await ui.api.available(LB, LBAAS + "/loadbalancers")


async def listing(ui: Ui) -> list[dict[str, Any]]:
    if not await enabled(ui):
        return []
    found: list[dict[str, Any]] = (
        await ui.api.get(LB, LBAAS + "/loadbalancers", project_id=ui.project_id)
    )["loadbalancers"]
    return found


@dataclass
class Step:
    name: str
    state: str = "waiting"  # waiting, running, done, failed
    message: str = ""


@dataclass
class Build:
    """The wizard's remaining steps for one load balancer, run in the background."""

    steps: list[Step] = field(default_factory=list)


async def wait_active(api: Api, lb_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        lb = (await api.get(LB, f"{LBAAS}/loadbalancers/{lb_id}"))["loadbalancer"]
        if lb["provisioning_status"] == "ACTIVE":
            return
        if lb["provisioning_status"] == "ERROR":
            raise ApiError(409, "The load balancer went into ERROR.")
        if time.monotonic() > deadline:
            raise ApiError(
                504,
                f"The load balancer is still {lb['provisioning_status']} after {timeout:.0f} s.",
            )
        await asyncio.sleep(0.2)


async def run_build(api: Api, lb_id: str, build: Build, plan: dict[str, Any]) -> None:
    ids: dict[str, str] = {}

    async def create(kind: str, path: str, body: dict[str, Any]) -> str:
        await wait_active(api, lb_id)
        return str((await api.post(LB, f"{LBAAS}/{path}", {kind: body}))[kind]["id"])

    async def listener() -> None:
        ids["listener"] = await create(
            "listener", "listeners", {**plan["listener"], "loadbalancer_id": lb_id}
        )

    async def pool() -> None:
        ids["pool"] = await create(
            "pool", "pools", {**plan["pool"], "listener_id": ids["listener"]}
        )

    async def member(body: dict[str, Any]) -> None:
        await create("member", f"pools/{ids['pool']}/members", body)

    async def monitor() -> None:
        await create("healthmonitor", "healthmonitors", {**plan["monitor"], "pool_id": ids["pool"]})

    actions = [
        listener,
        pool,
        *[lambda b=b: member(b) for b in plan["members"]],
        *([monitor] if plan["monitor"] else []),
    ]
    for step, action in zip(build.steps, actions):
        step.state = "running"
        try:
            await action()
        except ApiError as error:
            step.state, step.message = "failed", str(error)
            return
        step.state = "done"


def plan_of(form: Form, addresses: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The wizard's form as API bodies, and the names of the steps they make."""
    port = form.number("protocol_port", "Listener port")
    member_port = form.number("member_port", "Member port", default=port)
    protocol, algorithm = form.get("protocol", "HTTP"), form.get("lb_algorithm", "ROUND_ROBIN")
    subnet = form.require("subnet_id", "Subnet")
    members = [
        {
            "name": name,
            "address": addresses[name],
            "protocol_port": member_port,
            "subnet_id": subnet,
        }
        for name in form.getlist("member")
        if name in addresses
    ]
    monitor: dict[str, Any] = {}
    if kind := form.get("monitor_type"):
        monitor = {
            "type": kind,
            "delay": form.number("delay", "Delay", 2),
            "timeout": form.number("timeout", "Timeout", 1),
            "max_retries": form.number("max_retries", "Max retries", 2),
        }
        if kind == "HTTP":
            monitor["url_path"] = form.get("url_path") or "/"
    plan = {
        "listener": {
            "name": form.get("listener_name"),
            "protocol": protocol,
            "protocol_port": port,
        },
        "pool": {"name": form.get("pool_name"), "protocol": protocol, "lb_algorithm": algorithm},
        "members": members,
        "monitor": monitor,
    }
    steps = [
        f"listener {protocol}:{port}",
        f"pool ({algorithm})",
        *[f"member {m['name']} {m['address']}:{m['protocol_port']}" for m in members],
        *(["health monitor " + kind] if monitor else []),
    ]
    return plan, steps


async def member_choices(ui: Ui) -> dict[str, str]:
    """Instance name -> its first IPv4 address (a member is picked by instance)."""
    instances = (await ui.api.get(LAB, "/v1/instances", project_id=ui.project_id))["instances"]
    return dict(
        sorted(
            (i["name"] or i["id"], i["addresses"][0].split("/")[0])
            for i in instances
            if i["addresses"]
        )
    )


def routes(d: Dashboard) -> list[BaseRoute]:
    builds: dict[str, Build] = {}
    tasks: set[asyncio.Task[None]] = set()

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
        return ui.render(
            "loadbalancers.html",
            available=True,
            balancers=await listing(ui),
            subnets=subnets,
            members=await member_choices(ui),
            algorithms=ALGORITHMS,
            network_names={n["id"]: n["name"] for n in networks},
        )

    async def create_balancer(ui: Ui, form: Form) -> Done:
        plan, names = plan_of(form, await member_choices(ui))
        body = {"name": form.get("name"), "vip_subnet_id": form.require("subnet_id", "Subnet")}
        lb = (await ui.api.post(LB, LBAAS + "/loadbalancers", {"loadbalancer": body}))[
            "loadbalancer"
        ]
        build = builds[lb["id"]] = Build([Step(n) for n in names])
        task = asyncio.create_task(run_build(ui.api, lb["id"], build, plan))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
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
        build = builds.get(lb_id)
        steps = [vars(s) for s in build.steps] if build else []
        return {"loadbalancer": lb, "tree": tree, "steps": steps, "stats": stats}

    async def balancer_page(ui: Ui) -> Response:
        state = await status_tree(ui)
        lb = state["loadbalancer"]
        fips = (await ui.api.get(NET, "/v2.0/floatingips", project_id=ui.project_id))["floatingips"]
        pools = (await ui.api.get(NET, "/v2.0/networks", **{"router:external": "true"}))["networks"]
        return ui.render(
            "loadbalancer.html",
            lb=lb,
            state=state,
            pools=pools,
            vip_fips=[f for f in fips if f["port_id"] == lb["vip_port_id"]],
            free_fips=[f for f in fips if not f["port_id"]],
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
        builds.pop(ui.param("id"), None)
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
