"""metering labels and their rules

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metering_labels",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metering_labels")),
    )
    with op.batch_alter_table("metering_labels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_metering_labels_project_id"), ["project_id"], unique=False
        )
    op.create_table(
        "metering_label_rules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("metering_label_id", sa.String(length=36), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("remote_ip_prefix", sa.String(length=64), nullable=True),
        sa.Column("source_ip_prefix", sa.String(length=64), nullable=True),
        sa.Column("destination_ip_prefix", sa.String(length=64), nullable=True),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["metering_label_id"],
            ["metering_labels.id"],
            name=op.f("fk_metering_label_rules_metering_label_id_metering_labels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metering_label_rules")),
    )
    with op.batch_alter_table("metering_label_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_metering_label_rules_metering_label_id"),
            ["metering_label_id"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("metering_label_rules")
    op.drop_table("metering_labels")
