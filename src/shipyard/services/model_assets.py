"""The native model API: Azure ML's model YAML on the one model registry MLflow also uses.

A version registered here is a row of the same registry (``store.models``), so the MLflow
client sees it and the native API sees what MLflow registered. Its ``path`` is resolved to a
location in the workspace's storage, spelt as the registry spells it
(``mlflow-artifacts:/<path>``, which MLflow clients read through the artifact proxy):

- ``azureml://datastores/workspaceblobstore/paths/<p>``: that path. Local folders are
  uploaded by the SDK to an MLflow logged model's folder (``models/<id>/artifacts``, see
  ``services.uploads``) and registered from there, so MLflow loads them too;
- ``azureml://jobs/<job>/outputs/artifacts/paths/<p>``: a job's default output, which today
  is its run's artifacts: ``runs/<job>/artifacts/<p>``;
- ``runs:/<run>/<p>``: the run's artifacts, as MLflow spells it.

Lineage (the run) comes from the path, or from ``job_name``. For an ``mlflow_model`` the
``MLmodel`` file is read as YAML text for its flavors and signature: nothing is imported or
unpickled. The sources and lineage rules are ``services.model_sources``'s, shared with MLflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain import actions
from shipyard.domain.actions import workspace_scope
from shipyard.domain.asset_uris import (
    DatastorePath,
    JobOutputPath,
    RunPath,
    datastore_uri,
    parse_asset_path,
    parse_asset_ref,
)
from shipyard.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ShipyardError,
)
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.data import LATEST, DataFileRead
from shipyard.schemas.models import ModelAssetCreate, ModelAssetRead
from shipyard.services import asset_files, model_sources
from shipyard.services.authz import Authorizer
from shipyard.services.datastore_uris import DatastoreResolver, Location
from shipyard.services.model_versions import add_version, canonical_stage
from shipyard.services.models import (
    next_token,
    offset_of,
    require_model,
    require_version,
    versions_read,
)
from shipyard.services.workspace_rows import live_workspace
from shipyard.store import data as data_store
from shipyard.store import models as store
from shipyard.store.data import DataAssetRow, DataReferenceRow, DataVersionRow
from shipyard.store.database import Database
from shipyard.store.model_assets import ModelVersionDetailRow, details_of
from shipyard.store.models import ModelRow, ModelVersionRow
from shipyard.store.uploads import ContentUploadRow
from shipyard.store.workspaces import WorkspaceRow

MLMODEL = "MLmodel"
_MODEL_NAME = re.compile(r"^[^/:\x00]{1,256}$")
#: The output every job has (Azure ML's name): its run's artifacts.
DEFAULT_OUTPUT = "artifacts"
_NATIVE_FIELDS = {"source": "path", "run_id": "job_name"}


@dataclass(frozen=True)
class Source:
    """A new version's files: the registry's spelling and the place the server reads."""

    found: model_sources.Resolved
    location: Location


class ModelAssetService:
    def __init__(self, db: Database, resolver: DatastoreResolver, authorizer: Authorizer) -> None:
        self.db = db
        self.resolver = resolver
        self.authorizer = authorizer

    # -- create -----------------------------------------------------------------------------

    def create(
        self, principal: Principal, workspace: str, name: str, body: ModelAssetCreate
    ) -> ModelAssetRead:
        try:
            return self._create(principal, workspace, name, body)
        except ShipyardError as exc:
            # The shared rules name MLflow's fields; this API's body calls them otherwise.
            exc.field = _NATIVE_FIELDS.get(exc.field or "", exc.field)
            raise

    def _create(
        self, principal: Principal, workspace: str, name: str, body: ModelAssetCreate
    ) -> ModelAssetRead:
        check_model_name(name)
        if body.training_data:
            # Naming data versions reads them: the caller must be allowed to.
            self.authorizer.authorize(principal, actions.DATA_READ, workspace_scope(workspace))
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            source = self._source(session, ws, body.path)
            data_ids = [
                _data_version(session, ws.id, ref, i) for i, ref in enumerate(body.training_data)
            ]
        # Storage is read outside any transaction (an S3 round trip must not hold the lock).
        flavors, signature = _check_files(source.location, body.type)
        number = int(body.version) if body.version is not None else None
        try:
            with self.db.write() as session:
                model = store.get_model(session, ws.id, name)
                if model is None:
                    model = ModelRow(workspace_id=ws.id, name=name, created_by=principal.id)
                    session.add(model)
                    session.flush()
                row = add_version(
                    session,
                    model,
                    source.found,
                    source=body.path,
                    type=body.type,
                    principal_id=principal.id,
                    run_id=body.job_name,
                    description=body.description,
                    tags=body.tags,
                    number=number,
                )
                if body.stage is not None:
                    row.stage = canonical_stage(body.stage)
                session.add(
                    ModelVersionDetailRow(
                        version_id=row.id,
                        properties=body.properties,
                        flavors=flavors,
                        signature=signature,
                    )
                )
                for data_id in dict.fromkeys(data_ids):
                    session.add(DataReferenceRow(data_version_id=data_id, model_version_id=row.id))
                session.flush()
                return self._reads(session, ws, [row])[0]
        except IntegrityError as exc:  # a concurrent request created the model first
            raise ConflictError(
                f"model {name!r} was created by another request meanwhile; try again",
                code="model_exists",
                field="name",
            ) from exc

    def _source(self, session: Session, ws: WorkspaceRow, path: str) -> Source:
        parsed = parse_asset_path(path)
        if isinstance(parsed, DatastorePath):
            if parsed.workspace is not None and parsed.workspace != ws.name:
                raise NotFoundError(
                    f"{path[:200]!r} names another workspace",
                    code="datastore_not_found",
                    field="path",
                )
            location = self.resolver.resolve(
                session, ws, parsed.datastore, parsed.path, field="path"
            )
            if location.datastore != self.resolver.default(ws).datastore:
                raise InvalidInputError(
                    "a model's files must be in the workspace's default datastore "
                    f"({self.resolver.default(ws).datastore}), where MLflow clients can load "
                    "them; copy them there",
                    code="unsupported_path",
                    field="path",
                )
            if not location.path:
                raise InvalidInputError(
                    "the path names the whole datastore", code="invalid_path", field="path"
                )
            _check_upload_finished(session, ws.id, location.path)
            spelt = f"{model_sources.ARTIFACTS_SCHEME}/{location.path}"
        elif isinstance(parsed, JobOutputPath):
            if parsed.output != DEFAULT_OUTPUT:
                raise NotFoundError(
                    f"job {parsed.job[:64]!r} has no output {parsed.output[:64]!r}: today a "
                    f"job's only output is {DEFAULT_OUTPUT!r} (its run's artifacts)",
                    code="output_not_found",
                    field="path",
                )
            spelt = f"runs:/{parsed.job}/{parsed.path}"
        elif isinstance(parsed, RunPath):
            spelt = path
        else:
            raise InvalidInputError(
                f"{path[:200]!r}: a model's path is a datastore URI, a job output or "
                "runs:/<run>/<path>; the SDK and the CLI upload local folders first",
                code="unsupported_path",
                field="path",
            )
        found = model_sources.resolve(session, ws.id, spelt)
        return Source(found, self._location(ws, found.storage_location))

    def _location(self, ws: WorkspaceRow, storage_location: str) -> Location:
        """The place a registry location (``mlflow-artifacts:/<path>``) names."""
        prefix = model_sources.ARTIFACTS_SCHEME + "/"
        if not storage_location.startswith(prefix):
            raise InvalidInputError(
                f"the version's files are at {storage_location[:200]!r}, which this server "
                "does not read",
                code="unsupported_location",
                field="path",
            )
        return self.resolver.default(ws, storage_location[len(prefix) :])

    # -- read -------------------------------------------------------------------------------

    def get(self, workspace: str, name: str, version: str) -> ModelAssetRead:
        """A version by number, or ``latest`` (the highest number)."""
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            return self._reads(session, ws, [_version(session, workspace, name, version)])[0]

    def get_by_alias(self, workspace: str, name: str, alias: str) -> ModelAssetRead:
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            model = require_model(session, workspace, name)
            found = session.get(store.ModelAliasRow, (model.id, alias))
            row = session.get(ModelVersionRow, found.version_id) if found else None
            if row is None:
                raise NotFoundError(
                    f"model {name!r} has no alias {alias[:255]!r}",
                    code="alias_not_found",
                    field="alias",
                )
            return self._reads(session, ws, [row])[0]

    def list_versions(
        self, workspace: str, name: str, *, page_token: str | None, max_results: int
    ) -> Page[ModelAssetRead]:
        """Newest first."""
        offset = offset_of(page_token)
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            model = require_model(session, workspace, name)
            query = (
                select(ModelVersionRow)
                .where(ModelVersionRow.model_id == model.id)
                .order_by(ModelVersionRow.version.desc())
                .offset(offset)
                .limit(max_results + 1)
            )
            rows = list(session.scalars(query))
            items = self._reads(session, ws, rows[:max_results])
        token = next_token(offset, max_results, len(rows) > max_results)
        return Page[ModelAssetRead](items=items, next_page_token=token)

    def location(self, workspace: str, name: str, version: str) -> Location:
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            row = _version(session, workspace, name, version)
            return self._location(ws, row.storage_location)

    def files(
        self, workspace: str, name: str, version: str, path: str = "", *, recursive: bool = False
    ) -> list[DataFileRead]:
        location = self.location(workspace, name, version)
        return asset_files.file_reads(asset_files.list_files(location, path, recursive=recursive))

    def _reads(
        self, session: Session, ws: WorkspaceRow, rows: Sequence[ModelVersionRow]
    ) -> list[ModelAssetRead]:
        base = versions_read(session, rows)
        details = details_of(session, [row.id for row in rows])
        data = _training_data(session, [row.id for row in rows])
        reads = []
        for row, read in zip(rows, base, strict=True):
            detail = details.get(row.id)
            reads.append(
                ModelAssetRead(
                    **read.model_dump(),
                    path=_datastore_path(self.resolver.default(ws).datastore, row),
                    properties=detail.properties if detail else {},
                    flavors=detail.flavors if detail else None,
                    signature=detail.signature if detail else None,
                    job_name=row.run_id,
                    training_data=data.get(row.id, []),
                )
            )
        return reads


def _datastore_path(datastore: str, row: ModelVersionRow) -> str | None:
    prefix = model_sources.ARTIFACTS_SCHEME + "/"
    if not row.storage_location.startswith(prefix):
        return None
    return datastore_uri(datastore, row.storage_location[len(prefix) :])


def _check_upload_finished(session: Session, workspace_id: str, path: str) -> None:
    """Files an upload is still sending are not a model yet: the upload must be committed."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[0] == "models" and parts[2] == "artifacts":
        folder = "/".join(parts[:3])
        query = select(ContentUploadRow.committed_at).where(
            ContentUploadRow.workspace_id == workspace_id, ContentUploadRow.folder == folder
        )
        found = session.execute(query.limit(1)).one_or_none()
        if found is not None and found[0] is None:
            raise ConflictError(
                f"{path!r} is an upload that has not been committed; finish it first",
                code="upload_incomplete",
                field="path",
            )


