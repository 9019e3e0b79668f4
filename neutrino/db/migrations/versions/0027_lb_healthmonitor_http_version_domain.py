"""health monitors' HTTP version and domain name

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("lb_healthmonitors", sa.Column("http_version", sa.Float, nullable=True))
    op.add_column("lb_healthmonitors", sa.Column("domain_name", sa.String(255), nullable=True))


def downgrade() -> None:
    op.drop_column("lb_healthmonitors", "domain_name")
    op.drop_column("lb_healthmonitors", "http_version")
