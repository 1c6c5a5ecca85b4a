"""Storage in a folder of the server's own file system."""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from shipyard.domain.errors import InsufficientStorageError, InvalidInputError, NotFoundError
from shipyard.storage.base import CHUNK, FileInfo, Written, check_range
from shipyard.storage.hashing import StreamHash
from shipyard.storage.paths import clean_relative

#: Uploads in progress live next to their target under this prefix; listings never show them.
TEMP_PREFIX = ".shipyard-upload-"

#: "No space left" and "quota exceeded": both mean the upload cannot fit, whoever set the limit.
_FULL = (errno.ENOSPC, errno.EDQUOT)
#: A big upload's written bytes are handed to the disk every this many (see LocalWriter).
WRITEBACK_BYTES = 8 * 1024 * 1024
#: posix_fadvise where the platform has it (not macOS).
_fadvise = getattr(os, "posix_fadvise", None)


@contextmanager
def _disk_errors(path: str) -> Iterator[None]:
    """Turn the file system's own refusals into errors a client can act on."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _FULL:
            raise InsufficientStorageError(
                f"no space left in the storage for {path!r}; nothing was kept",
                code="storage_full",
                field="path",
            ) from exc
        if exc.errno in (errno.EEXIST, errno.ENOTDIR):
            # mkdir or open met a file where the path needs a folder.
            raise InvalidInputError(
                f"{path!r} or one of its parent folders is a file",
                code="path_is_file",
                field="path",
            ) from exc
        raise


class LocalWriter:
    def __init__(self, target: Path, path: str) -> None:
        self.path = path
        self.size = 0
        self._target = target
        self._temp = target.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        self._file: BinaryIO | None = None
        with _disk_errors(path):
            target.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._temp.open("xb")
        self._hash = StreamHash()  # a big file's is computed in a thread beside this one
        self._written_back = 0  # bytes already handed to the kernel's writeback

    def write(self, data: bytes) -> None:
        if self._file is None:
            raise RuntimeError("the upload is already finished")
        try:
            # Handed to the hash first: a big file's thread hashes it while this one writes.
            self._hash.update(data)
            with _disk_errors(self.path):
                self._file.write(data)
                written = self.size + len(data)
                if written - self._written_back >= WRITEBACK_BYTES:
                    self._file.flush()  # the kernel has every byte so far
                    self._start_writeback(written)
        except BaseException:
            # A full disk leaves nothing half-written behind, even if the caller never aborts.
            self.abort()
            raise
        self.size += len(data)

    def _start_writeback(self, end: int) -> None:
        """Have the kernel start writing the bytes up to ``end`` to the disk, without waiting:
        the fsync at commit then finds little left to do instead of a whole big file (about
        a quarter of a 1 GiB upload's time, measured). Given POSIX_FADV_DONTNEED, Linux
        starts writeback of dirty pages and keeps them cached (it drops only clean ones);
        Python has no sync_file_range, the call made for this."""
        assert self._file is not None
        start, self._written_back = self._written_back, end
        if _fadvise is not None:
            with suppress(OSError):  # advice only: commit's fsync writes whatever is left
                _fadvise(self._file.fileno(), start, end - start, os.POSIX_FADV_DONTNEED)

    def commit(self) -> Written:
        if self._file is None:
            raise RuntimeError("the upload is already finished")
        try:
            with _disk_errors(self.path):
                self._file.flush()
                os.fsync(self._file.fileno())  # meanwhile the hash catches up in its thread
                self._file.close()
            self._file = None
            sha256 = self._hash.hexdigest()
            if self._target.is_dir():
                raise InvalidInputError(
                    f"{self.path!r} is a folder", code="path_is_folder", field="path"
                )
            os.replace(self._temp, self._target)
        except BaseException:
            self.abort()
            raise
        return Written(path=self.path, size=self.size, sha256=sha256)

    def abort(self) -> None:
        self._hash.close()
        if self._file is not None:
            file, self._file = self._file, None
            # Closing flushes the buffer, which fails again on a full disk; the file goes anyway.
            with suppress(OSError):
                file.close()
        self._temp.unlink(missing_ok=True)


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.uri = self.root.as_uri()

    def os_path(self, path: str) -> Path:
        """Where ``path`` is on this host, checked to stay inside the root: for readers that
        take a path rather than bytes (a job's read-only input)."""
        return self._resolve(path)

    def _resolve(self, path: str) -> Path:
        return self._inside(clean_relative(path), path)

    def _inside(self, clean: str, path: str) -> Path:
        target = (self.root / clean).resolve()
        # resolve() follows symlinks: a link inside the root that points outside is refused too.
        if target != self.root and self.root not in target.parents:
            raise InvalidInputError(
                f"{path!r} resolves outside its storage", code="invalid_path", field="path"
            )
        return target

    def _relative(self, target: Path) -> str:
        return "" if target == self.root else target.relative_to(self.root).as_posix()

    def ensure_folder(self, path: str) -> None:
        target = self._resolve(path)
        with _disk_errors(path):
            target.mkdir(parents=True, exist_ok=True)

    def delete_tree(self, path: str) -> None:
        target = self._resolve(path)
        if target == self.root:
            raise InvalidInputError(
                "refusing to delete the storage root itself", code="invalid_path", field="path"
            )
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()

    def delete_file(self, path: str) -> None:
        target = self._resolve(path)
        if not target.is_file():
            raise NotFoundError(f"no file at {path!r}", code="file_not_found")
        target.unlink()

    def exists(self, path: str) -> bool:
        return self._resolve(path).exists()

    def _info(self, target: Path) -> FileInfo:
        st = target.stat()
        is_dir = target.is_dir()
        return FileInfo(
            path=self._relative(target),
            is_dir=is_dir,
            size=0 if is_dir else st.st_size,
            modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def stat(self, path: str) -> FileInfo:
        target = self._resolve(path)
        if not target.exists():
            raise NotFoundError(f"nothing at {path!r}", code="file_not_found")
        return self._info(target)

    def list(self, path: str = "", *, recursive: bool = False) -> list[FileInfo]:
        folder = self._resolve(path)
        if not folder.is_dir():
            return []
        if recursive:
            found = [
                self._info(Path(top) / name)
                for top, _dirs, files in os.walk(folder)
                for name in files
                if not name.startswith(TEMP_PREFIX)
            ]
        else:
            found = [
                self._info(child)
                for child in folder.iterdir()
                if not child.name.startswith(TEMP_PREFIX)
            ]
        return sorted(found, key=lambda info: info.path)

    def writer(self, path: str) -> LocalWriter:
        clean = clean_relative(path)
        if not clean:
            raise InvalidInputError("a file path is required", code="invalid_path", field="path")
        # Cleaned once, here; the key (or file) is built from the clean path.
        return LocalWriter(self._inside(clean, path), clean)

    def read(self, path: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        check_range(start, end)
        target = self._resolve(path)
        if not target.is_file():
            raise NotFoundError(f"no file at {path!r}", code="file_not_found")
        handle = target.open("rb")
        return _chunks(handle, start, end)


def _chunks(handle: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = None if end is None else max(0, end - start)
        while remaining is None or remaining > 0:
            data = handle.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not data:
                return
            if remaining is not None:
                remaining -= len(data)
            yield data
