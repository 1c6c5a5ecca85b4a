"""Registered models: create, read, search, update (rename), delete, tags and aliases.

Model names are unique in a workspace. Deleting a model deletes its versions and aliases; the
files stay where the runs and logged models put them. Versions are ``services.model_versions``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.domain.model_search import Vocabulary, parse_filter, parse_order_by
from shipyard.domain.paging import decode_page_token, encode_page_token
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.models import (
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    ModelCreate,
    ModelRead,
    ModelUpdate,
    ModelVersionRead,
)
from shipyard.services.experiments import workspace_id_of
from shipyard.store import models as store
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.endpoints import deployments_using_model
from shipyard.store.model_search import ordered, where
from shipyard.store.models import ModelAliasRow, ModelRow, ModelVersionRow
from shipyard.store.tracking import names_of
from shipyard.store.users import UserRow

MODEL_SEARCH = Vocabulary(
    strings=frozenset({"name"}),
    orderable=frozenset({"name", "creation_timestamp", "last_updated_timestamp"}),
    aliases={"timestamp": "creation_timestamp"},
)
_COLUMNS = {
    "name": ModelRow.name,
    "creation_timestamp": ModelRow.created_at,
    "last_updated_timestamp": ModelRow.updated_at,
}
# The MLflow client adds "tags.`mlflow.prompt.is_prompt` != 'true'" to every model search to
# leave out prompts (kept as models with that tag); models without the tag must still match.
OPTIONAL_TAGS = frozenset({"mlflow.prompt.is_prompt"})
_RESERVED_ALIAS = re.compile(r"^(latest|[vV]\d+)$", re.IGNORECASE)
_ALIAS = re.compile(r"^[\w\-]{1,255}$")


# --- reading rows as bodies (shared with the version service) -------------------------------


def versions_read(session: Session, rows: Sequence[ModelVersionRow]) -> list[ModelVersionRead]:
    """Versions with their model's name, aliases and creator: three queries for the list."""
    names = store.model_names(session, {row.model_id for row in rows})
    aliases = store.aliases_of(session, [row.id for row in rows])
    users = names_of(session, UserRow, {row.created_by for row in rows})
    return [
        ModelVersionRead(
            name=names.get(row.model_id, ""),
            version=row.version,
            type=row.type,
            source=row.source,
            storage_location=row.storage_location,
            run_id=row.run_id,
            logged_model_id=row.logged_model_id,
            status=row.status,
            status_message=row.status_message,
            description=row.description,
            tags=row.tags,
            stage=row.stage,
            aliases=aliases.get(row.id, []),
            created_by=users.get(row.created_by),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


def models_read(session: Session, rows: Sequence[ModelRow]) -> list[ModelRead]:
    ids = [row.id for row in rows]
    latest = versions_read(session, store.latest_per_stage(session, ids))
    by_model: dict[str, list[ModelVersionRead]] = {}
    for version in latest:
        by_model.setdefault(version.name, []).append(version)
    aliases = store.model_aliases(session, ids)
    users = names_of(session, UserRow, {row.created_by for row in rows})
    return [
        ModelRead(
            name=row.name,
            description=row.description,
            tags=row.tags,
            aliases=aliases.get(row.id, {}),
            latest_version=max((v.version for v in by_model.get(row.name, [])), default=None),
            latest_versions=by_model.get(row.name, []),
            created_by=users.get(row.created_by),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


def require_model(session: Session, workspace: str, name: str) -> ModelRow:
    row = store.get_model(session, workspace_id_of(session, workspace), name)
    if row is None:
        raise NotFoundError(
            f"registered model {name!r} does not exist", code="model_not_found", field="name"
        )
    return row


def require_version(session: Session, model: ModelRow, version: int) -> ModelVersionRow:
    row = store.get_version(session, model.id, version)
    if row is None:
        raise NotFoundError(
            f"model {model.name!r} has no version {version}",
            code="model_version_not_found",
            field="version",
        )
    return row


def check_tag(key: str, value: str) -> None:
    if not key or len(key) > MAX_TAG_KEY or "\x00" in key:
        raise InvalidInputError(
            f"a tag key is 1 to {MAX_TAG_KEY} characters", code="invalid_tag", field="key"
        )
    if len(value) > MAX_TAG_VALUE or "\x00" in value:
        raise InvalidInputError(
            f"a tag value is at most {MAX_TAG_VALUE} characters, without NUL",
            code="invalid_tag",
            field="value",
        )


def offset_of(page_token: str | None) -> int:
    after = decode_page_token(page_token)
    if after is None:
        return 0
    if not after.isdigit():
        raise InvalidInputError(
            "page_token is not a token this server issued",
            code="invalid_page_token",
            field="page_token",
        )
    return int(after)


def next_token(offset: int, taken: int, more: bool) -> str | None:
    return encode_page_token(str(offset + taken)) if more else None


# --- the service ------------------------------------------------------------------------------


class ModelService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, principal: Principal, workspace: str, body: ModelCreate) -> ModelRead:
        try:
            with self.db.write() as session:
                workspace_id = workspace_id_of(session, workspace)
                if store.get_model(session, workspace_id, body.name) is not None:
                    raise _exists(body.name)
                row = ModelRow(
                    workspace_id=workspace_id,
                    name=body.name,
                    description=body.description,
                    tags=body.tags,
                    created_by=principal.id,
                )
                session.add(row)
                session.flush()
                return models_read(session, [row])[0]
        except IntegrityError as exc:  # created meanwhile by a concurrent request
            raise _exists(body.name) from exc

    def get(self, workspace: str, name: str) -> ModelRead:
        with self.db.read() as session:
            return models_read(session, [require_model(session, workspace, name)])[0]

    def search(
        self,
        workspace: str,
        *,
        filter: str | None = None,
        order_by: Sequence[str] = (),
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[ModelRead]:
        """MLflow's registry filter (``name LIKE 'churn%' AND tags.team = 'ml'``); ordered by
        name unless ``order_by`` says otherwise."""
        conditions = parse_filter(filter, MODEL_SEARCH)
        keys = parse_order_by(list(order_by), MODEL_SEARCH)
        offset = offset_of(page_token)
        with self.db.read() as session:
            query = select(ModelRow).where(
                ModelRow.workspace_id == workspace_id_of(session, workspace),
                where(conditions, _COLUMNS, {"tag": ModelRow.tags}, absent_differs=OPTIONAL_TAGS),
            )
            query = ordered(query, keys, _COLUMNS).order_by(ModelRow.name, ModelRow.id)
            rows = list(session.scalars(query.offset(offset).limit(max_results + 1)))
            items = models_read(session, rows[:max_results])
        token = next_token(offset, max_results, len(rows) > max_results)
        return Page[ModelRead](items=items, next_page_token=token)

    def update(self, workspace: str, name: str, body: ModelUpdate) -> ModelRead:
        try:
            with self.db.write() as session:
                row = require_model(session, workspace, name)
                if body.name is not None and body.name != row.name:
                    if store.get_model(session, row.workspace_id, body.name) is not None:
                        raise _exists(body.name)
                    row.name = body.name
                if "description" in body.model_fields_set:
                    row.description = body.description
                if body.tags is not None:
                    row.tags = body.tags
                row.updated_at = utcnow()
                session.flush()
                return models_read(session, [row])[0]
        except IntegrityError as exc:
            raise _exists(body.name or name) from exc

    def delete(self, workspace: str, name: str) -> None:
        """The model, its versions and aliases (the files stay with their runs); refused
        while an online deployment serves one of its versions."""
        with self.db.write() as session:
            model = require_model(session, workspace, name)
            refuse_if_deployed(session, model, name)
            session.delete(model)

    def set_tag(self, workspace: str, name: str, key: str, value: str) -> None:
        check_tag(key, value)
        with self.db.write() as session:
            row = require_model(session, workspace, name)
            row.tags = {**row.tags, key: value}
            row.updated_at = utcnow()

    def delete_tag(self, workspace: str, name: str, key: str, *, missing_ok: bool = False) -> None:
        with self.db.write() as session:
            row = require_model(session, workspace, name)
            if key not in row.tags:
                if missing_ok:
                    return
                raise NotFoundError(
                    f"model {name!r} has no tag {key!r}", code="tag_not_found", field="key"
                )
            row.tags = {k: v for k, v in row.tags.items() if k != key}
            row.updated_at = utcnow()

    def set_alias(self, workspace: str, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at ``version`` (moving it from another version if need be)."""
        _check_alias(alias)
        with self.db.write() as session:
            model = require_model(session, workspace, name)
            target = require_version(session, model, version)
            found = session.get(ModelAliasRow, (model.id, alias))
            if found is None:
                session.add(ModelAliasRow(model_id=model.id, alias=alias, version_id=target.id))
            else:
                found.version_id = target.id
            model.updated_at = utcnow()

    def delete_alias(
        self, workspace: str, name: str, alias: str, *, missing_ok: bool = False
    ) -> None:
        with self.db.write() as session:
            model = require_model(session, workspace, name)
            found = session.get(ModelAliasRow, (model.id, alias))
            if found is None:
                if missing_ok:
                    return
                raise NotFoundError(
                    f"model {name!r} has no alias {alias!r}", code="alias_not_found", field="alias"
                )
            session.delete(found)
            model.updated_at = utcnow()


def _check_alias(alias: str) -> None:
    if not _ALIAS.fullmatch(alias):
        raise InvalidInputError(
            f"alias {alias[:255]!r} is invalid: use letters, digits, _ and - (1 to 255)",
            code="invalid_alias",
            field="alias",
        )
    if _RESERVED_ALIAS.fullmatch(alias):
        raise InvalidInputError(
            f"alias {alias!r} is reserved ('latest' and v<number> name versions)",
            code="invalid_alias",
            field="alias",
        )


def _exists(name: str) -> ConflictError:
    return ConflictError(
        f"registered model {name!r} already exists", code="model_exists", field="name"
    )


def refuse_if_deployed(
    session: Session, model: ModelRow, name: str, version: int | None = None
) -> None:
    """A model version an online deployment serves stays: its instances load the files
    again at every restart (delete or update the deployment first)."""
    serving = deployments_using_model(session, model.workspace_id, name, version)
    if serving:
        shown = ", ".join(serving[:5]) + (" ..." if len(serving) > 5 else "")
        which = f"version {version} of model {name!r} is" if version else f"model {name!r} is"
        raise ConflictError(
            f"{which} deployed ({shown}); delete or update those deployments first",
            code="model_version_in_use" if version else "model_in_use",
            field="version" if version else "name",
        )
