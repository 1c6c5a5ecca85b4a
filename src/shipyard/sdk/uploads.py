"""Uploading a local file or folder by its content (data assets, models).

The SDK hashes every file (sha256, read in 1 MiB chunks), sends the manifest, and uploads only
the files the server lacks, several at once, each streamed from disk; then it commits. Content
the workspace already holds is not sent again: registering the same folder twice uploads it
once. A folder holding a symlink that leads outside it is refused before anything is sent.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from shipyard.domain.content import ManifestEntry, manifest_digest
from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.uploads import UploadFileWritten, UploadRead
from shipyard.sdk.artifacts import DEFAULT_WORKERS, folder_files
from shipyard.sdk.http import HttpSession

_CHUNK = 1024 * 1024


class UploadProgress(Protocol):
    """What a progress display needs: the bytes to send, then each file's bytes once sent."""

    def start(self, total_bytes: int, files: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...


@dataclass(frozen=True)
class LocalContent:
    """A hashed local file or folder: its files (local path and manifest entry) and digest."""

    source: Path
    is_file: bool
    files: Sequence[tuple[Path, ManifestEntry]]
    digest: str

    @property
    def size(self) -> int:
        return sum(entry.size for _, entry in self.files)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_local(path: str | os.PathLike[str], *, field: str = "path") -> LocalContent:
    """Hash a file (a manifest of one entry, named after it) or every file below a folder."""
    source = Path(path)
    if source.is_file():
        pairs = [(source, source.name)]
    elif source.is_dir():
        pairs = folder_files(source)
        if not pairs:
            raise InvalidInputError(f"{source} holds no files", code="empty_folder", field=field)
    else:
        raise InvalidInputError(
            f"{source} is neither a file nor a folder", code="path_not_found", field=field
        )
    files = [
        (local, ManifestEntry(relative, file_sha256(local), local.stat().st_size))
        for local, relative in pairs
    ]
    digest = manifest_digest(entry for _, entry in files)
    return LocalContent(source, source.is_file(), files, digest)


class ContentUploads:
    """The upload routes of one kind of asset (``.../data/artifacts`` or ``.../models/...``)."""

    def __init__(self, http: HttpSession, base: str) -> None:
        self._http = http
        self._base = base

    def upload(
        self,
        content: LocalContent,
        *,
        name: str | None = None,
        workers: int = DEFAULT_WORKERS,
        progress: UploadProgress | None = None,
    ) -> UploadRead:
        """Send what the server lacks and commit; returns where the files are."""
        manifest = {
            "files": [
                {"path": e.path, "sha256": e.sha256, "size": e.size} for _, e in content.files
            ],
            "name": name,
        }
        root = f"{self._base}/{content.digest}"
        status = UploadRead.model_validate(self._http.request("PUT", root, json=manifest).json())
        if status.committed:
            if progress is not None:
                progress.start(0, 0)
            return status
        missing = set(status.missing)
        todo = [(local, entry) for local, entry in content.files if entry.path in missing]
        if progress is not None:
            progress.start(sum(entry.size for _, entry in todo), len(todo))

        def put(pair: tuple[Path, ManifestEntry]) -> UploadFileWritten:
            local, entry = pair
            with local.open("rb") as handle:
                response = self._http.request(
                    "PUT",
                    f"{root}/{quote(entry.path, safe='/')}",
                    content=handle,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(entry.size),
                    },
                )
            if progress is not None:
                progress.advance(entry.size)
            return UploadFileWritten.model_validate(response.json())

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(put, todo))
        return UploadRead.model_validate(self._http.request("POST", f"{root}/commit").json())
