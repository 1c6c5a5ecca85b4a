"""A submitted job as the API shows it: its rows turned into ``JobRead``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shipyard.schemas.jobs import (
    JobCost,
    JobInputRead,
    JobOutputRead,
    JobRead,
    StatusChange,
    SweepRead,
    TrialRead,
)
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.tracking import JobRow

PRIORITIES = {"low": 0, "medium": 1, "high": 2}
PRIORITY_NAMES = {v: k for k, v in PRIORITIES.items()}


def job_read(
    job: JobRow,
    sub: JobSubmissionRow,
    *,
    experiment: str,
    created_by: str,
    tags: dict[str, str],
    rate: tuple[float, str],
    parent: str | None = None,
) -> JobRead:
    spec = sub.spec
    environment = spec.get("environment") or {}
    return JobRead(
        name=sub.name,
        id=job.id,
        type=job.job_type,
        display_name=job.name,
        experiment_name=experiment,
        status=job.status,
        status_history=[
            StatusChange(status=s, time=datetime.fromisoformat(t)) for s, t in job.status_history
        ],
        description=spec.get("description"),
        tags=tags,
        properties=spec.get("properties") or {},
        command=spec.get("command", ""),
        code=spec.get("code"),
        environment=str(environment.get("ref") or ("inline" if environment else "")),
        compute=sub.compute,
        environment_variables=spec.get("environment_variables") or {},
        inputs={name: _input_read(value) for name, value in spec.get("inputs", {}).items()},
        outputs={
            name: JobOutputRead(
                type=o["type"],
                mode=o["mode"],
                path=o["uri"],
                name=o.get("name"),
                version=o.get("version"),
                registered=o.get("registered"),
            )
            for name, o in spec.get("outputs", {}).items()
        },
        resources=spec.get("resources") or {},
        limits=spec.get("limits") or {},
        priority=PRIORITY_NAMES.get(sub.priority, "medium"),
        created_by=created_by,
        creation_time=sub.queued_at,
        start_time=sub.started_at,
        end_time=sub.ended_at,
        exit_code=sub.exit_code,
        error=sub.error,
        attempt=sub.attempt,
        cost=JobCost(
            core_seconds=sub.core_seconds,
            rate=rate[0],
            unit=rate[1],
            cost=sub.cost,
        ),
        parent_job_name=parent,
        steps=spec.get("steps"),
        step=sub.step,
        reused_from=sub.reused_from,
        reuse=spec.get("reuse"),
        sweep=_sweep_read(spec),
        trial=_trial_read(spec),
    )


def _input_read(value: dict[str, Any]) -> JobInputRead:
    if value["kind"] == "literal":
        return JobInputRead(type=value["type"], value=value["value"])
    return JobInputRead(
        type=value["type"], path=value["uri"], mode=value["mode"], asset=value.get("asset")
    )


def _sweep_read(spec: dict[str, Any]) -> SweepRead | None:
    settings = spec.get("sweep")
    if spec.get("type") != "sweep" or not settings:
        return None
    return SweepRead(
        search_space=settings["search_space"],
        sampling_algorithm=settings["algorithm"],
        objective=settings["objective"],
        early_termination=settings.get("early_termination"),
        **{k: v for k, v in (spec.get("summary") or {}).items() if k in SweepRead.model_fields},
    )


def _trial_read(spec: dict[str, Any]) -> TrialRead | None:
    info = spec.get("sweep_trial")
    if not info:
        return None
    return TrialRead(
        number=info["number"],
        parameters=info.get("parameters") or {},
        early_terminated=info.get("early_terminated"),
    )
