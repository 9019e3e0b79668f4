"""ACTIVE_STANDBY amphorae's VRRP ports and their security groups move to the service project

Revision ID: 0046
Revises: 0045
Create Date: 2026-12-06
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0046"
down_revision = "0045"
branch_labels = None
depends_on = None

VRRP_PORTS = "SELECT vrrp_port_id FROM lb_amphorae WHERE vrrp_port_id IS NOT NULL"
# The group `lb-<load balancer id>` made for them (not any other one given them since).
GROUPS = (
    "SELECT id FROM security_groups WHERE name LIKE 'lb-%' AND id IN "
    f"(SELECT security_group_id FROM port_security_groups WHERE port_id IN ({VRRP_PORTS}))"
)


def upgrade() -> None:
    conn = op.get_bind()
    if conn.execute(sa.text(VRRP_PORTS)).first() is None:
        return  # nothing to move; the first start makes the project
    find = "SELECT id FROM projects WHERE domain_id = 'default' AND name = 'service'"
    service = conn.execute(sa.text(find)).scalar()
    if service is None:
        service = uuid.uuid4().hex
        conn.execute(
            sa.text(
                "INSERT INTO projects (id, name, domain_id, description, enabled) "
                "VALUES (:id, 'service', 'default', '', :enabled)"
            ),
            {"id": service, "enabled": True},
        )
    for table, which in (
        ("security_group_rules", f"security_group_id IN ({GROUPS})"),
        ("security_groups", f"id IN ({GROUPS})"),
        ("ports", f"id IN ({VRRP_PORTS})"),
    ):
        conn.execute(
            sa.text(f"UPDATE {table} SET project_id = :service WHERE {which}"),
            {"service": service},
        )


def downgrade() -> None:
    """Back to the load balancer's project."""
    group_owner = "SELECT project_id FROM lb_loadbalancers WHERE 'lb-' || id = security_groups.name"
    rule_owner = (
        "SELECT project_id FROM security_groups "
        "WHERE security_groups.id = security_group_rules.security_group_id"
    )
    port_owner = (
        "SELECT lb.project_id FROM lb_amphorae a "
        "JOIN lb_loadbalancers lb ON lb.id = a.lb_loadbalancer_id WHERE a.vrrp_port_id = ports.id"
    )
    for table, owner, which in (  # the groups first: their rules follow them
        ("security_groups", group_owner, f"id IN ({GROUPS})"),
        ("security_group_rules", rule_owner, f"security_group_id IN ({GROUPS})"),
        ("ports", port_owner, f"id IN ({VRRP_PORTS})"),
    ):
        op.execute(f"UPDATE {table} SET project_id = ({owner}) WHERE {which}")
