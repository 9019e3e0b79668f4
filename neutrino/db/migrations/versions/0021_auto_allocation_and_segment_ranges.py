"""the default external network, auto-allocated topologies, network segment ranges

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "networks", sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.create_table(
        "network_segment_ranges",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("default", sa.Boolean(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("network_type", sa.String(length=16), nullable=False),
        sa.Column("physical_network", sa.String(length=64), nullable=False),
        sa.Column("minimum", sa.Integer(), nullable=False),
        sa.Column("maximum", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_segment_ranges")),
        sa.UniqueConstraint(
            "default",
            "network_type",
            "physical_network",
            "minimum",
            "maximum",
            name=op.f("uq_network_segment_ranges"),
        ),
    )
    with op.batch_alter_table("network_segment_ranges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_network_segment_ranges_project_id"), ["project_id"], unique=False
        )
    op.create_table(
        "auto_allocated_topologies",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("router_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
            name=op.f("fk_auto_allocated_topologies_network_id_networks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["router_id"],
            ["routers.id"],
            name=op.f("fk_auto_allocated_topologies_router_id_routers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_auto_allocated_topologies")),
        sa.UniqueConstraint("network_id", name=op.f("uq_auto_allocated_topologies_network_id")),
    )


def downgrade() -> None:
    op.drop_table("auto_allocated_topologies")
    op.drop_table("network_segment_ranges")
    op.drop_column("networks", "is_default")
