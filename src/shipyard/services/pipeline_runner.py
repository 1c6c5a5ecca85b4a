"""Moving pipelines on: waiting steps queue (or are reused) once their upstream steps are
done, failures stop what depends on them, and the pipeline ends when its steps have.

Reuse follows Azure ML's rule: a deterministic step, submitted without ``force_rerun``, whose
fingerprint -- component definition (command, code snapshot, pinned environment, declared
ports), input values and asset versions, output settings, run settings -- matches a
Completed job in the workspace is not run again: it is Completed at once with
``reused_from`` naming that job, and its outputs are that job's. A step that runs records
which parts of its fingerprint differed from the closest earlier run of the same step, so a
surprise in either direction can be explained.

One pass handles every pipeline in one transaction and repeats until nothing moves, so a
chain of reused steps completes in one pass.

A nested pipeline (a step running a pipeline component) is a child job of type ``pipeline``:
it waits like any step, then starts (``Running``; state ``pipeline``) with its inputs filled
in, and its own steps move on in the same pass as its parent's, one level down. It ends as a
pipeline does, with the outputs its inner steps made; cancelling or stopping it cancels its
steps, and a nested pipeline canceled before it started has its waiting steps canceled too.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.domain.components import canonical_json
from shipyard.schemas.tracking import TERMINAL
from shipyard.services.jobs import set_status
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.lineage import JobAssetRow
from shipyard.store.tracking import JobRow

ACTIVE = ("Preparing", "Running", "Finalizing", "Queued", "CancelRequested", "NotResponding")
# A step in one of these has nothing left to cancel: it ended, is being stopped, or its
# command has ended and its outputs are being stored.
_ENDING = frozenset({*TERMINAL, "CancelRequested", "Finalizing"})
# Parts of a job's spec that are not part of what it computes.
_RUN_SETTINGS = ("compute", "resources", "limits", "environment_variables")


def fingerprint_parts(sub: JobSubmissionRow) -> dict[str, str]:
    """The parts reuse compares, each hashed: what decides a step's results."""
    spec = sub.spec
    inputs = {
        name: (
            {"value": value.get("value")}
            if value.get("kind") == "literal"
            else {"uri": value.get("uri"), "asset": value.get("asset"), "mode": value.get("mode")}
        )
        for name, value in spec.get("inputs", {}).items()
    }
    outputs = {
        name: {
            "type": out.get("type"),
            "mode": out.get("mode"),
            "name": out.get("name"),
            "version": out.get("version"),
            # A default path names the job itself: only a path the user chose counts.
            "path": out.get("uri") if out.get("custom_path") else None,
        }
        for name, out in spec.get("outputs", {}).items()
    }
    run = {
        "compute": sub.compute,
        "resources": spec.get("resources"),
        "limits": spec.get("limits"),
        "environment_variables": spec.get("environment_variables"),
    }
    parts = {
        "component": spec.get("definition_hash"),
        "code": sub.code_digest,
        "environment": (spec.get("environment") or {}).get("spec_hash"),
        "inputs": inputs,
        "outputs": outputs,
        "run": run,
    }
    return {key: _digest(value) for key, value in parts.items()}


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


