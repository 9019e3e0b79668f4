"""Floating IP pools: each IPv4 subnet of an external network, where floating IPs come from.

As Neutron lists them: every external network's, whoever owns it, and each
entry names the caller's project.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from neutrino.context import Context
from neutrino.db import Database, schema

N, S = schema.networks, schema.subnets


def floatingip_pools(
    db: Database, ctx: Context, _filters: dict[str, list[Any]]
) -> list[dict[str, Any]]:
    query = (
        select(S.c.id, S.c.name, S.c.network_id, S.c.cidr)
        .join(N, N.c.id == S.c.network_id)
        .where(N.c.external, S.c.ip_version == 4)
    )
    with db.read() as conn:
        return [
            {
                "subnet_id": row.id,
                "subnet_name": row.name,
                "network_id": row.network_id,
                "cidr": row.cidr,
                "project_id": ctx.project_id,
            }
            for row in conn.execute(query)
        ]
