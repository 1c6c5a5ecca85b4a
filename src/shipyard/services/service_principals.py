"""Service principals: non-human identities for automation and CI, with their own tokens."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.errors import ConflictError, NotFoundError
from shipyard.domain.paging import decode_page_token
from shipyard.schemas.common import Page
from shipyard.schemas.groups import ServicePrincipalCreate, ServicePrincipalRead
from shipyard.services.paging import split_page
from shipyard.store import roles as role_store
from shipyard.store import users as store
from shipyard.store.database import Database
from shipyard.store.users import UserRow

KIND = "service_principal"


def sp_read(row: UserRow) -> ServicePrincipalRead:
    return ServicePrincipalRead(
        id=row.id,
        name=row.name,
        description=row.display_name,
        disabled=row.disabled,
        created_at=row.created_at,
    )


class ServicePrincipalService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, body: ServicePrincipalCreate) -> ServicePrincipalRead:
        try:
            with self.db.write() as session:
                if store.get_user_by_name(session, body.name) is not None:
                    raise _exists(body.name)
                row = UserRow(name=body.name, display_name=body.description, kind=KIND)
                session.add(row)
                session.flush()
                return sp_read(row)
        except IntegrityError as exc:
            raise _exists(body.name) from exc

    def get(self, name: str) -> ServicePrincipalRead:
        with self.db.read() as session:
            return sp_read(_require(session, name))

    def list(self, *, page_token: str | None, max_results: int) -> Page[ServicePrincipalRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            rows = store.list_users(session, after=after, limit=max_results + 1, kind=KIND)
            page, token = split_page(rows, max_results, lambda r: r.name)
            return Page[ServicePrincipalRead](
                items=[sp_read(r) for r in page], next_page_token=token
            )

    def delete(self, name: str) -> None:
        """Removes the identity, its tokens, its group memberships and its role assignments."""
        with self.db.write() as session:
            row = _require(session, name)
            role_store.delete_assignments_of(session, row.id)
            session.delete(row)


def _require(session: Session, name: str) -> UserRow:
    row = store.get_user_by_name(session, name)
    if row is None or row.kind != KIND:
        raise NotFoundError(
            f"service principal {name!r} does not exist",
            code="service_principal_not_found",
            field="name",
        )
    return row


def _exists(name: str) -> ConflictError:
    return ConflictError(
        f"a user or service principal named {name!r} already exists",
        code="service_principal_exists",
        field="name",
    )
