"""quality of service: policies, their rules, defaults, port and network bindings

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qos_policies",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qos_policies")),
    )
    op.create_index(
        op.f("ix_qos_policies_project_id"), "qos_policies", ["project_id"], unique=False
    )
    op.create_table(
        "qos_default_policies",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("policy_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["qos_policies.id"],
            name=op.f("fk_qos_default_policies_policy_id_qos_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_qos_default_policies")),
        sa.UniqueConstraint("policy_id", name=op.f("uq_qos_default_policies_policy_id")),
    )
    op.create_table(
        "qos_rules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("policy_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("max_kbps", sa.Integer(), nullable=True),
        sa.Column("max_burst_kbps", sa.Integer(), nullable=True),
        sa.Column("min_kbps", sa.Integer(), nullable=True),
        sa.Column("dscp_mark", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["qos_policies.id"],
            name=op.f("fk_qos_rules_policy_id_qos_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qos_rules")),
        sa.UniqueConstraint(
            "policy_id", "type", "direction", name=op.f("uq_qos_rules_policy_id_type_direction")
        ),
    )
    for owner, table in (("port", "ports"), ("network", "networks")):
        name = f"qos_{owner}_bindings"
        op.create_table(
            name,
            sa.Column(f"{owner}_id", sa.String(length=36), nullable=False),
            sa.Column("policy_id", sa.String(length=36), nullable=False),
            sa.ForeignKeyConstraint(
                [f"{owner}_id"],
                [f"{table}.id"],
                name=op.f(f"fk_{name}_{owner}_id_{table}"),
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["policy_id"],
                ["qos_policies.id"],
                name=op.f(f"fk_{name}_policy_id_qos_policies"),
            ),
            sa.PrimaryKeyConstraint(f"{owner}_id", name=op.f(f"pk_{name}")),
        )
        op.create_index(op.f(f"ix_{name}_policy_id"), name, ["policy_id"], unique=False)


def downgrade() -> None:
    for name in ("qos_network_bindings", "qos_port_bindings"):
        op.drop_index(op.f(f"ix_{name}_policy_id"), table_name=name)
        op.drop_table(name)
    op.drop_table("qos_rules")
    op.drop_table("qos_default_policies")
    op.drop_index(op.f("ix_qos_policies_project_id"), table_name="qos_policies")
    op.drop_table("qos_policies")
