"""Schedules and their fires.

A fire is claimed by moving ``next_fire_at`` with a compare-and-set UPDATE (``WHERE
next_fire_at = <the value read>``) in the transaction that inserts its ``schedule_fires`` row;
the row's UNIQUE (schedule_id, fire_time) is the second guard. Two servers on one store that
see the same due fire: one UPDATE matches, the other matches nothing and moves on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow
from shipyard.store.workspaces import WorkspaceRow


class ScheduleRow(Base):
    __tablename__ = "schedules"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        Index("ix_schedules_due", "enabled", "next_fire_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    properties: Mapped[dict[str, str]] = mapped_column(default=dict)
    # The trigger as given (times as ISO strings) and the start time it resolved to.
    trigger: Mapped[dict[str, Any]] = mapped_column(default=dict)
    start_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The job spec submitted at every fire (overrides merged in).
    create_job: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)
    # None: no fire left (past end_time).
    next_fire_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_fire_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Principal id without a foreign key: the jobs are submitted as this principal.
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ScheduleFireRow(Base):
    __tablename__ = "schedule_fires"
    __table_args__ = (UniqueConstraint("schedule_id", "fire_time"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    fire_time: Mapped[datetime] = mapped_column(UtcDateTime)
    fired_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Earlier fires missed while no server ran, skipped by this one (docs/schedules.md).
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    job_name: Mapped[str | None] = mapped_column(String(256))
    error: Mapped[str | None] = mapped_column(Text)


def get_schedule(session: Session, workspace_id: str, name: str) -> ScheduleRow | None:
    query = select(ScheduleRow).where(
        ScheduleRow.workspace_id == workspace_id, ScheduleRow.name == name
    )
    return session.scalars(query).one_or_none()


def list_schedules(
    session: Session, workspace_id: str, *, after: str | None, limit: int
) -> list[ScheduleRow]:
    query = (
        select(ScheduleRow)
        .where(ScheduleRow.workspace_id == workspace_id)
        .order_by(ScheduleRow.name)
        .limit(limit)
    )
    if after is not None:
        query = query.where(ScheduleRow.name > after)
    return list(session.scalars(query))


def due_schedules(session: Session, now: datetime, *, limit: int) -> list[ScheduleRow]:
    query = (
        select(ScheduleRow)
        .join(WorkspaceRow, WorkspaceRow.id == ScheduleRow.workspace_id)
        .where(
            ScheduleRow.enabled.is_(True),
            ScheduleRow.next_fire_at <= now,
            WorkspaceRow.deleted_at.is_(None),  # a soft-deleted workspace's schedules wait
        )
        .order_by(ScheduleRow.next_fire_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def claim(
    session: Session, row_id: str, seen: datetime, fire: datetime, following: datetime | None
) -> bool:
    """Move the schedule's next fire from ``seen`` to ``following`` (``fire`` is the one
    fired); False when another server moved it first."""
    result = session.execute(
        update(ScheduleRow)
        .where(ScheduleRow.id == row_id, ScheduleRow.next_fire_at == seen)
        .values(next_fire_at=following, last_fire_at=fire)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def list_fires(
    session: Session, schedule_id: str, *, before: datetime | None, limit: int
) -> list[ScheduleFireRow]:
    query = (
        select(ScheduleFireRow)
        .where(ScheduleFireRow.schedule_id == schedule_id)
        .order_by(ScheduleFireRow.fire_time.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(ScheduleFireRow.fire_time < before)
    return list(session.scalars(query))
