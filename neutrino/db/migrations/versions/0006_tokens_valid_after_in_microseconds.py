"""tokens_valid_after in microseconds

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Same column, finer unit: the moment a password changed, in Unix microseconds.
    op.execute("UPDATE users SET tokens_valid_after = tokens_valid_after * 1000000")


def downgrade() -> None:
    op.execute("UPDATE users SET tokens_valid_after = tokens_valid_after / 1000000")
