"""rbac policies: shared and external networks become grants to every project

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    policies = op.create_table(
        "rbac_policies",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=255), nullable=False),
        sa.Column("target_project", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rbac_policies")),
        sa.UniqueConstraint(
            "object_type",
            "object_id",
            "action",
            "target_project",
            name=op.f("uq_rbac_policies_object_type_object_id_action_target_project"),
        ),
    )
    for column in ("project_id", "object_id", "target_project"):
        op.create_index(op.f(f"ix_rbac_policies_{column}"), "rbac_policies", [column])
    networks = sa.table(
        "networks",
        sa.column("id", sa.String),
        sa.column("project_id", sa.String),
        sa.column("shared", sa.Boolean),
        sa.column("external", sa.Boolean),
    )
    bind = op.get_bind()
    grants = []
    for flag, action in (
        (networks.c.shared, "access_as_shared"),
        (networks.c.external, "access_as_external"),
    ):
        for network_id, project_id in bind.execute(
            sa.select(networks.c.id, networks.c.project_id).where(flag)
        ):
            grants.append(
                {
                    "id": str(uuid.uuid4()),
                    "project_id": project_id,
                    "object_type": "network",
                    "object_id": network_id,
                    "action": action,
                    "target_project": "*",
                }
            )
    if grants:
        op.bulk_insert(policies, grants)
    with op.batch_alter_table("networks") as batch:
        batch.drop_column("shared")


def downgrade() -> None:
    with op.batch_alter_table("networks") as batch:
        batch.add_column(
            sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(
        "UPDATE networks SET shared = (id IN (SELECT object_id FROM rbac_policies WHERE "
        "object_type = 'network' AND action = 'access_as_shared' AND target_project = '*'))"
    )
    op.drop_table("rbac_policies")
