"""a subnet's free ranges keep one index, their key: no second one by their last address

Revision ID: 0047
Revises: 0046
Create Date: 2026-12-07
"""

from alembic import op

revision = "0047"
down_revision = "0046"
branch_labels = None
depends_on = None

NAME = "uq_ip_free_ranges_subnet_id_last_ip"


def upgrade() -> None:
    with op.batch_alter_table("ip_free_ranges") as batch:
        batch.drop_constraint(batch.f(NAME), type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("ip_free_ranges") as batch:
        batch.create_unique_constraint(batch.f(NAME), ["subnet_id", "last_ip"])
