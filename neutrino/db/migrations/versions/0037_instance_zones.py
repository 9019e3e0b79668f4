"""the availability zone of each lab instance

Revision ID: 0037
Revises: 0033
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0037"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lab_instances") as batch:
        batch.add_column(
            sa.Column("availability_zone", sa.String(255), nullable=False, server_default="nova")
        )


def downgrade() -> None:
    with op.batch_alter_table("lab_instances") as batch:
        batch.drop_column("availability_zone")
