"""Submitted jobs: what a command job asked for, and where the scheduler has it.

A submitted job is a row in ``jobs`` (the run: status, history, metrics, params, tags, like
every run) plus one row here with what only submitted jobs have: the Azure-style job name
(unique in the workspace), the resolved spec, the compute and slot it needs, and what the
launcher needs to find its process again after a restart (``handle``). Interactive runs have
no row here.

The scheduler's queries read this table alone (``state`` mirrors the run's status for
the states it cares about), so picking the next job never joins the runs table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
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

from shipyard.store.base import ID, Base, UtcDateTime, utcnow


class JobSubmissionRow(Base):
    __tablename__ = "job_submissions"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        Index("ix_job_submissions_state_priority", "state", "compute", "priority", "queued_at"),
    )

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    # Azure ML's job name: unique in the workspace, what `job show -n` takes.
    name: Mapped[str] = mapped_column(String(256))
    # The spec as resolved at submit: references pinned to versions, secrets kept as
    # references (never their values), the command template before substitution.
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    compute: Mapped[str] = mapped_column(String(100))
    # queued | running | done: what the scheduler looks at (the run's status says more);
    # waiting: a pipeline step whose upstream steps have not completed; pipeline: a pipeline
    # job itself (its steps run, it never does).
    state: Mapped[str] = mapped_column(String(16), default="queued")
    priority: Mapped[int] = mapped_column(Integer, default=1)  # 0 low, 1 medium, 2 high
    cpus: Mapped[float] = mapped_column(Float, default=1.0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    instance_count: Mapped[int] = mapped_column(Integer, default=1)
    timeout_s: Mapped[int | None] = mapped_column(Integer)
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Infrastructure retries so far (a user's non-zero exit is never retried).
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    # What the launcher needs to find the job again: pid and start time, a Ray submission id.
    handle: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # GPU device numbers the job holds on local compute.
    devices: Mapped[list[Any]] = mapped_column(default=list)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # The code snapshot (a content upload of purpose "code") the job runs in.
    code_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    # Cost: compute time (core-seconds) and the price at the compute's rate when it ended.
    core_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    # Bytes of logs written so far (the live log's length, for streaming from an offset).
    log_size: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(ID)
    # Pipeline steps: the step's name in its pipeline, the steps (job ids) it waits for
    # (state "waiting" until they complete), the fingerprint reuse looks jobs up by, and the
    # job whose results a reused step took.
    step: Mapped[str | None] = mapped_column(String(255))
    depends_on: Mapped[list[Any]] = mapped_column(default=list)
    fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    reused_from: Mapped[str | None] = mapped_column(String(256))


def get_submission(session: Session, workspace_id: str, name: str) -> JobSubmissionRow | None:
    query = select(JobSubmissionRow).where(
        JobSubmissionRow.workspace_id == workspace_id, JobSubmissionRow.name == name
    )
    return session.scalars(query).one_or_none()


def get_submission_by_job(session: Session, job_id: str) -> JobSubmissionRow | None:
    return session.get(JobSubmissionRow, job_id)
