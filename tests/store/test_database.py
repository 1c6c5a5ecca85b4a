"""Concurrent writers wait for each other instead of failing with "database is locked"."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from sqlalchemy import select

from shipyard.store import migrate
from shipyard.store.database import Database
from shipyard.store.users import UserRow
from tests.conftest import start_server

WRITERS = 8
WRITES_EACH = 25


def test_read_then_write_transactions_do_not_fail_under_contention(database_url: str) -> None:
    """Each transaction reads, then writes: the pattern that deadlocks a deferred SQLite BEGIN."""
    db = Database(database_url, sqlite_busy_timeout_seconds=60)
    migrate.upgrade(db.engine)
    with db.write() as session:
        session.add(UserRow(name="counter", display_name="0"))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(WRITES_EACH):
                with db.write() as session:
                    # FOR UPDATE: PostgreSQL's read committed would otherwise lose increments.
                    query = select(UserRow).where(UserRow.name == "counter").with_for_update()
                    row = session.scalars(query).one()
                    row.display_name = str(int(row.display_name or "0") + 1)
        except BaseException as exc:  # collected and reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with db.read() as session:
            row = session.scalars(select(UserRow).where(UserRow.name == "counter")).one()
            # No lost updates either: every increment landed.
            assert row.display_name == str(WRITERS * WRITES_EACH)
    finally:
        db.dispose()


def test_concurrent_api_writers_all_succeed(tmp_path: Path, database_url: str) -> None:
    with start_server(tmp_path, database_url) as server:
        for i in range(WRITERS):
            httpx.post(
                f"{server.url}/api/v1/workspaces", json={"name": f"busy-{i}"}, headers=server.auth
            ).raise_for_status()
        statuses: list[int] = []
        lock = threading.Lock()

        def work(i: int) -> None:
            with httpx.Client(base_url=server.url, headers=server.auth, timeout=60) as client:
                for n in range(WRITES_EACH):
                    response = client.patch(
                        f"/api/v1/workspaces/busy-{i % 3}", json={"description": f"{i}-{n}"}
                    )
                    created = client.post("/api/v1/workspaces", json={"name": f"c-{i}-{n}"})
                    with lock:
                        statuses.extend([response.status_code, created.status_code])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(statuses) == WRITERS * WRITES_EACH * 2
        assert set(statuses) <= {200, 201}, sorted(set(statuses))
