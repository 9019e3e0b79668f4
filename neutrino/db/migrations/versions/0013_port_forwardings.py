"""port forwardings of floating IPs

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "port_forwardings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("floatingip_id", sa.String(length=36), nullable=False),
        sa.Column("internal_port_id", sa.String(length=36), nullable=False),
        sa.Column("protocol", sa.String(length=40), nullable=False),
        sa.Column("internal_ip_address", sa.String(length=64), nullable=False),
        sa.Column("internal_port_start", sa.Integer(), nullable=False),
        sa.Column("internal_port_end", sa.Integer(), nullable=False),
        sa.Column("external_port_start", sa.Integer(), nullable=False),
        sa.Column("external_port_end", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["floatingip_id"],
            ["floatingips.id"],
            name=op.f("fk_port_forwardings_floatingip_id_floatingips"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["internal_port_id"],
            ["ports.id"],
            name=op.f("fk_port_forwardings_internal_port_id_ports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_port_forwardings")),
    )
    op.create_index("ix_port_forwardings_floatingip_id", "port_forwardings", ["floatingip_id"])
    op.create_index(
        "ix_port_forwardings_internal_port_id", "port_forwardings", ["internal_port_id"]
    )


def downgrade() -> None:
    op.drop_table("port_forwardings")
