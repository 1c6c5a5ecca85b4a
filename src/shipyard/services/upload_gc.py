"""Removing uploads nobody will finish or use: the content-upload garbage collector.

A content upload (``services.uploads``) that was begun and never committed leaves a row and
part of its files behind; one that was committed and whose versions were all deleted since
holds files nothing reads. Both are removed, row and files, once nobody has begun them for
``older_than`` (the ``upload_abandon_after_hours`` setting): a client that resumes or reuses
an upload begins it again, and a folder where a file was written within that time counts as
being written right now. Run by ``shipyard admin gc-uploads`` and by the server every
``upload_gc_interval_seconds``.

Never removed:

- an upload a data version points into (its datastore and a path at or below the upload's
  folder). For an upload in a named datastore, a version of *any* workspace on *any* named
  datastore counts, since two workspaces' datastores may be the same bucket or folder;
- an upload in the workspace's own storage that a model version's files are in (or whose
  logged model a version came from);
- a code snapshot (purpose ``code``) whose digest a submitted job or a component version
  names (``job_submissions.code_digest``, ``component_versions.code_digest``,
  ``online_deployments.code_digest``, ``batch_deployments.code_digest``);
- an upload of a soft-deleted workspace (recovering it brings everything back), of a purpose
  this module does not know, or in a datastore that is read-only now.

Files another upload shares (data and code of the same content share ``LocalUpload/<digest>``
in the workspace's own storage; two workspaces' datastores may share a bucket) stay with it;
only the row goes. An upload whose datastore was deleted loses its row (its files cannot be
reached any more).

A sweep reads every place in use once (``UploadUsers``) to pass over the many uploads in use
cheaply; each upload it would remove is checked again on its own (``in_use``) in the
transaction that starts removing it. Removal happens in three steps, so a client is never
told an upload is there while its files go: the row is first marked uncommitted (after
checking once more that nothing uses it and nobody began it since), then the files go, then
the row, unless a client began the upload meanwhile. A step that fails leaves an uncommitted
row the next sweep takes up again.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, SQLColumnExpression, or_, select
from sqlalchemy.orm import Session

from shipyard.domain.errors import NotFoundError
from shipyard.services.datastore_uris import DatastoreResolver, Location
from shipyard.services.model_sources import ARTIFACTS_SCHEME
from shipyard.store.base import utcnow
from shipyard.store.batch_endpoints import BatchDeploymentRow, BatchEndpointRow
from shipyard.store.components import ComponentRow, ComponentVersionRow
from shipyard.store.data import DataAssetRow, DataVersionRow
from shipyard.store.database import Database
from shipyard.store.endpoints import OnlineDeploymentRow, OnlineEndpointRow
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.logged_models import LoggedModelRow
from shipyard.store.models import ModelRow, ModelVersionRow
from shipyard.store.uploads import OWN_DATASTORE, ContentUploadRow, same_digest, stale_uploads
from shipyard.store.workspaces import WorkspaceRow

log = logging.getLogger(__name__)

#: The purposes whose users this module knows how to find; others are never touched.
COLLECTED = ("data", "model", "code")

Spared = Literal["in_use", "busy", "read_only", "begun_again"]


@dataclass(frozen=True)
class Removed:
    """One upload the sweep removed."""

    workspace: str
    purpose: str
    digest: str
    datastore: str
    reason: Literal["abandoned", "unused"]  # never committed | committed, used by nothing
    files_removed: bool  # False: another upload shares them, or the datastore is gone


@dataclass
class Sweep:
    """What one pass did."""

    removed: list[Removed] = field(default_factory=list)
    spared: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Candidate:
    id: str
    created_at: datetime
    committed: bool


class UploadCollector:
    def __init__(
        self, db: Database, resolver: DatastoreResolver, *, abandon_after: timedelta
    ) -> None:
        self.db = db
        self.resolver = resolver
        self.abandon_after = abandon_after

    def collect(self, *, older_than: timedelta | None = None) -> Sweep:
        """Remove every upload nobody began for ``older_than`` (default: the setting) that is
        uncommitted, or committed and used by nothing."""
        before = utcnow() - (self.abandon_after if older_than is None else older_than)
        sweep = Sweep()
        with self.db.read() as session:
            stale = stale_uploads(session, before, COLLECTED)
            users = UploadUsers.load(session) if stale else None
        candidates = []
        for row in stale:
            if users is not None and users.use(row):
                sweep.spared["in_use"] += 1
            else:
                candidates.append(_Candidate(row.id, row.created_at, row.committed_at is not None))
        for candidate in candidates:
            try:
                outcome = self._collect(candidate, before)
            except Exception as exc:  # one upload's trouble (S3 down) must not stop the rest
                log.warning(
                    "could not remove an upload",
                    extra={"upload": candidate.id, "reason": str(exc)[:300]},
                )
                sweep.failed.append(f"upload {candidate.id}: {str(exc)[:300]}")
                continue
            if isinstance(outcome, Removed):
                sweep.removed.append(outcome)
                log.info(
                    "upload removed",
                    extra={
                        "workspace": outcome.workspace,
                        "purpose": outcome.purpose,
                        "digest": outcome.digest,
                        "datastore": outcome.datastore,
                        "reason": outcome.reason,
                    },
                )
            else:
                sweep.spared[outcome] += 1
        return sweep

    def _collect(self, candidate: _Candidate, before: datetime) -> Removed | Spared:
        with self.db.read() as session:
            found = _reload(session, candidate, before)
            if found is None:
                return "begun_again"
            row, ws = found
            if in_use(session, ws, row):
                return "in_use"
            location = self._location(session, ws, row)
            shared = files_shared(session, row)
        if location is not None and location.read_only:
            return "read_only"
        if location is not None and not shared and _written_since(location, before):
            return "busy"
        # 1. Uncommitted from now on: nobody registers it while its files go.
        with self.db.write() as session:
            found = _reload(session, candidate, before)
            if found is None:
                return "begun_again"
            row, ws = found
            if in_use(session, ws, row):
                return "in_use"
            row.committed_at = None
        # 2. The files.
        if location is not None and not shared:
            location.storage.delete_tree(location.key)
        # 3. The row, unless a client began the upload again meanwhile.
        with self.db.write() as session:
            current = session.get(ContentUploadRow, candidate.id)
            if (
                current is None
                or current.created_at != candidate.created_at
                or current.committed_at is not None
            ):
                return "begun_again"
            removed = Removed(
                workspace=ws.name,
                purpose=current.purpose,
                digest=current.digest,
                datastore=current.datastore,
                reason="unused" if candidate.committed else "abandoned",
                files_removed=location is not None and not shared,
            )
            model_id = current.logged_model_id
            session.delete(current)
            session.flush()
            if model_id is not None:
                _drop_logged_model(session, model_id)
        return removed

    def _location(
        self, session: Session, ws: WorkspaceRow, row: ContentUploadRow
    ) -> Location | None:
        """The upload's folder; None when its datastore was deleted."""
        try:
            return self.resolver.resolve(session, ws, row.datastore, row.folder, field="folder")
        except NotFoundError as exc:
            if exc.code != "datastore_not_found":
                raise
            return None


