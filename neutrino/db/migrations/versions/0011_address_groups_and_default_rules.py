"""address groups, rules with a remote address group, default security group rules and
default statefulness

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

EGRESS = "Legacy default SG rule for egress traffic"
INGRESS = "Legacy default SG rule for ingress traffic"


def upgrade() -> None:
    op.create_table(
        "address_groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_groups")),
    )
    with op.batch_alter_table("address_groups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_address_groups_project_id"), ["project_id"], unique=False
        )
    op.create_table(
        "address_group_addresses",
        sa.Column("address_group_id", sa.String(length=36), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["address_group_id"],
            ["address_groups.id"],
            name=op.f("fk_address_group_addresses_address_group_id_address_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "address_group_id", "address", name=op.f("pk_address_group_addresses")
        ),
    )
    with op.batch_alter_table("security_group_rules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remote_address_group_id", sa.String(length=36)))
        batch_op.create_index(
            batch_op.f("ix_security_group_rules_remote_address_group_id"),
            ["remote_address_group_id"],
            unique=False,
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_security_group_rules_remote_address_group_id_address_groups"),
            "address_groups",
            ["remote_address_group_id"],
            ["id"],
        )
    templates = op.create_table(
        "default_security_group_rules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("ethertype", sa.String(length=8), nullable=False),
        sa.Column("protocol", sa.String(length=40)),
        sa.Column("port_range_min", sa.Integer()),
        sa.Column("port_range_max", sa.Integer()),
        sa.Column("remote_ip_prefix", sa.String(length=64)),
        sa.Column("remote_group_id", sa.String(length=36)),
        sa.Column("remote_address_group_id", sa.String(length=36)),
        sa.Column("used_in_default_sg", sa.Boolean(), nullable=False),
        sa.Column("used_in_non_default_sg", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_default_security_group_rules")),
    )
    # Neutron's own starting templates: what every group got before templates existed.
    op.bulk_insert(
        templates,
        [
            {
                "id": str(uuid.uuid4()),
                "description": INGRESS if direction == "ingress" else EGRESS,
                "direction": direction,
                "ethertype": ethertype,
                "remote_group_id": "PARENT" if direction == "ingress" else None,
                "used_in_default_sg": True,
                "used_in_non_default_sg": direction == "egress",
            }
            for direction in ("egress", "ingress")
            for ethertype in ("IPv4", "IPv6")
        ],
    )

    op.create_table(
        "security_groups_default_statefulness",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64)),
        sa.Column("stateful", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_groups_default_statefulness")),
        sa.UniqueConstraint(
            "project_id", name=op.f("uq_security_groups_default_statefulness_project_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("security_groups_default_statefulness")
    op.drop_table("default_security_group_rules")
    with op.batch_alter_table("security_group_rules", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_security_group_rules_remote_address_group_id_address_groups"),
            type_="foreignkey",
        )
        batch_op.drop_index(batch_op.f("ix_security_group_rules_remote_address_group_id"))
        batch_op.drop_column("remote_address_group_id")
    op.drop_table("address_group_addresses")
    with op.batch_alter_table("address_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_address_groups_project_id"))
    op.drop_table("address_groups")
