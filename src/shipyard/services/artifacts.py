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

import hashlib
import hmac
import posixpath
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from shipyard.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
)
from shipyard.services.workspace_rows import live_workspace
from shipyard.storage.base import FileInfo, Storage, Writer, Written
from shipyard.storage.factory import open_storage
from shipyard.storage.paths import clean_relative
from shipyard.store import artifact_uploads as uploads_store
from shipyard.store import tracking as tracking_store
from shipyard.store.artifact_uploads import ArtifactUploadRow
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.workspaces import WorkspaceRow

__all__ = ["ArtifactRoot", "ArtifactService", "FileInfo", "split_artifact_path"]

RUNS = "runs"
#: Parts of one multipart upload, at most (S3's own limit).
MAX_PARTS = 10_000
#: How long a multipart upload may stay open before its parts are dropped.
UPLOAD_TTL = timedelta(hours=24)
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
            ws = live_workspace(session, workspace)
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
            ws = live_workspace(session, workspace)
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

    # -- multipart uploads (MLflow's mpu protocol) ------------------------------------------

    def start_multipart(
        self, root: ArtifactRoot, workspace: str, path: str, num_parts: int, creator_id: str
    ) -> MultipartUpload:
        """Record an upload of ``num_parts`` parts to ``path``; parts wait in the workspace's
        storage under ``uploads/<id>/`` until completed. Uploads left over past their expiry
        are dropped here, so abandoned ones do not pile up."""
        target = root.path(path)
        if target == root.folder:
            raise InvalidInputError(
                "an artifact needs a file path", code="invalid_path", field="path"
            )
        if not 1 <= num_parts <= MAX_PARTS:
            raise InvalidInputError(
                f"num_parts must be between 1 and {MAX_PARTS}",
                code="invalid_field",
                field="num_parts",
            )
        upload_id, key = uuid.uuid4().hex, secrets.token_urlsafe(32)
        now = utcnow()
        with self.db.write() as session:
            ws = live_workspace(session, workspace)
            for stale in uploads_store.expired(session, now):
                self._drop_parts(session, stale)
                session.delete(stale)
            session.add(
                ArtifactUploadRow(
                    id=upload_id,
                    workspace_id=ws.id,
                    folder=root.folder,
                    path=clean_relative(path),
                    num_parts=num_parts,
                    key_hash=_key_hash(key),
                    created_by=creator_id,
                    expires_at=now + UPLOAD_TTL,
                )
            )
        return MultipartUpload(upload_id=upload_id, key=key, num_parts=num_parts)

    def _upload(
        self, session: Session, upload_id: str, key: str | None = None
    ) -> ArtifactUploadRow:
        row = session.get(ArtifactUploadRow, upload_id)
        # Wrong key, unknown id and expired upload look alike: nothing to learn by guessing.
        if (
            row is None
            or row.expires_at <= utcnow()
            or (key is not None and not hmac.compare_digest(row.key_hash, _key_hash(key)))
        ):
            raise NotFoundError(
                "no such upload (unknown, finished or expired)",
                code="upload_not_found",
                field="upload_id",
            )
        return row

    def _parts_folder(self, session: Session, row: ArtifactUploadRow) -> tuple[Storage, str]:
        ws = session.get(WorkspaceRow, row.workspace_id)
        if ws is None:
            raise NotFoundError("the upload's workspace is gone", code="upload_not_found")
        storage = self._open_storage(ws.storage_uri)
        return storage, posixpath.join(ws.storage_prefix, "uploads", row.id)

    def _drop_parts(self, session: Session, row: ArtifactUploadRow) -> None:
        storage, folder = self._parts_folder(session, row)
        storage.delete_tree(folder)

    def part_writer(self, upload_id: str, key: str, part_number: int) -> LimitedWriter:
        """Where part ``part_number`` of an upload goes; the key proves the caller started it."""
        with self.db.read() as session:
            row = self._upload(session, upload_id, key)
            if not 1 <= part_number <= row.num_parts:
                raise InvalidInputError(
                    f"part_number must be between 1 and {row.num_parts}",
                    code="invalid_field",
                    field="part_number",
                )
            storage, folder = self._parts_folder(session, row)
        writer = storage.writer(posixpath.join(folder, f"{part_number:05d}"))
        return LimitedWriter(writer, self.max_upload_bytes)

    def complete_multipart(self, root: ArtifactRoot, path: str, upload_id: str) -> Written:
        """Join the parts, in order, into the file; every part must be there."""
        with self.db.read() as session:
            row = self._upload(session, upload_id)
            _same_target(row, root, path)
            storage, folder = self._parts_folder(session, row)
        names = {info.path.rsplit("/", 1)[-1] for info in storage.list(folder)}
        missing = [n for n in range(1, row.num_parts + 1) if f"{n:05d}" not in names]
        if missing:
            raise InvalidInputError(
                f"parts {missing[:10]} were not uploaded", code="parts_missing", field="parts"
            )
        writer = self.writer(root, path)
        try:
            for number in range(1, row.num_parts + 1):
                for chunk in storage.read(posixpath.join(folder, f"{number:05d}")):
                    writer.write(chunk)
            written = writer.commit()
        except BaseException:
            writer.abort()
            raise
        self._finish(upload_id)
        return written

    def abort_multipart(self, root: ArtifactRoot, path: str, upload_id: str) -> None:
        with self.db.read() as session:
            _same_target(self._upload(session, upload_id), root, path)
        self._finish(upload_id)

    def _finish(self, upload_id: str) -> None:
        with self.db.write() as session:
            row = session.get(ArtifactUploadRow, upload_id)
            if row is not None:
                self._drop_parts(session, row)
                session.delete(row)

    def delete(self, root: ArtifactRoot, path: str) -> None:
        """Delete a file or a folder (an empty path: every artifact of the root)."""
        target = root.path(path)
        if not root.storage.exists(target):
            raise NotFoundError(f"no artifact at {path!r}", code="artifact_not_found", field="path")
        root.storage.delete_tree(target)


@dataclass(frozen=True)
class MultipartUpload:
    """A started multipart upload: its id, and the key each part must carry (shown once)."""

    upload_id: str
    key: str
    num_parts: int


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


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


def _same_target(row: ArtifactUploadRow, root: ArtifactRoot, path: str) -> None:
    if row.folder != root.folder or row.path != clean_relative(path):
        raise NotFoundError(
            "no such upload for this path", code="upload_not_found", field="upload_id"
        )


def _relative_to(root: ArtifactRoot, info: FileInfo) -> FileInfo:
    return FileInfo(
        path=root.relative(info), is_dir=info.is_dir, size=info.size, modified=info.modified
    )
