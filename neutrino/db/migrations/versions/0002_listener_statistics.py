"""listener statistics

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lb_listener_stats",
        sa.Column("listener_id", sa.String(length=36), nullable=False),
        sa.Column("active_connections", sa.BigInteger(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("total_connections", sa.BigInteger(), nullable=False),
        sa.Column("request_errors", sa.BigInteger(), nullable=False),
        sa.Column("worker", sa.String(length=64), nullable=False),
        sa.Column("worker_counts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["listener_id"],
            ["lb_listeners.id"],
            name=op.f("fk_lb_listener_stats_listener_id_lb_listeners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("listener_id", name=op.f("pk_lb_listener_stats")),
    )


def downgrade() -> None:
    op.drop_table("lb_listener_stats")
