"""Model versions: register, read, search, update, delete, tags, MLflow stages.

A new version takes the model's next number (see ``store.models``), resolves its source to a
location in the workspace's storage (``services.model_sources``) and records the run that
produced it. Versions are immutable apart from their description, tags, stage and aliases.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.domain.model_search import Vocabulary, parse_filter, parse_order_by
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.models import (
    STAGES,
    ModelVersionCreate,
    ModelVersionRead,
    ModelVersionUpdate,
)
from shipyard.services import model_sources
from shipyard.services.experiments import workspace_id_of
from shipyard.services.models import (
    OPTIONAL_TAGS,
    check_tag,
    next_token,
    offset_of,
    refuse_if_deployed,
    require_model,
    require_version,
    versions_read,
)
from shipyard.store import models as store
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.model_search import ordered, where
from shipyard.store.models import ModelAliasRow, ModelRow, ModelVersionRow

VERSION_SEARCH = Vocabulary(
    strings=frozenset({"name", "run_id", "source_path"}),
    numbers=frozenset({"version_number", "creation_timestamp", "last_updated_timestamp"}),
    orderable=frozenset({"name", "version_number", "creation_timestamp", "last_updated_timestamp"}),
    aliases={
        "source": "source_path",
        "version": "version_number",
        "timestamp": "creation_timestamp",
    },
)
_COLUMNS = {
    "name": ModelRow.name,
    "run_id": ModelVersionRow.run_id,
    "source_path": ModelVersionRow.source,
    "version_number": ModelVersionRow.version,
    "creation_timestamp": ModelVersionRow.created_at,
    "last_updated_timestamp": ModelVersionRow.updated_at,
}
# Archiving the others applies to these stages only (MLflow's rule).
_ARCHIVING_STAGES = ("Staging", "Production")


def canonical_stage(stage: str) -> str:
    """MLflow's stages, in any case: None, Staging, Production, Archived."""
    for known in STAGES:
        if stage.strip().lower() == known.lower():
            return known
    raise InvalidInputError(
        f"stage {stage[:40]!r} is not one of {', '.join(STAGES)}",
        code="invalid_stage",
        field="stage",
    )


def _same(field: str, given: str | None, from_source: str | None) -> str | None:
    """Lineage given beside a source must agree with the source's own (MLflow's rule)."""
    if given and from_source and given != from_source:
        raise InvalidInputError(
            f"{field} {given!r} is not the one the source belongs to ({from_source!r})",
            code=f"invalid_{field}",
            field=field,
        )
    return given or from_source