@dataclass
class UploadUsers:
    """Every place a data version, a model version or a job uses, read once per sweep, so a
    sweep over many uploads in use costs a few queries rather than a few per upload. It
    answers like ``in_use``, which checks each upload again before it is removed."""

    own_data: set[tuple[str, str]] = field(default_factory=set)  # (workspace, folder)
    named_data: set[str] = field(default_factory=set)  # folders, any named datastore
    model_paths: set[tuple[str, str]] = field(default_factory=set)  # (workspace, folder)
    logged_models: set[str] = field(default_factory=set)
    code: set[tuple[str, str]] = field(default_factory=set)  # (workspace, digest)

    @classmethod
    def load(cls, session: Session) -> UploadUsers:
        users = cls()
        data = (
            select(DataAssetRow.workspace_id, DataVersionRow.datastore, DataVersionRow.storage_path)
            .join(DataAssetRow, DataAssetRow.id == DataVersionRow.asset_id)
            .where(DataVersionRow.storage_path.is_not(None))
        )
        for workspace_id, datastore, path in session.execute(data):
            for folder in _folders(path or ""):
                if datastore == OWN_DATASTORE:
                    users.own_data.add((workspace_id, folder))
                else:
                    users.named_data.add(folder)
        prefix = f"{ARTIFACTS_SCHEME}/"
        models = select(
            ModelRow.workspace_id, ModelVersionRow.storage_location, ModelVersionRow.logged_model_id
        ).join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
        for workspace_id, location, logged_model_id in session.execute(models):
            if logged_model_id is not None:
                users.logged_models.add(logged_model_id)
            if location.startswith(prefix):
                users.model_paths.update(
                    (workspace_id, folder) for folder in _folders(location[len(prefix) :])
                )
        jobs = select(JobSubmissionRow.workspace_id, JobSubmissionRow.code_digest).where(
            JobSubmissionRow.code_digest.is_not(None)
        )
        users.code = {(ws_id, digest) for ws_id, digest in session.execute(jobs) if digest}
        components = (
            select(ComponentRow.workspace_id, ComponentVersionRow.code_digest)
            .join(ComponentRow, ComponentRow.id == ComponentVersionRow.component_id)
            .where(ComponentVersionRow.code_digest.is_not(None))
        )
        # A registry's components (no workspace) keep their code in the registry's folder.
        found = session.execute(components)
        users.code |= {(ws_id, digest) for ws_id, digest in found if ws_id and digest}
        deployments = session.execute(_DEPLOYMENT_CODE)
        users.code |= {(ws_id, digest) for ws_id, digest in deployments if digest}
        batch = session.execute(_BATCH_DEPLOYMENT_CODE)
        users.code |= {(ws_id, digest) for ws_id, digest in batch if digest}
        return users

    def use(self, row: ContentUploadRow) -> bool:
        if row.datastore != OWN_DATASTORE:
            return row.folder in self.named_data
        key = (row.workspace_id, row.folder)
        if key in self.own_data or key in self.model_paths:
            return True
        if row.logged_model_id is not None and row.logged_model_id in self.logged_models:
            return True
        return row.purpose == "code" and (row.workspace_id, row.digest) in self.code


