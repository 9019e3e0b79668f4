"""instance ports owned compute:<the instance's availability zone>, as Nova owns a server's

Revision ID: 0049
Revises: 0048
Create Date: 2026-12-07
"""

from alembic import op

revision = "0049"
down_revision = "0048"
branch_labels = None
depends_on = None

ZONE = "SELECT availability_zone FROM lab_instances WHERE lab_instances.id = ports.device_id"
ELSEWHERE = "SELECT id FROM lab_instances WHERE availability_zone != 'nova'"


def upgrade() -> None:
    # As Nova puts a server's zone in its ports' owner again when it binds them to a new host.
    op.execute(
        f"UPDATE ports SET device_owner = 'compute:' || ({ZONE}) "
        f"WHERE device_owner = 'compute:nova' AND device_id IN ({ELSEWHERE})"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE ports SET device_owner = 'compute:nova' "
        f"WHERE device_owner = 'compute:' || ({ZONE}) AND device_id IN ({ELSEWHERE})"
    )
