"""A registry's code snapshots: its components' code, kept by the registry itself.

A registry component must run in every workspace, and outlive the workspace it was made
from, so its code snapshot is copied into the registry's own folder in the server's storage
(``<artifact root>/registries/<registry id>/``) when the version is created:

- ``LocalUpload/<digest>/<the files>``: the snapshot, laid out as in a workspace;
- ``manifests/<digest>.json``: its manifest (``[[path, sha256, size], ...]``), written last,
  so a manifest is there only when every file is.

A snapshot reaches the registry through a workspace: the client uploads the folder to a
workspace it may write (the ordinary content upload, resumable and deduplicated) and names
that workspace when it creates the version. Azure ML's ``share`` copies from a workspace
into a registry the same way.

When a pipeline in a workspace uses the component, the snapshot is copied into that
workspace's own storage as a committed code upload of the same digest (once per workspace:
content-addressed), so a step's job is prepared exactly like any other job's.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError

from shipyard.domain.content import UPLOADS_FOLDER, ManifestEntry
from shipyard.domain.errors import NotFoundError
from shipyard.domain.principals import Principal
from shipyard.services.datastore_uris import DatastoreResolver
from shipyard.storage.base import Storage, write_all
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.uploads import OWN_DATASTORE, ContentUploadRow, get_upload
from shipyard.store.workspaces import WorkspaceRow

_MANIFESTS = "manifests"
_CHUNK = 1024 * 1024


class RegistryCode:
    def __init__(
        self,
        db: Database,
        resolver: DatastoreResolver,
        open_storage: Callable[[str], Storage],
        root_uri: str,
    ) -> None:
        self.db = db
        self.resolver = resolver
        self._open_storage = open_storage
        self.root_uri = root_uri

    def _storage(self) -> Storage:
        return self._open_storage(self.root_uri)

    @staticmethod
    def _folder(registry_id: str) -> str:
        return f"registries/{registry_id}"

    def _manifest_key(self, registry_id: str, digest: str) -> str:
        return posixpath.join(self._folder(registry_id), _MANIFESTS, f"{digest}.json")

    def _files_key(self, registry_id: str, digest: str) -> str:
        return posixpath.join(self._folder(registry_id), UPLOADS_FOLDER, digest)

    # -- into the registry ------------------------------------------------------------------

    def has(self, registry_id: str, digest: str) -> bool:
        return self._storage().exists(self._manifest_key(registry_id, digest))

    def take_from_workspace(
        self, workspace: WorkspaceRow, registry_id: str, digest: str, *, field: str
    ) -> None:
        """Copy the workspace's committed code upload ``digest`` into the registry (nothing
        when the registry has it already). 404 naming ``field`` when it was not uploaded."""
        if self.has(registry_id, digest):
            return
        with self.db.read() as session:
            row = get_upload(session, workspace.id, "code", digest)
            if row is None or row.committed_at is None:
                raise NotFoundError(
                    f"the code snapshot has not been uploaded to workspace {workspace.name!r}",
                    code="code_not_found",
                    field=field,
                )
            source = self.resolver.resolve(
                session, workspace, row.datastore, row.folder, field=field
            )
            entries = _entries(row.manifest)
        storage = self._storage()
        target = self._files_key(registry_id, digest)
        for entry in entries:
            chunks = source.storage.read(posixpath.join(source.key, entry.path))
            write_all(storage, posixpath.join(target, entry.path), chunks)
        manifest = json.dumps([[e.path, e.sha256, e.size] for e in entries]).encode()
        write_all(storage, self._manifest_key(registry_id, digest), [manifest])

    def delete_all(self, registry_id: str) -> None:
        """Every snapshot of the registry (when the registry goes)."""
        self._storage().delete_tree(self._folder(registry_id))

    # -- out to a workspace -----------------------------------------------------------------

    def give_to_workspace(
        self, principal: Principal, workspace: WorkspaceRow, registry_id: str, digest: str
    ) -> None:
        """Make ``digest`` a committed code upload of the workspace, copied from the
        registry, unless the workspace has it already."""
        with self.db.read() as session:
            found = get_upload(session, workspace.id, "code", digest)
            if found is not None and found.committed_at is not None:
                return
        storage = self._storage()
        entries = _entries(json.loads(_read_all(storage, self._manifest_key(registry_id, digest))))
        target = self.resolver.default(workspace, posixpath.join(UPLOADS_FOLDER, digest))
        source = self._files_key(registry_id, digest)
        for entry in entries:
            chunks = storage.read(posixpath.join(source, entry.path))
            write_all(target.storage, posixpath.join(target.key, entry.path), chunks)
        try:
            with self.db.write() as session:
                row = get_upload(session, workspace.id, "code", digest)
                if row is None:
                    row = ContentUploadRow(
                        workspace_id=workspace.id,
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
                # A client's upload of the same content, begun and unfinished, is finished
                # by this copy: the digest names the same files.
                row.committed_at = row.committed_at or utcnow()
        except IntegrityError:
            pass  # a concurrent submit recorded the same copy


def _entries(manifest: list[list[object]]) -> list[ManifestEntry]:
    return [ManifestEntry(str(path), str(sha), int(str(size))) for path, sha, size in manifest]


def _read_all(storage: Storage, key: str) -> bytes:
    return b"".join(storage.read(key))