def _folders(path: str) -> list[str]:
    """``a/b/c`` -> ``a``, ``a/b``, ``a/b/c``: the folders a path is at or below."""
    parts = [part for part in path.split("/") if part]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _reload(
    session: Session, candidate: _Candidate, before: datetime
) -> tuple[ContentUploadRow, WorkspaceRow] | None:
    """The candidate's row and workspace, if it is still what the sweep found: nobody began
    it since, and the workspace is live."""
    row = session.get(ContentUploadRow, candidate.id)
    if row is None or row.created_at != candidate.created_at or row.created_at >= before:
        return None
    if row.committed_at is not None and row.committed_at >= before:
        return None
    ws = session.get(WorkspaceRow, row.workspace_id)
    if ws is None or ws.deleted_at is not None:
        return None
    return row, ws


def in_use(session: Session, ws: WorkspaceRow, row: ContentUploadRow) -> bool:
    """Whether a data version, a model version or a job uses the upload's files."""
    versions = select(DataVersionRow.id).where(
        _at_or_below(DataVersionRow.storage_path, row.folder)
    )
    if row.datastore == OWN_DATASTORE:
        versions = versions.join(DataAssetRow, DataAssetRow.id == DataVersionRow.asset_id).where(
            DataAssetRow.workspace_id == ws.id, DataVersionRow.datastore == OWN_DATASTORE
        )
    else:
        versions = versions.where(DataVersionRow.datastore != OWN_DATASTORE)
    if session.execute(versions.limit(1)).first() is not None:
        return True
    if row.datastore == OWN_DATASTORE and _model_versions_use(session, ws, row):
        return True
    if row.purpose != "code":
        return False
    jobs = select(JobSubmissionRow.job_id).where(
        JobSubmissionRow.workspace_id == ws.id, JobSubmissionRow.code_digest == row.digest
    )
    if session.execute(jobs.limit(1)).first() is not None:
        return True
    components = (
        select(ComponentVersionRow.id)
        .join(ComponentRow, ComponentRow.id == ComponentVersionRow.component_id)
        .where(ComponentRow.workspace_id == ws.id, ComponentVersionRow.code_digest == row.digest)
    )
    if session.execute(components.limit(1)).first() is not None:
        return True
    deployments = _DEPLOYMENT_CODE.where(
        OnlineEndpointRow.workspace_id == ws.id, OnlineDeploymentRow.code_digest == row.digest
    )
    if session.execute(deployments.limit(1)).first() is not None:
        return True
    batch = _BATCH_DEPLOYMENT_CODE.where(
        BatchEndpointRow.workspace_id == ws.id, BatchDeploymentRow.code_digest == row.digest
    )
    return session.execute(batch.limit(1)).first() is not None


