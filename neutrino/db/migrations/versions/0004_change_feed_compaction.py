"""change feed compaction

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index("ix_changes_resource", ["resource_type", "resource_id"], unique=False)

    with op.batch_alter_table("feed_head", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("compacted_through", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("feed_head", schema=None) as batch_op:
        batch_op.drop_column("compacted_through")

    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_resource")
