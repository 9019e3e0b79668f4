"""each network type's free segmentation IDs as ranges, so allocating never reads those taken

Revision ID: 0048
Revises: 0047
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0048"
down_revision = "0047"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty: a type's first allocation fills its ranges from the segments.
    op.create_table(
        "segment_free_ranges",
        sa.Column("network_type", sa.String(16), nullable=False),
        sa.Column("physical_network", sa.String(64), nullable=False),
        sa.Column("first_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "network_type", "physical_network", "first_id", name=op.f("pk_segment_free_ranges")
        ),
    )


def downgrade() -> None:
    op.drop_table("segment_free_ranges")
