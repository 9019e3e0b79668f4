"""subnet pools and address scopes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "address_scopes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_scopes")),
    )
    with op.batch_alter_table("address_scopes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_address_scopes_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "subnetpools",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("prefixes", sa.JSON(), nullable=False),
        sa.Column("default_prefixlen", sa.Integer(), nullable=False),
        sa.Column("min_prefixlen", sa.Integer(), nullable=False),
        sa.Column("max_prefixlen", sa.Integer(), nullable=False),
        sa.Column("default_quota", sa.Integer(), nullable=True),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("address_scope_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["address_scope_id"],
            ["address_scopes.id"],
            name=op.f("fk_subnetpools_address_scope_id_address_scopes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subnetpools")),
    )
    with op.batch_alter_table("subnetpools", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subnetpools_address_scope_id"), ["address_scope_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_subnetpools_project_id"), ["project_id"], unique=False)

    with op.batch_alter_table("subnets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subnetpool_id", sa.String(length=36), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_subnets_subnetpool_id"), ["subnetpool_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_subnets_subnetpool_id_subnetpools"),
            "subnetpools",
            ["subnetpool_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("subnets", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_subnets_subnetpool_id_subnetpools"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_subnets_subnetpool_id"))
        batch_op.drop_column("subnetpool_id")
    op.drop_table("subnetpools")
    op.drop_table("address_scopes")
