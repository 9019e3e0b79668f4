"""Dashboard benchmark: page times with 1,000 ports, topology drawing time in Chromium. Prints JSON.

    .venv/bin/python -m bench.dashboard [--rounds 20]

A fresh `neutrino serve --no-agent` gets 50 networks (one external), 10
routers with 5 interfaces each, 200 lab instances (one port each), floating
IPs, and more ports up to 1,000. Each dashboard page is fetched `rounds`
times over loopback by a signed-in browser session (p50/p95/max, ms);
then headless Chromium opens the Network Topology page and reports how
long the drawing of ~260 nodes took (the script's own measure, and from
navigation to the drawing being on screen).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.api import Server, percentile

NETWORKS, ROUTERS, INSTANCES, PORTS = 50, 10, 200, 1000
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def populate(server: Server) -> dict[str, str]:
    """The topology; returns one id of each kind for the detail pages."""
    headers = {"X-Auth-Token": server.token}
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as http:

        def create(path: str, member: str, **body: Any) -> dict[str, Any]:
            response = http.post(path, json={member: body})
            if not response.is_success:
                raise RuntimeError(f"POST {path} {body}: {response.text}")
            created: dict[str, Any] = response.json()[member]
            return created

        net = "/networking/v2.0"
        project = next(
            p
            for p in http.get("/identity/v3/auth/projects").json()["projects"]
            if p["name"] == "admin"
        )
        unlimited = {kind: -1 for kind in ("network", "subnet", "port", "router", "floatingip")}
        http.put(f"{net}/quotas/{project['id']}", json={"quota": unlimited}).raise_for_status()
        ext = create(
            f"{net}/networks",
            "network",
            name="ext_net",
            **{
                "router:external": True,
                "provider:network_type": "flat",
                "provider:physical_network": "default",
            },
        )
        create(f"{net}/subnets", "subnet", network_id=ext["id"], ip_version=4, cidr="10.10.0.0/16")
        networks, subnets = [], []
        for i in range(NETWORKS - 1):
            network = create(f"{net}/networks", "network", name=f"net-{i:02d}")
            networks.append(network)
            subnets.append(
                create(
                    f"{net}/subnets",
                    "subnet",
                    network_id=network["id"],
                    ip_version=4,
                    cidr=f"172.16.{i}.0/24",
                )
            )
        routers = []
        for r in range(ROUTERS):
            router = create(
                f"{net}/routers",
                "router",
                name=f"router-{r}",
                external_gateway_info={"network_id": ext["id"]},
            )
            routers.append(router)
            for subnet in subnets[r * 5 : (r + 1) * 5]:
                http.put(
                    f"{net}/routers/{router['id']}/add_router_interface",
                    json={"subnet_id": subnet["id"]},
                ).raise_for_status()
        instances = [
            create(
                "/lab/v1/instances",
                "instance",
                name=f"vm-{i:03d}",
                networks=[{"network_id": networks[i % len(networks)]["id"]}],
            )
            for i in range(INSTANCES)
        ]
        fips = [
            create(
                f"{net}/floatingips",
                "floatingip",
                floating_network_id=ext["id"],
                port_id=instances[i]["port_ids"][0],
            )
            for i in range(20)
        ]
        count = len(http.get(f"{net}/ports", params={"fields": "id"}).json()["ports"])
        for i in range(PORTS - count):
            create(
                f"{net}/ports",
                "port",
                network_id=networks[i % len(networks)]["id"],
                name=f"extra-{i}",
            )
        ports = http.get(f"{net}/ports", params={"fields": "id"}).json()["ports"]
        return {
            "network": networks[0]["id"],
            "router": routers[0]["id"],
            "instance": instances[0]["id"],
            "floatingip": fips[0]["id"],
            "port": ports[0]["id"],
            "ports": str(len(ports)),
        }


def sign_in(server: Server, password: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url + "/dashboard", timeout=60)
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    done = client.post(
        "/login",
        data={
            "csrf_token": csrf,
            "username": "admin",
            "password": password,
            "project": "admin",
            "next": "/dashboard/",
        },
    )
    assert done.status_code == 303, done.text
    return client


def page_times(
    client: httpx.Client, ids: dict[str, str], rounds: int
) -> dict[str, dict[str, float]]:
    pages = [
        "/project/topology",
        "/project/topology.json",
        "/project/networks",
        "/admin/networks",
        f"/project/networks/{ids['network']}",
        f"/project/ports/{ids['port']}",
        "/project/routers",
        f"/project/routers/{ids['router']}",
        "/project/floating-ips",
        f"/project/floating-ips/{ids['floatingip']}",
        "/project/security-groups",
        "/project/instances",
        f"/project/instances/{ids['instance']}",
        "/project/load-balancers",
        "/admin/resources",
        "/admin/quotas",
        "/admin/identity",
        "/admin/agents",
    ]
    results = {}
    for path in pages:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        name = re.sub(r"[0-9a-f-]{36}", "{id}", path)
        results[name] = {
            "p50_ms": round(percentile(times, 50), 1),
            "p95_ms": round(percentile(times, 95), 1),
            "max_ms": round(max(times), 1),
            "bytes": len(response.content),
        }
    return results


def topology_in_chromium(
    server: Server, client: httpx.Client, screenshot: Path | None
) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    cookies = [
        {"name": c.name, "value": c.value or "", "url": server.url + "/dashboard/"}
        for c in client.cookies.jar
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.add_cookies(cookies)  # type: ignore[arg-type]
        page = context.new_page()
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            page.goto(server.url + "/dashboard/project/topology")
            page.wait_for_selector(".topology[data-nodes]")
            runs.append(
                {
                    "navigation_to_drawn_ms": round((time.perf_counter() - started) * 1000, 1),
                    "draw_ms": float(page.get_attribute(".topology", "data-render-ms") or 0),
                    "nodes": int(page.get_attribute(".topology", "data-nodes") or 0),
                }
            )
        if screenshot:
            page.screenshot(path=str(screenshot))
        browser.close()
    return {
        "nodes": runs[-1]["nodes"],
        "draw_ms_median": sorted(r["draw_ms"] for r in runs)[2],
        "navigation_to_drawn_ms_median": sorted(r["navigation_to_drawn_ms"] for r in runs)[2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--screenshot", type=Path, help="save the drawn topology here (PNG)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        server = Server(state, None, ("--no-agent", "--physnet", "default"))
        try:
            ids = populate(server)
            clouds = yaml.safe_load((state / "clouds.yaml").read_text())["clouds"]
            password = clouds["neutrino-admin"]["auth"]["password"]
            client = sign_in(server, password)
            result = {
                "ports": int(ids["ports"]),
                "networks": NETWORKS,
                "routers": ROUTERS,
                "instances": INSTANCES,
                "pages": page_times(client, ids, args.rounds),
                "topology_chromium": topology_in_chromium(server, client, args.screenshot),
            }
            client.close()
        finally:
            server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
