"""Experiments, runs (= jobs), and what runs log: metrics, params, tags.

A run is a job: the ``jobs`` table holds interactive runs today; command, pipeline and sweep
jobs join it later with their own ``job_type``. Metrics are append-only points; the latest
value of each key is kept beside them so searching and ordering by a metric needs no scan.
SQLite turns NaN into NULL, so NaN is stored as a flag with a NULL value on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow

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


@dataclass
class RunDetails:
    """What runs logged, by run id."""

    params: dict[str, dict[str, str]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    metrics: dict[str, list[LatestMetricRow]] = field(default_factory=dict)


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
    query = (
        select(LatestMetricRow)
        .where(LatestMetricRow.job_id.in_(job_ids))
        .order_by(LatestMetricRow.key)
    )
    for metric in session.scalars(query):
        details.metrics.setdefault(metric.job_id, []).append(metric)
    return details


def names_of(session: Session, row_type: Any, ids: set[str]) -> dict[str, str]:
    """id → name for rows of a table with ``id`` and ``name`` columns."""
    if not ids:
        return {}
    query = select(row_type.id, row_type.name).where(row_type.id.in_(ids))
    return dict(session.execute(query).all())


def metric_history(
    session: Session, job_id: str, key: str, *, offset: int = 0, limit: int | None = None
) -> list[tuple[int, int, float]]:
    """(step, timestamp, value) in step order; NaN comes back as float('nan')."""
    query = (
        select(
            MetricPointRow.step,
            MetricPointRow.timestamp,
            MetricPointRow.value,
            MetricPointRow.is_nan,
        )
        .where(MetricPointRow.job_id == job_id, MetricPointRow.key == key)
        .order_by(MetricPointRow.step, MetricPointRow.timestamp, MetricPointRow.id)
        .offset(offset)
        .limit(limit)
    )
    return [
        (step, ts, float("nan") if nan else float(value if value is not None else "nan"))
        for step, ts, value, nan in session.execute(query)
    ]
