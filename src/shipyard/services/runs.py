"""Runs (interactive jobs): create, read, change status, log metrics/params/tags, history."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, insert, or_, select
from sqlalchemy.orm import Session

from shipyard.domain.downsample import downsample
from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.domain.paging import decode_page_token, encode_page_token
from shipyard.domain.principals import Principal
from shipyard.domain.search import parse_filter, parse_order_by
from shipyard.schemas.common import Page
from shipyard.schemas.tracking import (
    TERMINAL,
    LatestMetric,
    LogBatch,
    MetricHistory,
    MetricIn,
    MetricPoint,
    RunCreate,
    RunRead,
    RunUpdate,
)
from shipyard.services.experiments import get_or_create, workspace_id_of
from shipyard.services.paging import split_page
from shipyard.store import tracking as store
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.run_search import ordered, where_clause
from shipyard.store.tracking import (
    ExperimentRow,
    JobRow,
    JobTagRow,
    LatestMetricRow,
    MetricPointRow,
    ParamRow,
)
from shipyard.store.upsert import upsert
from shipyard.store.users import UserRow

HistoryPoints = list[tuple[int, int, float]]  # (step, timestamp in ms, value)


def run_read(session: Session, row: JobRow) -> RunRead:
    return runs_read(session, [row])[0]


def runs_read(session: Session, rows: Sequence[JobRow]) -> list[RunRead]:
    """Runs with their params, tags and latest metrics: five queries for the whole list,
    not five per run."""
    details = store.run_details(session, [row.id for row in rows])
    experiments = store.names_of(session, ExperimentRow, {row.experiment_id for row in rows})
    users = store.names_of(session, UserRow, {row.created_by for row in rows})
    return [
        RunRead(
            id=row.id,
            name=row.name,
            experiment=experiments.get(row.experiment_id, ""),
            experiment_id=row.experiment_id,
            job_type=row.job_type,
            status=row.status,
            parent_run_id=row.parent_id,
            created_by=users.get(row.created_by),
            lifecycle_stage=row.lifecycle_stage,
            start_time=row.start_time,
            end_time=row.end_time,
            status_history=[(status, at) for status, at in row.status_history],
            params=details.params.get(row.id, {}),
            tags=details.tags.get(row.id, {}),
            metrics={
                m.key: LatestMetric(
                    value=math.nan if m.is_nan else float(m.value if m.value is not None else 0),
                    step=m.step,
                    timestamp=m.timestamp,
                )
                for m in details.metrics.get(row.id, [])
            },
        )
        for row in rows
    ]


class RunService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, principal: Principal, workspace: str, body: RunCreate) -> RunRead:
        with self.db.write() as session:
            workspace_id = workspace_id_of(session, workspace)
            experiment = get_or_create(session, workspace_id, body.experiment)
            if body.parent_run_id is not None and (
                store.get_job(session, workspace_id, body.parent_run_id) is None
            ):
                raise NotFoundError(
                    f"parent run {body.parent_run_id!r} does not exist in this workspace",
                    code="run_not_found",
                    field="parent_run_id",
                )
            now = _utc(body.start_time) or utcnow()
            row = JobRow(
                workspace_id=workspace_id,
                experiment_id=experiment.id,
                name=body.name or f"run-{int(time.time() * 1000) % 10**9}",
                status="Running",
                parent_id=body.parent_run_id,
                created_by=principal.id,
                start_time=now,
                status_history=[("Running", now.isoformat())],
            )
            session.add(row)
            session.flush()
            _upsert_tags(session, row.id, body.tags)
            return run_read(session, row)

    def get(self, workspace: str, run_id: str) -> RunRead:
        with self.db.read() as session:
            return run_read(session, _require(session, workspace, run_id))

    def list(
        self,
        workspace: str,
        *,
        experiment: str | None,
        parent_run_id: str | None,
        page_token: str | None,
        max_results: int,
    ) -> Page[RunRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            workspace_id = workspace_id_of(session, workspace)
            experiment_id = None
            if experiment is not None:
                found = store.get_experiment(session, workspace_id, experiment)
                experiment_id = found.id if found else "-"
            rows = store.list_jobs(
                session,
                workspace_id,
                experiment_id=experiment_id,
                parent_id=parent_run_id,
                after=after,
                limit=max_results + 1,
            )
            page, token = split_page(rows, max_results, lambda r: r.id)
            return Page[RunRead](items=runs_read(session, page), next_page_token=token)

    def search(
        self,
        workspace: str,
        *,
        experiment_ids: Sequence[str] | None = None,
        experiments: Sequence[str] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page[RunRead]:
        """Runs of the workspace matching ``filter``, in ``order_by`` order (then newest
        first). Experiments are given by id (MLflow) or by name; none means all of them."""
        expr = parse_filter(filter or "")
        keys = parse_order_by(list(order_by or []))
        offset = _decode_offset(page_token)
        with self.db.read() as session:
            workspace_id = workspace_id_of(session, workspace)
            query = select(JobRow).where(JobRow.workspace_id == workspace_id, where_clause(expr))
            if not include_deleted:
                query = query.where(JobRow.lifecycle_stage == "active")
            if experiment_ids is not None:
                query = query.where(JobRow.experiment_id.in_(experiment_ids))
            if experiments is not None:
                names = select(ExperimentRow.id).where(
                    ExperimentRow.workspace_id == workspace_id, ExperimentRow.name.in_(experiments)
                )
                query = query.where(JobRow.experiment_id.in_(names.scalar_subquery()))
            query = ordered(query, keys).offset(offset).limit(max_results + 1)
            rows = list(session.scalars(query))
            more = len(rows) > max_results
            items = runs_read(session, rows[:max_results])
        token = encode_page_token(str(offset + max_results)) if more else None
        return Page[RunRead](items=items, next_page_token=token)

    def update(self, workspace: str, run_id: str, body: RunUpdate) -> RunRead:
        with self.db.write() as session:
            row = _require(session, workspace, run_id)
            if body.name is not None:
                row.name = body.name
            if body.status is not None and body.status != row.status:
                now = _utc(body.end_time) or utcnow()
                row.status = body.status
                row.status_history = [*row.status_history, (body.status, now.isoformat())]
                if body.status in TERMINAL:
                    row.end_time = now
            session.flush()
            return run_read(session, row)

    def delete_tag(self, workspace: str, run_id: str, key: str) -> None:
        with self.db.write() as session:
            row = _require(session, workspace, run_id)
            _require_active(row)
            tag = session.get(JobTagRow, (row.id, key))
            if tag is None:
                raise NotFoundError(
                    f"run {run_id!r} has no tag {key!r}", code="tag_not_found", field="key"
                )
            session.delete(tag)

    def set_stage(self, workspace: str, run_id: str, stage: str) -> None:
        with self.db.write() as session:
            _require(session, workspace, run_id).lifecycle_stage = stage

    def log_batch(self, workspace: str, run_id: str, batch: LogBatch) -> None:
        with self.db.write() as session:
            row = _require(session, workspace, run_id)
            _require_active(row)
            _insert_params(session, row.id, {p.key: p.value for p in batch.params})
            _upsert_tags(session, row.id, {t.key: t.value for t in batch.tags})
            _insert_metrics(session, row.id, batch.metrics)

    def metric_history_page(
        self, workspace: str, run_id: str, key: str, *, offset: int, limit: int
    ) -> tuple[HistoryPoints, bool]:
        """(step, timestamp, value) points of one page, and whether more follow: for
        clients that page through a long history (MLflow's get-history)."""
        with self.db.read() as session:
            row = _require(session, workspace, run_id)
            points = store.metric_history(session, row.id, key, offset=offset, limit=limit + 1)
        return points[:limit], len(points) > limit

    def metric_history(
        self, workspace: str, run_id: str, key: str, max_points: int | None
    ) -> MetricHistory:
        with self.db.read() as session:
            row = _require(session, workspace, run_id)
            points = store.metric_history(session, row.id, key)
        kept = downsample(points, max_points) if max_points else points
        return MetricHistory(
            key=key,
            points=[MetricPoint(step=s, timestamp=t, value=v) for s, t, v in kept],
            total_points=len(points),
            downsampled=len(kept) < len(points),
        )


def _insert_params(session: Session, job_id: str, params: dict[str, str]) -> None:
    """Params are write-once: the same value again is fine, a different one is refused."""
    if not params:
        return
    query = select(ParamRow.key, ParamRow.value).where(
        ParamRow.job_id == job_id, ParamRow.key.in_(list(params))
    )
    existing = dict(session.execute(query).all())
    for key, value in params.items():
        if key in existing and existing[key] != value:
            raise InvalidInputError(
                f"param {key!r} is already {existing[key]!r}; params cannot change",
                code="param_changed",
                field="params",
            )
    new = [{"job_id": job_id, "key": k, "value": v} for k, v in params.items() if k not in existing]
    if new:
        session.execute(insert(ParamRow), new)


def _upsert_tags(session: Session, job_id: str, tags: dict[str, str]) -> None:
    rows = [{"job_id": job_id, "key": k, "value": v} for k, v in tags.items()]
    upsert(session, JobTagRow.__table__, rows, keys=("job_id", "key"), update=("value",))  # type: ignore[arg-type]


def _insert_metrics(session: Session, job_id: str, metrics: list[MetricIn]) -> None:
    if not metrics:
        return
    now_ms = int(time.time() * 1000)
    points: list[dict[str, Any]] = []
    latest: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        nan = math.isnan(metric.value)
        point = {
            "job_id": job_id,
            "key": metric.key,
            "step": metric.step,
            "timestamp": metric.timestamp if metric.timestamp is not None else now_ms,
            "value": None if nan else metric.value,
            "is_nan": nan,
        }
        points.append(point)
        # One row per key per statement (PostgreSQL's ON CONFLICT touches a row once).
        best = latest.get(metric.key)
        if best is None or (point["step"], point["timestamp"]) >= (best["step"], best["timestamp"]):
            latest[metric.key] = point
    # Core executemany on the table: the ORM's bulk path costs more than the insert itself.
    session.connection().execute(insert(cast(Table, MetricPointRow.__table__)), points)
    upsert(
        session,
        LatestMetricRow.__table__,  # type: ignore[arg-type]
        list(latest.values()),
        keys=("job_id", "key"),
        update=("step", "timestamp", "value", "is_nan"),
        # Only a later point replaces the latest value (MLflow's rule: step, then time).
        where=lambda current, new: or_(
            new.step > current.step,
            and_(new.step == current.step, new.timestamp >= current.timestamp),
        ),
    )


def _require_active(row: JobRow) -> None:
    if row.lifecycle_stage != "active":
        raise ConflictError(
            f"run {row.id!r} is deleted; restore it before logging to it",
            code="run_deleted",
            field="run_id",
        )


def _utc(moment: datetime | None) -> datetime | None:
    """Client times without a zone are UTC (the zone every time is stored in)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _decode_offset(token: str | None) -> int:
    raw = decode_page_token(token)
    if raw is None:
        return 0
    if not raw.isdigit():
        raise InvalidInputError(
            "page_token is not a token this server issued",
            code="invalid_page_token",
            field="page_token",
        )
    return int(raw)


def _require(session: Session, workspace: str, run_id: str) -> JobRow:
    row = store.get_job(session, workspace_id_of(session, workspace), run_id)
    if row is None:
        raise NotFoundError(f"run {run_id!r} does not exist", code="run_not_found", field="run_id")
    return row
