"""``ws.data``: a workspace's data assets.

A data asset version points at a file (``uri_file``), a folder (``uri_folder``) or a table
(``mltable``: a folder with an ``MLTable`` file). ``path`` may be a local file or folder
(uploaded by content: what the workspace already holds is not sent again), a datastore URI
(``azureml://datastores/<name>/paths/<path>``) or an http(s) URL kept as a reference.
"""

from __future__ import annotations

import builtins
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shipyard.domain.asset_uris import LocalPath, parse_asset_path
from shipyard.domain.errors import InvalidInputError
from shipyard.domain.mltable import FILE_NAME
from shipyard.schemas.data import (
    DATA_NAME,
    DATA_VERSION,
    LATEST,
    DataAssetRead,
    DataFileList,
    DataFileRead,
    DataPreview,
    DataVersionRead,
)
from shipyard.sdk.artifacts import DEFAULT_WORKERS
from shipyard.sdk.http import HttpSession
from shipyard.sdk.uploads import ContentUploads, UploadProgress, hash_local

Data = DataVersionRead
_UNSET: Any = object()
_NAME = re.compile(DATA_NAME)
_VERSION = re.compile(DATA_VERSION)
# Fields of an Azure ML data YAML that are not part of the request body.
_FILE_ONLY = ("$schema", "name")


def local_source(spec: dict[str, Any], base_dir: Path | None) -> Path | None:
    """The local file or folder a spec's ``path`` names (relative to ``base_dir``, the YAML
    file's folder), or None for a datastore URI or a URL."""
    path = spec.get("path")
    if not isinstance(path, str) or not path:
        raise InvalidInputError("a path is required", code="missing_field", field="path")
    parsed = parse_asset_path(path)
    if not isinstance(parsed, LocalPath):
        return None
    local = Path(parsed.path).expanduser()
    if not local.is_absolute() and base_dir is not None:
        local = base_dir / local
    return local


def download_files(
    http: HttpSession,
    files_url: str,
    entries: list[DataFileRead],
    destination: Path,
    *,
    workers: int = DEFAULT_WORKERS,
) -> None:
    """Fetch each listed file to ``destination/<its path>``, several at once. A path the
    server lists is checked before it is used: none may leave ``destination``."""
    root = destination.resolve()
    targets = []
    for entry in entries:
        if entry.is_dir:
            continue
        parts = entry.path.split("/")
        if entry.path.startswith("/") or "\\" in entry.path or ".." in parts or "" in parts:
            raise InvalidInputError(
                f"the server listed a path that leaves the folder: {entry.path!r}",
                code="invalid_path",
                field="path",
            )
        targets.append((entry, root / entry.path))

    def fetch(pair: tuple[DataFileRead, Path]) -> None:
        entry, local = pair
        url = f"{files_url}/{quote(entry.path, safe='/')}"
        http.download_file(url, local, size=entry.size)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(fetch, targets))


