"""rbac policies: shared subnet pools, address scopes and QoS policies become grants to every
project

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# table -> the object type of its policies
OBJECT_TYPES = {
    "subnetpools": "subnetpool",
    "address_scopes": "address_scope",
    "qos_policies": "qos_policy",
}
POLICIES = sa.table(
    "rbac_policies",
    sa.column("id", sa.String),
    sa.column("project_id", sa.String),
    sa.column("object_type", sa.String),
    sa.column("object_id", sa.String),
    sa.column("action", sa.String),
    sa.column("target_project", sa.String),
)


def upgrade() -> None:
    bind = op.get_bind()
    for name, object_type in OBJECT_TYPES.items():
        table = sa.table(
            name,
            sa.column("id", sa.String),
            sa.column("project_id", sa.String),
            sa.column("shared", sa.Boolean),
        )
        grants = [
            {
                "id": str(uuid.uuid4()),
                "project_id": project_id,
                "object_type": object_type,
                "object_id": object_id,
                "action": "access_as_shared",
                "target_project": "*",
            }
            for object_id, project_id in bind.execute(
                sa.select(table.c.id, table.c.project_id).where(table.c.shared)
            )
        ]
        if grants:
            op.bulk_insert(POLICIES, grants)
        with op.batch_alter_table(name) as batch:
            batch.drop_column("shared")


def downgrade() -> None:
    for name, object_type in OBJECT_TYPES.items():
        with op.batch_alter_table(name) as batch:
            batch.add_column(
                sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false())
            )
        op.execute(
            f"UPDATE {name} SET shared = (id IN (SELECT object_id FROM rbac_policies WHERE "
            f"object_type = '{object_type}' AND action = 'access_as_shared' "
            "AND target_project = '*'))"
        )
        op.execute(f"DELETE FROM rbac_policies WHERE object_type = '{object_type}'")
