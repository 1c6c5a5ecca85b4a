"""Experiments: named groups of runs in a workspace, created on first use."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.errors import ConflictError, NotFoundError
from shipyard.domain.paging import decode_page_token
from shipyard.schemas.common import Page
from shipyard.schemas.tracking import ExperimentCreate, ExperimentRead, ExperimentUpdate
from shipyard.services.paging import split_page
from shipyard.store import tracking as store
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.tracking import ExperimentRow
from shipyard.store.workspaces import get_workspace_id


def experiment_read(row: ExperimentRow) -> ExperimentRead:
    return ExperimentRead.model_validate(row, from_attributes=True)


def workspace_id_of(session: Session, workspace: str) -> str:
    workspace_id = get_workspace_id(session, workspace)
    if workspace_id is None:
        raise NotFoundError(
            f"workspace {workspace!r} does not exist", code="workspace_not_found", field="workspace"
        )
    return workspace_id


def get_or_create(session: Session, workspace_id: str, name: str) -> ExperimentRow:
    row = store.get_experiment(session, workspace_id, name)
    if row is None:
        row = ExperimentRow(workspace_id=workspace_id, name=name)
        session.add(row)
        session.flush()
    return row


class ExperimentService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, workspace: str, body: ExperimentCreate) -> ExperimentRead:
        try:
            with self.db.write() as session:
                workspace_id = workspace_id_of(session, workspace)
                if store.get_experiment(session, workspace_id, body.name) is not None:
                    raise _exists(body.name)
                row = ExperimentRow(workspace_id=workspace_id, name=body.name, tags=body.tags)
                session.add(row)
                session.flush()
                return experiment_read(row)
        except IntegrityError as exc:
            raise _exists(body.name) from exc

    def get(self, workspace: str, name: str) -> ExperimentRead:
        with self.db.read() as session:
            return experiment_read(_require(session, workspace, name))

    def get_by_id(self, workspace: str, experiment_id: str) -> ExperimentRead:
        """By id (how MLflow names experiments); deleted ones included."""
        with self.db.read() as session:
            row = store.get_experiment_by_id(
                session, workspace_id_of(session, workspace), experiment_id
            )
            if row is None:
                raise NotFoundError(
                    f"experiment id {experiment_id!r} does not exist",
                    code="experiment_not_found",
                    field="experiment_id",
                )
            return experiment_read(row)

    def list(
        self, workspace: str, *, deleted: bool, page_token: str | None, max_results: int
    ) -> Page[ExperimentRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            rows = store.list_experiments(
                session,
                workspace_id_of(session, workspace),
                stage="deleted" if deleted else "active",
                after=after,
                limit=max_results + 1,
            )
            page, token = split_page(rows, max_results, lambda r: r.name)
            return Page[ExperimentRead](
                items=[experiment_read(r) for r in page], next_page_token=token
            )

    def update(self, workspace: str, name: str, body: ExperimentUpdate) -> ExperimentRead:
        try:
            with self.db.write() as session:
                row = _require(session, workspace, name)
                if body.name is not None and body.name != row.name:
                    if store.get_experiment(session, row.workspace_id, body.name) is not None:
                        raise _exists(body.name)
                    row.name = body.name
                if body.tags is not None:
                    row.tags = body.tags
                row.updated_at = utcnow()
                session.flush()
                return experiment_read(row)
        except IntegrityError as exc:
            raise _exists(body.name or name) from exc

    def set_stage(self, workspace: str, name: str, stage: str) -> ExperimentRead:
        """Delete (stage "deleted": hidden, its runs kept) or restore ("active")."""
        with self.db.write() as session:
            row = _require(session, workspace, name)
            row.lifecycle_stage = stage
            row.updated_at = utcnow()
            session.flush()
            return experiment_read(row)


def _require(session: Session, workspace: str, name: str) -> ExperimentRow:
    row = store.get_experiment(session, workspace_id_of(session, workspace), name)
    if row is None:
        raise NotFoundError(
            f"experiment {name!r} does not exist", code="experiment_not_found", field="experiment"
        )
    return row


def _exists(name: str) -> ConflictError:
    return ConflictError(
        f"experiment {name!r} already exists", code="experiment_exists", field="name"
    )
