"""Octavia's flavors and availability zones, with their profiles; load balancers name them

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# (profile table, its data column, table naming a profile, its key column and type)
KINDS = (
    ("lb_flavor_profiles", "flavor_data", "lb_flavors", "id", sa.String(length=36)),
    (
        "lb_availability_zone_profiles",
        "availability_zone_data",
        "lb_availability_zones",
        "name",
        sa.String(length=255),
    ),
)


def upgrade() -> None:
    for profiles, data, named, key, key_type in KINDS:
        op.create_table(
            profiles,
            sa.Column("id", sa.String(length=36), nullable=False),
            sa.Column("name", sa.String(length=255), nullable=False),
            sa.Column("provider_name", sa.String(length=255), nullable=False),
            sa.Column(data, sa.String(length=4096), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{profiles}")),
        )
        profile_id = f"{profiles[3:-1]}_id"
        op.create_table(
            named,
            sa.Column(key, key_type, nullable=False),
            *([sa.Column("name", sa.String(length=255), nullable=False)] if key == "id" else []),
            sa.Column("description", sa.String(length=255), nullable=True),
            sa.Column("enabled", sa.Boolean(), nullable=False),
            sa.Column(profile_id, sa.String(length=36), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(
                [profile_id], [f"{profiles}.id"], name=op.f(f"fk_{named}_{profile_id}_{profiles}")
            ),
            sa.PrimaryKeyConstraint(key, name=op.f(f"pk_{named}")),
            *([sa.UniqueConstraint("name", name=op.f(f"uq_{named}_name"))] if key == "id" else []),
        )
    with op.batch_alter_table("lb_loadbalancers") as batch:
        batch.add_column(sa.Column("flavor_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("availability_zone", sa.String(length=255), nullable=True))
        for column, (_, _, named, key, _) in zip(("flavor_id", "availability_zone"), KINDS):
            batch.create_index(batch.f(f"ix_lb_loadbalancers_{column}"), [column], unique=False)
            batch.create_foreign_key(
                batch.f(f"fk_lb_loadbalancers_{column}_{named}"), named, [column], [key]
            )


def downgrade() -> None:
    with op.batch_alter_table("lb_loadbalancers") as batch:
        for column, (_, _, named, _, _) in zip(("flavor_id", "availability_zone"), KINDS):
            batch.drop_constraint(
                batch.f(f"fk_lb_loadbalancers_{column}_{named}"), type_="foreignkey"
            )
            batch.drop_index(batch.f(f"ix_lb_loadbalancers_{column}"))
            batch.drop_column(column)
    for profiles, _, named, _, _ in reversed(KINDS):
        op.drop_table(named)
        op.drop_table(profiles)
