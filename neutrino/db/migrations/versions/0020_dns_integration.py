"""ports' dns_name and dns_domain, networks' dns_domain

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

COLUMNS = (("ports", "dns_name"), ("ports", "dns_domain"), ("networks", "dns_domain"))


def upgrade() -> None:
    for table, column in COLUMNS:
        op.add_column(table, sa.Column(column, sa.String(255), server_default="", nullable=False))


def downgrade() -> None:
    for table, column in reversed(COLUMNS):
        op.drop_column(table, column)
