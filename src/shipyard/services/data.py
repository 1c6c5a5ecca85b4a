"""Data assets: register versions, read them, archive, restore, delete; their files and
previews.

A version's ``path`` is a datastore URI (``azureml://datastores/<ds>/paths/<p>``, resolved by
the ``DatastoreResolver``) or an http(s) URL kept as a reference the server never fetches.
Local files reach the server as content-addressed uploads first (``services.uploads``); a path
into ``LocalUpload/<digest>`` must name a committed upload, so nothing half-uploaded is ever
registered. Versions are immutable apart from description, tags and the archived flag.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.asset_uris import (
    DatastorePath,
    JobOutputPath,
    LocalPath,
    RunPath,
    WebUrl,
    parse_asset_path,
)
from shipyard.domain.content import UPLOADS_FOLDER, is_digest
from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.domain.mltable import FILE_NAME, MLTableSpec, parse_mltable
from shipyard.domain.paging import decode_page_token, encode_page_token
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.data import (
    DATA_NAME,
    LATEST,
    DataAssetRead,
    DataFileRead,
    DataPreview,
    DataVersionCreate,
    DataVersionRead,
    DataVersionUpdate,
)
from shipyard.services import asset_files, data_preview
from shipyard.services.asset_versions import VersionedAssets, is_number
from shipyard.services.datastore_uris import DatastoreResolver, Location
from shipyard.services.workspace_rows import live_workspace
from shipyard.store import data as store
from shipyard.store.base import utcnow
from shipyard.store.data import DataAssetRow, DataVersionRow
from shipyard.store.database import Database
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.lineage import JobAssetRow
from shipyard.store.models import ModelRow, ModelVersionRow
from shipyard.store.tracking import names_of
from shipyard.store.uploads import get_upload
from shipyard.store.users import UserRow
from shipyard.store.workspaces import WorkspaceRow

_NAME = re.compile(DATA_NAME)
# Its list pages; the rest of what it shares with other versioned assets predates this.
ASSETS: VersionedAssets[DataAssetRow, DataVersionRow] = VersionedAssets(
    "data asset", DataAssetRow, DataVersionRow, "asset_id"
)


@dataclass(frozen=True)
class Resolved:
    """Where a new version's data is (None for a web reference) and what an upload said."""

    path: str
    location: Location | None
    digest: str | None = None
    size: int | None = None
    file_count: int | None = None


