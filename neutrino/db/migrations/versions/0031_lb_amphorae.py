"""load balancers' instances (Octavia's amphorae)

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-05
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    amphorae = op.create_table(
        "lb_amphorae",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "lb_loadbalancer_id",
            sa.String(36),
            sa.ForeignKey("lb_loadbalancers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    # Every load balancer has its instance: running (ALLOCATED) unless it is still being built,
    # has failed or is going.
    status = {"PENDING_CREATE": "BOOTING", "ERROR": "ERROR", "PENDING_DELETE": "PENDING_DELETE"}
    rows = op.get_bind().execute(
        sa.text("SELECT id, provisioning_status, created_at FROM lb_loadbalancers")
    )
    op.bulk_insert(
        amphorae,
        [
            {
                "id": str(uuid.uuid4()),
                "lb_loadbalancer_id": lb_id,
                "status": status.get(provisioning, "ALLOCATED"),
                "created_at": created,
                "updated_at": created,
            }
            for lb_id, provisioning, created in rows
        ],
    )


def downgrade() -> None:
    op.drop_table("lb_amphorae")
