"""extra dhcp options of ports

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "extra_dhcp_opts",
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("opt_name", sa.String(length=64), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("opt_value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["port_id"],
            ["ports.id"],
            name=op.f("fk_extra_dhcp_opts_port_id_ports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "port_id", "opt_name", "ip_version", name=op.f("pk_extra_dhcp_opts")
        ),
    )


def downgrade() -> None:
    op.drop_table("extra_dhcp_opts")