def version_reads(
    session: Session, asset: DataAssetRow, rows: Sequence[DataVersionRow]
) -> list[DataVersionRead]:
    users = names_of(session, UserRow, {row.created_by for row in rows})
    return [
        DataVersionRead(
            name=asset.name,
            version=row.version,
            type=row.type,
            path=row.path,
            datastore=row.datastore,
            description=row.description,
            tags=row.tags,
            properties=row.properties,
            archived=row.archived,
            content_digest=row.content_digest,
            size=row.size,
            file_count=row.file_count,
            created_by=users.get(row.created_by),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


def data_version_referrers(session: Session, row: DataVersionRow) -> list[str]:
    """Who uses this version, as people read it (``model churn:3``, ``job lively-owl-3``):
    model versions registered from its files, and jobs that took it as an input. The one
    place that knows."""
    users: list[str] = []
    model_version_ids = store.model_versions_using(session, row.id)
    if model_version_ids:
        query = (
            select(ModelRow.name, ModelVersionRow.version)
            .join(ModelVersionRow, ModelVersionRow.model_id == ModelRow.id)
            .where(ModelVersionRow.id.in_(model_version_ids))
            .order_by(ModelRow.name, ModelVersionRow.version)
        )
        users += [f"model {name}:{version}" for name, version in session.execute(query)]
    asset = session.get(DataAssetRow, row.asset_id)
    if asset is not None:
        jobs = (
            select(JobSubmissionRow.name)
            .join(JobAssetRow, JobAssetRow.job_id == JobSubmissionRow.job_id)
            .where(
                JobAssetRow.workspace_id == asset.workspace_id,
                JobAssetRow.direction == "input",
                JobAssetRow.kind == "data",
                JobAssetRow.name == asset.name,
                JobAssetRow.version == row.version,
            )
            .order_by(JobSubmissionRow.name)
            .limit(6)
        )
        users += [f"job {name}" for name in session.scalars(jobs)]
    return users


class DataService:
    def __init__(self, db: Database, resolver: DatastoreResolver) -> None:
        self.db = db
        self.resolver = resolver

    # -- create -----------------------------------------------------------------------------

    def create(
        self, principal: Principal, workspace: str, name: str, body: DataVersionCreate
    ) -> DataVersionRead:
        _check_name(name)
        if body.version is not None and body.version.lower() == LATEST:
            raise InvalidInputError(
                "'latest' is a label naming the newest version; it cannot be a version",
                code="invalid_version",
                field="version",
            )
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            resolved = self._resolve(session, ws, body.path)
        # Storage is checked outside any transaction: an S3 round trip must not hold the
        # database's write lock.
        if resolved.location is not None:
            _check_content(resolved.location, body.type)
        return self._insert(principal, ws.id, name, body, resolved)

    def _resolve(self, session: Session, ws: WorkspaceRow, path: str) -> Resolved:
        parsed = parse_asset_path(path)
        if isinstance(parsed, WebUrl):
            return Resolved(parsed.url, None)
        if isinstance(parsed, DatastorePath):
            if parsed.workspace is not None and parsed.workspace != ws.name:
                raise NotFoundError(
                    f"{path[:200]!r} names another workspace; a data asset may only point at "
                    "this workspace's datastores",
                    code="datastore_not_found",
                    field="path",
                )
            location = self.resolver.resolve(
                session, ws, parsed.datastore, parsed.path, field="path"
            )
            return self._uploaded(session, ws, location)
        if isinstance(parsed, LocalPath):
            raise InvalidInputError(
                f"{path[:200]!r} is a local path: the SDK and the CLI upload local files "
                "first; the API takes a datastore URI (azureml://datastores/<name>/paths/...) "
                "or an http(s) URL",
                code="unsupported_path",
                field="path",
            )
        kind = "a job output" if isinstance(parsed, JobOutputPath) else "a run's artifacts"
        assert isinstance(parsed, JobOutputPath | RunPath)
        raise InvalidInputError(
            f"{path[:200]!r} names {kind}; a data asset points at a datastore or a URL",
            code="unsupported_path",
            field="path",
        )

    def _uploaded(self, session: Session, ws: WorkspaceRow, location: Location) -> Resolved:
        """A path into ``LocalUpload/<digest>`` must be a committed upload's."""
        parts = location.path.split("/")
        if parts[0] != UPLOADS_FOLDER:
            return Resolved(location.uri, location)
        digest = parts[1] if len(parts) > 1 else ""
        found = is_digest(digest)
        upload = get_upload(session, ws.id, "data", digest, location.datastore) if found else None
        if upload is None and location.datastore != self.resolver.default(ws).datastore:
            # Uploads go to the default datastore, whichever it is; another datastore's
            # LocalUpload folder that is no upload of this workspace (Azure ML's, say) is
            # data like any other.
            return Resolved(location.uri, location)
        if upload is None:
            raise NotFoundError(
                f"{location.uri!r} is no upload of this workspace",
                code="upload_not_found",
                field="path",
            )
        if upload.committed_at is None:
            raise ConflictError(
                f"{location.uri!r} is not a finished upload; upload the files and commit first",
                code="upload_incomplete",
                field="path",
            )
        inner = "/".join(parts[2:])
        if not inner:
            return Resolved(location.uri, location, digest, upload.size, upload.file_count)
        files = [entry for entry in upload.manifest if _under(entry[0], inner)]
        return Resolved(location.uri, location, digest, sum(int(e[2]) for e in files), len(files))

    def _insert(
        self,
        principal: Principal,
        workspace_id: str,
        name: str,
        body: DataVersionCreate,
        resolved: Resolved,
    ) -> DataVersionRead:
        for attempt in range(2):
            try:
                with self.db.write() as session:
                    asset = store.get_asset(session, workspace_id, name)
                    if asset is None:
                        asset = DataAssetRow(
                            workspace_id=workspace_id, name=name, created_by=principal.id
                        )
                        session.add(asset)
                        session.flush()
                    explicit = body.version
                    number = int(explicit) if explicit and is_number(explicit) else None
                    issued, seq = store.bump_counters(
                        session, asset.id, auto=explicit is None, number=number
                    )
                    version = explicit if explicit is not None else str(issued)
                    if store.get_version(session, asset.id, version) is not None:
                        raise _version_exists(name, version)
                    now = utcnow()
                    row = DataVersionRow(
                        asset_id=asset.id,
                        version=version,
                        seq=seq,
                        type=body.type,
                        path=resolved.path,
                        datastore=resolved.location.datastore if resolved.location else None,
                        storage_path=resolved.location.path if resolved.location else None,
                        content_digest=resolved.digest,
                        size=resolved.size,
                        file_count=resolved.file_count,
                        description=body.description,
                        tags=body.tags,
                        properties=body.properties,
                        created_by=principal.id,
                        created_at=now,
                        updated_at=now,
                    )
                    session.add(row)
                    session.flush()
                    return version_reads(session, asset, [row])[0]
            except IntegrityError as exc:
                # A concurrent request created the asset (once more, to use it) or the same
                # version (then the retry finds it and says so).
                if attempt == 1:
                    raise _version_exists(name, body.version or "?") from exc
        raise AssertionError("unreachable")

    # -- read -------------------------------------------------------------------------------

    def get(self, workspace: str, name: str, version: str) -> DataVersionRead:
        """A version, or with ``latest`` the newest one that is not archived."""
        with self.db.read() as session:
            asset, row = self._version(session, workspace, name, version)
            return version_reads(session, asset, [row])[0]

    def list_assets(
        self,
        workspace: str,
        *,
        include_archived: bool = False,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> Page[DataAssetRead]:
        with self.db.read() as session:
            items, token = ASSETS.summary_page(
                session,
                workspace,
                DataAssetRead,
                include_archived=include_archived,
                page_token=page_token,
                max_results=max_results,
            )
        return Page[DataAssetRead](items=items, next_page_token=token)

    def list_versions(
        self,
        workspace: str,
        name: str,
        *,
        include_archived: bool = False,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> Page[DataVersionRead]:
        """Newest first."""
        after = decode_page_token(page_token)
        if after is not None and not after.isdigit():
            raise InvalidInputError(
                "page_token is not a token this server issued",
                code="invalid_page_token",
                field="page_token",
            )
        with self.db.read() as session:
            asset = _asset(session, workspace, name)
            query = select(DataVersionRow).where(DataVersionRow.asset_id == asset.id)
            if not include_archived:
                query = query.where(DataVersionRow.archived.is_(False))
            if after is not None:
                query = query.where(DataVersionRow.seq < int(after))
            query = query.order_by(DataVersionRow.seq.desc()).limit(max_results + 1)
            rows = list(session.scalars(query))
            items = version_reads(session, asset, rows[:max_results])
        more = len(rows) > max_results
        token = encode_page_token(str(rows[max_results - 1].seq)) if more else None
        return Page[DataVersionRead](items=items, next_page_token=token)

    # -- change -----------------------------------------------------------------------------

    def update(
        self, workspace: str, name: str, version: str, body: DataVersionUpdate
    ) -> DataVersionRead:
        with self.db.write() as session:
            asset, row = self._version(session, workspace, name, version, labels=False)
            if "description" in body.model_fields_set:
                row.description = body.description
            if body.tags is not None:
                row.tags = body.tags
            row.updated_at = utcnow()
            session.flush()
            return version_reads(session, asset, [row])[0]

    def set_archived(self, workspace: str, name: str, version: str | None, archived: bool) -> None:
        """Archive (hide from lists and from ``latest``) or restore a version, or with no
        version the whole asset. Archived versions are still read by their version."""
        with self.db.write() as session:
            if version is None:
                asset = _asset(session, workspace, name)
                asset.archived = archived
                asset.updated_at = utcnow()
                return
            _, row = self._version(session, workspace, name, version, labels=False)
            row.archived = archived
            row.updated_at = utcnow()

    def delete(self, workspace: str, name: str, version: str, *, force: bool = False) -> None:
        """Delete a version for good (its number is not issued again). Refused while
        something uses it, unless ``force``. Files stay: an uploaded folder may be shared by
        other versions, and a datastore's files are not Shipyard's to delete."""
        with self.db.write() as session:
            _, row = self._version(session, workspace, name, version, labels=False)
            users = data_version_referrers(session, row)
            if users and not force:
                shown = ", ".join(users[:5]) + (" ..." if len(users) > 5 else "")
                raise ConflictError(
                    f"version {version} of {name!r} is used by {shown}; delete those first, "
                    "or force the delete",
                    code="data_version_in_use",
                    field="version",
                )
            session.delete(row)

    # -- files ------------------------------------------------------------------------------

    def location(self, workspace: str, name: str, version: str) -> tuple[DataVersionRead, Location]:
        """Where a version's files are; a web reference has none the server reads."""
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            asset, row = self._version(session, workspace, name, version)
            read = version_reads(session, asset, [row])[0]
            if row.datastore is None or row.storage_path is None:
                raise InvalidInputError(
                    f"version {row.version} of {name!r} is a reference to {row.path[:200]!r}, "
                    "which the server does not fetch; read it from there",
                    code="web_reference",
                    field="path",
                )
            return read, self.resolver.resolve(
                session, ws, row.datastore, row.storage_path, field="path"
            )

    def files(
        self, workspace: str, name: str, version: str, path: str = "", *, recursive: bool = False
    ) -> list[DataFileRead]:
        _, location = self.location(workspace, name, version)
        return asset_files.file_reads(asset_files.list_files(location, path, recursive=recursive))

    def preview(self, workspace: str, name: str, version: str, rows: int) -> DataPreview:
        if not 1 <= rows <= data_preview.MAX_ROWS:
            raise InvalidInputError(
                f"rows must be between 1 and {data_preview.MAX_ROWS}",
                code="invalid_field",
                field="rows",
            )
        read, location = self.location(workspace, name, version)
        if read.type == "uri_folder":
            raise InvalidInputError(
                "a uri_folder has no table to preview; register the folder as an mltable "
                "(with an MLTable file) to preview it",
                code="preview_unsupported",
                field="type",
            )
        if read.type == "uri_file":
            return data_preview.preview_file(location, rows)
        spec = _mltable(location)

        def resolve(parsed: DatastorePath, field: str) -> Location:
            with self.db.read() as session:
                ws = live_workspace(session, workspace)
                return self.resolver.resolve(
                    session, ws, parsed.datastore, parsed.path, field=field
                )

        return data_preview.preview_table(location, spec, rows, resolve)

    # -- helpers ----------------------------------------------------------------------------

    def _version(
        self, session: Session, workspace: str, name: str, version: str, *, labels: bool = True
    ) -> tuple[DataAssetRow, DataVersionRow]:
        asset = _asset(session, workspace, name)
        if labels and version == LATEST:
            row = store.latest_version(session, asset.id)
        else:
            row = store.get_version(session, asset.id, version)
        if row is None:
            which = (
                "no version that is not archived"
                if version == LATEST
                else f"no version {version!r}"
            )
            raise NotFoundError(
                f"data asset {name!r} has {which}",
                code="data_version_not_found",
                field="version",
            )
        return asset, row


def _check_content(location: Location, data_type: str) -> None:
    """The path must exist and be the right kind; an mltable needs a valid MLTable file."""
    storage = location.storage
    if not storage.exists(location.key):
        raise NotFoundError(f"nothing at {location.uri!r}", code="path_not_found", field="path")
    is_dir = storage.stat(location.key).is_dir
    if data_type == "uri_file" and is_dir:
        raise InvalidInputError(
            f"{location.uri!r} is a folder; use type uri_folder (or mltable)",
            code="path_is_folder",
            field="path",
        )
    if data_type != "uri_file" and not is_dir:
        raise InvalidInputError(
            f"{location.uri!r} is a file; use type uri_file", code="path_is_file", field="path"
        )
    if data_type == "mltable":
        _mltable(location)


def _mltable(location: Location) -> MLTableSpec:
    text = asset_files.read_descriptor(location.child(FILE_NAME), field="path")
    if text is None:
        raise InvalidInputError(
            f"an mltable is a folder with an {FILE_NAME} file; {location.uri!r} has none",
            code="mltable_missing",
            field="path",
        )
    return parse_mltable(asset_files.load_yaml(text, name=FILE_NAME, field=FILE_NAME))


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"data asset name {name[:100]!r} is invalid: letters, digits, '-', '_' and '.', "
            "starting with a letter or digit, at most 255 characters",
            code="invalid_name",
            field="name",
        )


def _version_exists(name: str, version: str) -> ConflictError:
    return ConflictError(
        f"version {version} of data asset {name!r} exists; versions are immutable: give "
        "another version, or omit it for the next number",
        code="data_version_exists",
        field="version",
    )


def _asset(session: Session, workspace: str, name: str) -> DataAssetRow:
    ws = live_workspace(session, workspace)
    row = store.get_asset(session, ws.id, name)
    if row is None:
        raise NotFoundError(
            f"data asset {name[:255]!r} does not exist", code="data_not_found", field="name"
        )
    return row