class PipelineRunner:
    def __init__(self, db: Database) -> None:
        self.db = db

    def advance(self) -> bool:
        """One pass over every running pipeline; True when a step was queued (the caller
        then schedules)."""
        queued = False
        with self.db.write() as session:
            pipelines = session.scalars(
                select(JobSubmissionRow)
                .join(JobRow, JobRow.id == JobSubmissionRow.job_id)
                # Nested pipelines move on with their parents.
                .where(JobSubmissionRow.state == "pipeline", JobRow.parent_id.is_(None))
            ).all()
            for pipeline in pipelines:
                queued |= self._advance(session, pipeline)
        return queued

    def _advance(self, session: Session, pipeline: JobSubmissionRow) -> bool:
        parent = session.get(JobRow, pipeline.job_id)
        assert parent is not None
        steps = _children(session, pipeline.job_id)
        for sub, _ in steps.values():
            if _nested(sub) and sub.state == "done":
                _close(session, sub)  # canceled before it started: its steps too
        settings = pipeline.spec.get("settings", {})
        stopping = parent.status == "CancelRequested"
        queued = False
        moved = True
        while moved:
            moved = False
            failed = any(job.status == "Failed" for _, job in steps.values())
            for sub, job in steps.values():
                if stopping or (failed and not settings.get("continue_on_step_failure", True)):
                    moved |= _stop(
                        session,
                        sub,
                        job,
                        "the pipeline was canceled" if stopping else "a step failed",
                    )
                if _nested(sub) and sub.state == "pipeline":
                    before = job.status
                    queued |= self._advance(session, sub)
                    moved |= job.status != before
                    continue
                if stopping or sub.state != "waiting":
                    continue
                upstream = [steps[u] for u in sub.depends_on if u in steps]
                broken = [u for u in upstream if u[1].status in ("Failed", "Canceled")]
                if broken:
                    names = ", ".join(u[0].step or u[0].name for u in broken)
                    reason = f"upstream step {names} did not complete"
                    if _nested(sub):  # its own pass cancels its steps
                        _stop(session, sub, job, reason)
                    else:
                        _end(sub, job, "Canceled", reason)
                    moved = True
                elif all(u[1].status == "Completed" for u in upstream):
                    _fill_inputs(sub, {u[0].step: u[0] for u in upstream}, pipeline)
                    if _nested(sub):
                        sub.state = "pipeline"
                        sub.started_at = utcnow()
                        set_status(job, "Running", sub.started_at)
                        moved = True
                    elif sub.spec.get("type") == "sweep":
                        # The sweep runner takes it from here. Sampling is random: a sweep
                        # step is never reused.
                        sub.state = "sweep"
                        why = {"reused_from": None, "reason": "a sweep step is not reused"}
                        sub.spec = {**sub.spec, "reuse": why}
                        moved = True
                    elif self._reuse(session, sub, job):
                        moved = True
                    else:
                        sub.state = "queued"
                        sub.queued_at = utcnow()
                        set_status(job, "Queued")
                        queued = moved = True
        if parent.status == "NotStarted" and any(
            j.status != "NotStarted" for _, j in steps.values()
        ):
            set_status(parent, "Running")
        if all(job.status in TERMINAL for _, job in steps.values()):
            statuses = {job.status for _, job in steps.values()}
            final = (
                "Canceled" if stopping else "Completed" if statuses == {"Completed"} else "Failed"
            )
            pipeline.state = "done"
            pipeline.ended_at = utcnow()
            pipeline.cost = sum(s.cost for s, _ in steps.values())
            pipeline.core_seconds = sum(s.core_seconds for s, _ in steps.values())
            if final == "Failed":
                bad = sorted(s.step or s.name for s, j in steps.values() if j.status == "Failed")
                pipeline.error = f"steps failed: {', '.join(bad)}"
            _made_outputs(pipeline, steps)
            if parent.status == "NotStarted":
                set_status(parent, "Running")
            set_status(parent, final, pipeline.ended_at)
        return queued

    def _reuse(self, session: Session, sub: JobSubmissionRow, job: JobRow) -> bool:
        """Complete ``sub`` from an earlier identical run, when the rule allows; else
        record why not."""
        parts = fingerprint_parts(sub)
        fingerprint = _digest(parts)
        spec = dict(sub.spec)
        spec["fingerprint_parts"] = parts
        reusable = spec.get("is_deterministic", True) and not spec.get("force_rerun")
        # A forced run is never reused later either (Azure's rule): it gets no fingerprint.
        sub.fingerprint = fingerprint if reusable else None
        original = None
        if reusable:
            original = session.execute(
                select(JobSubmissionRow)
                .join(JobRow, JobRow.id == JobSubmissionRow.job_id)
                .where(
                    JobSubmissionRow.workspace_id == sub.workspace_id,
                    JobSubmissionRow.fingerprint == fingerprint,
                    JobSubmissionRow.job_id != sub.job_id,
                    JobRow.status == "Completed",
                )
                .order_by(JobSubmissionRow.ended_at.desc())
                .limit(1)
            ).scalar_one_or_none()
        if original is None:
            spec["reuse"] = _why_not(session, sub, parts, reusable)
            sub.spec = spec
            return False
        source = original.reused_from or original.name
        spec["outputs"] = {
            name: {**out, "uri": original.spec.get("outputs", {}).get(name, out)["uri"]}
            for name, out in spec.get("outputs", {}).items()
        }
        spec["reuse"] = {"reused_from": source, "fingerprint": fingerprint}
        sub.spec = spec
        sub.reused_from = source
        for row in session.scalars(
            select(JobAssetRow).where(
                JobAssetRow.job_id == original.job_id, JobAssetRow.direction == "output"
            )
        ):
            session.merge(
                JobAssetRow(
                    job_id=sub.job_id,
                    direction="output",
                    kind=row.kind,
                    name=row.name,
                    version=row.version,
                    workspace_id=row.workspace_id,
                )
            )
        _end(sub, job, "Completed", None)
        return True


