"""API benchmark: starts a fresh `neutrino serve` and prints one JSON document.

    .venv/bin/python bench/api.py [--database-url URL] [--ports 10000]
    .venv/bin/python bench/api.py --cold-starts 5    # only cold starts, 5 of each kind
    .venv/bin/python bench/api.py --lists 50000 [--database-url URL]   # only the lists
    .venv/bin/python bench/api.py --bulk 1000 [--database-url URL]     # only bulk creates
    .venv/bin/python bench/api.py --reports 10000 [--database-url URL] # only an agent's reports

Measures cold start on SQLite (from the process's start to /healthz answering, wall and CPU, on
a new database and on the one it made, with the load average at each start; with --cold-starts,
also with the embedded agent when run as root), idle resident memory, port create throughput
and latency at concurrency 1 and 8 (and at 8 on a /20 holding 3,000 ports,
alternating with the nearly empty /16), network create throughput, list
latency with many ports, all in one answer (`fields=id`, in full, and a `limit=100`
page) and how far each whole list raises the server's memory, floating IP
create and associate throughput at concurrency 8, and router add-interface
latency. Each timed series also reports the server's CPU per call
(`server_cpu_ms`), which a busy machine changes far less than latency.

With --lists N, only the lists, each in one answer, with N ports, floating IPs and
networks: `/ports?fields=id`, `/ports`, `/floatingips?fields=id` and `/networks`, on
SQLite and, given --database-url, on PostgreSQL beside it (filled at once, measured one
after the other), each with the server's CPU per call, how far the list raises its
memory and the load average.

With --members N, only Octavia's list of one pool's N members (`/pools/{id}/members` in full
and with `fields=id`), in one answer, by a server started after the fill: how far each raises
its memory, its latency, the server's CPU per call and the load average; on SQLite, or on
--database-url. No agent runs: the
benchmark reports the load balancer running, as an agent would, to change it.

With --bulk N [--rounds R], only bulk creates of N (one request each): ports on a /16, floating
IPs on a /16 external subnet, unassociated and associated to those ports through a router, each
beside N single creates of the same; then R rounds of N ports and N floating IPs associated to
them, to see whether a bulk create slows down as the router fills. Items per second and the
server's CPU per item, with the load average; on SQLite and, given --database-url, on
PostgreSQL, one after the other.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Self

import httpx
import yaml

import neutrino
from neutrino.agent.instance import exec_in_instance

BIN = Path(sys.executable).parent


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def latencies(seconds: list[float], percents: tuple[int, ...] = (50, 99)) -> dict[str, float]:
    """Percentiles and the maximum of `seconds`, in milliseconds, and how many there were."""
    found = {f"p{pct}_ms": round(percentile(seconds, pct) * 1000, 2) for pct in percents}
    return {**found, "max_ms": round(max(seconds) * 1000, 2), "runs": len(seconds)}


def wait_for_address(netns: str, address: str, seconds: float = 20) -> None:
    """Until the instance in `netns` holds `address` (by DHCP, or SLAAC), usable: an IPv6 one
    no longer tentative (its duplicate address detection done)."""
    deadline = time.monotonic() + seconds
    while not any(
        f" {address}/" in line and "tentative" not in line
        for line in exec_in_instance(netns, ["ip", "-o", "addr"])[1].splitlines()
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{netns} never got {address}")
        time.sleep(0.02)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    """A fresh `neutrino serve` (without an agent unless `extra` says otherwise), logged in as
    admin."""

    host = ""  # the agent's, when it runs one
    host_netns: str | None = None  # where that agent's host is

    def __init__(
        self, state_dir: Path, database_url: str | None, extra: tuple[str, ...] = ("--no-agent",)
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state_dir = state_dir
        args = [
            str(BIN / "neutrino"),
            "serve",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--state-dir",
            str(state_dir),
            "--log-level",
            "warning",
            *extra,
        ]
        if database_url:
            args += ["--database-url", database_url]
        started = time.perf_counter()
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "NEUTRINO_ADMIN_PASSWORD": "bench"},
        )
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.01)
            if time.perf_counter() - started > 60:
                self.process.kill()  # not left behind, serving nobody
                raise RuntimeError("server did not start")
        self.cold_start_s = time.perf_counter() - started
        self.cold_start_cpu_s = self.cpu_seconds()
        clouds = yaml.safe_load((state_dir / "clouds.yaml").read_text())["clouds"]
        self.token = self.login(clouds["neutrino-admin"]["auth"])

    def login(self, auth: dict[str, str]) -> str:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": auth["username"],
                            "domain": {"name": "Default"},
                            "password": auth["password"],
                        }
                    },
                },
                "scope": {"project": {"name": auth["project_name"], "domain": {"name": "Default"}}},
            }
        }
        return httpx.post(self.url + "/identity/v3/auth/tokens", json=body).headers[
            "X-Subject-Token"
        ]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + "/networking/v2.0", headers={"X-Auth-Token": self.token}, timeout=60
        )

    def cpu_seconds(self) -> float:
        """CPU the server has used so far (user and system): unlike latency, it hardly changes
        with what else the machine is doing."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


