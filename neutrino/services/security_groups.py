"""Security groups and their rules."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from neutrino.db import schema
from neutrino.services import common

SG, RULE = schema.security_groups, schema.security_group_rules


def default_rules(group_id: str) -> list[dict[str, str | None]]:
    """Neutron's defaults: egress anywhere, ingress from members of the same group."""
    return [
        {"direction": direction, "ethertype": ethertype,
         "remote_group_id": group_id if direction == "ingress" else None}
        for direction in ("egress", "ingress") for ethertype in ("IPv4", "IPv6")
    ]


def ensure_default(conn: Connection, project_id: str) -> str:
    """The project's `default` group, created with its rules on first use."""
    found = conn.execute(select(SG.c.id).where(SG.c.project_id == project_id, SG.c.is_default)).scalar()
    if found:
        return found
    moment = common.now()
    group_id = common.new_id()
    common.insert_resource(conn, SG, "security_group", {
        "id": group_id, "project_id": project_id, "name": "default",
        "description": "Default security group", "created_at": moment, "updated_at": moment,
        "revision_number": 1, "stateful": True, "is_default": True,
    })
    for rule in default_rules(group_id):
        common.insert_resource(conn, RULE, "security_group_rule", {
            "id": common.new_id(), "project_id": project_id, "name": "", "description": "",
            "created_at": moment, "updated_at": moment, "revision_number": 1,
            "security_group_id": group_id, "protocol": None, "port_range_min": None,
            "port_range_max": None, "remote_ip_prefix": None, **rule,
        })
    return group_id
