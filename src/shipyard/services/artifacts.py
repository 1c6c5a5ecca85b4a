"""Artifacts: the files a run (or an MLflow logged model) keeps in its workspace's storage.

The native API and MLflow's ``mlflow-artifacts`` proxy share one tree. Inside a workspace's
storage (its ``storage_uri`` plus its own ``storage_prefix``):

    runs/<run_id>/artifacts/<path>       a run's artifacts
    models/<model_id>/artifacts/<path>   an MLflow logged model's files

An ``ArtifactRoot`` is one of those folders, resolved once per request after the run (or
model) was found in the caller's workspace; every path a client sends is relative to it and
goes through ``clean_relative``, so no request reaches outside the folder it was authorized
for.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from shipyard.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
)
from shipyard.storage.base import FileInfo, Storage, Writer, Written
from shipyard.storage.factory import open_storage
from shipyard.storage.paths import clean_relative
from shipyard.store import tracking as tracking_store
from shipyard.store.database import Database
from shipyard.store.workspaces import WorkspaceRow, get_workspace

__all__ = ["ArtifactRoot", "ArtifactService", "FileInfo", "split_artifact_path"]

RUNS = "runs"
MODELS = "models"

#: Checks that a logged model exists in a workspace (by workspace id); the model registry
#: provides it, so this module does not depend on it.
ModelExists = Callable[[Session, str, str], bool]


@dataclass(frozen=True)
class ArtifactRoot:
    """A folder of artifacts in a workspace's storage; paths below are relative to it."""

    storage: Storage
    folder: str  # relative to the storage's root

    def path(self, relative: str, *, field: str = "path") -> str:
        clean = clean_relative(relative, field=field)
        return posixpath.join(self.folder, clean) if clean else self.folder

    def relative(self, info: FileInfo) -> str:
        return posixpath.relpath(info.path, self.folder)


class LimitedWriter:
    """A storage upload that refuses to grow past ``limit`` bytes (413, upload dropped)."""

    def __init__(self, writer: Writer, limit: int) -> None:
        self._writer = writer
        self._limit = limit

    def write(self, data: bytes) -> None:
        if self._writer.size + len(data) > self._limit:
            self._writer.abort()
            raise PayloadTooLargeError(
                f"the artifact exceeds the upload limit of {self._limit} bytes",
                code="artifact_too_large",
            )
        self._writer.write(data)

    def commit(self) -> Written:
        return self._writer.commit()

    def abort(self) -> None:
        self._writer.abort()


class ArtifactService:
    def __init__(
        self,
        db: Database,
        *,
        max_upload_bytes: int,
        open_storage: Callable[[str], Storage] = open_storage,
        model_exists: ModelExists | None = None,
    ) -> None:
        self.db = db
        self._open_storage = open_storage
        self.max_upload_bytes = max_upload_bytes
        self.model_exists = model_exists

    # -- resolving a root -------------------------------------------------------------------

    def _root(self, workspace: WorkspaceRow, kind: str, owner_id: str) -> ArtifactRoot:
        storage = self._open_storage(workspace.storage_uri)
        folder = posixpath.join(workspace.storage_prefix, kind, owner_id, "artifacts")
        return ArtifactRoot(storage=storage, folder=folder)

    def run_root(self, workspace: str, run_id: str, *, writing: bool = False) -> ArtifactRoot:
        """The run's artifact folder; NotFoundError unless the run is in this workspace.
        Writing needs a run that is not deleted (finished runs still take artifacts, as
        MLflow's do)."""
        with self.db.read() as session:
            ws = _workspace(session, workspace)
            job = tracking_store.get_job(session, ws.id, run_id)
            if job is None:
                raise NotFoundError(
                    f"run {run_id!r} does not exist", code="run_not_found", field="run_id"
                )
            if writing and job.lifecycle_stage != "active":
                raise ConflictError(
                    f"run {run_id!r} is deleted; restore it to change its artifacts",
                    code="run_deleted",
                    field="run_id",
                )
            return self._root(ws, RUNS, job.id)

    def model_root(self, workspace: str, model_id: str) -> ArtifactRoot:
        with self.db.read() as session:
            ws = _workspace(session, workspace)
            if self.model_exists is None or not self.model_exists(session, ws.id, model_id):
                raise NotFoundError(
                    f"logged model {model_id!r} does not exist",
                    code="logged_model_not_found",
                    field="model_id",
                )
            return self._root(ws, MODELS, model_id)

    # -- files ------------------------------------------------------------------------------

    def list(
        self, root: ArtifactRoot, path: str = "", *, recursive: bool = False
    ) -> list[FileInfo]:
        """Entries under ``path`` with paths relative to the root; a file lists as itself."""
        target = root.path(path)
        if target != root.folder and root.storage.exists(target):
            info = root.storage.stat(target)
            if not info.is_dir:
                return [_relative_to(root, info)]
        return [_relative_to(root, info) for info in root.storage.list(target, recursive=recursive)]

    def writer(self, root: ArtifactRoot, path: str) -> LimitedWriter:
        target = root.path(path)
        if target == root.folder:
            raise InvalidInputError(
                "an artifact needs a file path", code="invalid_path", field="path"
            )
        return LimitedWriter(root.storage.writer(target), self.max_upload_bytes)

    def stat(self, root: ArtifactRoot, path: str) -> FileInfo:
        return _relative_to(root, root.storage.stat(root.path(path)))

    def read(
        self, root: ArtifactRoot, path: str, *, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        return root.storage.read(root.path(path), start=start, end=end)

    def delete(self, root: ArtifactRoot, path: str) -> None:
        """Delete a file or a folder (an empty path: every artifact of the root)."""
        target = root.path(path)
        if not root.storage.exists(target):
            raise NotFoundError(f"no artifact at {path!r}", code="artifact_not_found", field="path")
        root.storage.delete_tree(target)


def split_artifact_path(path: str) -> tuple[str, str, str]:
    """``runs/<id>/artifacts/<rest>`` (or ``models/...``) as (kind, owner id, rest); any other
    shape is not found. The path is cleaned first, so traversal is refused (400)."""
    parts = clean_relative(path).split("/")
    if len(parts) < 3 or parts[0] not in (RUNS, MODELS) or parts[2] != "artifacts":
        raise NotFoundError(
            f"{path!r} is not under runs/<run_id>/artifacts or models/<model_id>/artifacts",
            code="artifact_not_found",
            field="path",
        )
    return parts[0], parts[1], "/".join(parts[3:])


def _relative_to(root: ArtifactRoot, info: FileInfo) -> FileInfo:
    return FileInfo(
        path=root.relative(info), is_dir=info.is_dir, size=info.size, modified=info.modified
    )


def _workspace(session: Session, name: str) -> WorkspaceRow:
    row = get_workspace(session, name)
    if row is None or row.deleted_at is not None:
        raise NotFoundError(
            f"workspace {name!r} does not exist", code="workspace_not_found", field="workspace"
        )
    return row