Call = tuple[str, str, dict[str, Any]]  # method, path, JSON body


class Api:
    """Plain HTTP calls with a token, for benchmarks that drive the whole service."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return next(iter(response.json().values()))

    def wait(self, path: str, field: str, value: str) -> dict[str, Any]:
        """Poll the resource at `path` until `field` is `value`."""
        while (item := next(iter(self.http.get(path).json().values())))[field] != value:
            time.sleep(0.005)
        return item


@contextmanager
def dataplane_server(tag: str, host: str = "bench") -> Iterator[tuple[Server, Path]]:
    """A fresh server with its embedded agent under a unique namespace prefix, and a scratch
    directory; afterwards the server stops and everything its agent made is removed."""
    from neutrino.agent.reconciler import Agent
    from neutrino.plan import HostConfig

    prefix = f"{tag}{secrets.token_hex(3)}-"
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        server = Server(state, None, ("--host", host, "--netns-prefix", prefix))
        server.host, server.host_netns = host, HostConfig.isolated(host, prefix=prefix).netns
        try:
            yield server, Path(tmp)
        finally:
            server.stop()
            Agent(HostConfig.isolated(host, prefix=prefix), state / "agent").teardown()


def cold_start(agent: bool = False) -> dict[str, dict[str, float]]:
    """`neutrino serve` from its process's start to /healthz answering, on a new SQLite database
    and again on the one it made: wall and CPU seconds, and the load average as it started. With
    `agent`, its embedded agent runs, under a namespace prefix of its own removed afterwards."""
    # A start reads neutrino's compiled modules, as every start after the first does; without
    # them (a new checkout under PYTHONDONTWRITEBYTECODE) each start would compile them anew.
    compileall.compile_dir(Path(neutrino.__file__).parent, quiet=1)
    prefix = f"cs{secrets.token_hex(3)}-"
    extra = ("--host", "bench", "--netns-prefix", prefix) if agent else ("--no-agent",)
    starts = {}
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        try:
            for database in ("new_database", "existing_database"):
                load = os.getloadavg()[0]
                server = Server(state, None, extra)
                server.stop()
                starts[database] = {
                    "wall_s": round(server.cold_start_s, 3),
                    "cpu_s": round(server.cold_start_cpu_s, 2),
                    "load_average": round(load, 2),
                }
        finally:
            remove_namespaces(prefix)  # stopped as it started them, maybe halfway
    return starts


def remove_namespaces(prefix: str) -> None:
    """What a data-plane benchmark made, whatever happened to it."""
    from neutrino.agent.drivers.netns import delete_namespace, list_namespaces

    for name in list_namespaces():
        if name.startswith(prefix):
            delete_namespace(name)


def machine_busy_seconds() -> float:
    """CPU the whole machine has spent so far, all cores, idle and I/O wait excepted."""
    ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def timed_calls(server: Server, calls: list[Call], concurrency: int) -> dict[str, float]:
    """Run `calls` on `concurrency` threads; each must succeed (2xx). Beside the server's CPU
    per call, this process's (the clients') and the whole machine's: the rest of the machine's
    is mostly the database's. `machine_busy`: the share of all cores in use meanwhile."""
    samples: list[float] = []
    lock = threading.Lock()
    local = threading.local()

    def one(call: Call) -> None:
        if not hasattr(local, "client"):
            local.client = server.client()
        method, path, body = call
        started = time.perf_counter()
        response = local.client.request(method, path, json=body)
        elapsed = time.perf_counter() - started
        if not response.is_success:
            raise RuntimeError(response.text)
        with lock:
            samples.append(elapsed)

    started, cpu = time.perf_counter(), server.cpu_seconds()
    clients, machine = time.process_time(), machine_busy_seconds()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, calls))
    wall = time.perf_counter() - started
    machine = machine_busy_seconds() - machine
    count = len(calls)
    return {
        "per_second": round(count / wall, 1),
        "p50_ms": round(percentile(samples, 50) * 1000, 2),
        "p99_ms": round(percentile(samples, 99) * 1000, 2),
        "server_cpu_ms": round((server.cpu_seconds() - cpu) * 1000 / count, 2),
        "clients_cpu_ms": round((time.process_time() - clients) * 1000 / count, 2),
        "machine_cpu_ms": round(machine * 1000 / count, 2),
        "machine_busy": round(machine / (wall * (os.cpu_count() or 1)), 2),
        "count": count,
        "concurrency": concurrency,
    }