def _check_files(location: Location, model_type: str) -> tuple[dict[str, Any] | None, Any]:
    """The files must exist; an mlflow_model's MLmodel gives (flavors, signature)."""
    storage = location.storage
    if not storage.exists(location.key):
        raise NotFoundError(f"nothing at {location.uri!r}", code="path_not_found", field="path")
    if model_type != "mlflow_model":
        return None, None
    if not storage.stat(location.key).is_dir:
        raise InvalidInputError(
            f"an mlflow_model is a folder with an {MLMODEL} file; {location.uri!r} is a file",
            code="mlmodel_missing",
            field="path",
        )
    text = asset_files.read_descriptor(location.child(MLMODEL), field="path")
    if text is None:
        raise InvalidInputError(
            f"an mlflow_model is a folder with an {MLMODEL} file; {location.uri!r} has none",
            code="mlmodel_missing",
            field="path",
        )
    document = asset_files.load_yaml(text, name=MLMODEL, field="path")
    if not isinstance(document, dict) or not isinstance(document.get("flavors"), dict):
        raise InvalidInputError(
            f"{MLMODEL} has no flavors mapping; is it an MLflow model?",
            code="invalid_mlmodel",
            field="path",
        )
    flavors = json.loads(json.dumps(document["flavors"], default=str))
    return flavors, _signature(document.get("signature"))


def _signature(raw: Any) -> dict[str, Any] | None:
    """MLmodel keeps a signature's inputs and outputs as JSON text; they are parsed when
    they are valid JSON and kept as text otherwise."""
    if not isinstance(raw, dict):
        return None
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            try:
                parsed[str(key)] = json.loads(value)
            except ValueError:
                parsed[str(key)] = value
        else:
            parsed[str(key)] = json.loads(json.dumps(value, default=str))
    return parsed


def _data_version(session: Session, workspace_id: str, ref: str, index: int) -> str:
    """A training data reference, pinned to a version (``@latest`` is resolved now)."""
    field = f"training_data.{index}"
    parsed = parse_asset_ref(ref, field=field)
    asset = data_store.get_asset(session, workspace_id, parsed.name)
    row: DataVersionRow | None = None
    if asset is not None:
        if parsed.version is not None:
            row = data_store.get_version(session, asset.id, parsed.version)
        elif parsed.label in (None, LATEST):
            row = data_store.latest_version(session, asset.id)
    if row is None:
        raise NotFoundError(
            f"{ref[:300]!r} names no data version in this workspace",
            code="data_version_not_found",
            field=field,
        )
    return row.id


def _training_data(session: Session, version_ids: Sequence[str]) -> dict[str, list[str]]:
    if not version_ids:
        return {}
    query = (
        select(DataReferenceRow.model_version_id, DataAssetRow.name, DataVersionRow.version)
        .join(DataVersionRow, DataVersionRow.id == DataReferenceRow.data_version_id)
        .join(DataAssetRow, DataAssetRow.id == DataVersionRow.asset_id)
        .where(DataReferenceRow.model_version_id.in_(version_ids))
        .order_by(DataAssetRow.name, DataVersionRow.seq)
    )
    found: dict[str, list[str]] = {}
    for version_id, name, version in session.execute(query):
        found.setdefault(version_id, []).append(f"azureml:{name}:{version}")
    return found


def _version(session: Session, workspace: str, name: str, version: str) -> ModelVersionRow:
    model = require_model(session, workspace, name)
    if version == LATEST:
        row = session.scalars(
            select(ModelVersionRow)
            .where(ModelVersionRow.model_id == model.id)
            .order_by(ModelVersionRow.version.desc())
            .limit(1)
        ).one_or_none()
        if row is None:
            raise NotFoundError(
                f"model {name!r} has no versions", code="model_version_not_found", field="version"
            )
        return row
    return require_version(session, model, version_number(version))


def version_number(version: str) -> int:
    if not version.isdigit() or len(version) > 9:
        raise InvalidInputError(
            f"model versions are numbers (or 'latest'), not {version[:40]!r}",
            code="invalid_version",
            field="version",
        )
    return int(version)


def check_model_name(name: str) -> None:
    """The registry's rule (shared with MLflow): 1 to 256 characters, no '/', ':' or NUL."""
    if not _MODEL_NAME.fullmatch(name):
        raise InvalidInputError(
            f"model name {name[:100]!r} is invalid: 1 to 256 characters without '/', ':' or NUL",
            code="invalid_name",
            field="name",
        )
