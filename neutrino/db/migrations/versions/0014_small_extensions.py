"""subnet service types; routers' ha and distributed flags

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "subnets", sa.Column("service_types", sa.JSON(), server_default="[]", nullable=False)
    )
    for flag in ("ha", "distributed"):
        op.add_column(
            "routers", sa.Column(flag, sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    for flag in ("ha", "distributed"):
        op.drop_column("routers", flag)
    op.drop_column("subnets", "service_types")
