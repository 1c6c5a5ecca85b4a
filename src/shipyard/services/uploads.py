"""Content-addressed uploads: local files and folders into a workspace's datastores.

The SDK hashes what it uploads and sends the *manifest* (path, sha256, size of every file);
the manifest's digest names the upload (``domain.content``). The server records the manifest,
answers which files it still lacks, takes each missing file (checking its size and sha256
before the file becomes visible), and on commit checks that every file is there. Uploading
the same content again finds the committed upload by its digest and stores nothing.

Layout:

- data: ``LocalUpload/<digest>/<the files>`` in the workspace's *default datastore* (its own
  storage, ``workspaceblobstore``, unless another datastore was made the default). The files
  keep their names and folders, so the folder is an ordinary folder: a job, a preview or a
  person browsing the bucket reads it without a manifest, and its datastore URI
  (``azureml://datastores/<datastore>/paths/LocalUpload/<digest>/...``) is what Azure ML
  users know. A content store of per-file blobs would deduplicate single files across
  uploads too, but every reader would then need the manifest to find a file. Each datastore
  holds its own copy: content uploaded again after the default changed goes to the new
  default, and the same content uploaded again to the same datastore stores nothing. A
  read-only default datastore refuses uploads (``409 datastore_read_only``) rather than
  sending the files somewhere the workspace did not choose.
- job code snapshots (purpose ``code``): ``LocalUpload/<digest>`` in the workspace's own
  storage, whatever the default (where the job runner reads them).
- models: the folder of an MLflow logged model, ``models/<logged model id>/artifacts/``, made
  for the upload, in the workspace's own storage. MLflow clients read a registered version's
  files through the artifact proxy, which serves run and logged-model folders; putting an
  uploaded model there is what makes ``mlflow.pyfunc.load_model("models:/<name>/<version>")``
  work for models registered natively. The logged model is found again by the digest, so the
  same files are stored once.

The routes that take an upload's files and its commit name no datastore: they go to the
upload of that content the client began last, so an upload begun before the default changed
finishes where it began. Uploads begun and never finished, and finished ones nothing uses
any more, are removed by ``services.upload_gc``.
"""

from __future__ import annotations

import hashlib
import posixpath
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.asset_uris import datastore_uri
from shipyard.domain.content import UPLOADS_FOLDER, ManifestEntry, is_digest, manifest_digest
from shipyard.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
)
from shipyard.domain.principals import Principal
from shipyard.schemas.uploads import BUNDLE_MAGIC, UploadBundleWritten, UploadFile, UploadRead
from shipyard.services.datastore_uris import DatastoreResolver, Location
from shipyard.services.experiments import get_or_create
from shipyard.services.workspace_rows import live_workspace
from shipyard.storage.base import Writer, Written
from shipyard.storage.paths import MAX_PATH_BYTES, clean_relative
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.datastores import default_name
from shipyard.store.logged_models import LoggedModelRow
from shipyard.store.uploads import OWN_DATASTORE, ContentUploadRow, get_upload, latest_upload
from shipyard.store.workspaces import WorkspaceRow

PURPOSES = ("data", "model", "code")
#: The experiment that holds the logged models made for uploaded models (MLflow's default).
MODEL_EXPERIMENT = "Default"
DIGEST_TAG = "shipyard.content_digest"
#: Manifests kept parsed in memory; a manifest never changes (its digest names it).
_CACHED_MANIFESTS = 64


@dataclass(frozen=True)
class Target:
    """Where one file of an upload goes, and what it must turn out to be."""

    location: Location
    sha256: str
    size: int


class VerifyingWriter:
    """A storage upload that must end up exactly ``size`` bytes with ``sha256``: it is
    dropped (never made visible) when it grows past either limit or its hash differs."""

    def __init__(self, writer: Writer, target: Target, limit: int) -> None:
        self._writer = writer
        self._target = target
        self._limit = limit
        self._hash = hashlib.sha256()
        self._size = 0

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            self._writer.abort()
            raise PayloadTooLargeError(
                f"the file exceeds the upload limit of {self._limit} bytes; nothing was kept",
                code="file_too_large",
                field="path",
            )
        if self._size > self._target.size:
            self._writer.abort()
            raise _mismatch(self._target, "is larger than the manifest says")
        self._hash.update(data)
        self._writer.write(data)

    def commit(self) -> Written:
        if self._size != self._target.size:
            self._writer.abort()
            raise _mismatch(self._target, f"has {self._size} bytes, the manifest says")
        if self._hash.hexdigest() != self._target.sha256:
            self._writer.abort()
            raise _mismatch(self._target, "does not have the sha256 the manifest says")
        return self._writer.commit()

    def abort(self) -> None:
        self._writer.abort()


