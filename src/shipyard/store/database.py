"""The engine and the two kinds of transaction: read and write.

SQLite allows one writer at a time. A deferred transaction that reads first and writes later
cannot wait for the lock (SQLite reports "database is locked" at once to avoid a deadlock),
so write transactions start with ``BEGIN IMMEDIATE`` and wait up to the busy timeout instead.
Readers keep plain ``BEGIN``; in WAL mode they never block the writer.

Writers of one process also queue on a lock of their own before ``BEGIN IMMEDIATE``: SQLite's
busy handler waits by sleeping in growing steps (up to 100 ms), so writers that met at the
database lock would each lose a good part of that after the lock was already free; on the
process lock the next writer starts the moment the previous one commits. Other processes
(a CLI command, a second server) still meet at SQLite's lock and its busy timeout.

Durability: SQLite runs WAL with ``synchronous=NORMAL``: a commit survives the server process
crashing; after a power loss or an OS crash the last commits may roll back, and the file is
never corrupt (fsync happens at checkpoints). On PostgreSQL every transaction commits
synchronously except telemetry (``db.telemetry()``: metric points, params, tags a run logs),
which sets ``synchronous_commit = off`` for that transaction only: a crash of the database
server may forget the last fraction of a second of logged points (never corrupt anything,
never reorder them), in exchange for not waiting on a disk flush for each of thousands of
small commits a minute. Runs, access control, the audit log and everything else wait for the
flush as before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from shipyard.store import authz_state

_BEGIN = "shipyard_sqlite_begin"
_ASYNC_COMMIT = text("SET LOCAL synchronous_commit TO OFF")
_SNAPSHOT = text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


class Database:
    def __init__(self, url: str, *, sqlite_busy_timeout_seconds: float = 60) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, sqlite_busy_timeout_seconds)
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        # Reentrant: a write opened inside a write on the same thread fails at SQLite's lock
        # (as it always did) instead of waiting for itself forever.
        self._writers: AbstractContextManager[object] = (
            threading.RLock() if self.is_sqlite else nullcontext()
        )
        writer = self.engine.execution_options(**{_BEGIN: "IMMEDIATE"})
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(writer, expire_on_commit=False)
        authz_state.watch(self._write)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction that sees one snapshot throughout. PostgreSQL's default (read
        committed) takes a new snapshot per statement, so a view built from several queries
        could mix states: a job read as Completed from one row with no end time from the
        next. SQLite's read transactions are snapshots already."""
        with self._read() as session, session.begin():
            if not self.is_sqlite:
                session.execute(_SNAPSHOT)
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits when the block ends and rolls back on an exception."""
        with self._writers, self._write() as session, session.begin():
            yield session

    @contextmanager
    def telemetry(self) -> Iterator[Session]:
        """A write transaction for what runs log (see the module's note on durability)."""
        with self._writers, self._write() as session, session.begin():
            if not self.is_sqlite:
                session.execute(_ASYNC_COMMIT)
            yield session

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A bare read transaction on a Core connection, for the statements every request
        runs (authentication): no ORM session to build, no identity map to fill."""
        with self.engine.connect() as conn:
            yield conn

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_engine(url: str, busy_timeout: float) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so the "begin" hook below decides.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # LIKE is case-sensitive on PostgreSQL; make SQLite's agree (ILIKE is the other one).
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(_BEGIN, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