class DataOperations:
    """Register, read, archive and delete data assets; download and preview them.

    Example::

        ws = client.workspace("churn")
        data = ws.data.create("customers", "./customers/", type="uri_folder")
        latest = ws.data.get("customers", label="latest")
        ws.data.download("customers", version=data.version, download_path="./copy")
        print(ws.data.preview("customers-table").rows[:5])
    """

    def __init__(self, http: HttpSession, workspace: str) -> None:
        self._http = http
        self._root = f"/api/v1/workspaces/{quote(workspace, safe='')}/data"
        self._uploads = ContentUploads(http, self._root + "/artifacts")

    def _asset(self, name: str) -> str:
        # Checked here too: a name such as ".." would be resolved away by the URL.
        if not _NAME.fullmatch(name):
            raise InvalidInputError(
                f"data asset name {name[:100]!r} is invalid: letters, digits, '-', '_' and '.', "
                "starting with a letter or digit",
                code="invalid_name",
                field="name",
            )
        return f"{self._root}/{quote(name, safe='')}"

    def _version(self, name: str, version: str | None, label: str | None) -> str:
        if version is not None and label is not None:
            raise InvalidInputError(
                "give a version or a label, not both", code="invalid_field", field="label"
            )
        chosen = str(version) if version is not None else (label or LATEST)
        if label is not None and label != LATEST:
            raise InvalidInputError(
                f"the only label of data assets is {LATEST!r}", code="invalid_label", field="label"
            )
        if not _VERSION.fullmatch(chosen):
            raise InvalidInputError(
                f"version {chosen[:70]!r} is invalid", code="invalid_version", field="version"
            )
        return f"{self._asset(name)}/versions/{quote(chosen, safe='')}"

    # -- create -----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        type: str = "uri_folder",
        version: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        progress: UploadProgress | None = None,
    ) -> Data:
        """Register a version; a local ``path`` is uploaded first (only what is missing)."""
        spec: dict[str, Any] = {
            "name": name,
            "path": str(path),
            "type": type,
            "version": version,
            "description": description,
            "tags": tags or {},
            "properties": properties or {},
        }
        return self.create_from_spec(
            {k: v for k, v in spec.items() if v is not None}, progress=progress
        )

    def create_from_spec(
        self,
        spec: dict[str, Any],
        *,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> Data:
        """Register a version from a mapping shaped like Azure ML's data YAML (what the CLI
        sends); a relative local ``path`` is relative to ``base_dir``."""
        body = {k: v for k, v in spec.items() if k not in _FILE_ONLY}
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInputError("a name is required", code="missing_field", field="name")
        if body.get("version") in (None, ""):
            body.pop("version", None)  # an empty version asks for the next number
        else:
            body["version"] = str(body["version"])
        local = local_source(body, base_dir)
        if local is not None:
            body["path"] = self.upload(local, body.get("type", "uri_folder"), progress=progress)
        return self._http.send_model("POST", self._asset(name) + "/versions", Data, body)

    def upload(
        self, local: Path, data_type: str = "uri_folder", *, progress: UploadProgress | None = None
    ) -> str:
        """Upload a local file or folder by content; returns its datastore URI."""
        if not local.exists():
            raise InvalidInputError(f"{local} does not exist", code="path_not_found", field="path")
        if data_type == "uri_file" and not local.is_file():
            raise InvalidInputError(
                f"{local} is not a file (type uri_file)", code="not_a_file", field="path"
            )
        if data_type != "uri_file" and not local.is_dir():
            raise InvalidInputError(
                f"{local} is not a folder (type {data_type})", code="not_a_folder", field="path"
            )
        if data_type == "mltable" and not (local / FILE_NAME).is_file():
            raise InvalidInputError(
                f"an mltable is a folder with an {FILE_NAME} file; {local} has none",
                code="mltable_missing",
                field="path",
            )
        content = hash_local(local)
        status = self._uploads.upload(content, progress=progress)
        return f"{status.uri}/{content.files[0][1].path}" if content.is_file else status.uri

    # -- read -------------------------------------------------------------------------------

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Data:
        """A version; with neither a version nor a label, the latest one."""
        return self._http.get_model(self._version(name, version, label), Data)

    def list(
        self, name: str | None = None, *, include_archived: bool = False
    ) -> Iterator[Data] | Iterator[DataAssetRead]:
        """The workspace's assets, or with ``name`` that asset's versions (newest first)."""
        params = {"include_archived": str(include_archived).lower()}
        if name is None:
            return self._http.iterate(self._root, DataAssetRead, params)
        return self._http.iterate(self._asset(name) + "/versions", Data, params)

    def files(
        self, name: str, version: str | None = None, *, path: str = "", recursive: bool = False
    ) -> builtins.list[DataFileRead]:
        params = {"path": path, "recursive": str(recursive).lower()}
        url = self._version(name, version, None) + "/files"
        return self._http.get_model(url, DataFileList, params=params).items

    def download(
        self,
        name: str,
        version: str | None = None,
        label: str | None = None,
        *,
        download_path: str | os.PathLike[str] = ".",
    ) -> Path:
        """Download a version's files into ``download_path`` (made if needed): a file by its
        name, a folder's files below it. Returns ``download_path``."""
        pinned = self.get(name, version, label).version  # "latest" is resolved once
        url = self._version(name, pinned, None) + "/files"
        entries = self.files(name, pinned, recursive=True)
        destination = Path(download_path)
        destination.mkdir(parents=True, exist_ok=True)
        download_files(self._http, url, entries, destination)
        return destination

    def preview(
        self, name: str, version: str | None = None, label: str | None = None, *, rows: int = 20
    ) -> DataPreview:
        """The schema and first rows of an mltable (or a CSV, Parquet or JSON-lines file)."""
        url = self._version(name, version, label) + "/preview"
        return self._http.get_model(url, DataPreview, params={"rows": rows})

    # -- change -----------------------------------------------------------------------------

    def update(
        self,
        name: str,
        version: str,
        *,
        description: str | None = _UNSET,
        tags: dict[str, str] | None = _UNSET,
    ) -> Data:
        """Change a version's description or tags (its data never changes)."""
        given = {"description": description, "tags": tags}
        changes = {k: v for k, v in given.items() if v is not _UNSET}
        return self._http.send_model("PATCH", self._version(name, version, None), Data, changes)

    def archive(self, name: str, version: str | None = None) -> None:
        """Hide a version (or with no version, the asset) from lists and from ``latest``;
        it can still be read by its version."""
        target = self._version(name, version, None) if version else self._asset(name)
        self._http.request("POST", target + "/archive")

    def restore(self, name: str, version: str | None = None) -> None:
        target = self._version(name, version, None) if version else self._asset(name)
        self._http.request("POST", target + "/restore")

    def delete(self, name: str, version: str, *, force: bool = False) -> None:
        """Delete a version for good; refused while a model uses it unless ``force``."""
        params = {"force": "true"} if force else None
        self._http.request("DELETE", self._version(name, version, None), params=params)

    def __repr__(self) -> str:
        return f"DataOperations({self._root!r})"


__all__ = ["Data", "DataOperations", "download_files", "local_source"]
