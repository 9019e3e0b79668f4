"""The migrations build exactly the schema the code declares."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from neutrino.db import Database
from neutrino.db.migrations import alembic_config
from neutrino.db.schema import metadata


def test_migrated_database_matches_schema(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    db.dispose()
    assert diff == []


def test_password_change_moments_move_to_microseconds(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    config = alembic_config(db.engine)
    command.upgrade(config, "0005")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO domains (id, name, description, enabled) "
                "VALUES ('default', 'Default', '', true)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO users (id, name, domain_id, enabled, description, "
                "tokens_valid_after) VALUES ('u', 'u', 'default', true, '', 1764942000)"
            )
        )
    db.migrate()
    with db.engine.connect() as conn:
        moment = conn.execute(text("SELECT tokens_valid_after FROM users")).scalar_one()
    db.dispose()
    assert moment == 1764942000 * 1_000_000
