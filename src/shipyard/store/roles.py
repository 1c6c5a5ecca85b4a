"""Role definitions (built-in ones are written here at start) and role assignments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow


class RoleRow(Base):
    __tablename__ = "roles"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    actions: Mapped[list[str]] = mapped_column(default=list)
    not_actions: Mapped[list[str]] = mapped_column(default=list)
    assignable_scopes: Mapped[list[str]] = mapped_column(default=list)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RoleAssignmentRow(Base):
    """A principal (user, service principal or group) holds a role at a scope.

    ``scope_id`` is the workspace's or the registry's id (not its name: a name freed by a
    purge or a delete and reused must not inherit the old one's assignments), or "" for
    global.
    """

    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("principal_id", "role_id", "scope_type", "scope_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    principal_id: Mapped[str] = mapped_column(String(32), index=True)
    principal_type: Mapped[str] = mapped_column(String(32))
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id"), index=True)
    scope_type: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[str] = mapped_column(String(64), default="")
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    role: Mapped[RoleRow] = relationship(lazy="joined")


def get_role(session: Session, name: str) -> RoleRow | None:
    return session.scalars(select(RoleRow).where(RoleRow.name == name)).one_or_none()


def list_roles(session: Session) -> list[RoleRow]:
    return list(session.scalars(select(RoleRow).order_by(RoleRow.builtin.desc(), RoleRow.name)))


def grants_for(
    session: Session, principal_ids: list[str], scopes: list[tuple[str, str]]
) -> list[tuple[list[str], list[str], str, str]]:
    """(actions, not_actions, scope_type, scope_id) of every assignment of these principals
    at these scopes, in one query."""
    scope_filter = or_(
        *(
            (RoleAssignmentRow.scope_type == kind) & (RoleAssignmentRow.scope_id == sid)
            for kind, sid in scopes
        )
    )
    query = (
        select(
            RoleRow.actions,
            RoleRow.not_actions,
            RoleAssignmentRow.scope_type,
            RoleAssignmentRow.scope_id,
        )
        .join(RoleRow, RoleRow.id == RoleAssignmentRow.role_id)
        .where(RoleAssignmentRow.principal_id.in_(principal_ids), scope_filter)
    )
    return [(a, n, t, s) for a, n, t, s in session.execute(query)]


def grants_by_scope(
    session: Session, principal_ids: list[str], scope_type: str
) -> list[tuple[list[str], list[str], str]]:
    """(actions, not_actions, scope id) of every assignment of these principals at a scope
    of ``scope_type`` (a workspace or a registry, by id)."""
    query = (
        select(RoleRow.actions, RoleRow.not_actions, RoleAssignmentRow.scope_id)
        .join(RoleRow, RoleRow.id == RoleAssignmentRow.role_id)
        .where(
            RoleAssignmentRow.principal_id.in_(principal_ids),
            RoleAssignmentRow.scope_type == scope_type,
        )
    )
    return [(a, n, s) for a, n, s in session.execute(query)]


def list_assignments(
    session: Session, *, scope_type: str, scope_id: str, filters: dict[str, Any] | None = None
) -> list[RoleAssignmentRow]:
    query = (
        select(RoleAssignmentRow)
        .where(RoleAssignmentRow.scope_type == scope_type, RoleAssignmentRow.scope_id == scope_id)
        .order_by(RoleAssignmentRow.created_at, RoleAssignmentRow.id)
    )
    for column, value in (filters or {}).items():
        query = query.where(getattr(RoleAssignmentRow, column) == value)
    return list(session.scalars(query))


def delete_assignments_at(session: Session, scope_type: str, scope_id: str) -> None:
    for row in list_assignments(session, scope_type=scope_type, scope_id=scope_id):
        session.delete(row)


def assignments_of(session: Session, principal_id: str) -> list[RoleAssignmentRow]:
    return assignments_of_any(session, [principal_id])


def assignments_of_any(session: Session, principal_ids: list[str]) -> list[RoleAssignmentRow]:
    query = select(RoleAssignmentRow).where(RoleAssignmentRow.principal_id.in_(principal_ids))
    return list(session.scalars(query))


def delete_assignments_of(session: Session, principal_id: str) -> None:
    query = select(RoleAssignmentRow).where(RoleAssignmentRow.principal_id == principal_id)
    for row in session.scalars(query):
        session.delete(row)
