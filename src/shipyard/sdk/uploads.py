"""Uploading a local file or folder by its content (data assets, models).

The SDK hashes every file (sha256, read in 1 MiB chunks), sends the manifest, and uploads only
the files the server lacks, a few requests at once; then it commits. A big file streams from
disk in a request of its own; small files go hundreds to a request, in bundles (the framing is
in ``schemas.uploads``): a request costs the server far more than a small file's bytes. Content
the workspace already holds is not sent again: registering the same folder twice uploads it
once. A folder holding a symlink that leads outside it is refused before anything is sent.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from shipyard.domain.content import ManifestEntry, manifest_digest
from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.uploads import BUNDLE_MAGIC, UploadRead, bundle_header
from shipyard.sdk.artifacts import DEFAULT_WORKERS, folder_files
from shipyard.sdk.http import HttpSession

_CHUNK = 1024 * 1024
#: Files up to this size go many to a request, in bundles; bigger ones stream alone.
BUNDLE_FILE_BYTES = 1024 * 1024
#: A bundle's files, at most: one request instead of hundreds, and enough bundles for a big
#: folder to keep every request slot busy until the end.
BUNDLE_FILES = 500
#: A bundle's bytes, at most (bundles are streamed; this keeps a retry cheap).
BUNDLE_BYTES = 64 * 1024 * 1024
#: How much of a bundle is gathered before it is handed to the socket.
_BUNDLE_PIECE = 256 * 1024
#: Requests in flight at once. Each bundle keeps a server thread busy with file system calls;
#: beyond about four those threads mostly wait for each other (10,000 small files on a 2-core
#: server: 4.1 s with four at once, 5.2 s with eight, 4.9 s with one).
PARALLEL_REQUESTS = 4


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
    return _hash_and_size(path)[0]


def _hash_and_size(path: Path) -> tuple[str, int]:
    """The file's sha256 and size, from one read (the size is what was hashed)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def hash_local(
    path: str | os.PathLike[str],
    *,
    field: str = "path",
    exclude: Callable[[str], bool] | None = None,
) -> LocalContent:
    """Hash a file (a manifest of one entry, named after it) or every file below a folder
    (but those whose relative path ``exclude`` says to leave out)."""
    source = Path(path)
    if source.is_file():
        pairs = [(source, source.name)]
    elif source.is_dir():
        pairs = folder_files(source)
        if exclude is not None:
            pairs = [(local, relative) for local, relative in pairs if not exclude(relative)]
        if not pairs:
            raise InvalidInputError(f"{source} holds no files", code="empty_folder", field=field)
    else:
        raise InvalidInputError(
            f"{source} is neither a file nor a folder", code="path_not_found", field=field
        )
    files = [(local, ManifestEntry(relative, *_hash_and_size(local))) for local, relative in pairs]
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

        # A bundle is one request body: it stays within the server's limit for one.
        budget = min(BUNDLE_BYTES, status.max_body_bytes or BUNDLE_BYTES)
        requests = batches(todo, workers, budget)

        def send(batch: list[tuple[Path, ManifestEntry]]) -> None:
            if len(batch) == 1 and goes_alone(batch[0][1], budget):
                self._put_file(root, *batch[0])
            else:
                self._put_bundle(root, batch)
            if progress is not None:
                progress.advance(sum(entry.size for _, entry in batch))

        with ThreadPoolExecutor(max_workers=max(1, min(workers, PARALLEL_REQUESTS))) as pool:
            list(pool.map(send, requests))
        return UploadRead.model_validate(self._http.request("POST", f"{root}/commit").json())

    def _put_file(self, root: str, local: Path, entry: ManifestEntry) -> None:
        self._http.put_file(f"{root}/{quote(entry.path, safe='/')}", local, size=entry.size)

    def _put_bundle(self, root: str, files: Sequence[tuple[Path, ManifestEntry]]) -> None:
        # The bundles route sits beside the digests: .../artifacts/bundles/<digest>.
        base, digest = root.rsplit("/", 1)
        self._http.request(
            "PUT",
            f"{base}/bundles/{digest}",
            content=bundle_body(files),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(bundle_length(files)),
            },
        )


def batches(
    files: Sequence[tuple[Path, ManifestEntry]], workers: int, budget: int = BUNDLE_BYTES
) -> list[list[tuple[Path, ManifestEntry]]]:
    """What each request sends: a big file alone, small ones together in bundles of at most
    ``BUNDLE_FILES`` files and ``budget`` bytes (framing included), spread so that every
    worker gets some."""
    small: list[tuple[Path, ManifestEntry]] = []
    found: list[list[tuple[Path, ManifestEntry]]] = []
    for pair in files:
        if goes_alone(pair[1], budget):
            found.append([pair])
        else:
            small.append(pair)
    per_bundle = min(BUNDLE_FILES, max(1, -(-len(small) // max(1, workers))))
    bundle: list[tuple[Path, ManifestEntry]] = []
    size = len(BUNDLE_MAGIC)
    for pair in small:
        more = _framed(pair[1])
        if bundle and (len(bundle) >= per_bundle or size + more > budget):
            found.append(bundle)
            bundle, size = [], len(BUNDLE_MAGIC)
        bundle.append(pair)
        size += more
    if bundle:
        found.append(bundle)
    return found


def goes_alone(entry: ManifestEntry, budget: int) -> bool:
    """Whether a file streams in a request of its own (too big to read whole, or to fit a
    bundle within ``budget``)."""
    return entry.size > BUNDLE_FILE_BYTES or len(BUNDLE_MAGIC) + _framed(entry) > budget


def bundle_length(files: Sequence[tuple[Path, ManifestEntry]]) -> int:
    """The bytes of a bundle of these files (its Content-Length)."""
    return len(BUNDLE_MAGIC) + sum(_framed(entry) for _, entry in files)


def _framed(entry: ManifestEntry) -> int:
    return len(bundle_header(entry.path, entry.size)) + entry.size


def bundle_body(files: Sequence[tuple[Path, ManifestEntry]]) -> Iterator[bytes]:
    """A bundle's bytes (``schemas.uploads`` has the framing), a few hundred KiB at a time so
    that neither a syscall per file nor the whole bundle in memory is needed."""
    pending = [BUNDLE_MAGIC]
    held = len(BUNDLE_MAGIC)
    for local, entry in files:
        with local.open("rb") as handle:
            data = handle.read(entry.size + 1)
        if len(data) != entry.size:
            raise InvalidInputError(
                f"{local} changed while it was being uploaded ({len(data)} bytes, was "
                f"{entry.size}); upload it again",
                code="file_changed",
                field="path",
            )
        header = bundle_header(entry.path, entry.size)
        pending += (header, data)
        held += len(header) + len(data)
        if held >= _BUNDLE_PIECE:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)
