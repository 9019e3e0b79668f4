"""flavors, service profiles and routers' flavors

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flavors",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("service_type", sa.String(length=36), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flavors")),
    )
    op.create_table(
        "service_profiles",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("driver", sa.String(length=1024), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("metainfo", sa.String(length=4096), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_profiles")),
    )
    op.create_table(
        "flavor_service_profile_bindings",
        sa.Column("flavor_id", sa.String(length=36), nullable=False),
        sa.Column("service_profile_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["flavor_id"],
            ["flavors.id"],
            name=op.f("fk_flavor_service_profile_bindings_flavor_id_flavors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_profile_id"],
            ["service_profiles.id"],
            name=op.f("fk_flavor_service_profile_bindings_service_profile_id_service_profiles"),
        ),
        sa.PrimaryKeyConstraint(
            "flavor_id", "service_profile_id", name=op.f("pk_flavor_service_profile_bindings")
        ),
    )
    with op.batch_alter_table("routers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("flavor_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("service_provider", sa.String(length=255), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_routers_flavor_id_flavors"), "flavors", ["flavor_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("routers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_routers_flavor_id_flavors"), type_="foreignkey")
        batch_op.drop_column("service_provider")
        batch_op.drop_column("flavor_id")
    op.drop_table("flavor_service_profile_bindings")
    op.drop_table("service_profiles")
    op.drop_table("flavors")