def _mismatch(target: Target, why: str) -> InvalidInputError:
    return InvalidInputError(
        f"{target.location.path!r} {why} ({target.size} bytes, sha256 {target.sha256[:12]}...)",
        code="content_mismatch",
        field="path",
    )


def check_manifest(files: Sequence[UploadFile], limit: int) -> list[ManifestEntry]:
    """Clean every path (no traversal, no duplicates, no file inside another file) and refuse
    a file over ``limit`` bytes before anything is sent."""
    entries: dict[str, ManifestEntry] = {}
    for index, item in enumerate(files):
        field = f"files.{index}"
        path = clean_relative(item.path, field=f"{field}.path")
        if not path:
            raise InvalidInputError(
                "a file needs a path", code="invalid_path", field=f"{field}.path"
            )
        if item.size > limit:
            raise PayloadTooLargeError(
                f"{path!r} has {item.size} bytes, over the upload limit of {limit}",
                code="file_too_large",
                field=f"{field}.size",
            )
        if path in entries:
            raise InvalidInputError(
                f"{path!r} is listed twice", code="duplicate_path", field=f"{field}.path"
            )
        entries[path] = ManifestEntry(path, item.sha256, item.size)
    for path in entries:
        parent = posixpath.dirname(path)
        while parent:
            if parent in entries:
                raise InvalidInputError(
                    f"{parent!r} is a file and a folder", code="path_is_file", field="files"
                )
            parent = posixpath.dirname(parent)
    return sorted(entries.values(), key=lambda e: e.path)


@dataclass(frozen=True)
class OpenUpload:
    """An uncommitted upload ready to take files: what each must be, and where it goes."""

    digest: str
    manifest: Mapping[str, tuple[str, int]]  # path -> (sha256, size)
    folder: Location
    limit: int

    def file(self, path: str) -> VerifyingWriter:
        """A writer for the manifest's file ``path`` (a clean path)."""
        expected = self.manifest.get(path)
        if expected is None:
            raise NotFoundError(
                f"{path!r} is not in the manifest of upload {self.digest[:12]}...",
                code="file_not_in_manifest",
                field="path",
            )
        target = Target(self.folder.child(path), expected[0], expected[1])
        storage_writer = target.location.storage.writer(target.location.key)
        return VerifyingWriter(storage_writer, target, self.limit)


#: The longest header line a bundle may hold: a path of the longest length storage accepts.
_MAX_LINE = MAX_PATH_BYTES
_MAGIC_LINE = BUNDLE_MAGIC.rstrip(b"\n")


