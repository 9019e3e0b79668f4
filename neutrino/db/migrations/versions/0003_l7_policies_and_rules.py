"""l7 policies and rules

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lb_l7policies",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("provisioning_status", sa.String(length=16), nullable=False),
        sa.Column("operating_status", sa.String(length=16), nullable=False),
        sa.Column("lb_listener_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("redirect_pool_id", sa.String(length=36), nullable=True),
        sa.Column("redirect_url", sa.String(length=2048), nullable=True),
        sa.Column("redirect_prefix", sa.String(length=2048), nullable=True),
        sa.Column("redirect_http_code", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["lb_listener_id"],
            ["lb_listeners.id"],
            name=op.f("fk_lb_l7policies_lb_listener_id_lb_listeners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lb_l7policies")),
    )
    with op.batch_alter_table("lb_l7policies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lb_l7policies_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "lb_l7rules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("provisioning_status", sa.String(length=16), nullable=False),
        sa.Column("operating_status", sa.String(length=16), nullable=False),
        sa.Column("lb_l7policy_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("compare_type", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=True),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("invert", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lb_l7policy_id"],
            ["lb_l7policies.id"],
            name=op.f("fk_lb_l7rules_lb_l7policy_id_lb_l7policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lb_l7rules")),
    )
    with op.batch_alter_table("lb_l7rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lb_l7rules_project_id"), ["project_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lb_l7rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lb_l7rules_project_id"))

    op.drop_table("lb_l7rules")
    with op.batch_alter_table("lb_l7policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lb_l7policies_project_id"))

    op.drop_table("lb_l7policies")
