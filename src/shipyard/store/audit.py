"""The audit log: append-only. Nothing here updates or deletes an event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import Base, UtcDateTime, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY (its rowid); PostgreSQL gets a bigint.
EVENT_ID = BigInteger().with_variant(Integer, "sqlite")


class AuditEventRow(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(EVENT_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    principal_id: Mapped[str | None] = mapped_column(String(32))
    principal_name: Mapped[str | None] = mapped_column(String(63), index=True)
    action: Mapped[str] = mapped_column(String(128), index=True)
    method: Mapped[str] = mapped_column(String(8))
    resource: Mapped[str] = mapped_column(Text)
    workspace_id: Mapped[str | None] = mapped_column(String(32), index=True)
    workspace: Mapped[str | None] = mapped_column(String(63))
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[int] = mapped_column(Integer)
    client_address: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))


def list_events(
    session: Session,
    *,
    workspace_id: str | None,
    before_id: int | None,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
    principal: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
) -> list[AuditEventRow]:
    query = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(limit)
    conditions = {
        AuditEventRow.workspace_id: workspace_id,
        AuditEventRow.principal_name: principal,
        AuditEventRow.action: action,
        AuditEventRow.outcome: outcome,
    }
    for column, value in conditions.items():
        if value is not None:
            query = query.where(column == value)
    if before_id is not None:
        query = query.where(AuditEventRow.id < before_id)
    if since is not None:
        query = query.where(AuditEventRow.at >= since)
    if until is not None:
        query = query.where(AuditEventRow.at < until)
    return list(session.scalars(query))
