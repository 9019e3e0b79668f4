"""the key manager's secrets, containers, their ACLs and the containers' consumers

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def entity() -> list[sa.Column]:
    return [
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("creator_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "km_secrets",
        *entity(),
        sa.Column("secret_type", sa.String(length=80), nullable=False),
        sa.Column("expiration", sa.DateTime(), nullable=True),
        sa.Column("algorithm", sa.String(length=255), nullable=True),
        sa.Column("bit_length", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(length=255), nullable=True),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_km_secrets")),
    )
    op.create_index(op.f("ix_km_secrets_project_id"), "km_secrets", ["project_id"])
    op.create_table(
        "km_containers",
        *entity(),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_km_containers")),
    )
    op.create_index(op.f("ix_km_containers_project_id"), "km_containers", ["project_id"])
    op.create_table(
        "km_container_secrets",
        sa.Column("container_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("secret_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["container_id"],
            ["km_containers.id"],
            name=op.f("fk_km_container_secrets_container_id_km_containers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["secret_id"],
            ["km_secrets.id"],
            name=op.f("fk_km_container_secrets_secret_id_km_secrets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("container_id", "position", name=op.f("pk_km_container_secrets")),
    )
    op.create_index(
        op.f("ix_km_container_secrets_secret_id"), "km_container_secrets", ["secret_id"]
    )
    for table, column in (("km_secrets", "secret_id"), ("km_containers", "container_id")):
        acls = f"{table[:-1]}_acls"
        op.create_table(
            acls,
            sa.Column(column, sa.String(length=36), nullable=False),
            sa.Column("project_access", sa.Boolean(), nullable=False),
            sa.Column("users", sa.JSON(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(
                [column],
                [f"{table}.id"],
                name=op.f(f"fk_{acls}_{column}_{table}"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint(column, name=op.f(f"pk_{acls}")),
        )
    op.create_table(
        "km_container_consumers",
        sa.Column("container_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=36), nullable=False),
        sa.Column("url", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["container_id"],
            ["km_containers.id"],
            name=op.f("fk_km_container_consumers_container_id_km_containers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "container_id", "name", "url", name=op.f("pk_km_container_consumers")
        ),
    )


def downgrade() -> None:
    for table in (
        "km_container_consumers",
        "km_container_acls",
        "km_secret_acls",
        "km_container_secrets",
        "km_containers",
        "km_secrets",
    ):
        op.drop_table(table)
