"""Experiments, runs (= jobs), and what runs log: metrics, params, tags.

A run is a job: the ``jobs`` table holds interactive runs today; command, pipeline and sweep
jobs join it later with their own ``job_type``. Metrics are append-only points; the latest
value of each key is kept beside them so searching and ordering by a metric needs no scan.
SQLite turns NaN into NULL, so NaN is stored as a flag with a NULL value on every backend.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from itertools import chain
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    insert,
    select,
    tuple_,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow
from shipyard.store.driver import DriverStatement
from shipyard.store.workspaces import WorkspaceRow

POINT_ID = BigInteger().with_variant(Integer, "sqlite")


class ExperimentRow(Base):
    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(256))
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class JobRow(Base):
    __tablename__ = "jobs"
    # A search names its experiments (MLflow's always does): with both ids in one index its
    # cost follows the experiments' runs, not the whole workspace's, and the rows come in
    # the search's default order (newest first), so a page can stop early. A lookup by
    # workspace alone uses the index's first column.
    __table_args__ = (
        Index("ix_jobs_workspace_experiment", "workspace_id", "experiment_id", "start_time", "id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(256))
    job_type: Mapped[str] = mapped_column(String(32), default="interactive")
    status: Mapped[str] = mapped_column(String(32))
    parent_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_by: Mapped[str] = mapped_column(String(32))
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")
    start_time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    end_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # (status, time) pairs: every status the job passed through, and when.
    status_history: Mapped[list[Any]] = mapped_column(default=list)


class MetricPointRow(Base):
    __tablename__ = "metric_points"
    __table_args__ = (Index("ix_metric_points_job_key_step", "job_id", "key", "step"),)

    id: Mapped[int] = mapped_column(POINT_ID, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    step: Mapped[int] = mapped_column(BigInteger, default=0)
    timestamp: Mapped[int] = mapped_column(BigInteger)  # ms since the epoch, as MLflow sends
    value: Mapped[float | None] = mapped_column(Float)
    is_nan: Mapped[bool] = mapped_column(Boolean, default=False)


class LatestMetricRow(Base):
    __tablename__ = "latest_metrics"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float)
    is_nan: Mapped[bool] = mapped_column(Boolean, default=False)


class ParamRow(Base):
    __tablename__ = "params"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class JobTagRow(Base):
    __tablename__ = "job_tags"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


def get_experiment(session: Session, workspace_id: str, name: str) -> ExperimentRow | None:
    query = select(ExperimentRow).where(
        ExperimentRow.workspace_id == workspace_id, ExperimentRow.name == name
    )
    return session.scalars(query).one_or_none()


def get_experiment_by_id(
    session: Session, workspace_id: str, experiment_id: str
) -> ExperimentRow | None:
    row = session.get(ExperimentRow, experiment_id)
    return row if row is not None and row.workspace_id == workspace_id else None


def list_experiments(
    session: Session, workspace_id: str, *, stage: str, after: str | None, limit: int
) -> list[ExperimentRow]:
    query = (
        select(ExperimentRow)
        .where(ExperimentRow.workspace_id == workspace_id, ExperimentRow.lifecycle_stage == stage)
        .order_by(ExperimentRow.name)
        .limit(limit)
    )
    if after is not None:
        query = query.where(ExperimentRow.name > after)
    return list(session.scalars(query))


def get_job(session: Session, workspace_id: str, job_id: str) -> JobRow | None:
    row = session.get(JobRow, job_id)
    return row if row is not None and row.workspace_id == workspace_id else None


def list_jobs(
    session: Session,
    workspace_id: str,
    *,
    experiment_id: str | None,
    parent_id: str | None,
    after: str | None,
    limit: int,
) -> list[JobRow]:
    query = (
        select(JobRow)
        .where(JobRow.workspace_id == workspace_id, JobRow.lifecycle_stage == "active")
        .order_by(JobRow.id)
        .limit(limit)
    )
    if experiment_id is not None:
        query = query.where(JobRow.experiment_id == experiment_id)
    if parent_id is not None:
        query = query.where(JobRow.parent_id == parent_id)
    if after is not None:
        query = query.where(JobRow.id > after)
    return list(session.scalars(query))


# A job's columns, to select rows rather than ORM objects where many are read at once.
JOB_COLUMNS = tuple(getattr(JobRow, c.key) for c in JobRow.__table__.columns)


def names_of(session: Session | Connection, row_type: Any, ids: set[str]) -> dict[str, str]:
    """id → name for rows of a table with ``id`` and ``name`` columns."""
    if not ids:
        return {}
    query = select(row_type.id, row_type.name).where(row_type.id.in_(ids))
    return {row[0]: row[1] for row in session.execute(query)}


# --- the hot paths: prebuilt statements on the session's connection ------------------------
#
# Logging and reading points runs thousands of times a minute with up to 1,000 points (the
# native SDK up to MAX_COLUMN_POINTS) per call, so these skip the ORM: statements are built
# once (compiled once per dialect) and run on the driver's cursor (``store.driver``), points
# go in as plain tuples.

# A point as stored: (job_id, key, step, timestamp, value or None for NaN, is_nan).
PointRow = tuple[str, str, int, int, float | None, bool]
# A point as read back: (step, timestamp, value); NaN comes back as float("nan").
Point = tuple[int, int, float]


class RunState(NamedTuple):
    id: str
    lifecycle_stage: str


class ExperimentState(NamedTuple):
    id: str
    name: str
    lifecycle_stage: str
    workspace_id: str


_EXPERIMENT_IN_WORKSPACE = (
    select(ExperimentRow.id, ExperimentRow.name, ExperimentRow.lifecycle_stage, WorkspaceRow.id)
    .join(WorkspaceRow, WorkspaceRow.id == ExperimentRow.workspace_id)
    .where(
        ExperimentRow.id == bindparam("experiment_id"), WorkspaceRow.name == bindparam("workspace")
    )
)


def experiment_state(
    conn: Connection | Session, workspace: str, experiment_id: str
) -> ExperimentState | None:
    """An experiment of the workspace named ``workspace``, with the workspace's id, in one
    indexed statement."""
    params = {"experiment_id": experiment_id, "workspace": workspace}
    connection = conn.connection() if isinstance(conn, Session) else conn
    row = _EXPERIMENT_STATE.execute(connection, params).fetchone()
    return None if row is None else ExperimentState(row[0], row[1], row[2], row[3])


_INSERT_JOB = insert(cast(Table, JobRow.__table__))
_INSERT_TAGS = insert(cast(Table, JobTagRow.__table__))


def insert_job(conn: Connection | Session, values: dict[str, Any]) -> None:
    """A new job row from all its column values (no ORM unit of work: runs are created
    thousands at a time by sweeps and scripts)."""
    conn.execute(_INSERT_JOB, values)


def insert_tags(conn: Connection | Session, job_id: str, tags: dict[str, str]) -> None:
    """Tags of a job that has none yet."""
    if tags:
        conn.execute(
            _INSERT_TAGS, [{"job_id": job_id, "key": k, "value": v} for k, v in tags.items()]
        )


_RUN_IN_WORKSPACE = (
    select(JobRow.id, JobRow.lifecycle_stage)
    .join(WorkspaceRow, WorkspaceRow.id == JobRow.workspace_id)
    .where(JobRow.id == bindparam("run_id"), WorkspaceRow.name == bindparam("workspace"))
)


_RUN_STATE = DriverStatement(_RUN_IN_WORKSPACE)
_EXPERIMENT_STATE = DriverStatement(_EXPERIMENT_IN_WORKSPACE)


def run_state(conn: Connection, workspace: str, run_id: str) -> RunState | None:
    """A run of the workspace named ``workspace``, in one indexed statement."""
    row = _RUN_STATE.execute(conn, {"run_id": run_id, "workspace": workspace}).fetchone()
    return None if row is None else RunState(row[0], row[1])


_POINT_COLUMNS = ("job_id", "key", "step", "timestamp", "value", "is_nan")
# Below this many points a COPY's extra round trips cost more than it saves.
_COPY_MIN_POINTS = 64
# Rows per multi-row INSERT on SQLite (6 parameters each; SQLite allows 32,766 parameters
# per statement since 3.32, 999 before).
_ROWS_PER_INSERT = 500


def insert_points(conn: Connection, points: Sequence[PointRow]) -> None:
    """Append points: COPY on PostgreSQL (half the time of executemany for a batch), multi-row
    INSERTs of 500 points on SQLite.

    Why not executemany on SQLite: Python's driver releases the GIL around every row it steps,
    and a thread that gives the GIL away waits up to the interpreter's switch interval (5 ms)
    to get it back while another thread runs Python, so with requests being parsed alongside,
    10,000 points took seconds. One statement per 500 rows steps once."""
    if not points:
        return
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(c) for c in _POINT_COLUMNS)
    table = quote(MetricPointRow.__tablename__)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    if dialect.name == "postgresql" and len(points) >= _COPY_MIN_POINTS:
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for point in points:
                copy.write_row(point)
        return
    mark, chunk = _marks(conn, len(points))
    row = "(" + ", ".join([mark] * len(_POINT_COLUMNS)) + ")"
    for start in range(0, len(points), chunk):
        part = points[start : start + chunk]
        # Names are our own constants, quoted by the dialect; every value is a bound parameter.
        sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([row] * len(part))  # noqa: S608
        cursor.execute(sql, tuple(chain.from_iterable(part)))


def _marks(conn: Connection, rows: int) -> tuple[str, int]:
    """The driver's parameter mark, and how many point rows one statement may carry: all of
    them on PostgreSQL; 500 on SQLite, fewer where its limit of parameters is lower (999
    before 3.32)."""
    if conn.dialect.name == "postgresql":
        return "%s", max(rows, 1)
    chunk = _ROWS_PER_INSERT
    if rows * len(_POINT_COLUMNS) > 999:
        limit = conn.connection.driver_connection.getlimit(  # type: ignore[union-attr]
            sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
        )
        chunk = min(chunk, limit // len(_POINT_COLUMNS))
    return "?", chunk


def upsert_latest(conn: Connection, points: Sequence[PointRow]) -> None:
    """Keep each key's latest value: ``points`` holds at most one point per key (PostgreSQL's
    ON CONFLICT touches a row once per statement). Only a later point replaces the latest
    value (MLflow's rule: the higher step, then the later time). Multi-row statements on the
    driver's cursor, like ``insert_points`` (the same spelling on both backends but for the
    parameter mark)."""
    if not points:
        return
    quote = conn.dialect.identifier_preparer.quote
    table = quote(LatestMetricRow.__tablename__)
    job_id, key, step, timestamp = (quote(c) for c in _POINT_COLUMNS[:4])
    mark, chunk = _marks(conn, len(points))
    row = "(" + ", ".join([mark] * len(_POINT_COLUMNS)) + ")"
    columns = ", ".join(quote(c) for c in _POINT_COLUMNS)
    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in _POINT_COLUMNS[2:])
    later = (
        f"excluded.{step} > {table}.{step} OR (excluded.{step} = {table}.{step} "
        f"AND excluded.{timestamp} >= {table}.{timestamp})"
    )
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    for start in range(0, len(points), chunk):
        part = points[start : start + chunk]
        # Names are our own constants, quoted by the dialect; every value is a bound parameter.
        sql = (
            f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608
            + ", ".join([row] * len(part))
            + f" ON CONFLICT ({job_id}, {key}) DO UPDATE SET {updates} WHERE {later}"
        )
        cursor.execute(sql, tuple(chain.from_iterable(part)))


def metric_history(
    conn: Connection,
    job_id: str,
    key: str,
    *,
    after: tuple[int, int, int] | None = None,
    limit: int | None = None,
) -> list[tuple[int, int, float, int]]:
    """(step, timestamp, value, id) in (step, timestamp, id) order, from after ``after`` (the
    (step, timestamp, id) of the last point of the previous page): keyset paging, so a late
    page costs what the first did. NaN comes back as float("nan"). Read on the driver's
    cursor, all rows at once: a history holds up to millions of points."""
    query = _HISTORY[(after is not None, limit is not None)]
    params: dict[str, Any] = {"job_id": job_id, "key": key}
    if limit is not None:
        params["limit"] = limit
    if after is not None:
        params.update(after_step=after[0], after_timestamp=after[1], after_id=after[2])
    nan = float("nan")
    return [
        (step, ts, nan if is_nan or value is None else value, point_id)
        for step, ts, value, is_nan, point_id in query.execute(conn, params).fetchall()
    ]


def _history_query(keyset: bool, limited: bool) -> Any:
    point = MetricPointRow
    query = select(point.step, point.timestamp, point.value, point.is_nan, point.id).where(
        point.job_id == bindparam("job_id"), point.key == bindparam("key")
    )
    if keyset:
        last = tuple_(bindparam("after_step"), bindparam("after_timestamp"), bindparam("after_id"))
        query = query.where(tuple_(point.step, point.timestamp, point.id) > last)
    query = query.order_by(point.step, point.timestamp, point.id)
    return query.limit(bindparam("limit")) if limited else query


# (keyset, limited) -> statement
_HISTORY = {
    (k, n): DriverStatement(_history_query(k, n)) for k in (False, True) for n in (False, True)
}