def add_version(
    session: Session,
    model: ModelRow,
    found: model_sources.Resolved,
    *,
    source: str,
    type: str,
    principal_id: str,
    run_id: str | None = None,
    logged_model_id: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    number: int | None = None,
) -> ModelVersionRow:
    """Insert a version of ``model`` whose source resolved to ``found``: the next number, or
    ``number`` when it is above every number issued so far (the native API's explicit
    versions). Lineage given beside the source must agree with it."""
    run_id = _same("run_id", run_id, found.run_id) or found.source_run_id
    if run_id is not None:
        model_sources.require_run(session, model.workspace_id, run_id, field="run_id")
    logged_model_id = _same("logged_model_id", logged_model_id, found.logged_model_id)
    if logged_model_id is not None:
        model_sources.require_logged_model(
            session, model.workspace_id, logged_model_id, field="logged_model_id"
        )
    now = utcnow()
    if number is None:
        version = store.next_version(session, model.id, now)
    else:
        version = _claim_version(session, model, number, now)
    row = ModelVersionRow(
        model_id=model.id,
        version=version,
        type=type,
        source=source,
        storage_location=found.storage_location,
        run_id=run_id,
        logged_model_id=logged_model_id,
        description=description,
        tags=tags or {},
        created_by=principal_id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _claim_version(session: Session, model: ModelRow, number: int, now: datetime) -> int:
    """Take ``number`` as the model's newest version: only above every number issued before
    (a deleted version's number is never issued again)."""
    claimed = session.execute(
        update(ModelRow)
        .where(ModelRow.id == model.id, ModelRow.last_version < number)
        .values(last_version=number, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(
            f"version {number} of model {model.name!r} exists or existed; versions are "
            "immutable and numbers are not reused: omit the version for the next one",
            code="model_version_exists",
            field="version",
        )
    return number


class ModelVersionService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, principal: Principal, workspace: str, name: str, body: ModelVersionCreate
    ) -> ModelVersionRead:
        with self.db.write() as session:
            model = require_model(session, workspace, name)
            found = model_sources.resolve(session, model.workspace_id, body.source)
            row = add_version(
                session,
                model,
                found,
                source=body.source,
                type=body.type,
                principal_id=principal.id,
                run_id=body.run_id,
                logged_model_id=body.logged_model_id,
                description=body.description,
                tags=body.tags,
            )
            return versions_read(session, [row])[0]

    def get(self, workspace: str, name: str, version: int) -> ModelVersionRead:
        with self.db.read() as session:
            model = require_model(session, workspace, name)
            return versions_read(session, [require_version(session, model, version)])[0]

    def get_by_alias(self, workspace: str, name: str, alias: str) -> ModelVersionRead:
        with self.db.read() as session:
            model = require_model(session, workspace, name)
            found = session.get(ModelAliasRow, (model.id, alias))
            if found is None:
                raise NotFoundError(
                    f"model {name!r} has no alias {alias!r}", code="alias_not_found", field="alias"
                )
            row = session.get(ModelVersionRow, found.version_id)
            assert row is not None  # the foreign key keeps aliases pointing at versions
            return versions_read(session, [row])[0]

    def latest(
        self, workspace: str, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersionRead]:
        """The newest version in each of ``stages`` (every stage when none are given)."""
        wanted = [canonical_stage(s) for s in stages] if stages else None
        with self.db.read() as session:
            model = require_model(session, workspace, name)
            return versions_read(session, store.latest_per_stage(session, [model.id], wanted))

    def search(
        self,
        workspace: str,
        *,
        filter: str | None = None,
        order_by: Sequence[str] = (),
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[ModelVersionRead]:
        """Versions of the workspace's models: ``name = 'churn' AND tags.t = 'x'``, by
        ``run_id``, ``source_path``, ``version_number``. Newest change first by default."""
        conditions = parse_filter(filter, VERSION_SEARCH)
        keys = parse_order_by(list(order_by), VERSION_SEARCH) or parse_order_by(
            ["last_updated_timestamp DESC"], VERSION_SEARCH
        )
        offset = offset_of(page_token)
        with self.db.read() as session:
            query = (
                select(ModelVersionRow)
                .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
                .where(
                    ModelRow.workspace_id == workspace_id_of(session, workspace),
                    where(
                        conditions,
                        _COLUMNS,
                        {"tag": ModelVersionRow.tags},
                        absent_differs=OPTIONAL_TAGS,
                    ),
                )
            )
            query = ordered(query, keys, _COLUMNS).order_by(
                ModelRow.name, ModelVersionRow.version.desc()
            )
            rows = list(session.scalars(query.offset(offset).limit(max_results + 1)))
            items = versions_read(session, rows[:max_results])
        token = next_token(offset, max_results, len(rows) > max_results)
        return Page[ModelVersionRead](items=items, next_page_token=token)

    def update(
        self, workspace: str, name: str, version: int, body: ModelVersionUpdate
    ) -> ModelVersionRead:
        with self.db.write() as session:
            row = require_version(session, require_model(session, workspace, name), version)
            if "description" in body.model_fields_set:
                row.description = body.description
            if body.tags is not None:
                row.tags = body.tags
            row.updated_at = utcnow()
            session.flush()
            return versions_read(session, [row])[0]

    def delete(self, workspace: str, name: str, version: int) -> None:
        """The version and its aliases; its number is never issued again. Refused while an
        online deployment serves it: its instances load the files again at every restart."""
        with self.db.write() as session:
            model = require_model(session, workspace, name)
            row = require_version(session, model, version)
            refuse_if_deployed(session, model, name, version)
            session.delete(row)
            model.updated_at = utcnow()

    def set_tag(self, workspace: str, name: str, version: int, key: str, value: str) -> None:
        check_tag(key, value)
        with self.db.write() as session:
            row = require_version(session, require_model(session, workspace, name), version)
            row.tags = {**row.tags, key: value}
            row.updated_at = utcnow()

    def delete_tag(
        self, workspace: str, name: str, version: int, key: str, *, missing_ok: bool = False
    ) -> None:
        with self.db.write() as session:
            row = require_version(session, require_model(session, workspace, name), version)
            if key not in row.tags:
                if missing_ok:
                    return
                raise NotFoundError(
                    f"version {version} of {name!r} has no tag {key!r}",
                    code="tag_not_found",
                    field="key",
                )
            row.tags = {k: v for k, v in row.tags.items() if k != key}
            row.updated_at = utcnow()

    def transition_stage(
        self, workspace: str, name: str, version: int, stage: str, *, archive_existing: bool
    ) -> ModelVersionRead:
        """Move a version to an MLflow stage; ``archive_existing`` archives the versions
        already in that stage (Staging and Production only)."""
        target = canonical_stage(stage)
        if archive_existing and target not in _ARCHIVING_STAGES:
            raise InvalidInputError(
                f"archive_existing_versions applies to Staging and Production, not {target}",
                code="invalid_stage",
                field="archive_existing_versions",
            )
        with self.db.write() as session:
            model = require_model(session, workspace, name)
            row = require_version(session, model, version)
            now = utcnow()
            if archive_existing:
                session.execute(
                    update(ModelVersionRow)
                    .where(
                        ModelVersionRow.model_id == model.id,
                        ModelVersionRow.stage == target,
                        ModelVersionRow.id != row.id,
                    )
                    .values(stage="Archived", updated_at=now)
                    .execution_options(synchronize_session=False)
                )
            row.stage = target
            row.updated_at = now
            model.updated_at = now
            session.flush()
            return versions_read(session, [row])[0]
