"""Port create throughput with `neutrino serve --workers 1, 2, 4` on PostgreSQL: one JSON document.

    .venv/bin/python -m bench.workers --database-url postgresql+psycopg://USER@HOST/DB

The three servers run side by side, each on a database of its own created
next to the one named (and dropped afterwards); the same client creates ports
on each in turn, round after round, so that whatever else the machine does
falls on all of them alike. Reports each one's rounds, their median, the
server's CPU per call (its workers included) and the load average around.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import tempfile
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from bench.api import Server, timed_creates

WORKERS = (1, 2, 4)


class WorkersServer(Server):
    def cpu_seconds(self) -> float:
        """The supervising process's CPU and its workers'."""
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids += [int(pid) for pid in children.read_text().split()]
        total = 0.0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total


def prepare_network(server: Server) -> dict[str, Any]:
    """An unlimited admin project with a /16 to take ports from; the port create's body."""
    with server.client() as client:
        project = httpx.get(
            server.url + "/identity/v3/auth/tokens",
            headers={"X-Auth-Token": server.token, "X-Subject-Token": server.token},
        ).json()["token"]["project"]["id"]
        client.put(f"/quotas/{project}", json={"quota": {"port": -1}}).raise_for_status()
        net = client.post("/networks", json={"network": {"name": "bench"}})
        net.raise_for_status()
        network_id = net.json()["network"]["id"]
        subnet = {"network_id": network_id, "cidr": "10.0.0.0/16", "ip_version": 4}
        client.post(
            "/subnets", json={"subnet": {**subnet, "enable_dhcp": False}}
        ).raise_for_status()
    return {"port": {"network_id": network_id}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True, help="PostgreSQL, with CREATE DATABASE")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ports", type=int, default=400, help="ports a round creates")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads")
    args = parser.parse_args()
    admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    base = args.database_url.rsplit("/", 1)[0]
    names = {workers: f"bench_workers{workers}_{secrets.token_hex(4)}" for workers in WORKERS}
    servers: dict[int, Server] = {}
    with tempfile.TemporaryDirectory() as tmp, admin.connect() as conn:
        try:
            for workers, name in names.items():
                conn.execute(text(f"CREATE DATABASE {name}"))
                servers[workers] = WorkersServer(
                    Path(tmp) / f"state{workers}",
                    f"{base}/{name}",
                    ("--no-agent", "--workers", str(workers)),
                )
            bodies = {workers: prepare_network(server) for workers, server in servers.items()}
            result: dict[str, Any] = {
                "benchmark": "workers",
                "database": "postgresql",
                "cores": os.cpu_count(),
                "ports_per_round": args.ports,
                "concurrency": args.concurrency,
                "load_average_before": [round(load, 2) for load in os.getloadavg()],
            }
            rounds: dict[int, list[dict[str, float]]] = {workers: [] for workers in WORKERS}
            for _ in range(args.rounds):
                for workers, server in servers.items():
                    rounds[workers].append(
                        timed_creates(
                            server, "/ports", bodies[workers], args.ports, args.concurrency
                        )
                    )
            result["port_create"] = {
                f"workers_{workers}": {
                    "median_per_second": statistics.median(r["per_second"] for r in runs),
                    "median_p99_ms": statistics.median(r["p99_ms"] for r in runs),
                    "median_server_cpu_ms": statistics.median(r["server_cpu_ms"] for r in runs),
                    "rounds_per_second": [r["per_second"] for r in runs],
                }
                for workers, runs in rounds.items()
            }
            result["load_average_after"] = [round(load, 2) for load in os.getloadavg()]
        finally:
            for server in servers.values():
                server.stop()
            for name in names.values():
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