class BundleWriter:
    """Unpacks a bundle into an upload. ``write`` takes the body in pieces of any size (a
    file's content may span many, a piece may hold many files); each file goes through a
    ``VerifyingWriter``, so one whose size or sha256 differs from the manifest's never becomes
    visible. Only paths of the manifest are written, each at most once, exactly as the
    manifest spells it. Files finished before an error stay: each was checked, and sending
    the rest (or the bundle again) completes the upload."""

    def __init__(self, upload: OpenUpload) -> None:
        self._upload = upload
        self._line = bytearray()  # the start of a header line whose end has not come yet
        self._started = False  # the first line (the format's) was read
        self._path: str | None = None  # a file whose size line comes next
        self._file: VerifyingWriter | None = None
        self._open_path = ""  # the path ``_file`` writes
        self._remaining = 0
        self._seen: set[str] = set()
        self.files = 0
        self.size = 0

    def write(self, data: bytes) -> None:
        at, end = 0, len(data)
        while at < end:
            if self._file is not None:
                take = min(self._remaining, end - at)
                self._file.write(data[at : at + take])
                at += take
                self._remaining -= take
                if self._remaining == 0:
                    self._finish_file()
                continue
            newline = data.find(b"\n", at)
            stop = end if newline < 0 else newline
            if len(self._line) + stop - at > _MAX_LINE:
                raise _bad_bundle("a header line is longer than any path can be")
            if newline < 0:
                self._line += data[at:]
                return
            if self._line:
                self._line += data[at:newline]
                line = bytes(self._line)
                self._line.clear()
            else:
                line = data[at:newline]
            at = newline + 1
            self._header(line)

    def _header(self, line: bytes) -> None:
        if not self._started:
            if line != _MAGIC_LINE:
                raise _bad_bundle(f"a bundle starts with the line {_MAGIC_LINE.decode()!r}")
            self._started = True
        elif self._path is None:
            self._path = self._file_path(line)
        else:
            self._open_file(self._path, self._file_size(self._path, line))
            self._path = None

    def _file_path(self, line: bytes) -> str:
        try:
            path = line.decode()
        except UnicodeDecodeError:
            raise _bad_bundle("a file's path is not UTF-8", code="invalid_path") from None
        if path not in self._upload.manifest:
            # Traversal, absolute paths and the like get their own error (nothing is written).
            clean = clean_relative(path, field="bundle")
            raise InvalidInputError(
                f"{clean!r} is not in the manifest of upload {self._upload.digest[:12]}..."
                if clean == path
                else f"{path!r} is not spelled as the manifest spells its paths",
                code="file_not_in_manifest" if clean == path else "invalid_path",
                field="bundle",
            )
        if path in self._seen:
            raise InvalidInputError(
                f"{path!r} is twice in the bundle", code="duplicate_path", field="bundle"
            )
        return path

    def _file_size(self, path: str, line: bytes) -> int:
        if not line.isdigit() or len(line) > 19:
            raise _bad_bundle(f"the size of {path!r} is not a number of bytes")
        return int(line)

    def _open_file(self, path: str, size: int) -> None:
        limit = self._upload.limit
        if size > limit:
            raise PayloadTooLargeError(
                f"{path!r} has {size} bytes, over the upload limit of {limit}; nothing of it "
                "was kept",
                code="file_too_large",
                field="bundle",
            )
        expected = self._upload.manifest[path][1]
        if size != expected:
            raise InvalidInputError(
                f"{path!r} has {size} bytes in the bundle, the manifest says {expected}",
                code="content_mismatch",
                field="bundle",
            )
        self._seen.add(path)
        self._file = self._upload.file(path)
        self._open_path = path
        self._remaining = size
        if size == 0:
            self._finish_file()

    def _finish_file(self) -> None:
        assert self._file is not None
        file, self._file = self._file, None
        written = file.commit()
        self.files += 1
        self.size += written.size

    def commit(self) -> UploadBundleWritten:
        if not self._started:
            raise _bad_bundle(f"a bundle starts with the line {_MAGIC_LINE.decode()!r}")
        if self._file is not None:
            raise _bad_bundle(
                f"the bundle ends inside {self._open_path!r} ({self._remaining} bytes short)"
            )
        if self._path is not None or self._line:
            raise _bad_bundle("the bundle ends inside a file's header")
        return UploadBundleWritten(files=self.files, size=self.size)

    def abort(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            file.abort()


def _bad_bundle(why: str, *, code: str = "invalid_bundle") -> InvalidInputError:
    return InvalidInputError(why, code=code, field="bundle")


class UploadService:
    def __init__(self, db: Database, resolver: DatastoreResolver, *, max_file_bytes: int) -> None:
        self.db = db
        self.resolver = resolver
        self.max_file_bytes = max_file_bytes
        self._manifests: OrderedDict[str, dict[str, tuple[str, int]]] = OrderedDict()
        self._lock = threading.Lock()

    # -- begin ------------------------------------------------------------------------------

    def begin(
        self,
        principal: Principal,
        workspace: str,
        purpose: str,
        digest: str,
        files: Sequence[UploadFile],
        *,
        name: str | None = None,
    ) -> UploadRead:
        """Record the manifest ``digest`` names (once) and say which files are missing."""
        _check_digest(digest)
        entries = check_manifest(files, self.max_file_bytes)
        if manifest_digest(entries) != digest:
            raise InvalidInputError(
                "the manifest's digest is not the one in the path; hash the manifest again",
                code="digest_mismatch",
                field="digest",
            )
        try:
            with self.db.write() as session:
                ws = live_workspace(session, workspace)
                target = self._destination(session, ws, purpose)
                row = get_upload(session, ws.id, purpose, digest, target.datastore)
                if row is None or row.committed_at is None:
                    _check_writable(ws, target)
                if row is None:
                    row = self._record(
                        session, principal, ws, purpose, digest, entries, name, target
                    )
                else:
                    # Begun again: in use (the garbage collector spares uploads begun lately).
                    row.created_at = utcnow()
                location = target.child(row.folder)
        except IntegrityError:  # a concurrent begin of the same content won: use its row
            with self.db.read() as session:
                ws = live_workspace(session, workspace)
                target = self._destination(session, ws, purpose)
                row = get_upload(session, ws.id, purpose, digest, target.datastore)
                if row is None:
                    raise
                location = target.child(row.folder)
        if row.committed_at is None:
            return _read(row, location, self._missing(row, location), self.max_file_bytes)
        if row.datastore == OWN_DATASTORE or location.read_only:
            return _read(row, location, [], self.max_file_bytes)
        return self._recheck(ws, row, location)

    def _recheck(self, ws: WorkspaceRow, row: ContentUploadRow, location: Location) -> UploadRead:
        """A committed upload in another datastore than the workspace's own storage: its
        files are not only Shipyard's (a person, a bucket's lifecycle rule, a datastore
        deleted and made again under the same name), so they are listed before the client is
        told nothing is missing. Files gone make the upload uncommitted again, to be sent
        again."""
        missing = self._missing(row, location)
        if missing:
            with self.db.write() as session:
                current = get_upload(session, ws.id, row.purpose, row.digest, row.datastore)
                if current is not None and current.id == row.id:
                    current.committed_at = None
                    row = current
        return _read(row, location, missing, self.max_file_bytes)

    def _destination(self, session: Session, ws: WorkspaceRow, purpose: str) -> Location:
        """The datastore an upload of ``purpose`` goes to: data to the workspace's default
        datastore, job code and models to its own storage."""
        if purpose != "data":
            return self.resolver.default(ws)
        name = default_name(session, ws.id) or OWN_DATASTORE
        return self.resolver.resolve(session, ws, name, "", field="datastore")

    def _record(
        self,
        session: Session,
        principal: Principal,
        ws: WorkspaceRow,
        purpose: str,
        digest: str,
        entries: list[ManifestEntry],
        name: str | None,
        destination: Location,
    ) -> ContentUploadRow:
        logged_model_id = None
        folder = posixpath.join(UPLOADS_FOLDER, digest)
        if purpose == "model":
            experiment = get_or_create(session, ws.id, MODEL_EXPERIMENT)
            model = LoggedModelRow(
                workspace_id=ws.id,
                experiment_id=experiment.id,
                name=name or f"upload-{digest[:12]}",
                status="PENDING",
                tags={DIGEST_TAG: digest},
                created_by=principal.id,
            )
            session.add(model)
            session.flush()
            logged_model_id = model.id
            folder = f"models/{model.id}/artifacts"
        row = ContentUploadRow(
            workspace_id=ws.id,
            purpose=purpose,
            digest=digest,
            datastore=destination.datastore,
            folder=folder,
            logged_model_id=logged_model_id,
            manifest=[[e.path, e.sha256, e.size] for e in entries],
            file_count=len(entries),
            size=sum(e.size for e in entries),
            created_by=principal.id,
        )
        session.add(row)
        session.flush()
        return row

    def _location(self, session: Session, ws: WorkspaceRow, row: ContentUploadRow) -> Location:
        """The upload's folder, in the datastore it went to."""
        return self.resolver.resolve(session, ws, row.datastore, row.folder, field="digest")

    def _missing(self, row: ContentUploadRow, location: Location) -> list[str]:
        """Manifest files not (or not whole) in the folder: one listing, not a stat per file."""
        have = {
            posixpath.relpath(info.path, location.key): info.size
            for info in location.storage.list(location.key, recursive=True)
        }
        return [path for path, _sha, size in row.manifest if have.get(path) != size]

    # -- files ------------------------------------------------------------------------------

    def writer(self, workspace: str, purpose: str, digest: str, path: str) -> VerifyingWriter:
        """Where one file of a begun, uncommitted upload goes, checked against its manifest."""
        _check_digest(digest)
        clean = clean_relative(path)
        return self._open(workspace, purpose, digest).file(clean)

    def bundle(self, workspace: str, purpose: str, digest: str) -> BundleWriter:
        """Unpacks a bundle of files of a begun, uncommitted upload (``schemas.uploads``
        describes the framing); each file is checked against the manifest as it arrives."""
        _check_digest(digest)
        return BundleWriter(self._open(workspace, purpose, digest))

    def _open(self, workspace: str, purpose: str, digest: str) -> OpenUpload:
        """The manifest and folder of an uncommitted upload: one read of the database for a
        file or a whole bundle (the manifest itself is cached)."""
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            found = session.execute(
                select(
                    ContentUploadRow.id,
                    ContentUploadRow.datastore,
                    ContentUploadRow.folder,
                    ContentUploadRow.committed_at,
                )
                .where(
                    ContentUploadRow.workspace_id == ws.id,
                    ContentUploadRow.purpose == purpose,
                    ContentUploadRow.digest == digest,
                )
                .order_by(ContentUploadRow.created_at.desc(), ContentUploadRow.id)
                .limit(1)
            ).one_or_none()
            if found is None:
                raise _no_upload(digest)
            upload_id, datastore, folder, committed_at = found
            if committed_at is not None:
                raise ConflictError(
                    f"upload {digest[:12]}... is committed; its files cannot change",
                    code="upload_committed",
                    field="digest",
                )
            manifest = self._manifest(session, upload_id)
            location = self.resolver.resolve(session, ws, datastore, folder, field="digest")
        return OpenUpload(digest, manifest, location, self.max_file_bytes)

    def _manifest(self, session: Session, upload_id: str) -> dict[str, tuple[str, int]]:
        with self._lock:
            cached = self._manifests.get(upload_id)
            if cached is not None:
                self._manifests.move_to_end(upload_id)
                return cached
        manifest = session.scalar(
            select(ContentUploadRow.manifest).where(ContentUploadRow.id == upload_id)
        )
        parsed = {path: (sha, size) for path, sha, size in manifest or []}
        with self._lock:
            self._manifests[upload_id] = parsed
            while len(self._manifests) > _CACHED_MANIFESTS:
                self._manifests.popitem(last=False)
        return parsed

    # -- commit -----------------------------------------------------------------------------

    def commit(self, workspace: str, purpose: str, digest: str) -> UploadRead:
        """Every file must be there (with its size; each was checked as it arrived)."""
        _check_digest(digest)
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            row = _require(session, ws.id, purpose, digest)
            location = self._location(session, ws, row)
        if row.committed_at is None:
            missing = self._missing(row, location)
            if missing:
                shown = ", ".join(repr(p) for p in missing[:5])
                raise ConflictError(
                    f"{len(missing)} file(s) of upload {digest[:12]}... have not arrived "
                    f"({shown}); send them, then commit",
                    code="upload_incomplete",
                    field="digest",
                )
            with self.db.write() as session:
                row = _require(session, ws.id, purpose, digest, row.datastore)
                if row.committed_at is None:
                    row.committed_at = utcnow()
                if row.logged_model_id is not None:
                    model = session.get(LoggedModelRow, row.logged_model_id)
                    if model is not None and model.status != "READY":
                        model.status = "READY"
                        model.updated_at = utcnow()
        return _read(row, location, [], self.max_file_bytes)

    def get(self, workspace: str, purpose: str, digest: str) -> UploadRead:
        _check_digest(digest)
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            row = _require(session, ws.id, purpose, digest)
            location = self._location(session, ws, row)
        missing = [] if row.committed_at else self._missing(row, location)
        return _read(row, location, missing, self.max_file_bytes)


def _read(row: ContentUploadRow, location: Location, missing: list[str], limit: int) -> UploadRead:
    return UploadRead(
        digest=row.digest,
        purpose=row.purpose,
        path=location.path,
        uri=datastore_uri(location.datastore, location.path),
        committed=row.committed_at is not None,
        file_count=row.file_count,
        size=row.size,
        missing=missing,
        logged_model_id=row.logged_model_id,
        max_body_bytes=limit,
    )


def _check_digest(digest: str) -> None:
    if not is_digest(digest):
        raise InvalidInputError(
            "an upload is named by the sha256 (64 lower-case hex digits) of its manifest",
            code="invalid_digest",
            field="digest",
        )


def _no_upload(digest: str) -> NotFoundError:
    return NotFoundError(
        f"no upload {digest[:12]}... in this workspace; send its manifest first",
        code="upload_not_found",
        field="digest",
    )


def _require(
    session: Session, workspace_id: str, purpose: str, digest: str, datastore: str | None = None
) -> ContentUploadRow:
    """The upload in ``datastore``, or (None) the one a client began last."""
    if datastore is None:
        row = latest_upload(session, workspace_id, purpose, digest)
    else:
        row = get_upload(session, workspace_id, purpose, digest, datastore)
    if row is None:
        raise _no_upload(digest)
    return row


def _check_writable(ws: WorkspaceRow, target: Location) -> None:
    """A read-only default datastore refuses uploads, rather than sending the files
    somewhere the workspace did not choose."""
    if target.read_only:
        raise ConflictError(
            f"the default datastore of workspace {ws.name!r}, {target.datastore!r}, is "
            "read-only, so local files cannot be uploaded to it; make another datastore the "
            f"default (shipyard datastore set-default), make {target.datastore!r} writable, or "
            "register data already in a datastore by its URI",
            code="datastore_read_only",
            field="datastore",
        )
