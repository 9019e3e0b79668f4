"""Alembic migrations, applied programmatically on start (`upgrade`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).parent


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision. A database already there is not handed to
    alembic, slow to import and to read its scripts: a restart starts sooner."""
    if applied(engine) == {newest()}:
        return
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def newest() -> str:
    """The last revision: they are numbered in order, as their files (versions/NNNN_*.py)."""
    return max(path.name.split("_", 1)[0] for path in (HERE / "versions").glob("[0-9]*_*.py"))


def applied(engine: Engine) -> set[str]:
    """The revisions the database is at (none before its first migration)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return set()
        return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
