"""One migration history for SQLite and PostgreSQL, in step with the ORM rows."""

from __future__ import annotations

from sqlalchemy import inspect

from shipyard.store import migrate
from shipyard.store.database import Database
from shipyard.store.schema import metadata


def test_upgrade_from_empty_reaches_head_and_has_no_drift(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert migrate.current_revision(db.engine) is None
        migrate.upgrade(db.engine)
        assert migrate.current_revision(db.engine) == migrate.head_revision(db.engine)
        tables = set(inspect(db.engine).get_table_names())
        assert set(metadata.tables) <= tables
        assert migrate.drift(db.engine) == []
        migrate.upgrade(db.engine)  # a second upgrade is a no-op
        assert migrate.current_revision(db.engine) == migrate.head_revision(db.engine)
    finally:
        db.dispose()


def test_drift_is_detected_when_rows_and_migrations_differ(database_url: str) -> None:
    """The drift check itself must be able to fail: an unmigrated table is reported."""
    db = Database(database_url)
    try:
        migrate.upgrade(db.engine)
        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE stray (id INTEGER PRIMARY KEY)")
        assert any("stray" in str(diff) for diff in migrate.drift(db.engine))
    finally:
        db.dispose()


def test_downgrade_to_base_and_back(database_url: str) -> None:
    db = Database(database_url)
    try:
        migrate.upgrade(db.engine)
        from alembic import command

        command.downgrade(migrate.alembic_config(db.engine), "base")
        assert migrate.current_revision(db.engine) is None
        assert not set(metadata.tables) & set(inspect(db.engine).get_table_names())
        migrate.upgrade(db.engine)
        assert migrate.drift(db.engine) == []
    finally:
        db.dispose()
