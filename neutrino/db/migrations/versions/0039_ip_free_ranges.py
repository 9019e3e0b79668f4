"""each subnet's free addresses as ranges, so allocating never reads its allocations

Revision ID: 0039
Revises: 0037
Create Date: 2026-12-06
"""

import ipaddress
import json

import sqlalchemy as sa
from alembic import op

revision = "0039"
down_revision = "0037"
branch_labels = None
depends_on = None


def sortable(value: int, version: int) -> str:
    return f"{value:0{8 if version == 4 else 32}x}"


def upgrade() -> None:
    ranges = op.create_table(
        "ip_free_ranges",
        sa.Column("subnet_id", sa.String(36), nullable=False),
        sa.Column("first_ip", sa.String(32), nullable=False),
        sa.Column("last_ip", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["subnets.id"],
            name=op.f("fk_ip_free_ranges_subnet_id_subnets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subnet_id", "first_ip", name=op.f("pk_ip_free_ranges")),
        sa.UniqueConstraint(
            "subnet_id", "last_ip", name=op.f("uq_ip_free_ranges_subnet_id_last_ip")
        ),
    )
    conn = op.get_bind()
    subnets = conn.execute(sa.text("SELECT id, ip_version, allocation_pools FROM subnets")).all()
    for subnet_id, version, pools in subnets:
        if isinstance(pools, str):
            pools = json.loads(pools)
        taken = {
            int(ipaddress.ip_address(ip))
            for (ip,) in conn.execute(
                sa.text("SELECT ip_address FROM ip_allocations WHERE subnet_id = :s"),
                {"s": subnet_id},
            )
        }
        rows = []
        for pool in pools:
            start = int(ipaddress.ip_address(pool["start"]))
            end = int(ipaddress.ip_address(pool["end"]))
            low = start
            for value in sorted(v for v in taken if start <= v <= end):
                if value > low:
                    rows.append((low, value - 1))
                low = value + 1
            if low <= end:
                rows.append((low, end))
        op.bulk_insert(
            ranges,
            [
                {
                    "subnet_id": subnet_id,
                    "first_ip": sortable(first, version),
                    "last_ip": sortable(last, version),
                }
                for first, last in rows
            ],
        )


def downgrade() -> None:
    op.drop_table("ip_free_ranges")
