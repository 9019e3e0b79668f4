"""ports' device profile and NUMA affinity policy

Revision ID: 0025
Revises: 0016
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ports", sa.Column("device_profile", sa.String(255), nullable=True))
    op.add_column("ports", sa.Column("numa_affinity_policy", sa.String(16), nullable=True))


def downgrade() -> None:
    op.drop_column("ports", "numa_affinity_policy")
    op.drop_column("ports", "device_profile")
