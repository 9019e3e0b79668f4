"""ports indexed by the host they are bound to: what a host's report reads

Revision ID: 0050
Revises: 0049
Create Date: 2026-12-07
"""

from alembic import op

revision = "0050"
down_revision = "0049"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_ports_binding_host_id"), "ports", ["binding_host_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ports_binding_host_id"), table_name="ports")
