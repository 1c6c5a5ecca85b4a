"""Registries: create (the creator becomes its Owner), show, list, update, delete.

A registry is a named container for assets shared across workspaces: components today
(``services.registry_components``); models, environments and data later. Deleting a registry
is refused while it holds any (409 ``registry_not_empty``); an empty one goes with every role
assignment made at it, in one transaction, and then its folder of code snapshots.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.errors import ConflictError, InvalidInputError
from shipyard.domain.paging import decode_page_token
from shipyard.schemas.common import Page
from shipyard.schemas.registries import RegistryCreate, RegistryRead, RegistryUpdate
from shipyard.services.authz import registry_not_found
from shipyard.services.paging import split_page
from shipyard.services.registry_code import RegistryCode
from shipyard.services.registry_components import count_components
from shipyard.services.role_assignments import assign
from shipyard.store import registries as store
from shipyard.store import users as user_store
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.registries import RegistryRow
from shipyard.store.roles import delete_assignments_at

# ``azureml://registries/azureml/...`` names Azure's curated environments, which resolve to
# Shipyard's own (services/environments.py): a registry of that name would be unreachable.
RESERVED_NAMES = frozenset({"azureml"})


def registry_read(row: RegistryRow) -> RegistryRead:
    return RegistryRead(
        id=row.id,
        name=row.name,
        description=row.description,
        tags=row.tags,
        created_by=row.creator.name if row.creator is not None else "(deleted)",
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class RegistryService:
    def __init__(self, db: Database, code: RegistryCode | None = None) -> None:
        self.db = db
        self.code = code

    def create(self, creator_id: str, body: RegistryCreate) -> RegistryRead:
        if body.name in RESERVED_NAMES:
            raise InvalidInputError(
                f"{body.name!r} is reserved: azureml://registries/{body.name}/... names the "
                "curated environments",
                code="reserved_name",
                field="name",
            )
        try:
            with self.db.write() as session:
                if store.get_registry(session, body.name) is not None:
                    raise _exists(body.name)
                row = RegistryRow(
                    name=body.name,
                    description=body.description,
                    tags=body.tags,
                    created_by=creator_id,
                )
                session.add(row)
                session.flush()
                creator = user_store.get_user(session, creator_id)
                assign(
                    session,
                    role="Owner",
                    principal_id=creator_id,
                    principal_type=creator.kind if creator is not None else "user",
                    scope_type="registry",
                    scope_id=row.id,
                )
                session.flush()
                session.refresh(row)
                return registry_read(row)
        except IntegrityError as exc:  # a concurrent create of the same name won the race
            raise _exists(body.name) from exc

    def get(self, name: str) -> RegistryRead:
        with self.db.read() as session:
            return registry_read(_require(session, name))

    def list(
        self, *, ids: set[str] | None, page_token: str | None, max_results: int
    ) -> Page[RegistryRead]:
        """``ids``: the registries the caller may read (None: every one)."""
        after = decode_page_token(page_token)
        with self.db.read() as session:
            rows = store.list_registries(session, after=after, limit=max_results + 1, ids=ids)
            page, token = split_page(rows, max_results, lambda r: r.name)
            return Page[RegistryRead](items=[registry_read(r) for r in page], next_page_token=token)

    def update(self, name: str, body: RegistryUpdate) -> RegistryRead:
        with self.db.write() as session:
            row = _require(session, name)
            changes = body.model_dump(exclude_unset=True)
            if changes.get("tags", {}) is None:
                changes["tags"] = {}  # null tags clears them; the column never holds null
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            session.flush()
            return registry_read(row)

    def delete(self, name: str) -> None:
        with self.db.write() as session:
            row = _require(session, name)
            registry_id = row.id
            held, names = count_components(session, registry_id)
            if held:
                shown = ", ".join(names) + (", ..." if held > len(names) else "")
                raise ConflictError(
                    f"registry {name!r} still holds {held} component(s) ({shown}): delete them "
                    f"first (shipyard component delete --registry {name} -n <name>)",
                    code="registry_not_empty",
                    field="registry",
                )
            # Assignments name the registry by id: they go with it, so a registry made later
            # under the same name starts with none.
            delete_assignments_at(session, "registry", row.id)
            session.delete(row)
        if self.code is not None:
            self.code.delete_all(registry_id)


def _require(session: Session, name: str) -> RegistryRow:
    row = store.get_registry(session, name)
    if row is None:
        raise registry_not_found(name)
    return row


def _exists(name: str) -> ConflictError:
    return ConflictError(f"registry {name!r} already exists", code="registry_exists", field="name")
