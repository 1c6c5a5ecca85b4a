"""Workspaces: create with their associated resources, update, soft delete, recover, purge."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.errors import ConflictError, GoneError, InvalidInputError, NotFoundError
from shipyard.domain.paging import decode_page_token
from shipyard.schemas.common import Page
from shipyard.schemas.workspaces import (
    EnvironmentRegistryRead,
    KeyVaultRead,
    MonitoringRead,
    StorageRead,
    WorkspaceCreate,
    WorkspaceRead,
    WorkspaceUpdate,
)
from shipyard.services.paging import split_page
from shipyard.services.role_assignments import assign
from shipyard.storage.base import Storage
from shipyard.storage.factory import open_storage, require_local_path
from shipyard.store import workspaces as store
from shipyard.store.base import new_id, utcnow
from shipyard.store.database import Database
from shipyard.store.datastores import DatastoreRow
from shipyard.store.roles import delete_assignments_at
from shipyard.store.workspaces import EnvironmentRegistryRow, KeyVaultRow, WorkspaceRow

log = logging.getLogger(__name__)

DEFAULT_DATASTORE = "workspaceblobstore"  # Azure ML's name, so its datastore URIs resolve
SHARED_ENVIRONMENT_REGISTRY = "default"


@dataclass(frozen=True)
class StoragePolicy:
    """Managed storage lives under the artifact root; brought storage only in allowed roots.

    The artifact root itself is not a valid place to bring: a workspace could then point its
    storage into another workspace's managed folder.
    """

    artifact_root: str
    allowed_roots: list[str] = field(default_factory=list)

    def check_own(self, uri: str) -> str:
        resolved = require_local_path(uri).resolve()
        roots = [Path(r).resolve() for r in self.allowed_roots]
        if not any(_within(resolved, r) for r in roots) or _within(
            resolved, Path(self.artifact_root).resolve()
        ):
            raise InvalidInputError(
                f"{uri!r} is outside the folders this server allows for storage; an admin can "
                "add it to the storage_roots setting",
                code="storage_not_allowed",
                field="storage.uri",
            )
        if not resolved.is_dir():
            raise InvalidInputError(
                f"{uri!r} is not an existing folder", code="storage_not_found", field="storage.uri"
            )
        return str(resolved)


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _check_not_nested(session: Session, base: str) -> None:
    """Brought storage may not sit inside another workspace's own folder (or its files would
    be readable through, and deleted with, that workspace)."""
    path = Path(base)
    for uri, prefix in store.storage_folders(session):
        if _within(path, Path(uri) / prefix):
            raise InvalidInputError(
                f"{base!r} is inside another workspace's storage",
                code="storage_not_allowed",
                field="storage.uri",
            )


def default_datastores(session: Session, rows: Sequence[WorkspaceRow]) -> dict[str, str]:
    """Workspace id -> the name of its default datastore, for ``rows`` in one query (a
    workspace missing from the answer has its own storage, ``workspaceblobstore``)."""
    if not rows:
        return {}
    query = select(DatastoreRow.workspace_id, DatastoreRow.name).where(
        DatastoreRow.workspace_id.in_([row.id for row in rows]),
        DatastoreRow.is_default.is_(True),
    )
    return {str(workspace_id): str(name) for workspace_id, name in session.execute(query)}


def workspace_read(row: WorkspaceRow, default_datastore: str = DEFAULT_DATASTORE) -> WorkspaceRead:
    return WorkspaceRead(
        id=row.id,
        name=row.name,
        display_name=row.display_name,
        description=row.description,
        tags=row.tags,
        created_by=row.creator.name,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
        storage=StorageRead(
            uri=row.storage_uri,
            prefix=row.storage_prefix,
            managed=row.storage_managed,
            default_datastore=default_datastore,
        ),
        key_vault=KeyVaultRead(id=row.key_vault_id),
        environment_registry=EnvironmentRegistryRead(
            name=row.environment_registry.name, shared=row.environment_registry.shared
        ),
        monitoring=MonitoringRead(type=row.monitoring),
    )


class WorkspaceService:
    def __init__(
        self,
        db: Database,
        storage: StoragePolicy,
        *,
        retention_days: float,
        open_storage: Callable[[str], Storage] = open_storage,
    ) -> None:
        self.db = db
        self.storage = storage
        self._open_storage = open_storage
        self.retention = timedelta(days=retention_days)

    def create(self, creator_id: str, body: WorkspaceCreate) -> WorkspaceRead:
        workspace_id = new_id()
        if body.storage is not None:
            base, prefix, managed = self.storage.check_own(body.storage.uri), workspace_id, False
        else:
            base, prefix, managed = self.storage.artifact_root, f"workspaces/{workspace_id}", True
        try:
            with self.db.write() as session:
                _check_name_free(session, body.name)
                if not managed:
                    _check_not_nested(session, base)
                vault = KeyVaultRow()
                registry = self._environment_registry(session, body, workspace_id)
                session.add(vault)
                session.flush()
                row = WorkspaceRow(
                    id=workspace_id,
                    name=body.name,
                    display_name=body.display_name,
                    description=body.description,
                    tags=body.tags,
                    created_by=creator_id,
                    storage_uri=base,
                    storage_prefix=prefix,
                    storage_managed=managed,
                    key_vault_id=vault.id,
                    environment_registry_id=registry.id,
                )
                session.add(row)
                session.flush()
                assign(
                    session,
                    role="Owner",
                    principal_id=creator_id,
                    scope_type="workspace",
                    scope_id=workspace_id,
                )
                # Inside the transaction: if the folder cannot be made, no workspace is recorded.
                self._open_storage(base).ensure_folder(prefix)
                session.refresh(row)
                return workspace_read(row)
        except IntegrityError as exc:  # a concurrent create of the same name won the race
            raise _name_taken(body.name, deleted=False) from exc

    def get(self, name: str) -> WorkspaceRead:
        with self.db.read() as session:
            return _read(session, _require_live(session, name))

    def list(
        self,
        *,
        deleted: bool,
        ids: set[str] | None,
        page_token: str | None,
        max_results: int,
    ) -> Page[WorkspaceRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            rows = store.list_workspaces(
                session, deleted=deleted, after=after, limit=max_results + 1, ids=ids
            )
            page, token = split_page(rows, max_results, lambda r: r.name)
            defaults = default_datastores(session, page)
            items = [workspace_read(r, defaults.get(r.id, DEFAULT_DATASTORE)) for r in page]
            return Page[WorkspaceRead](items=items, next_page_token=token)

    def update(self, name: str, body: WorkspaceUpdate) -> WorkspaceRead:
        with self.db.write() as session:
            row = _require_live(session, name)
            changes = body.model_dump(exclude_unset=True)
            if changes.get("tags", {}) is None:
                changes["tags"] = {}  # null tags clears them; the column never holds null
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            session.flush()
            return _read(session, row)

    def delete(self, name: str, *, permanently: bool) -> None:
        with self.db.write() as session:
            row = _require(session, name)
            if permanently:
                self._purge(session, row)
            elif row.deleted_at is None:
                row.deleted_at = utcnow()
            else:
                raise _deleted(name)

    def recover(self, name: str) -> WorkspaceRead:
        with self.db.write() as session:
            row = _require(session, name)
            if row.deleted_at is None:
                raise ConflictError(
                    f"workspace {name!r} is not deleted",
                    code="workspace_not_deleted",
                    field="name",
                )
            if row.deleted_at + self.retention <= utcnow():
                raise GoneError(
                    f"workspace {name!r} was deleted more than the retention period ago and can "
                    "no longer be recovered",
                    code="retention_expired",
                    field="name",
                )
            row.deleted_at = None
            row.updated_at = utcnow()
            session.flush()
            return _read(session, row)

    def purge_expired(self) -> tuple[str, ...]:
        """Permanently delete every workspace soft-deleted longer ago than the retention."""
        with self.db.write() as session:
            rows = store.list_deleted_before(session, utcnow() - self.retention)
            for row in rows:
                self._purge(session, row)
            return tuple(row.name for row in rows)

    def _purge(self, session: Session, row: WorkspaceRow) -> None:
        registry = row.environment_registry
        delete_assignments_at(session, "workspace", row.id)
        session.delete(row)
        session.flush()
        session.delete(session.get_one(KeyVaultRow, row.key_vault_id))
        if not registry.shared:
            session.delete(registry)
        # Files go last: if this fails, the transaction rolls back and nothing is half-deleted
        # in the metadata (the next purge tries again).
        self._open_storage(row.storage_uri).delete_tree(row.storage_prefix)
        log.info("workspace purged", extra={"workspace": row.name})

    def _environment_registry(
        self, session: Session, body: WorkspaceCreate, workspace_id: str
    ) -> EnvironmentRegistryRow:
        if body.environment_registry == "dedicated":
            registry = EnvironmentRegistryRow(name=f"workspace-{workspace_id}", shared=False)
            session.add(registry)
            session.flush()
            return registry
        shared = store.get_environment_registry(session, SHARED_ENVIRONMENT_REGISTRY)
        if shared is None:
            raise RuntimeError("the shared environment registry is missing; run bootstrap")
        return shared


def _read(session: Session, row: WorkspaceRow) -> WorkspaceRead:
    default = default_datastores(session, [row]).get(row.id, DEFAULT_DATASTORE)
    return workspace_read(row, default)


def _check_name_free(session: Session, name: str) -> None:
    existing = store.get_workspace(session, name)
    if existing is not None:
        raise _name_taken(name, deleted=existing.deleted_at is not None)


def _name_taken(name: str, *, deleted: bool) -> ConflictError:
    if deleted:
        return ConflictError(
            f"workspace {name!r} is soft-deleted: recover it with `shipyard workspace recover "
            f"-n {name}`, or delete it permanently to reuse the name",
            code="workspace_deleted",
            field="name",
        )
    return ConflictError(
        f"workspace {name!r} already exists", code="workspace_exists", field="name"
    )


def _require(session: Session, name: str) -> WorkspaceRow:
    row = store.get_workspace(session, name)
    if row is None:
        raise NotFoundError(
            f"workspace {name!r} does not exist", code="workspace_not_found", field="workspace"
        )
    return row


def _require_live(session: Session, name: str) -> WorkspaceRow:
    row = _require(session, name)
    if row.deleted_at is not None:
        raise _deleted(name)
    return row


def _deleted(name: str) -> NotFoundError:
    return NotFoundError(
        f"workspace {name!r} is deleted; recover it with `shipyard workspace recover -n {name}`",
        code="workspace_deleted",
        field="workspace",
    )