def timed_creates(
    server: Server, path: str, body: dict[str, Any], count: int, concurrency: int
) -> dict[str, float]:
    return timed_calls(server, [("POST", path, body)] * count, concurrency)


def l3_benchmarks(server: Server, count: int = 1000) -> dict[str, Any]:
    """Floating IP create and associate at concurrency 8; router add-interface latency."""
    with server.client() as client:

        def create(collection: str, member: str, **body: Any) -> dict[str, Any]:
            response = client.post(f"/{collection}", json={member: body})
            response.raise_for_status()
            return response.json()[member]

        ext = create(
            "networks",
            "network",
            name="bench-ext",
            **{
                "router:external": True,
                "provider:network_type": "flat",
                "provider:physical_network": "default",
            },
        )
        create(
            "subnets",
            "subnet",
            network_id=ext["id"],
            cidr="172.24.0.0/16",
            ip_version=4,
            enable_dhcp=False,
        )
        net = create("networks", "network", name="bench-vms")
        sub = create(
            "subnets",
            "subnet",
            network_id=net["id"],
            cidr="10.200.0.0/16",
            ip_version=4,
            enable_dhcp=False,
        )
        router = create(
            "routers", "router", name="bench", external_gateway_info={"network_id": ext["id"]}
        )
        client.put(
            f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}
        ).raise_for_status()
        ports = []
        while len(ports) < count:
            batch = client.post(
                "/ports", json={"ports": [{"network_id": net["id"]}] * min(500, count - len(ports))}
            )
            batch.raise_for_status()
            ports.extend(batch.json()["ports"])
    result: dict[str, Any] = {
        "floatingip_create_c8": timed_creates(
            server, "/floatingips", {"floatingip": {"floating_network_id": ext["id"]}}, count, 8
        )
    }
    with server.client() as client:
        fips = client.get(
            "/floatingips", params={"fields": "id", "floating_network_id": ext["id"]}
        ).json()["floatingips"]
    result["floatingip_associate_c8"] = timed_calls(
        server,
        [
            ("PUT", f"/floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}})
            for fip, port in zip(fips, ports)
        ],
        8,
    )
    subnets = []
    with server.client() as client:
        for i in range(50):
            net = create("networks", "network", name=f"bench-if-{i}")
            subnets.append(
                create(
                    "subnets", "subnet", network_id=net["id"], cidr=f"10.201.{i}.0/24", ip_version=4
                )
            )
    result["router_add_interface_c1"] = timed_calls(
        server,
        [
            ("PUT", f"/routers/{router['id']}/add_router_interface", {"subnet_id": s["id"]})
            for s in subnets
        ],
        1,
    )
    return result


def crowded_subnet_benchmark(
    server: Server, open_network_id: str, rounds: int = 3
) -> dict[str, Any]:
    """Port create at concurrency 8 on a /20 holding 3,000 ports against the same on the
    mostly empty /16, alternating so that both see the same machine."""
    with server.client() as client:
        net = client.post("/networks", json={"network": {"name": "crowded"}}).json()["network"]
        body = {"network_id": net["id"], "cidr": "10.1.0.0/20", "ip_version": 4}
        subnet = {"subnet": {**body, "enable_dhcp": False}}
        client.post("/subnets", json=subnet).raise_for_status()
        for _ in range(30):
            ports = {"ports": [{"network_id": net["id"]}] * 100}
            client.post("/ports", json=ports).raise_for_status()
    series: dict[str, list[dict[str, float]]] = {"open_16": [], "crowded_20": []}
    for _ in range(rounds):
        for name, network_id in (("open_16", open_network_id), ("crowded_20", net["id"])):
            port = {"port": {"network_id": network_id}}
            series[name].append(timed_creates(server, "/ports", port, 300, 8))

    def rate(name: str) -> float:
        return sum(r["count"] for r in series[name]) / sum(
            r["count"] / r["per_second"] for r in series[name]
        )

    return {
        **series,
        "crowded_over_open": round(rate("crowded_20") / rate("open_16"), 3),
    }


def rss_growth_mib(pid: int, get: Callable[[], httpx.Response]) -> float:
    """How far the server's resident memory rises above its level before while `get()` runs
    (sampled every 5 ms)."""
    before = peak = rss_mib(pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, rss_mib(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        get().raise_for_status()
    finally:
        done.set()
        sampler.join()
    return round(peak - before, 1)


def timed_gets(
    client: httpx.Client, path: str, params: dict[str, Any], repeat: int = 10
) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, params=params)
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
    return latencies(samples, (50, 95))


# name: (path, query) of the whole lists measured; the first run of each gives its memory rise
LISTS = {
    "ports_fields_id": ("/ports", {"fields": "id"}),
    "ports_full": ("/ports", {}),
    "floatingips_fields_id": ("/floatingips", {"fields": "id"}),
    "networks_full": ("/networks", {}),
}


class Filler:
    """Bulk creates of 500 as the server's admin, with no quota in the way."""

    def __init__(self, server: Server) -> None:
        self.client = server.client()
        self.client.timeout = httpx.Timeout(600)  # a bulk create on a busy machine
        project = httpx.get(
            server.url + "/identity/v3/auth/tokens",
            headers={"X-Auth-Token": server.token, "X-Subject-Token": server.token},
        ).json()["token"]["project"]["id"]
        unlimited = {resource: -1 for resource in ("network", "subnet", "port", "floatingip")}
        self.client.put(f"/quotas/{project}", json={"quota": unlimited}).raise_for_status()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.close()

    def create(self, path: str, member: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(path, json={member: body})
        response.raise_for_status()
        return response.json()[member]

    def network(self, name: str, cidr: str, **extra: Any) -> str:
        net = self.create("/networks", "network", {"name": name, **extra})
        subnet = {"network_id": net["id"], "ip_version": 4, "enable_dhcp": False, "cidr": cidr}
        self.create("/subnets", "subnet", subnet)
        return str(net["id"])

    def fill(self, path: str, body: dict[str, Any], count: int) -> None:
        """Up to `count` members of the collection at `path`."""
        name = path.strip("/")
        have = len(self.client.get(path, params={"fields": "id"}).json()[name])
        while have < count:
            batch = min(500, count - have)
            self.client.post(path, json={name: [body] * batch}).raise_for_status()
            have += batch


def fill_ports(server: Server, count: int) -> None:
    with Filler(server) as filler:
        filler.fill("/ports", {"network_id": filler.network("bench", "10.0.0.0/16")}, count)


def fill_floatingips_and_networks(server: Server, count: int) -> None:
    with Filler(server) as filler:
        ext = filler.network("ext", "100.64.0.0/15", **{"router:external": True})
        filler.fill("/floatingips", {"floating_network_id": ext}, count)
        filler.fill("/networks", {"name": "n"}, count)


def list_benchmark(server: Server, names: list[str], repeat: int = 5) -> dict[str, Any]:
    """Each of these LISTS: how many items it holds, how far its first run raises the server's
    memory, then its latency, the server's CPU per call and the load average after."""
    result: dict[str, Any] = {}
    with server.client() as client:
        for name in names:
            path, params = LISTS[name]
            key = path.strip("/")
            count = len(client.get(path, params={"fields": "id"}).json()[key])
            growth = rss_growth_mib(server.process.pid, partial(client.get, path, params=params))
            cpu = server.cpu_seconds()
            timing = timed_gets(client, path, params, repeat)
            result[name] = {
                "count": count,
                **timing,
                "server_cpu_ms": round((server.cpu_seconds() - cpu) * 1000 / repeat, 1),
                "rss_growth_mib": growth,
                "load_average": [round(load, 2) for load in os.getloadavg()],
            }
    return result


def lists_only(count: int, database_url: str | None) -> dict[str, Any]:
    """LISTS at `count` items on SQLite and on `database_url` beside it."""
    databases = {"sqlite": None, **({"postgresql": database_url} if database_url else {})}
    limit = ("--pagination-max-limit", str(max(count * 2, 10000)))
    with tempfile.TemporaryDirectory() as tmp:
        servers = {
            name: Server(Path(tmp) / name, url, ("--no-agent", *limit))
            for name, url in databases.items()
        }
        result: dict[str, Any] = {"benchmark": "api_lists", "fill_s": 0.0}
        result.update({name: {} for name in servers})
        try:
            # The port lists first: each floating IP adds a port.
            for fill, names in (
                (fill_ports, ["ports_fields_id", "ports_full"]),
                (fill_floatingips_and_networks, ["floatingips_fields_id", "networks_full"]),
            ):
                started = time.perf_counter()
                with ThreadPoolExecutor(len(servers)) as pool:
                    list(pool.map(partial(fill, count=count), servers.values()))
                result["fill_s"] += round(time.perf_counter() - started, 1)
                for name, server in servers.items():
                    time.sleep(5)  # the fill's writes settle (WAL checkpoint, autovacuum)
                    result[name].setdefault("rss_before_mib", round(rss_mib(server.process.pid), 1))
                    result[name].update(list_benchmark(server, names))
            for name, server in servers.items():
                result[name]["rss_after_mib"] = round(rss_mib(server.process.pid), 1)
            return result
        finally:
            for server in servers.values():
                server.stop()


LBAAS = "/load-balancer/v2/lbaas"


def report_running(server: Server, client: httpx.Client) -> None:
    """Report every load balancer running its current tree, as the hosting agent would (what
    takes it out of PENDING_* to be changed again)."""
    snapshot = client.get("/internal/v1/snapshot").raise_for_status().json()
    lbs = {
        lb["id"]: {"revision": lb["revision"], "members": {}, "listeners": {}}
        for lb in snapshot["loadbalancers"]
    }
    report = {"revision": snapshot["revision"], "loadbalancers": lbs}
    client.post("/internal/v1/agents/bench/report", json=report).raise_for_status()


def fill_members(server: Server, count: int) -> str:
    """A load balancer with one pool of `count` members, added 2,000 at a time; the pool's id."""
    with httpx.Client(
        base_url=server.url, headers={"X-Auth-Token": server.token}, timeout=600
    ) as client:
        net = client.post("/networking/v2.0/networks", json={"network": {"name": "m"}})
        subnet = {
            "network_id": net.raise_for_status().json()["network"]["id"],
            "cidr": "10.128.0.0/12",
            "ip_version": 4,
            "enable_dhcp": False,
        }
        made = client.post("/networking/v2.0/subnets", json={"subnet": subnet})
        body = {"loadbalancer": {"vip_subnet_id": made.raise_for_status().json()["subnet"]["id"]}}
        lb = client.post(f"{LBAAS}/loadbalancers", json=body).raise_for_status().json()
        report_running(server, client)
        pool = {
            "loadbalancer_id": lb["loadbalancer"]["id"],
            "protocol": "TCP",
            "lb_algorithm": "ROUND_ROBIN",
        }
        pool_id = client.post(f"{LBAAS}/pools", json={"pool": pool}).raise_for_status()
        pool_id = pool_id.json()["pool"]["id"]
        report_running(server, client)
        for start in range(0, count, 2000):
            members = [
                {
                    "address": f"10.{128 + i // 65536}.{i // 256 % 256}.{i % 256}",
                    "protocol_port": 80,
                }
                for i in range(start + 1, min(count, start + 2000) + 1)
            ]
            client.put(
                f"{LBAAS}/pools/{pool_id}/members",
                params={"additive_only": "true"},
                json={"members": members},
            ).raise_for_status()
            report_running(server, client)
        return str(pool_id)


def reports_only(count: int, database_url: str | None, repeat: int = 20) -> dict[str, Any]:
    """A host's agent reporting `count` ports bound there, all up and none moved since its last
    report (what every change on the host and every heartbeat sends): the server's latency and
    CPU per report."""
    host = "bench-host"
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "state", database_url)
        try:
            with Filler(server) as filler:
                body = {"network_id": filler.network("bench", "10.0.0.0/16")}
                filler.fill("/ports", {**body, "binding:host_id": host}, count)
                ports = filler.client.get("/ports", params={"fields": "id"}).json()["ports"]
                ids = [port["id"] for port in ports]
            report = {"revision": 2**31, "ports": dict.fromkeys(ids, "ACTIVE"), "errors": []}
            with httpx.Client(headers={"X-Auth-Token": server.token}, timeout=600) as client:

                def send() -> None:
                    url = f"{server.url}/internal/v1/agents/{host}/report"
                    client.post(url, json=report).raise_for_status()

                send()  # the ports go ACTIVE: the reports after it move nothing
                samples, cpu = [], server.cpu_seconds()
                for _ in range(repeat):
                    started = time.perf_counter()
                    send()
                    samples.append(time.perf_counter() - started)
                return {
                    "benchmark": "api_reports",
                    "database": "postgresql" if database_url else "sqlite",
                    "ports": len(ids),
                    **latencies(samples),
                    "server_cpu_ms": round((server.cpu_seconds() - cpu) * 1000 / repeat, 1),
                    "load_average": [round(load, 2) for load in os.getloadavg()],
                }
        finally:
            server.stop()


def members_only(count: int, database_url: str | None) -> dict[str, Any]:
    """One pool's `count` members listed in one answer, in full and with `fields=id`."""
    with tempfile.TemporaryDirectory() as tmp:
        limit = ("--pagination-max-limit", str(max(count * 2, 10000)))
        server = Server(Path(tmp) / "state", database_url, ("--no-agent", *limit))
        try:
            pool_id = fill_members(server, count)
            # A new server, whose memory the fill has not grown: what the list adds shows.
            server.stop()
            server = Server(Path(tmp) / "state", database_url, ("--no-agent", *limit))
            time.sleep(5)  # the fill's writes settle (WAL checkpoint, autovacuum)
            result: dict[str, Any] = {
                "benchmark": "api_members",
                "database": "postgresql" if database_url else "sqlite",
                "rss_before_mib": round(rss_mib(server.process.pid), 1),
            }
            path = f"{server.url}{LBAAS}/pools/{pool_id}/members"
            with httpx.Client(headers={"X-Auth-Token": server.token}, timeout=600) as client:
                for name, params in (("full", {}), ("fields_id", {"fields": "id"})):
                    answers: list[httpx.Response] = []  # the first, which raises memory most

                    def first(
                        params: dict[str, str] = params, answers: list[httpx.Response] = answers
                    ) -> httpx.Response:
                        answers.append(client.get(path, params=params))
                        return answers[-1]

                    growth = rss_growth_mib(server.process.pid, first)
                    listed = answers[0].json()["members"]
                    cpu = server.cpu_seconds()
                    timing = timed_gets(client, path, params, repeat=3)
                    result[name] = {
                        "count": len(listed),
                        **timing,
                        "server_cpu_ms": round((server.cpu_seconds() - cpu) * 1000 / 3, 1),
                        "rss_growth_mib": growth,
                        "load_average": [round(load, 2) for load in os.getloadavg()],
                    }
            result["rss_after_mib"] = round(rss_mib(server.process.pid), 1)
            return result
        finally:
            server.stop()


def bulk_series(server: Server, count: int, rounds: int) -> dict[str, Any]:
    """Bulk creates of `count` ports, of as many unassociated floating IPs and of as many
    associated to those ports, each beside `count` single creates of the same; then `rounds`
    more bulk creates of `count` ports and of their floating IPs, on the same router, each
    round's rate and CPU per item (they stay flat when nothing grows with what is there)."""
    with Filler(server) as filler:
        ext = filler.network("ext", "100.64.0.0/16", **{"router:external": True})
        net = filler.network("inner", "10.0.0.0/16")
        router = filler.create(
            "/routers", "router", {"name": "r", "external_gateway_info": {"network_id": ext}}
        )
        subnet = filler.client.get("/subnets", params={"network_id": net}).json()["subnets"][0]
        filler.client.put(
            f"/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]}
        ).raise_for_status()

        def timed(
            path: str, bodies: list[dict[str, Any]], bulk: bool
        ) -> tuple[list[str], dict[str, float]]:
            """Create `bodies` in one request, or one by one; the ids made and the timing."""
            name = path.strip("/")
            load = os.getloadavg()[0]
            started, cpu = time.perf_counter(), server.cpu_seconds()
            if bulk:
                response = filler.client.post(path, json={name: bodies})
                response.raise_for_status()
                made = response.json()[name]
            else:
                made = [filler.create(path, name.removesuffix("s"), body) for body in bodies]
            wall = time.perf_counter() - started
            return [item["id"] for item in made], {
                "per_second": round(len(bodies) / wall, 1),
                "server_cpu_ms": round((server.cpu_seconds() - cpu) * 1000 / len(bodies), 2),
                "load_average": round(load, 2),
            }

        def ports(bulk: bool) -> tuple[list[str], dict[str, float]]:
            return timed("/ports", [{"network_id": net}] * count, bulk)

        def floatingips(bulk: bool, port_ids: list[str] | None = None) -> dict[str, float]:
            """Unassociated, or one for each of `port_ids`."""
            bodies = (
                [{"floating_network_id": ext, "port_id": port} for port in port_ids]
                if port_ids
                else [{"floating_network_id": ext}] * count
            )
            return timed("/floatingips", bodies, bulk)[1]

        result: dict[str, Any] = {}
        for how, bulk in (("single", False), ("bulk", True)):
            port_ids, result[f"ports_{how}"] = ports(bulk)
            result[f"floatingips_{how}"] = floatingips(bulk)
            result[f"floatingips_associated_{how}"] = floatingips(bulk, port_ids)
        result["rounds"] = []
        for _ in range(rounds):
            port_ids, timing = ports(True)
            result["rounds"].append({"ports": timing, "floatingips": floatingips(True, port_ids)})
        result["floatingips_at_end"] = (2 + rounds) * count
    return result


def bulk_only(count: int, rounds: int, database_url: str | None) -> dict[str, Any]:
    """`bulk_series` on SQLite and on `database_url`, one after the other."""
    databases = {"sqlite": None, **({"postgresql": database_url} if database_url else {})}
    result: dict[str, Any] = {"benchmark": "api_bulk", "count": count}
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in databases.items():
            server = Server(Path(tmp) / name, url)
            try:
                result[name] = bulk_series(server, count, rounds)
            finally:
                server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument(
        "--ports", type=int, default=10000, help="ports present for the list benchmark"
    )
    parser.add_argument("--cold-starts", type=int, help="only cold starts, this many of each")
    parser.add_argument(
        "--lists", type=int, help="only the lists, with this many ports, floating IPs, networks"
    )
    parser.add_argument(
        "--bulk", type=int, help="only bulk creates of this many ports and floating IPs"
    )
    parser.add_argument("--members", type=int, help="only the list of this many pool members")
    parser.add_argument("--reports", type=int, help="only an agent's report of this many ports")
    parser.add_argument(
        "--rounds", type=int, default=5, help="with --bulk, rounds of bulk creates after"
    )
    args = parser.parse_args()
    if args.bulk:
        print(json.dumps(bulk_only(args.bulk, args.rounds, args.database_url), indent=2))
        return
    if args.lists:
        print(json.dumps(lists_only(args.lists, args.database_url), indent=2))
        return
    if args.members:
        print(json.dumps(members_only(args.members, args.database_url), indent=2))
        return
    if args.reports:
        print(json.dumps(reports_only(args.reports, args.database_url), indent=2))
        return
    if args.cold_starts:
        kinds = {"no_agent": False, **({"agent": True} if os.geteuid() == 0 else {})}
        runs = {
            kind: [cold_start(agent) for _ in range(args.cold_starts)]
            for kind, agent in kinds.items()
        }
        print(json.dumps({"benchmark": "cold_start", **runs}, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        # The list benchmark reads every port in one answer.
        limit = ("--pagination-max-limit", str(max(args.ports, 10000)))
        server = Server(Path(tmp) / "state", args.database_url, ("--no-agent", *limit))
        try:
            time.sleep(1)
            result: dict[str, Any] = {
                "benchmark": "api",
                "database": "postgresql" if args.database_url else "sqlite",
                "cold_start": cold_start(),
                "idle_rss_mib": round(rss_mib(server.process.pid), 1),
                "load_average_before": [round(load, 2) for load in os.getloadavg()],
            }
            with server.client() as client:
                project = httpx.get(
                    server.url + "/identity/v3/auth/tokens",
                    headers={"X-Auth-Token": server.token, "X-Subject-Token": server.token},
                ).json()["token"]["project"]["id"]
                unlimited = {
                    resource: -1
                    for resource in ("network", "subnet", "port", "router", "floatingip")
                }
                client.put(f"/quotas/{project}", json={"quota": unlimited}).raise_for_status()
                net = client.post("/networks", json={"network": {"name": "bench"}}).json()[
                    "network"
                ]
                client.post(
                    "/subnets",
                    json={
                        "subnet": {
                            "network_id": net["id"],
                            "cidr": "10.0.0.0/16",
                            "ip_version": 4,
                            "enable_dhcp": False,
                        }
                    },
                )
            port = {"port": {"network_id": net["id"]}}
            result["port_create_c1"] = timed_creates(server, "/ports", port, 300, 1)
            result["port_create_c8"] = timed_creates(server, "/ports", port, 1000, 8)
            result["port_create_c8_crowded"] = crowded_subnet_benchmark(server, net["id"])
            result["network_create_c8"] = timed_creates(
                server, "/networks", {"network": {"name": "n"}}, 300, 8
            )
            have = 1300 + 3000 + 1800
            if args.ports > have:
                # Bulk creates fill the list benchmark quickly.
                with server.client() as client:
                    while have < args.ports:
                        batch = min(500, args.ports - have)
                        client.post(
                            "/ports", json={"ports": [{"network_id": net["id"]}] * batch}
                        ).raise_for_status()
                        have += batch
            with server.client() as client:
                total = len(client.get("/ports", params={"fields": "id"}).json()["ports"])
                result["list_ports"] = {
                    "count": total,
                    "fields_id": timed_gets(client, "/ports", {"fields": "id"}),
                    "full": timed_gets(client, "/ports", {}, repeat=3),
                    "limit_100": timed_gets(client, "/ports", {"limit": 100}),
                    "rss_growth_mib": {
                        name: rss_growth_mib(
                            server.process.pid, lambda p=params: client.get("/ports", params=p)
                        )
                        for name, params in (("fields_id", {"fields": "id"}), ("full", {}))
                    },
                }
            result["l3"] = l3_benchmarks(server)
            result["rss_after_mib"] = round(rss_mib(server.process.pid), 1)
            result["load_average_after"] = [round(load, 2) for load in os.getloadavg()]
        finally:
            server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
