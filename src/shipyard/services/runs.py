"""Runs (interactive jobs): create, read, change status, log metrics/params/tags, history."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

from sqlalchemy import Connection, insert, select
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
    MetricColumns,
    MetricHistory,
    MetricPoint,
    RunCreate,
    RunRead,
    RunUpdate,
)
from shipyard.services.audit import AuditEntry, insert_event
from shipyard.services.experiments import get_or_create, workspace_id_of
from shipyard.services.paging import split_page
from shipyard.store import tracking as store
from shipyard.store.base import new_id, utcnow
from shipyard.store.database import Database
from shipyard.store.run_details import LatestRow, RunDetails, run_details
from shipyard.store.run_search import ordered, where_clause
from shipyard.store.tracking import (
    JOB_COLUMNS,
    ExperimentRow,
    ExperimentState,
    JobRow,
    JobTagRow,
    ParamRow,
    RunState,
)
from shipyard.store.upsert import upsert
from shipyard.store.users import UserRow
from shipyard.store.workspaces import get_workspace_id

# (step, timestamp in ms, value, point id): the id orders points logged at the same step and
# time, and a page of history ends at one (the next page starts after it).
HistoryPoints = list[tuple[int, int, float, int]]
# A metric point as logged: (key, value, step, timestamp in ms or None for now). Checked by
# the request body that carried it (key length and characters, step and timestamp ranges).
MetricTuple = tuple[str, float, int, int | None]


def run_read(session: Session, row: JobRow) -> RunRead:
    return runs_read(session, [row])[0]


@dataclass
class RunRows:
    """Runs as the store holds them (rows of the job table's columns) with what they logged
    and the names they refer to: for callers that build their own representation of many
    runs (MLflow's search) without a model per run first."""

    rows: list[Any]
    details: RunDetails
    experiments: dict[str, str]  # experiment id -> name (none when read with full=False)
    users: dict[str, str]  # principal id -> name
    next_page_token: str | None = None


def run_rows(
    conn: Connection | Session, rows: list[Any], token: str | None = None, *, full: bool = True
) -> RunRows:
    """``rows`` with their params, tags and latest metrics: three queries for the whole
    list (details, experiment names, user names), not a few per run. ``full=False`` leaves
    out the experiments' names."""
    experiments = {row.experiment_id for row in rows} if full else set()
    return RunRows(
        rows=rows,
        details=run_details(conn, [row.id for row in rows]),
        experiments=store.names_of(conn, ExperimentRow, experiments),
        users=store.names_of(conn, UserRow, {row.created_by for row in rows}),
        next_page_token=token,
    )


def runs_read(session: Session, rows: Sequence[Any]) -> list[RunRead]:
    """Runs (job rows, or rows of the job table's columns) as ``RunRead``."""
    return reads_of(run_rows(session, list(rows)))


def reads_of(found: RunRows) -> list[RunRead]:
    """Built without validation: every value comes typed from the store, and a search
    returns up to 1,000 runs."""
    details, experiments, users = found.details, found.experiments, found.users
    construct, metric = RunRead.model_construct, LatestMetric.model_construct
    no_metrics: list[LatestRow] = []
    return [
        construct(
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
            status_history=[(status, _moment(at)) for status, at in row.status_history],
            params=details.params.get(row.id, {}),
            tags=details.tags.get(row.id, {}),
            metrics={
                key: metric(
                    value=math.nan if is_nan else float(value if value is not None else 0),
                    step=step,
                    timestamp=timestamp,
                )
                for key, step, timestamp, value, is_nan in details.metrics.get(row.id, no_metrics)
            },
        )
        for row in found.rows
    ]


def _moment(at: str | datetime) -> datetime:
    """A time of the status history (stored as ISO text in JSON)."""
    return at if isinstance(at, datetime) else datetime.fromisoformat(at)


class RunService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        principal: Principal,
        workspace: str,
        body: RunCreate,
        *,
        experiment_id: str | None = None,
        audit: AuditEntry | None = None,
    ) -> RunRead:
        """A new run in ``body.experiment`` (created on first use), or in the existing, active
        experiment ``experiment_id`` when given (how MLflow names it). ``audit``: the
        request's event, written in the run's own transaction (see ``insert_event``)."""
        with self.db.write() as session:
            if experiment_id is None:
                workspace_id = workspace_id_of(session, workspace)
                found = get_or_create(session, workspace_id, body.experiment)
                experiment_name = found.name
                experiment_id = found.id
            else:
                state = _active_experiment(session, workspace, experiment_id)
                workspace_id, experiment_name = state.workspace_id, state.name
            if body.parent_run_id is not None and (
                store.get_job(session, workspace_id, body.parent_run_id) is None
            ):
                raise NotFoundError(
                    f"parent run {body.parent_run_id!r} does not exist in this workspace",
                    code="run_not_found",
                    field="parent_run_id",
                )
            now = _utc(body.start_time) or utcnow()
            values: dict[str, Any] = {
                "id": new_id(),
                "workspace_id": workspace_id,
                "experiment_id": experiment_id,
                "name": body.name or f"run-{int(time.time() * 1000) % 10**9}",
                "job_type": "interactive",
                "status": "Running",
                "parent_id": body.parent_run_id,
                "created_by": principal.id,
                "lifecycle_stage": "active",
                "start_time": now,
                "end_time": None,
                "status_history": [("Running", now.isoformat())],
            }
            conn = session.connection()  # Core statements: no ORM work per insert
            store.insert_job(conn, values)
            store.insert_tags(conn, values["id"], body.tags)
            if audit is not None:
                insert_event(session, audit, workspace_id)
        if audit is not None:
            audit.recorded = True  # committed with the run
        # A new run has logged nothing yet: no need to read back what it holds. Built without
        # validation: every value is one this method made or checked.
        return RunRead.model_construct(
            id=values["id"],
            name=values["name"],
            experiment=experiment_name,
            experiment_id=experiment_id,
            job_type=values["job_type"],
            status=values["status"],
            parent_run_id=body.parent_run_id,
            created_by=principal.name,
            lifecycle_stage=values["lifecycle_stage"],
            start_time=now,
            status_history=[("Running", now)],
            tags=dict(body.tags),
        )

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
        found = self.search_rows(
            workspace,
            experiment_ids=experiment_ids,
            experiments=experiments,
            filter=filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            include_deleted=include_deleted,
        )
        return Page[RunRead](items=reads_of(found), next_page_token=found.next_page_token)

    def search_rows(
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
        full: bool = True,
    ) -> RunRows:
        """Like ``search``, the runs as rows (see ``RunRows``); ``full=False`` leaves out
        what MLflow's representation of a run does not show: the status history and the
        experiment's name."""
        expr = parse_filter(filter or "")
        keys = parse_order_by(list(order_by or []))
        offset = _decode_offset(page_token)
        # A bare connection, the job table's columns: no ORM objects (a search returns up to
        # thousands of runs), no ORM loading of rows.
        with self.db.connect() as conn:
            workspace_id = _require_workspace(conn, workspace)
            query = select(*(JOB_COLUMNS if full else _NO_HISTORY)).where(
                JobRow.workspace_id == workspace_id, where_clause(expr)
            )
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
            rows = list(conn.execute(query).all())
            token = (
                encode_page_token(str(offset + max_results)) if len(rows) > max_results else None
            )
            return run_rows(conn, rows[:max_results], token, full=full)

    def update(self, workspace: str, run_id: str, body: RunUpdate) -> RunRead:
        with self.db.write() as session:
            row = _require(session, workspace, run_id)
            if body.name is not None:
                row.name = body.name
            # A submitted job's status belongs to its scheduler: the mlflow client inside the
            # job ends "its" run when the script exits, before the job has finished.
            if (
                body.status is not None
                and body.status != row.status
                and row.job_type == "interactive"
            ):
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
        self.log(
            workspace,
            run_id,
            metrics=[(m.key, m.value, m.step, m.timestamp) for m in batch.metrics],
            columns=batch.columns,
            params={p.key: p.value for p in batch.params},
            tags={t.key: t.value for t in batch.tags},
        )

    def log(
        self,
        workspace: str,
        run_id: str,
        *,
        metrics: Sequence[MetricTuple] = (),
        columns: MetricColumns | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Log already checked points, params and tags in one telemetry transaction (see
        ``Database.telemetry``): the hot path of every run."""
        points, latest = _point_rows(run_id, metrics)
        if columns is not None:
            _add_columns(run_id, columns, points, latest)
        with self.db.telemetry() as session:
            conn = session.connection()
            run = _require_state(conn, workspace, run_id)
            _require_active(run)
            if params:
                _insert_params(session, run.id, params)
            if tags:
                _upsert_tags(session, run.id, tags)
            if points:
                store.insert_points(conn, points)
                store.upsert_latest(conn, list(latest.values()))

    def metric_history_page(
        self,
        workspace: str,
        run_id: str,
        key: str,
        *,
        after: tuple[int, int, int] | None,
        limit: int,
    ) -> tuple[HistoryPoints, bool]:
        """One page of points (see ``HistoryPoints``) after the point ``after`` (step,
        timestamp, id), and whether more follow: for clients that page through a long
        history (MLflow's get-history)."""
        with self.db.connect() as conn:
            run = _require_state(conn, workspace, run_id)
            points = store.metric_history(conn, run.id, key, after=after, limit=limit + 1)
        return points[:limit], len(points) > limit

    def metric_history(
        self, workspace: str, run_id: str, key: str, max_points: int | None
    ) -> MetricHistory:
        with self.db.connect() as conn:
            run = _require_state(conn, workspace, run_id)
            points = [(s, t, v) for s, t, v, _ in store.metric_history(conn, run.id, key)]
        kept = downsample(points, max_points) if max_points else points
        # Built without validating each point: they come from the store, already typed.
        return MetricHistory(
            key=key,
            points=[MetricPoint.model_construct(step=s, timestamp=t, value=v) for s, t, v in kept],
            total_points=len(points),
            downsampled=len(kept) < len(points),
        )


# The job table's columns but the status history (a JSON document to decode per run).
_NO_HISTORY = tuple(column for column in JOB_COLUMNS if column.key != "status_history")


def _insert_params(session: Session, job_id: str, params: Mapping[str, str]) -> None:
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


def _upsert_tags(session: Session, job_id: str, tags: Mapping[str, str]) -> None:
    rows = [{"job_id": job_id, "key": k, "value": v} for k, v in tags.items()]
    upsert(session, JobTagRow.__table__, rows, keys=("job_id", "key"), update=("value",))  # type: ignore[arg-type]


Latest = dict[str, store.PointRow]  # each key's latest point in a call


def _point_rows(job_id: str, metrics: Sequence[MetricTuple]) -> tuple[list[store.PointRow], Latest]:
    """Rows to store, and each key's latest point. Built before the transaction opens, so
    the write lock is held for the statements only."""
    now_ms = int(time.time() * 1000)
    points: list[store.PointRow] = []
    add = points.append
    latest: Latest = {}
    for key, value, step, timestamp in metrics:
        ts = now_ms if timestamp is None else timestamp
        # NaN is stored as a flag (SQLite would turn it into NULL); NaN != NaN.
        point = (
            (job_id, key, step, ts, value, False)
            if value == value
            else (job_id, key, step, ts, None, True)
        )
        add(point)
        _keep_latest(latest, point)
    return points, latest


def _keep_latest(latest: Latest, point: store.PointRow) -> None:
    """MLflow's rule for a key's latest value: the highest step, then the latest time."""
    best = latest.get(point[1])
    if best is None or (point[2], point[3]) >= (best[2], best[3]):
        latest[point[1]] = point


def _add_columns(
    job_id: str, columns: MetricColumns, points: list[store.PointRow], latest: Latest
) -> None:
    """The column form's points, column-wise (it carries up to 10,000 per call, so the usual
    case, one key and no NaN, avoids a Python step per point)."""
    values = columns.values
    steps, stamps = columns.steps, columns.timestamps
    count = len(values)
    if columns.key_index is None and all(v == v for v in values):
        first = len(points)
        points.extend(
            zip(repeat(job_id), repeat(columns.keys[0]), steps, stamps, values, repeat(False))
        )
        if count:
            # The latest point: highest (step, timestamp), and the later one of equals.
            _, _, last = max(zip(steps, stamps, range(count), strict=True))
            _keep_latest(latest, points[first + last])
        return
    keys = columns.keys
    index = columns.key_index or [0] * count
    for i in range(count):
        value = values[i]
        point = (
            (job_id, keys[index[i]], steps[i], stamps[i], value, False)
            if value == value
            else (job_id, keys[index[i]], steps[i], stamps[i], None, True)
        )
        points.append(point)
        _keep_latest(latest, point)


def _require_active(row: JobRow | RunState) -> None:
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


def _require_state(conn: Connection, workspace: str, run_id: str) -> RunState:
    """The run, found in one statement; the error names what is missing (the workspace
    first, like every workspace route)."""
    found = store.run_state(conn, workspace, run_id)
    if found is not None:
        return found
    _require_workspace(conn, workspace)
    raise NotFoundError(f"run {run_id!r} does not exist", code="run_not_found", field="run_id")


def _require_workspace(conn: Connection, workspace: str) -> str:
    """The workspace's id (``workspace_id_of``, on a bare connection)."""
    workspace_id = get_workspace_id(conn, workspace)
    if workspace_id is None:
        raise NotFoundError(
            f"workspace {workspace!r} does not exist", code="workspace_not_found", field="workspace"
        )
    return workspace_id


def _active_experiment(session: Session, workspace: str, experiment_id: str) -> ExperimentState:
    """The experiment a new run goes into, by id: it must exist and not be deleted."""
    found = store.experiment_state(session, workspace, experiment_id)
    if found is None:
        workspace_id_of(session, workspace)  # a missing workspace is named first
        raise NotFoundError(
            f"experiment id {experiment_id!r} does not exist",
            code="experiment_not_found",
            field="experiment_id",
        )
    if found.lifecycle_stage != "active":
        raise InvalidInputError(
            f"experiment {found.name!r} is deleted; restore it to create runs in it",
            code="experiment_deleted",
            field="experiment_id",
        )
    return found


def _require(session: Session, workspace: str, run_id: str) -> JobRow:
    row = store.get_job(session, workspace_id_of(session, workspace), run_id)
    if row is None:
        raise NotFoundError(f"run {run_id!r} does not exist", code="run_not_found", field="run_id")
    return row
