"""Groups and their members (users or service principals) and owners."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow
from shipyard.store.users import UserRow


class GroupRow(Base):
    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class GroupMemberRow(Base):
    """``relation`` is "member" (gets the group's roles) or "owner" (may manage the group)."""

    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    principal_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    relation: Mapped[str] = mapped_column(String(16), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


def get_group(session: Session, name: str) -> GroupRow | None:
    return session.scalars(select(GroupRow).where(GroupRow.name == name)).one_or_none()


def list_groups(session: Session, *, after: str | None, limit: int) -> list[GroupRow]:
    query = select(GroupRow).order_by(GroupRow.name).limit(limit)
    if after is not None:
        query = query.where(GroupRow.name > after)
    return list(session.scalars(query))


def relations(session: Session, group_id: str) -> list[tuple[str, str, str]]:
    """(relation, principal name, principal kind) of everyone in the group."""
    query = (
        select(GroupMemberRow.relation, UserRow.name, UserRow.kind)
        .join(UserRow, UserRow.id == GroupMemberRow.principal_id)
        .where(GroupMemberRow.group_id == group_id)
        .order_by(UserRow.name)
    )
    return [(r, n, k) for r, n, k in session.execute(query)]


def is_related(session: Session, group_id: str, principal_id: str, relation: str) -> bool:
    row = session.get(GroupMemberRow, (group_id, principal_id, relation))
    return row is not None
