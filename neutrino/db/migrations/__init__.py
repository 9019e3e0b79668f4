"""Alembic migrations, applied programmatically on start (`upgrade`).

A new, empty database is not migrated step by step: it is made at once from what
db/schema.py declares and stamped at the newest revision, as alembic's own
cookbook does (replaying every migration rebuilds SQLite's tables again and again,
seconds of a first start). tests/unit/test_migrations.py checks that both ways
give the same database.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    inspect,
    text,
)

from neutrino.db import schema

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).parent
# Alembic's own table, as alembic makes it.
VERSION = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision. A database already there is not handed to
    alembic, slow to import and to read its scripts: a restart starts sooner."""
    at = applied(engine)
    if at == {newest()}:
        return
    if not at and not inspect(engine).get_table_names():
        with engine.begin() as conn:
            create(conn)
        return
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def create(conn: Connection) -> None:
    """Make a new database as the newest revision has it: the tables, their notifications on
    PostgreSQL, the rows every database starts with, and alembic's stamp."""
    schema.metadata.create_all(conn, checkfirst=False)  # upgrade found no table
    if conn.dialect.name == "postgresql":
        for statement in (schema.NOTIFY_FUNCTION, *schema.NOTIFY_TRIGGERS):
            conn.execute(text(statement))
    conn.execute(schema.feed_head.insert(), {"id": 1, "revision": 0})
    conn.execute(
        schema.default_security_group_rules.insert(),
        [{"id": str(uuid.uuid4()), **rule} for rule in schema.LEGACY_DEFAULT_RULES],
    )
    VERSION.create(conn)
    conn.execute(VERSION.insert(), {"version_num": newest()})


def newest() -> str:
    """The last revision: they are numbered in order, as their files (versions/NNNN_*.py)."""
    return max(path.name.split("_", 1)[0] for path in (HERE / "versions").glob("[0-9]*_*.py"))


def applied(engine: Engine) -> set[str]:
    """The revisions the database is at (none before its first migration)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return set()
        return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
