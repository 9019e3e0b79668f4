"""load balancers' ACTIVE_STANDBY amphorae: role, VRRP port, failover order

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lb_amphorae") as batch:
        batch.add_column(
            sa.Column("role", sa.String(36), nullable=False, server_default="STANDALONE")
        )
        batch.add_column(sa.Column("vrrp_port_id", sa.String(36)))
        batch.add_column(
            sa.Column("failover_next", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("lb_amphorae") as batch:
        batch.drop_column("failover_next")
        batch.drop_column("vrrp_port_id")
        batch.drop_column("role")
