"""ports' device profile, NUMA affinity policy and inactive bindings

Revision ID: 0025
Revises: 0023
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ports", sa.Column("device_profile", sa.String(255), nullable=True))
    op.add_column("ports", sa.Column("numa_affinity_policy", sa.String(16), nullable=True))
    op.create_table(
        "port_inactive_bindings",
        sa.Column(
            "port_id",
            sa.String(36),
            sa.ForeignKey("ports.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("host", sa.String(255), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("port_inactive_bindings")
    op.drop_column("ports", "numa_affinity_policy")
    op.drop_column("ports", "device_profile")
