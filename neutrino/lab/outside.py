"""The outside world of an isolated lab, and where the agents put things.

In the isolated mode a physical network ends in an "outside" namespace
(`<prefix>nout-<physnet>`) shared by the machine's simulated hosts. The
agent makes it the upstream router of the tutorial: it holds the gateway
address of every subnet of every external network on that physical network,
so a person or a test can stand there as "the internet" (ping a floating IP,
curl an instance, serve a page that instances fetch through source NAT).
In production the physical network is the host's own interface and the
upstream is real; there is no outside namespace then.

Agents report the namespaces they made (host, routers, load balancers,
outside) and the URL and certificate of their endpoint; the server finds here which agent to
ask, to run a command outside or to read the kernel's view of a resource.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from neutrino import errors
from neutrino.db import Database, schema


def agent_reports(db: Database, prefer: str) -> list[tuple[str, dict[str, Any]]]:
    """(host, last report) of every agent, `prefer`'s first."""
    A = schema.agents
    with db.read() as conn:
        rows = conn.execute(select(A.c.host, A.c.report)).all()
    return sorted(
        ((row.host, row.report or {}) for row in rows), key=lambda item: item[0] != prefer
    )


def outside_netns(db: Database, physnet: str, prefer: str) -> tuple[str, str]:
    """(host, namespace) of the outside of `physnet`."""
    for host, report in agent_reports(db, prefer):
        netns = (report.get("outside") or {}).get(physnet)
        if netns:
            return host, str(netns)
    raise errors.Conflict(
        f"No agent reports an outside namespace for physical network {physnet} "
        "(it exists only in the isolated mode)."
    )


def realized_netns(db: Database, kind: str, resource_id: str, prefer: str) -> tuple[str, str]:
    """(host, namespace) of a router or load balancer (`kind`: "routers", "loadbalancers"),
    as its agent reported them."""
    for host, report in agent_reports(db, prefer):
        netns = (report.get("namespaces") or {}).get(kind, {}).get(resource_id)
        if netns:
            return host, str(netns)
    raise errors.Conflict(f"No agent reports {kind[:-1]} {resource_id} as realized yet.")


def agent_endpoint(db: Database, host: str) -> tuple[str, str]:
    """The URL of the endpoint of `host`'s agent and its certificate (PEM), as its last report
    gave them."""
    for name, report in agent_reports(db, host):
        if name == host and report.get("endpoint") and report.get("endpoint_certificate"):
            return str(report["endpoint"]), str(report["endpoint_certificate"])
    raise errors.Conflict(f"No agent of host {host} reports an endpoint to carry this out.")
