"""agents by role, their networks and routers, availability zone hints

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("networks", "routers"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("availability_zone_hints", sa.JSON(), nullable=False, server_default="[]")
            )
    op.create_table(
        "network_agents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("agent_type", sa.String(length=64), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("availability_zone", sa.String(length=255), nullable=True),
        sa.Column("configurations", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_agents")),
        sa.UniqueConstraint("host", "agent_type", name=op.f("uq_network_agents_host_agent_type")),
    )
    for table, column, referred in (
        ("network_dhcp_agents", "network_id", "networks"),
        ("router_l3_agents", "router_id", "routers"),
    ):
        op.create_table(
            table,
            sa.Column(column, sa.String(length=36), nullable=False),
            sa.Column("agent_id", sa.String(length=36), nullable=False),
            sa.ForeignKeyConstraint(
                [column],
                [f"{referred}.id"],
                name=op.f(f"fk_{table}_{column}_{referred}"),
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["agent_id"],
                ["network_agents.id"],
                name=op.f(f"fk_{table}_agent_id_network_agents"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint(column, "agent_id", name=op.f(f"pk_{table}")),
        )


def downgrade() -> None:
    op.drop_table("router_l3_agents")
    op.drop_table("network_dhcp_agents")
    op.drop_table("network_agents")
    for table in ("routers", "networks"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("availability_zone_hints")
