"""Roles: the built-in ones (kept in step with the code at every start) and custom ones."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.actions import CATALOG
from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.domain.roles import BUILTIN_ROLES, matches
from shipyard.schemas.roles import RoleCreate, RoleRead
from shipyard.store import roles as store
from shipyard.store.database import Database
from shipyard.store.roles import RoleAssignmentRow, RoleRow


def role_read(row: RoleRow) -> RoleRead:
    return RoleRead.model_validate(row, from_attributes=True)


def sync_builtin_roles(session: Session) -> None:
    """Write the built-in definitions; the code, not the database, is their source."""
    for role in BUILTIN_ROLES:
        row = store.get_role(session, role.name) or RoleRow(name=role.name)
        row.description = role.description
        row.actions = list(role.actions)
        row.not_actions = list(role.not_actions)
        row.assignable_scopes = list(role.assignable_scopes)
        row.builtin = True
        session.add(row)
    session.flush()


def require_role(session: Session, name: str, *, field: str = "role") -> RoleRow:
    row = store.get_role(session, name)
    if row is None:
        raise NotFoundError(f"role {name!r} does not exist", code="role_not_found", field=field)
    return row


class RoleService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def list(self) -> list[RoleRead]:
        with self.db.read() as session:
            return [role_read(r) for r in store.list_roles(session)]

    def get(self, name: str) -> RoleRead:
        with self.db.read() as session:
            return role_read(require_role(session, name, field="name"))

    def create(self, body: RoleCreate) -> RoleRead:
        for field, patterns in (("actions", body.actions), ("not_actions", body.not_actions)):
            _check_patterns(field, patterns)
        try:
            with self.db.write() as session:
                if store.get_role(session, body.name) is not None:
                    raise _exists(body.name)
                row = RoleRow(**body.model_dump(), builtin=False)
                session.add(row)
                session.flush()
                return role_read(row)
        except IntegrityError as exc:
            raise _exists(body.name) from exc

    def delete(self, name: str) -> None:
        with self.db.write() as session:
            row = require_role(session, name, field="name")
            if row.builtin:
                raise ConflictError(
                    f"{name!r} is a built-in role", code="builtin_role", field="name"
                )
            used = session.scalars(
                select(RoleAssignmentRow.id).where(RoleAssignmentRow.role_id == row.id).limit(1)
            ).first()
            if used is not None:
                raise ConflictError(
                    f"role {name!r} is still assigned; delete its assignments first",
                    code="role_in_use",
                    field="name",
                )
            session.delete(row)


def _check_patterns(field: str, patterns: list[str]) -> None:
    for index, pattern in enumerate(patterns):
        if not any(matches(pattern, action) for action in CATALOG):
            raise InvalidInputError(
                f"{pattern!r} matches no known action (see `shipyard role show -n Owner` and "
                "docs/security.md for the vocabulary)",
                code="unknown_action",
                field=f"{field}.{index}",
            )


def _exists(name: str) -> ConflictError:
    return ConflictError(f"role {name!r} already exists", code="role_exists", field="name")
