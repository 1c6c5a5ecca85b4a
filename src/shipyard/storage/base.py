"""The storage interface every backend implements.

A storage is a tree of files under one root URI; every path given to it is relative to that
root, POSIX-style, and goes through ``clean_relative`` first, so no caller can leave the root.
Data moves in chunks: an upload is written through a ``Writer`` piece by piece and becomes
visible only when committed (temporary name then rename, or a completed multipart upload), and
a download is an iterator of chunks over an optional byte range. No file is ever held whole in
memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shipyard.domain.errors import InvalidInputError

#: Chunk size for streaming reads and for copying between a client and a storage.
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FileInfo:
    """One entry of a listing: ``path`` relative to the storage root; folders have size 0."""

    path: str
    is_dir: bool
    size: int = 0
    modified: datetime | None = None


@dataclass(frozen=True)
class Written:
    """What a committed upload stored: its path, its size in bytes and its sha256 (hex)."""

    path: str
    size: int
    sha256: str


class Writer(Protocol):
    """An upload in progress. Nothing is visible at ``path`` until ``commit``."""

    path: str
    size: int

    def write(self, data: bytes) -> None: ...

    def commit(self) -> Written:
        """Make the file visible at its path (replacing any file there) and return its record."""

    def abort(self) -> None:
        """Drop everything written so far; safe to call twice or after a failed commit."""


class Storage(Protocol):
    uri: str

    def ensure_folder(self, path: str) -> None:
        """Create the folder (and parents) if it does not exist (a no-op on object stores)."""

    def delete_tree(self, path: str) -> None:
        """Remove the folder and everything in it; a missing folder is not an error."""

    def delete_file(self, path: str) -> None:
        """Remove one file; NotFoundError when there is none."""

    def exists(self, path: str) -> bool: ...

    def stat(self, path: str) -> FileInfo:
        """The file's or folder's entry; NotFoundError when there is none."""

    def list(self, path: str = "", *, recursive: bool = False) -> list[FileInfo]:
        """Entries under the folder, sorted by path; direct children only unless recursive
        (then files only). A missing folder lists as empty."""

    def writer(self, path: str) -> Writer:
        """Start an upload to ``path``; commit it to make the file appear."""

    def read(self, path: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The file's bytes in chunks, from ``start`` up to (not including) ``end``.

        NotFoundError (raised at the call, not at the first chunk) when the file is missing.
        """


def check_range(start: int, end: int | None) -> None:
    """Refuse a byte range no storage can serve (a negative offset); an ``end`` at or before
    ``start`` is an empty range, and one past the end of the file is clipped to it."""
    if start < 0:
        raise InvalidInputError(
            f"a range cannot start before byte 0 (got {start})", code="invalid_range", field="start"
        )
    if end is not None and end < 0:
        raise InvalidInputError(
            f"a range cannot end before byte 0 (got {end})", code="invalid_range", field="end"
        )


def write_all(storage: Storage, path: str, chunks: Iterable[bytes]) -> Written:
    """Upload ``chunks`` to ``path`` in one go; on any failure nothing is left behind."""
    writer = storage.writer(path)
    try:
        for chunk in chunks:
            writer.write(chunk)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise
