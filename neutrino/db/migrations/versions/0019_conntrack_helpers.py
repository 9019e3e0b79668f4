"""conntrack helpers of routers

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conntrack_helpers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("router_id", sa.String(length=36), nullable=False),
        sa.Column("protocol", sa.String(length=40), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("helper", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["router_id"],
            ["routers.id"],
            name=op.f("fk_conntrack_helpers_router_id_routers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conntrack_helpers")),
        sa.UniqueConstraint(
            "router_id",
            "protocol",
            "port",
            "helper",
            name=op.f("uq_conntrack_helpers_router_id_protocol_port_helper"),
        ),
    )


def downgrade() -> None:
    op.drop_table("conntrack_helpers")
