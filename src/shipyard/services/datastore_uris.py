"""Datastore URIs to places in storage: the one door data assets and models go through.

``azureml://datastores/<name>/paths/<path>`` (or ``shipyard://...``) names a path in one of
the workspace's datastores. Today a workspace has one datastore, its default
``workspaceblobstore``, which is the workspace's own storage (its ``storage_uri`` plus its
``storage_prefix``); any other name is ``404 datastore_not_found``. Named datastores (local
folders, S3 buckets with credentials in the key vault) plug in by giving the app factory
another ``DatastoreResolver``: nothing that calls ``resolve`` changes.

The path is cleaned here (``clean_relative``: no ``..`` in any spelling, no absolute path,
no backslash or NUL, no over-long names), so no caller can leave the datastore.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from shipyard.domain.asset_uris import datastore_uri
from shipyard.domain.errors import NotFoundError
from shipyard.services.workspaces import DEFAULT_DATASTORE
from shipyard.storage.base import Storage
from shipyard.storage.paths import clean_relative
from shipyard.store.workspaces import WorkspaceRow


@dataclass(frozen=True)
class Location:
    """A file or folder in a datastore: ``path`` relative to the datastore's root folder
    ``root`` in ``storage``."""

    datastore: str
    storage: Storage
    root: str
    path: str
    read_only: bool = False

    @property
    def key(self) -> str:
        """The path in ``storage`` (what the storage's own calls take)."""
        return posixpath.join(self.root, self.path) if self.path else self.root

    @property
    def uri(self) -> str:
        return datastore_uri(self.datastore, self.path)

    def child(self, relative: str, *, field: str = "path") -> Location:
        clean = clean_relative(relative, field=field)
        joined = posixpath.join(self.path, clean) if clean else self.path
        return Location(self.datastore, self.storage, self.root, joined, self.read_only)


class DatastoreResolver(Protocol):
    def resolve(
        self, session: Session, workspace: WorkspaceRow, datastore: str, path: str, *, field: str
    ) -> Location:
        """The place ``path`` names in the workspace's datastore ``datastore``;
        NotFoundError (``datastore_not_found``) when the workspace has no such datastore."""

    def default(self, workspace: WorkspaceRow, path: str = "", *, field: str = "path") -> Location:
        """A path in the workspace's own storage, ``workspaceblobstore``: where uploads and
        the model registry's files go (MLflow's artifact proxy reads only there)."""


class DefaultDatastoreResolver:
    """Knows each workspace's default datastore, ``workspaceblobstore``, only."""

    def __init__(self, open_storage: Callable[[str], Storage]) -> None:
        self._open_storage = open_storage

    def resolve(
        self, session: Session, workspace: WorkspaceRow, datastore: str, path: str, *, field: str
    ) -> Location:
        if datastore != DEFAULT_DATASTORE:
            shown = datastore if len(datastore) <= 100 else datastore[:97] + "..."
            raise NotFoundError(
                f"datastore {shown!r} does not exist in workspace {workspace.name!r}",
                code="datastore_not_found",
                field=field,
            )
        return Location(
            datastore=DEFAULT_DATASTORE,
            storage=self._open_storage(workspace.storage_uri),
            root=workspace.storage_prefix,
            path=clean_relative(path, field=field),
        )

    def default(self, workspace: WorkspaceRow, path: str = "", *, field: str = "path") -> Location:
        """A path in the workspace's own storage (uploads and model files go there)."""
        return Location(
            datastore=DEFAULT_DATASTORE,
            storage=self._open_storage(workspace.storage_uri),
            root=workspace.storage_prefix,
            path=clean_relative(path, field=field),
        )
