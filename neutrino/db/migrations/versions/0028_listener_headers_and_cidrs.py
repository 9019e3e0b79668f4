"""listeners' inserted headers and allowed CIDRs

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("lb_listeners", sa.Column("insert_headers", sa.JSON(), nullable=True))
    op.add_column("lb_listeners", sa.Column("allowed_cidrs", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("lb_listeners", "allowed_cidrs")
    op.drop_column("lb_listeners", "insert_headers")
