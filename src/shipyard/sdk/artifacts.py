"""A run's files from Python: upload a file or a whole folder, list, download, delete.

Uploads stream from disk (a file is never read whole into memory) and a folder's files go up
in parallel. Before a folder is uploaded every entry is checked: a symlink that leads outside
the folder is refused, so a link cannot smuggle ``~/.ssh`` into a run.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.artifacts import ArtifactList, ArtifactRead, ArtifactWritten
from shipyard.sdk.http import HttpSession

__all__ = ["ArtifactRead", "ArtifactWritten", "RunArtifacts", "folder_files"]

#: Files of a folder uploaded at once: enough to hide per-request latency for small files.
DEFAULT_WORKERS = 8

Progress = Callable[[ArtifactWritten], None]


def _join(*parts: str | None) -> str:
    return posixpath.join(*[part.strip("/") for part in parts if part])


def folder_files(folder: Path) -> list[tuple[Path, str]]:
    """Every file below ``folder`` with its relative POSIX path, sorted; symlinks that resolve
    outside the folder raise InvalidInputError before anything is sent. A link inside it to a
    file is sent as that file; links to folders are not followed."""
    root = folder.resolve()
    if not root.is_dir():
        raise InvalidInputError(f"{folder} is not a folder", code="not_a_folder", field="local_dir")
    found: list[tuple[Path, str]] = []
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                path = Path(entry.path)
                # Only a link can lead out: the walk never follows one, so every other entry
                # is inside already (resolving each of 10,000 files took a third of a second).
                if entry.is_symlink():
                    target = path.resolve()
                    if target != root and root not in target.parents:
                        raise InvalidInputError(
                            f"{path} links outside {folder}; refusing to upload it",
                            code="link_outside_folder",
                            field="local_dir",
                        )
                    if target.is_file():
                        found.append((path, path.relative_to(root).as_posix()))
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                elif entry.is_file(follow_symlinks=False):
                    found.append((path, path.relative_to(root).as_posix()))
    return sorted(found, key=lambda pair: pair[1])


class RunArtifacts:
    """The files of one run (``run.artifacts``, or ``ws.jobs.artifacts(run_id)``)."""

    def __init__(self, http: HttpSession, run_path: str) -> None:
        self._http = http
        self._base = run_path + "/artifacts"

    def _url(self, path: str) -> str:
        return f"{self._base}/{quote(path.strip('/'), safe='/')}"

    def upload(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactWritten:
        """Upload one file as ``<artifact_path>/<its name>``."""
        source = Path(local_path)
        if not source.is_file():
            raise InvalidInputError(
                f"{source} is not a file", code="not_a_file", field="local_path"
            )
        return self._put(source, _join(artifact_path, source.name))

    def _put(self, source: Path, path: str) -> ArtifactWritten:
        response = self._http.put_file(self._url(path), source, size=source.stat().st_size)
        return ArtifactWritten.model_validate(response.json())

    def upload_folder(
        self,
        local_dir: str | os.PathLike[str],
        artifact_path: str | None = None,
        *,
        workers: int = DEFAULT_WORKERS,
        progress: Progress | None = None,
    ) -> list[ArtifactWritten]:
        """Upload every file below ``local_dir`` under ``artifact_path``, ``workers`` at once;
        ``progress`` is called after each file. Returns the records in path order."""
        files = folder_files(Path(local_dir))

        def put(pair: tuple[Path, str]) -> ArtifactWritten:
            written = self._put(pair[0], _join(artifact_path, pair[1]))
            if progress is not None:
                progress(written)
            return written

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return list(pool.map(put, files))

    def list(self, path: str = "", *, recursive: bool = False) -> list[ArtifactRead]:
        params = {"path": path, "recursive": str(recursive).lower()}
        return self._http.get_model(self._base, ArtifactList, params=params).items

    def download(self, path: str, destination: str | os.PathLike[str] = ".") -> Path:
        """Download a file, or every file of a folder, into ``destination`` (a folder, made if
        needed); returns the local path of what was downloaded."""
        target_dir = Path(destination)
        entries = self.list(path, recursive=True)
        single = len(entries) == 1 and entries[0].path == path.strip("/")
        if single:
            local = target_dir / posixpath.basename(entries[0].path)
            self._http.download_file(self._url(entries[0].path), local, size=entries[0].size)
            return local
        prefix = path.strip("/")
        root = target_dir / posixpath.basename(prefix) if prefix else target_dir
        for entry in entries:
            relative = posixpath.relpath(entry.path, prefix) if prefix else entry.path
            self._http.download_file(self._url(entry.path), root / relative, size=entry.size)
        return root

    def read_bytes(self, path: str) -> bytes:
        """A small file's content (use ``download`` for big ones)."""
        return self._http.request("GET", self._url(path)).content

    def delete(self, path: str) -> None:
        self._http.request("DELETE", self._url(path))
