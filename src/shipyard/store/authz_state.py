"""A counter that moves whenever anything authorization depends on changes.

Role assignments, roles, group memberships, groups and the set of workspaces all feed the
authorization check. Every write transaction that touches one of them bumps this counter
before it commits (see ``watch``), and every request reads it together with its token, so an
authorizer may cache what it loaded for as long as the counter stays put, on every replica.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from sqlalchemy import Integer, event, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from shipyard.store.base import Base
from shipyard.store.groups import GroupMemberRow, GroupRow
from shipyard.store.roles import RoleAssignmentRow, RoleRow
from shipyard.store.users import UserRow
from shipyard.store.workspaces import WorkspaceRow

_FLAG = "shipyard_authz_changed"
# Any change to these rows changes what someone may do.
_WATCHED = (RoleAssignmentRow, RoleRow, GroupMemberRow, GroupRow)
# These matter only when they appear or go (a workspace's name → id; a principal's groups).
_WATCHED_EXISTENCE = (WorkspaceRow, UserRow)


class AuthzStateRow(Base):
    __tablename__ = "authz_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


def version_query() -> Any:
    """A scalar subquery, to read the counter in the same statement as something else."""
    return select(AuthzStateRow.version).where(AuthzStateRow.id == 1).scalar_subquery()


def current_version(session: Session) -> int:
    return int(session.scalar(select(AuthzStateRow.version).where(AuthzStateRow.id == 1)) or 0)


def ensure(session: Session) -> None:
    if session.get(AuthzStateRow, 1) is None:
        session.add(AuthzStateRow(id=1, version=0))


def _relevant(session: Session) -> bool:
    changed = chain(session.new, session.dirty, session.deleted)
    appeared = chain(session.new, session.deleted)
    return any(isinstance(o, _WATCHED) for o in changed) or any(
        isinstance(o, _WATCHED_EXISTENCE) for o in appeared
    )


def watch(factory: sessionmaker[Session]) -> None:
    """Make every session of ``factory`` bump the counter when it commits a relevant change.

    Flushes may happen several times in a transaction, and the last objects may still be
    pending when the commit begins, so both are checked."""

    @event.listens_for(factory, "before_flush")
    def _note(session: Session, _context: Any, _instances: Any) -> None:
        if _relevant(session):
            session.info[_FLAG] = True

    @event.listens_for(factory, "before_commit")
    def _bump(session: Session) -> None:
        if session.info.get(_FLAG) or _relevant(session):
            bump = update(AuthzStateRow).where(AuthzStateRow.id == 1)
            session.execute(bump.values(version=AuthzStateRow.version + 1))
        session.info.pop(_FLAG, None)
