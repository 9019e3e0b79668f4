"""instance ports owned as Nova owns a server's

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE ports SET device_owner = 'compute:nova' WHERE device_owner = 'compute:lab'")


def downgrade() -> None:
    op.execute(
        "UPDATE ports SET device_owner = 'compute:lab' WHERE device_owner = 'compute:nova' "
        "AND device_id IN (SELECT id FROM lab_instances)"
    )
