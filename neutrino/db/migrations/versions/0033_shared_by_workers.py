"""what several server processes share: dashboard sessions, and notifications of commits

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

# table -> the channel its writes are announced on (db.CHANNELS): a process LISTENing there
# wakes its long-polls, or forgets the tokens it checked.
NOTIFIED = {
    "feed_head": "neutrino_feed",
    "domains": "neutrino_identity",
    "projects": "neutrino_identity",
    "users": "neutrino_identity",
    "roles": "neutrino_identity",
    "role_assignments": "neutrino_identity",
    "revoked_tokens": "neutrino_identity",
}


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("session", sa.JSON, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False, index=True),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    # One notification a transaction and channel: PostgreSQL folds identical ones, and delivers
    # them at commit.
    op.execute(
        "CREATE FUNCTION neutrino_notify() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify(TG_ARGV[0], ''); RETURN NULL; END $$"
    )
    for table, channel in NOTIFIED.items():
        op.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION neutrino_notify('{channel}')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in NOTIFIED:
            op.execute(f"DROP TRIGGER {table}_notify ON {table}")
        op.execute("DROP FUNCTION neutrino_notify()")
    op.drop_table("dashboard_sessions")