# The scoring code of every online deployment, by workspace: its instances load it again at
# each restart, so it stays as long as the deployment does.
_DEPLOYMENT_CODE = (
    select(OnlineEndpointRow.workspace_id, OnlineDeploymentRow.code_digest)
    .join(OnlineEndpointRow, OnlineEndpointRow.id == OnlineDeploymentRow.endpoint_id)
    .where(OnlineDeploymentRow.code_digest.is_not(None))
)
# The same for batch deployments: every invoke makes a job from their code snapshot.
_BATCH_DEPLOYMENT_CODE = (
    select(BatchEndpointRow.workspace_id, BatchDeploymentRow.code_digest)
    .join(BatchEndpointRow, BatchEndpointRow.id == BatchDeploymentRow.endpoint_id)
    .where(BatchDeploymentRow.code_digest.is_not(None))
)


def _model_versions_use(session: Session, ws: WorkspaceRow, row: ContentUploadRow) -> bool:
    location = ModelVersionRow.storage_location
    uses = _at_or_below(location, f"{ARTIFACTS_SCHEME}/{row.folder}")
    if row.logged_model_id is not None:
        uses = or_(uses, ModelVersionRow.logged_model_id == row.logged_model_id)
    query = (
        select(ModelVersionRow.id)
        .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
        .where(ModelRow.workspace_id == ws.id, uses)
    )
    return session.execute(query.limit(1)).first() is not None


def files_shared(session: Session, row: ContentUploadRow) -> bool:
    """Whether another upload's files are the same files: the same folder of the same
    datastore of the workspace, or of any named datastore (which may be the same place)."""
    for other in same_digest(session, row):
        if other.folder != row.folder:
            continue
        if other.workspace_id == row.workspace_id and other.datastore == row.datastore:
            return True
        if other.datastore != OWN_DATASTORE and row.datastore != OWN_DATASTORE:
            return True
    return False


def _at_or_below(column: SQLColumnExpression[Any], path: str) -> ColumnElement[bool]:
    return or_(column == path, column.startswith(path + "/", autoescape=True))


def _written_since(location: Location, moment: datetime) -> bool:
    """Whether a file in the folder changed at or after ``moment``: an upload in progress."""
    for info in location.storage.list(location.key, recursive=True):
        modified = info.modified
        if modified is not None and modified.replace(tzinfo=modified.tzinfo or UTC) >= moment:
            return True
    return False


def _drop_logged_model(session: Session, model_id: str) -> None:
    """The logged model an upload made: one never finished goes; a finished one is deleted
    the way MLflow deletes one (hidden, its row kept for lineage)."""
    model = session.get(LoggedModelRow, model_id)
    if model is None:
        return
    if model.status == "PENDING":
        session.delete(model)
    else:
        model.lifecycle_stage = "deleted"
        model.updated_at = utcnow()
