"""Users and service principals: the identities that call the server."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(320))
    # "user" (a person) or "service_principal" (automation, CI): both hold tokens and roles.
    kind: Mapped[str] = mapped_column(String(32), default="user", server_default="user")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Studio login. An argon2 hash; None means the user signs in with tokens only.
    password_hash: Mapped[str | None] = mapped_column(String(256))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


def get_user_by_name(session: Session, name: str) -> UserRow | None:
    return session.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()


def get_user(session: Session, user_id: str) -> UserRow | None:
    return session.get(UserRow, user_id)


def list_users(
    session: Session, *, after: str | None, limit: int, kind: str = "user"
) -> list[UserRow]:
    query = select(UserRow).where(UserRow.kind == kind).order_by(UserRow.name).limit(limit)
    if after is not None:
        query = query.where(UserRow.name > after)
    return list(session.scalars(query))


def count_enabled_admins(session: Session) -> int:
    query = select(func.count()).where(UserRow.is_admin.is_(True), UserRow.disabled.is_(False))
    return int(session.scalar(query) or 0)


def find_admin(session: Session) -> UserRow | None:
    query = select(UserRow).where(UserRow.is_admin.is_(True)).order_by(UserRow.created_at)
    return session.scalars(query.limit(1)).first()
