"""Moving sweeps on: sample trials while there is room, stop poor ones early, and end the
sweep when its trials have.

A pass over one sweep reads the sweep and its trials (a read transaction), decides outside
any transaction -- Optuna's study is rebuilt from the trials' rows each time
(``domain.sweep_sampling``), so nothing lives only in this process -- and writes what it
decided in one write transaction. That transaction first takes the sweep's row (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL; SQLite's writers take turns anyway) and checks the sweep still
has the status and the number of trials the pass read: when another server got there first,
the pass writes nothing and the next one starts from what that server wrote. So trials are
never created twice, and a restart loses nothing.

Trials are child command jobs named ``<sweep>_<number>``, each with its sampled values as
literal inputs (what ``${{search_space.<name>}}`` in the command became) and its own default
output paths. A trial's objective is the last value of the primary metric it logged; the
values it logged in turn are the intervals early termination looks at.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipyard.domain.principals import Principal
from shipyard.domain.sweep_sampling import Sample, TrialRecord, best, sample, to_stop
from shipyard.domain.sweeps import SweepConfig
from shipyard.schemas.tracking import TERMINAL
from shipyard.services.jobs import set_status
from shipyard.services.sweeps import stored_config, trial_job
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.jobs import JobSubmissionRow, get_submission
from shipyard.store.tracking import JobRow, LatestMetricRow, MetricPointRow
from shipyard.store.workspaces import WorkspaceRow

log = logging.getLogger(__name__)

#: Inserts a job's rows as ``JobService.insert`` does (the runner is made before the service).
TrialInserter = Callable[..., JobSubmissionRow]

#: A sweep whose first this many trials all failed stops sampling: a broken trial command
#: would otherwise fail max_total_trials times (1000 by default).
FAILED_START = 5

_SWEEPS = select(JobSubmissionRow.job_id).where(JobSubmissionRow.state == "sweep")

# A trial past these is ending on its own: stopping it again would write over its end.
_ENDING = frozenset({*TERMINAL, "CancelRequested", "Finalizing"})


@dataclass(frozen=True)
class _Trial:
    job_id: str
    name: str
    status: str
    info: dict[str, Any]  # the trial's ``sweep_trial``: number, parameters, raw values...
    value: float | None  # the primary metric's last value
    intermediate: dict[int, float] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return int(self.info["number"])

    @property
    def active(self) -> bool:
        return self.status not in TERMINAL

    def record(self) -> TrialRecord:
        if self.status == "Completed":
            state = "complete" if self.value is not None else "failed"
        elif self.status in ("Canceled", "CancelRequested") and self.info.get("early_terminated"):
            state = "pruned"
        elif self.status in TERMINAL or self.status == "CancelRequested":
            state = "failed"
        else:
            state = "running"
        return TrialRecord(
            number=self.number,
            raw=self.info["raw"],
            state=state,
            value=self.value,
            intermediate=self.intermediate,
            system_attrs=self.info.get("system_attrs") or {},
        )


@dataclass(frozen=True)
class _Sweep:
    job_id: str
    name: str
    status: str
    started_at: datetime | None
    spec: dict[str, Any]
    config: SweepConfig
    trials: list[_Trial]


@dataclass
class _Plan:
    samples: list[Sample]
    stop: dict[int, str]  # trial number -> why
    early: bool  # the stops are early terminations (recorded on each trial)
    summary: dict[str, Any]
    final: str | None = None  # the sweep's last status, when it ends now
    error: str | None = None
    best: _Trial | None = None
    checked: dict[int, int] = field(default_factory=dict)


class SweepRunner:
    def __init__(self, db: Database, insert: TrialInserter) -> None:
        self.db = db
        self.insert = insert
        # Ended trials never change: what was read of them is kept (per sweep) so a pass
        # reads only the trials that may still move.
        self._ended: dict[str, dict[str, _Trial]] = {}
        # The last interval early termination looked at, per sweep and trial number (only
        # saves work: a restarted server looks at every interval once more).
        self._checked: dict[str, dict[int, int]] = {}

    def advance(self) -> bool:
        """One pass over every running sweep; True when a trial was created (the caller
        then schedules)."""
        with self.db.read() as session:
            ids = list(session.scalars(_SWEEPS))
        for gone in set(self._ended) - set(ids):
            self._ended.pop(gone, None)
            self._checked.pop(gone, None)
        created = False
        for job_id in ids:
            try:
                created |= self._advance(job_id)
            except Exception:  # one broken sweep must not hold up the others
                log.exception("advancing a sweep failed", extra={"job_id": job_id})
        return created

    def _advance(self, job_id: str) -> bool:
        sweep = self._read(job_id)
        if sweep is None:
            return False
        plan = self._plan(sweep)
        quiet = (
            not plan.samples
            and not plan.stop
            and plan.final is None
            and sweep.started_at is not None
            and plan.summary == sweep.spec.get("summary")
        )
        applied = quiet or self._write(sweep, plan)
        if applied:
            self._checked.setdefault(job_id, {}).update(plan.checked)
        return applied and bool(plan.samples)

    # -- read -------------------------------------------------------------------------------

    def _read(self, job_id: str) -> _Sweep | None:
        with self.db.read() as session:
            sub = session.get(JobSubmissionRow, job_id)
            job = session.get(JobRow, job_id)
            if sub is None or job is None or sub.state != "sweep":
                return None
            config = stored_config(sub.spec)
            rows = session.execute(
                select(JobSubmissionRow.job_id, JobSubmissionRow.name, JobRow.status)
                .join(JobRow, JobRow.id == JobSubmissionRow.job_id)
                .where(JobRow.parent_id == job_id)
            ).all()
            ended = self._ended.setdefault(job_id, {})
            fresh = [row.job_id for row in rows if row.job_id not in ended]
            specs, values, history = _trial_data(session, fresh, config)
            trials = []
            for row in rows:
                trial = ended.get(row.job_id)
                if trial is None:
                    info = specs.get(row.job_id, {}).get("sweep_trial")
                    if info is None:
                        continue
                    trial = _Trial(
                        row.job_id,
                        row.name,
                        row.status,
                        info,
                        values.get(row.job_id),
                        history.get(row.job_id, {}),
                    )
                    if not trial.active:
                        ended[row.job_id] = trial
                trials.append(trial)
            return _Sweep(
                job_id=job_id,
                name=sub.name,
                status=job.status,
                started_at=sub.started_at,
                spec=sub.spec,
                config=config,
                trials=sorted(trials, key=lambda t: t.number),
            )

    # -- decide -----------------------------------------------------------------------------

    def _plan(self, sweep: _Sweep) -> _Plan:
        config = sweep.config
        active = [t for t in sweep.trials if t.active]
        first = [t for t in sweep.trials if t.number < FAILED_START]
        records = [t.record() for t in sweep.trials]
        elapsed = (utcnow() - sweep.started_at).total_seconds() if sweep.started_at else 0.0
        stopping = None
        if sweep.status == "CancelRequested":
            stopping = "the sweep was canceled"
        elif config.timeout is not None and elapsed >= config.timeout:
            stopping = f"the sweep reached its timeout ({config.timeout} s)"
        elif len(first) == FAILED_START and all(t.status == "Failed" for t in first):
            stopping = (
                f"its first {FAILED_START} trials failed, so the trial itself is likely broken "
                f"(see {first[0].name}'s log)"
            )
        if stopping is not None:
            stop = {t.number: stopping for t in active if t.status != "CancelRequested"}
            plan = _Plan([], stop, early=False, summary={})
        else:
            stop, checked = to_stop(config, records, self._checked.get(sweep.job_id, {}))
            room = min(
                config.max_concurrent_trials - len(active),
                config.trial_limit - len(sweep.trials),
            )
            samples = sample(config, records, room) if room > 0 else []
            plan = _Plan(samples, stop, early=True, summary={}, checked=checked)
        top = best(config, records)
        plan.best = next((t for t in sweep.trials if top and t.number == top.number), None)
        exhausted = len(sweep.trials) >= config.trial_limit
        if not plan.samples and not active and (stopping is not None or exhausted):
            if sweep.status == "CancelRequested":
                plan.final = "Canceled"
            elif plan.best is not None:
                plan.final = "Completed"
            else:
                plan.final = "Failed"
                plan.error = f"no trial completed with a value of {config.primary_metric}" + (
                    f" ({stopping})" if stopping else ""
                )
        ended_because = stopping
        if ended_because is None and plan.final is not None:
            grid = config.grid_size
            ended_because = (
                "every point of the grid was tried"
                if grid is not None and grid <= config.max_total_trials
                else "max_total_trials trials were run"
            )
        plan.summary = _summary(sweep, plan, ended_because if plan.final else stopping)
        return plan

    # -- write ------------------------------------------------------------------------------

    def _write(self, sweep: _Sweep, plan: _Plan) -> bool:
        with self.db.write() as session:
            sub = session.scalars(
                select(JobSubmissionRow)
                .where(JobSubmissionRow.job_id == sweep.job_id, JobSubmissionRow.state == "sweep")
                .with_for_update(skip_locked=True)
            ).one_or_none()
            job = session.get(JobRow, sweep.job_id)
            if sub is None or job is None:
                return False  # ended, or another server is on it right now
            count = session.scalar(
                select(func.count()).select_from(JobRow).where(JobRow.parent_id == sweep.job_id)
            )
            if job.status != sweep.status or count != len(sweep.trials):
                return False  # it moved since it was read: the next pass starts from there
            now = utcnow()
            if sub.started_at is None:
                sub.started_at = now
            if job.status == "NotStarted":
                set_status(job, "Running", now)
            self._stop(session, sweep, plan)
            spec = dict(sub.spec)
            clash = self._insert(session, sub, job, plan.samples)
            if clash is not None:
                # A job took a trial's name: nothing can be sampled any more.
                sub.error = clash
                set_status(job, "CancelRequested", now)
            spec["summary"] = plan.summary
            if plan.final is not None:
                self._end(session, sub, job, spec, plan)
            sub.spec = spec
        return True

    def _stop(self, session: Session, sweep: _Sweep, plan: _Plan) -> None:
        for trial in sweep.trials:
            reason = plan.stop.get(trial.number)
            if reason is None:
                continue
            sub = session.get(JobSubmissionRow, trial.job_id)
            job = session.get(JobRow, trial.job_id)
            if sub is None or job is None or job.status in _ENDING:
                continue
            # The job runner may be finishing this trial right now: read it again under a
            # row lock (PostgreSQL; SQLite's writers take turns), so a status read before its
            # write is never written back over it (this pass's own changes flushed first).
            session.flush()
            session.refresh(sub, with_for_update=True)
            session.refresh(job, with_for_update=True)
            if job.status in _ENDING:
                continue
            if plan.early:
                info = {**sub.spec.get("sweep_trial", {}), "early_terminated": reason}
                sub.spec = {**sub.spec, "sweep_trial": info}
            if sub.state in ("waiting", "queued"):  # not started: canceled at once
                sub.state, sub.ended_at, sub.error = "done", utcnow(), reason
                set_status(job, "Canceled", sub.ended_at)
            else:
                set_status(job, "CancelRequested")

    def _insert(
        self, session: Session, sub: JobSubmissionRow, job: JobRow, samples: list[Sample]
    ) -> str | None:
        """The sampled trials' rows; the message when a trial's name is already taken."""
        if not samples:
            return None
        ws = session.get(WorkspaceRow, sub.workspace_id)
        assert ws is not None
        principal = Principal(id=sub.created_by, name=sub.created_by, is_admin=False)
        template = sub.spec["trial_template"]
        for drawn in samples:
            name = f"{sub.name}_{drawn.number}"
            if get_submission(session, ws.id, name) is not None:
                return f"a job named {name!r} already exists: the sweep cannot create its trial"
            prepared = trial_job(template, sub.name, name, drawn)
            self.insert(session, ws, job.experiment_id, principal, prepared, parent_id=sub.job_id)
        return None

    def _end(
        self,
        session: Session,
        sub: JobSubmissionRow,
        job: JobRow,
        spec: dict[str, Any],
        plan: _Plan,
    ) -> None:
        assert plan.final is not None
        costs = session.execute(
            select(
                func.coalesce(func.sum(JobSubmissionRow.cost), 0.0),
                func.coalesce(func.sum(JobSubmissionRow.core_seconds), 0.0),
            )
            .join(JobRow, JobRow.id == JobSubmissionRow.job_id)
            .where(JobRow.parent_id == sub.job_id)
        ).one()
        sub.cost, sub.core_seconds = float(costs[0]), float(costs[1])
        if plan.final == "Completed" and plan.best is not None:
            winner = session.get(JobSubmissionRow, plan.best.job_id)
            if winner is not None:
                # Azure's rule: a sweep's outputs are its best trial's.
                spec["outputs"] = winner.spec.get("outputs", {})
        sub.state, sub.ended_at = "done", utcnow()
        sub.error = sub.error or plan.error
        set_status(job, plan.final, sub.ended_at)


def _trial_data(
    session: Session, ids: list[str], config: SweepConfig
) -> tuple[dict[str, dict[str, Any]], dict[str, float | None], dict[str, dict[int, float]]]:
    """The trials' specs, the primary metric's last values and (for early termination) its
    values in logged order."""
    if not ids:
        return {}, {}, {}
    metric = config.primary_metric
    rows = session.execute(
        select(JobSubmissionRow.job_id, JobSubmissionRow.spec).where(
            JobSubmissionRow.job_id.in_(ids)
        )
    ).all()
    specs: dict[str, dict[str, Any]] = {row.job_id: row.spec for row in rows}
    values: dict[str, float | None] = {
        job_id: None if is_nan else value
        for job_id, value, is_nan in session.execute(
            select(LatestMetricRow.job_id, LatestMetricRow.value, LatestMetricRow.is_nan).where(
                LatestMetricRow.job_id.in_(ids), LatestMetricRow.key == metric
            )
        )
    }
    history: dict[str, dict[int, float]] = {}
    if config.policy is not None:
        points = session.execute(
            select(MetricPointRow.job_id, MetricPointRow.value, MetricPointRow.is_nan)
            .where(MetricPointRow.job_id.in_(ids), MetricPointRow.key == metric)
            .order_by(
                MetricPointRow.job_id,
                MetricPointRow.step,
                MetricPointRow.timestamp,
                MetricPointRow.id,
            )
        )
        for job_id, value, is_nan in points:
            series = history.setdefault(job_id, {})
            series[len(series)] = float("nan") if is_nan or value is None else value
    return specs, values, history


def _summary(sweep: _Sweep, plan: _Plan, ended_because: str | None) -> dict[str, Any]:
    """What the sweep's view shows: how its trials went and the best so far."""
    counts = Counter(t.status for t in sweep.trials)
    top = plan.best
    return {
        "trials": len(sweep.trials) + len(plan.samples),
        "active": sum(1 for t in sweep.trials if t.active) + len(plan.samples),
        "completed": counts["Completed"],
        "failed": counts["Failed"],
        "canceled": counts["Canceled"],
        "early_terminated": sum(1 for t in sweep.trials if t.info.get("early_terminated"))
        + (len(plan.stop) if plan.early else 0),
        "best_trial": top.name if top else None,
        "best_parameters": top.info.get("parameters") if top else None,
        "best_value": top.value if top else None,
        "ended_because": ended_because,
    }
