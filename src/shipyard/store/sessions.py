"""Browser sessions of the Studio: a cookie's hash, its CSRF token's hash, an expiry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


def get_session_by_hash(session: Session, token_hash: str) -> SessionRow | None:
    query = select(SessionRow).where(SessionRow.token_hash == token_hash)
    return session.scalars(query).one_or_none()