def _why_not(
    session: Session, sub: JobSubmissionRow, parts: dict[str, str], reusable: bool
) -> dict[str, Any]:
    """Which parts differed from the latest completed run of the same step, if any."""
    if not reusable:
        reason = "force_rerun" if sub.spec.get("force_rerun") else "is_deterministic is false"
        return {"reused_from": None, "reason": reason}
    earlier = session.execute(
        select(JobSubmissionRow)
        .join(JobRow, JobRow.id == JobSubmissionRow.job_id)
        .where(
            JobSubmissionRow.workspace_id == sub.workspace_id,
            JobSubmissionRow.step == sub.step,
            JobSubmissionRow.job_id != sub.job_id,
            JobSubmissionRow.fingerprint.is_not(None),
            JobRow.status == "Completed",
        )
        .order_by(JobSubmissionRow.ended_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if earlier is None:
        return {"reused_from": None, "reason": "no earlier completed run of this step"}
    theirs = earlier.spec.get("fingerprint_parts") or {}
    differs = sorted(k for k, v in parts.items() if theirs.get(k) != v)
    return {"reused_from": None, "compared_with": earlier.name, "differs": differs}


def _fill_inputs(
    sub: JobSubmissionRow,
    upstream: dict[str | None, JobSubmissionRow],
    pipeline: JobSubmissionRow,
) -> None:
    """Inputs taken from upstream steps: now that those are done, their outputs' places;
    inputs a nested pipeline's step takes from the pipeline's own inputs, as the pipeline
    has them (it started: they are filled). A sweep step's trials are made from its trial
    template: filled the same way."""

    def filled(given: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        inputs = {}
        for name, value in given.items():
            source = value.get("from")
            if source is not None and value.get("uri") is None:
                if "parent_input" in source:
                    mine = pipeline.spec.get("inputs", {}).get(source["parent_input"]) or {}
                    value = {**value, "uri": mine.get("uri"), "asset": mine.get("asset")}
                else:
                    producer = upstream[source["step"]]
                    value = {**value, "uri": producer.spec["outputs"][source["output"]]["uri"]}
            inputs[name] = value
        return inputs

    spec = {**sub.spec, "inputs": filled(sub.spec.get("inputs", {}))}
    template = spec.get("trial_template")
    if template is not None:
        trial = {**template["spec"], "inputs": filled(template["spec"].get("inputs", {}))}
        spec["trial_template"] = {**template, "spec": trial}
    sub.spec = spec


def _end(sub: JobSubmissionRow, job: JobRow, status: str, error: str | None) -> None:
    sub.state = "done"
    sub.ended_at = utcnow()
    sub.error = error
    set_status(job, status, sub.ended_at)


def _stop(session: Session, sub: JobSubmissionRow, job: JobRow, reason: str) -> bool:
    """Cancel a step that has not ended: at once if it has not started, else ask. A nested
    pipeline is asked (even one still waiting): its own pass cancels its steps."""
    if job.status in _ENDING:
        return False
    # The job runner may be moving this step right now (claiming it, finalizing it): read it
    # again under a row lock (PostgreSQL; SQLite's writers take turns anyway), so that a
    # status read before its write is never written back over it. (This pass's own changes
    # are flushed first: a refresh would drop them.)
    session.flush()
    session.refresh(sub, with_for_update=True)
    session.refresh(job, with_for_update=True)
    if job.status in _ENDING:
        return False
    if _nested(sub):
        sub.state = "pipeline"
        sub.error = sub.error or reason
        set_status(job, "CancelRequested")
        return True
    if sub.state in ("waiting", "queued"):
        _end(sub, job, "Canceled", reason)
        return True
    set_status(job, "CancelRequested")
    return True


def _nested(sub: JobSubmissionRow) -> bool:
    return sub.spec.get("type") == "pipeline"


def _children(session: Session, job_id: str) -> dict[str, tuple[JobSubmissionRow, JobRow]]:
    rows = session.execute(
        select(JobSubmissionRow, JobRow)
        .join(JobRow, JobRow.id == JobSubmissionRow.job_id)
        .where(JobRow.parent_id == job_id)
    ).all()
    return {sub.job_id: (sub, job) for sub, job in rows}


def _close(session: Session, nested: JobSubmissionRow) -> None:
    """A nested pipeline that ended before it started (canceled while waiting): its steps,
    all still waiting, end too."""
    for sub, job in _children(session, nested.job_id).values():
        if job.status in TERMINAL:
            continue
        _end(sub, job, "Canceled", "the pipeline step that holds it was canceled")
        if _nested(sub):
            _close(session, sub)


def _made_outputs(
    pipeline: JobSubmissionRow, steps: dict[str, tuple[JobSubmissionRow, JobRow]]
) -> None:
    """A pipeline's outputs as the steps that made them have them now (a reused step's are
    its original's; a sweep step's, its best trial's)."""
    sources = pipeline.spec.get("output_sources") or {}
    if not sources:
        return
    by_step = {sub.step: sub for sub, _ in steps.values()}
    outputs = dict(pipeline.spec.get("outputs") or {})
    for name, source in sources.items():
        producer = by_step.get(source["step"])
        made = producer.spec.get("outputs", {}).get(source["output"]) if producer else None
        if made is not None:
            outputs[name] = made
    pipeline.spec = {**pipeline.spec, "outputs": outputs}
