"""What a commit promises: SQLite in WAL with synchronous=NORMAL; on PostgreSQL only telemetry
(``db.telemetry()``) skips waiting for the disk flush, every other write waits for it."""

from __future__ import annotations

import threading

from sqlalchemy import select, text

from shipyard.store import migrate
from shipyard.store.database import Database
from shipyard.store.users import UserRow


def test_commit_settings(database_url: str) -> None:
    db = Database(database_url)
    try:
        if db.is_sqlite:
            with db.read() as session:
                assert session.scalar(text("PRAGMA journal_mode")) == "wal"
                assert session.scalar(text("PRAGMA synchronous")) == 1  # NORMAL
            return
        show = text("SHOW synchronous_commit")
        with db.telemetry() as session:
            assert session.scalar(show) == "off"
        with db.write() as session:
            assert session.scalar(show) == "on"
        with db.read() as session:  # SET LOCAL ended with its transaction
            assert session.scalar(show) == "on"
    finally:
        db.dispose()


def test_writers_of_one_process_take_turns_without_sqlite_backoff(database_url: str) -> None:
    """Writers queue on the process's own lock (SQLite) and none is lost or fails."""
    db = Database(database_url, sqlite_busy_timeout_seconds=60)
    migrate.upgrade(db.engine)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for n in range(20):
                with db.telemetry() as session:
                    session.add(UserRow(name=f"w{i}-{n}", display_name="x"))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with db.read() as session:
            names = session.scalars(select(UserRow.name).where(UserRow.name.like("w%-%")))
            assert len(set(names)) == 6 * 20
    finally:
        db.dispose()
