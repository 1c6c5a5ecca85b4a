"""Experiments, runs (= jobs), and what runs log: metrics, params, tags.

A run is a job: the ``jobs`` table holds interactive runs today; command, pipeline and sweep
jobs join it later with their own ``job_type``. Metrics are append-only points; the latest
value of each key is kept beside them so searching and ordering by a metric needs no scan.
SQLite turns NaN into NULL, so NaN is stored as a flag with a NULL value on every backend.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    and_,
    bindparam,
    insert,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow
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

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
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
# A latest value as read: (key, step, timestamp, value or None, is_nan).
LatestRow = tuple[str, int, int, float | None, bool]


@dataclass
class RunDetails:
    """What runs logged, by run id."""

    params: dict[str, dict[str, str]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    metrics: dict[str, list[LatestRow]] = field(default_factory=dict)


def run_details(session: Session, job_ids: list[str]) -> RunDetails:
    details = RunDetails()
    if not job_ids:
        return details
    for job_id, key, value in session.execute(
        select(ParamRow.job_id, ParamRow.key, ParamRow.value).where(ParamRow.job_id.in_(job_ids))
    ):
        details.params.setdefault(job_id, {})[key] = value
    for job_id, key, value in session.execute(
        select(JobTagRow.job_id, JobTagRow.key, JobTagRow.value).where(
            JobTagRow.job_id.in_(job_ids)
        )
    ):
        details.tags.setdefault(job_id, {})[key] = value
    latest = LatestMetricRow
    query = (
        select(
            latest.job_id, latest.key, latest.step, latest.timestamp, latest.value, latest.is_nan
        )
        .where(latest.job_id.in_(job_ids))
        .order_by(latest.key)
    )
    for job_id, key, step, timestamp, number, is_nan in session.execute(query):
        details.metrics.setdefault(job_id, []).append((key, step, timestamp, number, is_nan))
    return details


def names_of(session: Session, row_type: Any, ids: set[str]) -> dict[str, str]:
    """id → name for rows of a table with ``id`` and ``name`` columns."""
    if not ids:
        return {}
    query = select(row_type.id, row_type.name).where(row_type.id.in_(ids))
    return dict(session.execute(query).all())


# --- the hot paths: prebuilt statements on the session's connection ------------------------
#
# Logging and reading points runs thousands of times a minute with up to 1,000 points (the
# native SDK up to MAX_COLUMN_POINTS) per call, so these skip the ORM: statements are built
# once (compiled once per dialect), points go in as plain tuples.

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
    row = conn.execute(_EXPERIMENT_IN_WORKSPACE, params).first()
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


def run_state(conn: Connection, workspace: str, run_id: str) -> RunState | None:
    """A run of the workspace named ``workspace``, in one indexed statement."""
    row = conn.execute(_RUN_IN_WORKSPACE, {"run_id": run_id, "workspace": workspace}).first()
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
    if dialect.name == "postgresql":
        if len(points) >= _COPY_MIN_POINTS:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for point in points:
                    copy.write_row(point)
            return
        mark = "%s"
        chunk = len(points)
    else:
        mark = "?"
        chunk = _ROWS_PER_INSERT
        if len(points) * len(_POINT_COLUMNS) > 999:
            limit = conn.connection.driver_connection.getlimit(  # type: ignore[union-attr]
                sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
            )
            chunk = min(chunk, limit // len(_POINT_COLUMNS))
    row = "(" + ", ".join([mark] * len(_POINT_COLUMNS)) + ")"
    for start in range(0, len(points), chunk):
        part = points[start : start + chunk]
        # Names are our own constants, quoted by the dialect; every value is a bound parameter.
        sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([row] * len(part))  # noqa: S608
        conn.exec_driver_sql(sql, tuple(chain.from_iterable(part)))


def _latest_upsert(dialect: str) -> Any:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(LatestMetricRow.__table__)
    current, new = LatestMetricRow.__table__.c, statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["job_id", "key"],
        set_={c: new[c] for c in ("step", "timestamp", "value", "is_nan")},
        # Only a later point replaces the latest value (MLflow's rule: step, then time).
        where=or_(
            new.step > current.step,
            and_(new.step == current.step, new.timestamp >= current.timestamp),
        ),
    )


_LATEST_UPSERT = {name: _latest_upsert(name) for name in ("sqlite", "postgresql")}


def upsert_latest(conn: Connection, points: Sequence[PointRow]) -> None:
    """Keep each key's latest value: ``points`` holds at most one point per key (PostgreSQL's
    ON CONFLICT touches a row once per statement)."""
    rows = [dict(zip(_POINT_COLUMNS, point, strict=True)) for point in points]
    conn.execute(_LATEST_UPSERT[conn.dialect.name], rows)


def metric_history(
    conn: Connection | Session,
    job_id: str,
    key: str,
    *,
    after: tuple[int, int, int] | None = None,
    limit: int | None = None,
) -> list[tuple[int, int, float, int]]:
    """(step, timestamp, value, id) in (step, timestamp, id) order, from after ``after`` (the
    (step, timestamp, id) of the last point of the previous page): keyset paging, so a late
    page costs what the first did. NaN comes back as float("nan")."""
    query = _HISTORY[(after is not None, limit is not None)]
    params: dict[str, Any] = {"job_id": job_id, "key": key}
    if limit is not None:
        params["limit"] = limit
    if after is not None:
        params.update(after_step=after[0], after_timestamp=after[1], after_id=after[2])
    nan = float("nan")
    return [
        (step, ts, nan if is_nan or value is None else value, point_id)
        for step, ts, value, is_nan, point_id in conn.execute(query, params)
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
_HISTORY = {(k, n): _history_query(k, n) for k in (False, True) for n in (False, True)}
