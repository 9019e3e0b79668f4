"""listeners: a port is taken per protocol (UDP and TCP listeners may share one)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05
"""

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lb_listeners") as batch_op:
        batch_op.drop_constraint("uq_lb_listeners_lb_loadbalancer_id_protocol_port", type_="unique")
        batch_op.create_unique_constraint(
            "uq_lb_listeners_lb_loadbalancer_id_protocol_protocol_port",
            ["lb_loadbalancer_id", "protocol", "protocol_port"],
        )


def downgrade() -> None:
    with op.batch_alter_table("lb_listeners") as batch_op:
        batch_op.drop_constraint(
            "uq_lb_listeners_lb_loadbalancer_id_protocol_protocol_port", type_="unique"
        )
        batch_op.create_unique_constraint(
            "uq_lb_listeners_lb_loadbalancer_id_protocol_port",
            ["lb_loadbalancer_id", "protocol_port"],
        )
