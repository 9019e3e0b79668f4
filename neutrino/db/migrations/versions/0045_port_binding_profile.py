"""ports' binding profile: what the host binding a port needs, as its device's name

Revision ID: 0045
Revises: 0039
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0045"
down_revision = "0039"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "ports", sa.Column("binding_profile", sa.JSON(), server_default="{}", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("ports", "binding_profile")
