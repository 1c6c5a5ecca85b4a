"""The code snapshot a batch deployment's jobs run: the user's scoring code with the batch
driver (``serving/batch_driver.py``) added as ``_shipyard_batch_driver.py``.

The job machinery runs a job's command in its code snapshot, on the local compute or a Ray
cluster alike; putting the driver in the snapshot gets it wherever the job runs, with nothing
installed there. The snapshot is an ordinary committed code upload of the workspace, named by
its manifest's digest (content-addressed: deployments of the same code share it), written
once when the deployment is created or updated.
"""

from __future__ import annotations

import hashlib
import posixpath
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from shipyard.domain.batch_endpoints import DRIVER_FILE
from shipyard.domain.content import UPLOADS_FOLDER, ManifestEntry, manifest_digest
from shipyard.domain.errors import InvalidInputError, NotFoundError
from shipyard.domain.principals import Principal
from shipyard.services.datastore_uris import DatastoreResolver, Location
from shipyard.serving import batch_driver
from shipyard.storage.base import write_all
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.uploads import OWN_DATASTORE, ContentUploadRow, get_upload
from shipyard.store.workspaces import WorkspaceRow

DRIVER_SOURCE = Path(batch_driver.__file__).read_bytes()
_FIELD = "code_configuration.code"


class BatchCode:
    def __init__(self, db: Database, resolver: DatastoreResolver) -> None:
        self.db = db
        self.resolver = resolver

    def with_driver(
        self, principal: Principal, ws: WorkspaceRow, user_digest: str | None, script: str | None
    ) -> str:
        """The digest of the snapshot: ``user_digest``'s files (none without code) and the
        driver. 404 naming the code when the user's snapshot was not uploaded; 400 when it
        lacks ``script``."""
        user_entries: list[ManifestEntry] = []
        source: Location | None = None
        if user_digest is not None:
            with self.db.read() as session:
                row = get_upload(session, ws.id, "code", user_digest)
                if row is None or row.committed_at is None:
                    raise NotFoundError(
                        "the code snapshot has not been uploaded to this workspace",
                        code="code_not_found",
                        field=_FIELD,
                    )
                source = self.resolver.resolve(session, ws, row.datastore, row.folder, field=_FIELD)
                user_entries = [ManifestEntry(str(p), str(s), int(n)) for p, s, n in row.manifest]
        paths = {entry.path for entry in user_entries}
        if script is not None and script not in paths:
            raise InvalidInputError(
                f"the code snapshot holds no file {script[:200]!r}",
                code="scoring_script_not_found",
                field="code_configuration.scoring_script",
            )
        if DRIVER_FILE in paths:
            raise InvalidInputError(
                f"the code folder may not hold a file named {DRIVER_FILE} (the batch driver's)",
                code="invalid_code",
                field=_FIELD,
            )
        driver = ManifestEntry(
            DRIVER_FILE, hashlib.sha256(DRIVER_SOURCE).hexdigest(), len(DRIVER_SOURCE)
        )
        entries = sorted([*user_entries, driver], key=lambda e: e.path)
        digest = manifest_digest(entries)
        with self.db.read() as session:
            found = get_upload(session, ws.id, "code", digest)
            if found is not None and found.committed_at is not None:
                return digest
        target = self.resolver.default(ws, posixpath.join(UPLOADS_FOLDER, digest))
        for entry in user_entries:
            assert source is not None
            chunks = source.storage.read(posixpath.join(source.key, entry.path))
            write_all(target.storage, posixpath.join(target.key, entry.path), chunks)
        write_all(target.storage, posixpath.join(target.key, DRIVER_FILE), [DRIVER_SOURCE])
        self._record(principal, ws, digest, entries)
        return digest

    def _record(
        self, principal: Principal, ws: WorkspaceRow, digest: str, entries: list[ManifestEntry]
    ) -> None:
        try:
            with self.db.write() as session:
                row = get_upload(session, ws.id, "code", digest)
                if row is None:
                    row = ContentUploadRow(
                        workspace_id=ws.id,
                        purpose="code",
                        digest=digest,
                        datastore=OWN_DATASTORE,
                        folder=posixpath.join(UPLOADS_FOLDER, digest),
                        manifest=[[e.path, e.sha256, e.size] for e in entries],
                        file_count=len(entries),
                        size=sum(e.size for e in entries),
                        created_by=principal.id,
                    )
                    session.add(row)
                row.committed_at = row.committed_at or utcnow()
        except IntegrityError:
            pass  # a concurrent create recorded the same snapshot
