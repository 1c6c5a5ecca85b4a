"""MLflow 3's logged models: created PENDING by ``log_model``, finalized READY or FAILED.

A logged model belongs to an experiment of the workspace and, usually, to the run that
logged it. Its files are under ``models/<id>/artifacts`` in the workspace's storage; the
artifact proxy asks :func:`logged_model_exists` whether an id is this workspace's before it
serves or stores anything there.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.domain.errors import InvalidInputError, NotFoundError
from shipyard.domain.model_search import OrderKey, Vocabulary, parse_filter
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.models import LoggedModelCreate, LoggedModelRead
from shipyard.services.experiments import workspace_id_of
from shipyard.services.model_sources import logged_model_location, require_run
from shipyard.services.models import check_tag, next_token, offset_of
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.logged_models import LoggedModelRow, get_logged_model
from shipyard.store.model_search import ordered, where
from shipyard.store.tracking import get_experiment_by_id, names_of
from shipyard.store.users import UserRow

STATUSES = ("PENDING", "READY", "FAILED")
LOGGED_MODEL_SEARCH = Vocabulary(
    strings=frozenset({"name", "model_id", "model_type", "status", "source_run_id"}),
    numbers=frozenset({"creation_timestamp", "last_updated_timestamp"}),
    prefixes=frozenset({"tag", "param"}),
    orderable=frozenset(
        {
            "name",
            "model_id",
            "model_type",
            "status",
            "source_run_id",
            "creation_timestamp",
            "last_updated_timestamp",
        }
    ),
    aliases={
        "creation_time": "creation_timestamp",
        "creation_timestamp_ms": "creation_timestamp",
        "last_updated_time": "last_updated_timestamp",
        "last_updated_timestamp_ms": "last_updated_timestamp",
    },
)
_COLUMNS = {
    "name": LoggedModelRow.name,
    "model_id": LoggedModelRow.id,
    "model_type": LoggedModelRow.model_type,
    "status": LoggedModelRow.status,
    "source_run_id": LoggedModelRow.source_run_id,
    "creation_timestamp": LoggedModelRow.created_at,
    "last_updated_timestamp": LoggedModelRow.updated_at,
}
# MLflow's spellings of the statuses, accepted in filters.
_STATUS_SPELLINGS = {
    "LOGGED_MODEL_PENDING": "PENDING",
    "LOGGED_MODEL_READY": "READY",
    "LOGGED_MODEL_UPLOAD_FAILED": "FAILED",
    "UPLOAD_FAILED": "FAILED",
}


@dataclass(frozen=True)
class Order:
    """One ordering of a logged-model search: an attribute, ascending or not."""

    field: str
    ascending: bool = True


def logged_model_read(row: LoggedModelRow, users: Mapping[str, str]) -> LoggedModelRead:
    return LoggedModelRead(
        id=row.id,
        name=row.name,
        experiment_id=row.experiment_id,
        source_run_id=row.source_run_id,
        status=row.status,
        status_message=row.status_message,
        model_type=row.model_type,
        params=row.params,
        tags=row.tags,
        storage_location=logged_model_location(row.id),
        lifecycle_stage=row.lifecycle_stage,
        created_by=users.get(row.created_by),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _read(session: Session, rows: Sequence[LoggedModelRow]) -> list[LoggedModelRead]:
    users = names_of(session, UserRow, {row.created_by for row in rows})
    return [logged_model_read(row, users) for row in rows]


class LoggedModelService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, principal: Principal, workspace: str, body: LoggedModelCreate
    ) -> LoggedModelRead:
        with self.db.write() as session:
            workspace_id = workspace_id_of(session, workspace)
            if get_experiment_by_id(session, workspace_id, body.experiment_id) is None:
                raise NotFoundError(
                    f"experiment id {body.experiment_id!r} does not exist",
                    code="experiment_not_found",
                    field="experiment_id",
                )
            if body.source_run_id is not None:
                require_run(session, workspace_id, body.source_run_id, field="source_run_id")
            row = LoggedModelRow(
                workspace_id=workspace_id,
                experiment_id=body.experiment_id,
                name=body.name or f"model-{secrets.token_hex(4)}",
                source_run_id=body.source_run_id,
                model_type=body.model_type,
                params=body.params,
                tags=body.tags,
                created_by=principal.id,
            )
            session.add(row)
            session.flush()
            return _read(session, [row])[0]

    def get(
        self, workspace: str, model_id: str, *, include_deleted: bool = False
    ) -> LoggedModelRead:
        """The logged model, if it is this workspace's (NotFoundError otherwise, also for a
        deleted one unless ``include_deleted``)."""
        with self.db.read() as session:
            return _read(session, [_require(session, workspace, model_id, include_deleted)])[0]

    def search(
        self,
        workspace: str,
        *,
        experiment_ids: Sequence[str],
        filter: str | None = None,
        order_by: Sequence[Order] = (),
        max_results: int = 50,
        page_token: str | None = None,
    ) -> Page[LoggedModelRead]:
        """Active logged models of these experiments; newest first unless ``order_by``."""
        conditions = parse_filter(filter, LOGGED_MODEL_SEARCH)
        keys = [_order_key(order, index) for index, order in enumerate(order_by)]
        offset = offset_of(page_token)
        with self.db.read() as session:
            query = select(LoggedModelRow).where(
                LoggedModelRow.workspace_id == workspace_id_of(session, workspace),
                LoggedModelRow.experiment_id.in_(list(experiment_ids)),
                LoggedModelRow.lifecycle_stage == "active",
                where(
                    conditions,
                    _COLUMNS,
                    {"tag": LoggedModelRow.tags, "param": LoggedModelRow.params},
                    {"status": _STATUS_SPELLINGS},
                ),
            )
            query = ordered(query, keys, _COLUMNS).order_by(
                LoggedModelRow.created_at.desc(), LoggedModelRow.id
            )
            rows = list(session.scalars(query.offset(offset).limit(max_results + 1)))
            items = _read(session, rows[:max_results])
        token = next_token(offset, max_results, len(rows) > max_results)
        return Page[LoggedModelRead](items=items, next_page_token=token)

    def finalize(self, workspace: str, model_id: str, status: str) -> LoggedModelRead:
        if status not in STATUSES[1:]:
            raise InvalidInputError(
                f"a logged model is finalized READY or FAILED, not {status[:40]!r}",
                code="invalid_status",
                field="status",
            )
        with self.db.write() as session:
            row = _require(session, workspace, model_id, include_deleted=False)
            row.status = status
            row.updated_at = utcnow()
            session.flush()
            return _read(session, [row])[0]

    def delete(self, workspace: str, model_id: str) -> None:
        """Hide it (MLflow's rule); registered versions made from it keep their files."""
        with self.db.write() as session:
            row = _require(session, workspace, model_id, include_deleted=False)
            row.lifecycle_stage = "deleted"
            row.updated_at = utcnow()

    def set_tags(self, workspace: str, model_id: str, tags: Mapping[str, str]) -> LoggedModelRead:
        for key, value in tags.items():
            check_tag(key, value)
        with self.db.write() as session:
            row = _require(session, workspace, model_id, include_deleted=False)
            row.tags = {**row.tags, **tags}
            row.updated_at = utcnow()
            session.flush()
            return _read(session, [row])[0]

    def delete_tag(self, workspace: str, model_id: str, key: str) -> None:
        with self.db.write() as session:
            row = _require(session, workspace, model_id, include_deleted=False)
            if key not in row.tags:
                raise NotFoundError(
                    f"logged model {model_id!r} has no tag {key!r}",
                    code="tag_not_found",
                    field="tag_key",
                )
            row.tags = {k: v for k, v in row.tags.items() if k != key}
            row.updated_at = utcnow()

    def log_params(self, workspace: str, model_id: str, params: Mapping[str, str]) -> None:
        """Add params; like a run's, a param keeps its first value."""
        with self.db.write() as session:
            row = _require(session, workspace, model_id, include_deleted=False)
            changed = [k for k, v in params.items() if k in row.params and row.params[k] != v]
            if changed:
                raise InvalidInputError(
                    f"param {changed[0]!r} of logged model {model_id!r} already has another value",
                    code="param_changed",
                    field="params",
                )
            row.params = {**row.params, **params}
            row.updated_at = utcnow()

    def record_output(self, workspace: str, run_id: str, model_ids: Sequence[str]) -> None:
        """A run produced these logged models (MLflow's ``log_outputs``): each must be this
        workspace's; one without a source run takes this run as its source."""
        with self.db.write() as session:
            workspace_id = workspace_id_of(session, workspace)
            require_run(session, workspace_id, run_id, field="run_id")
            for model_id in model_ids:
                row = _require(session, workspace, model_id, include_deleted=False)
                if row.source_run_id is None:
                    row.source_run_id = run_id
                    row.updated_at = utcnow()


def logged_model_exists(session: Session, workspace_id: str, model_id: str) -> bool:
    """Whether ``model_id`` is a logged model of the workspace, for the artifact proxy.
    Deleted ones count: versions registered from them still load their files."""
    return 0 < len(model_id) <= 64 and get_logged_model(session, workspace_id, model_id) is not None


def _order_key(order: Order, index: int) -> OrderKey:
    name = LOGGED_MODEL_SEARCH.attribute(order.field)
    if name is None or name not in LOGGED_MODEL_SEARCH.orderable:
        orderable = ", ".join(sorted(LOGGED_MODEL_SEARCH.orderable))
        raise InvalidInputError(
            f"cannot order logged models by {order.field[:100]!r}: use {orderable}",
            code="invalid_order_by",
            field=f"order_by.{index}",
        )
    return OrderKey("attribute", name, not order.ascending)


def _require(
    session: Session, workspace: str, model_id: str, include_deleted: bool
) -> LoggedModelRow:
    row = None
    if 0 < len(model_id) <= 64:
        row = get_logged_model(session, workspace_id_of(session, workspace), model_id)
    if row is None or (row.lifecycle_stage != "active" and not include_deleted):
        raise NotFoundError(
            f"logged model {model_id[:64]!r} does not exist",
            code="logged_model_not_found",
            field="model_id",
        )
    return row
