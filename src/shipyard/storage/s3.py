"""Storage in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO...), through fsspec's s3fs.

The storage's root is ``s3://bucket/prefix``; a path below it is a key under that prefix.
Object stores have no folders: a folder is the common prefix of the keys below it, so
``ensure_folder`` does nothing and a folder exists while something is inside it. Some servers
(SeaweedFS, consoles that "create a folder") also keep ``folder/`` marker objects; listings
hide them and ``delete_tree`` removes them.

Uploads are buffered up to one part; a small file is then stored with a single PUT on
commit, a larger one streams through s3fs's multipart file (one part per ``part_size``
bytes) and becomes visible only when the multipart upload is completed. ``abort`` aborts the
multipart upload, so the server keeps no parts. Downloads are ranged GETs of
``read_window`` bytes, handed out in chunks of ``CHUNK``.
"""

from __future__ import annotations

import errno
import hashlib
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

import aiohttp
import botocore.exceptions  # type: ignore[import-untyped]
import s3fs  # type: ignore[import-untyped]
from fsspec.exceptions import FSTimeoutError  # type: ignore[import-untyped]

from shipyard.domain.errors import (
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    StorageAccessError,
    UnavailableError,
)
from shipyard.storage.base import CHUNK, FileInfo, Written, check_range
from shipyard.storage.paths import MAX_PATH_BYTES, clean_relative
from shipyard.storage.s3_options import S3Options

#: Errors meaning "the endpoint did not answer in time or at all": retrying later may help.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    botocore.exceptions.ConnectionError,  # refused, DNS, connect timeout, proxy
    botocore.exceptions.HTTPClientError,  # read timeout, connection closed mid-answer
    aiohttp.ClientError,
    FSTimeoutError,
    TimeoutError,
    ConnectionError,
)
#: Credential problems botocore finds before sending anything.
_NO_CREDENTIALS = (
    botocore.exceptions.NoCredentialsError,
    botocore.exceptions.PartialCredentialsError,
)


def filesystem(options: S3Options) -> Any:
    """An s3fs file system for these options (s3fs caches one instance per distinct options)."""
    fs = s3fs.S3FileSystem(
        anon=options.anonymous,
        key=None if options.anonymous else options.access_key_id,
        secret=None if options.anonymous else options.secret_access_key,
        token=None if options.anonymous else options.session_token,
        endpoint_url=options.endpoint_url,
        client_kwargs={"region_name": options.region} if options.region else {},
        config_kwargs={
            "connect_timeout": options.connect_timeout,
            "read_timeout": options.read_timeout,
            "retries": {"max_attempts": options.attempts, "mode": "standard"},
            # botocore >= 1.36 adds CRC checksums to every upload by default; many
            # S3-compatible servers reject or mishandle them, and they cost a pass over
            # every part. Only send them where an operation requires one.
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        },
        # Several server processes share a bucket: a cached listing would go stale.
        use_listings_cache=False,
    )
    # s3fs retries on top of botocore; without this an unreachable endpoint takes 5 rounds.
    fs.retries = options.attempts
    return fs


class S3Storage:
    def __init__(
        self, bucket: str, prefix: str, options: S3Options, *, field: str = "storage.uri"
    ) -> None:
        self.bucket = bucket
        self.prefix = clean_relative(prefix, field=field)
        self.options = options
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._root = f"{bucket}/{self.prefix}" if self.prefix else bucket
        self._fs = filesystem(options)

    # -- keys ---------------------------------------------------------------------------------

    def _key(self, path: str) -> str:
        return self._key_of(clean_relative(path), path)

    def _key_of(self, clean: str, path: str) -> str:
        if len(posixpath.join(self.prefix, clean).encode()) > MAX_PATH_BYTES:
            raise InvalidInputError(
                f"{path[:64]!r}... is too long for a key under {self.uri}",
                code="invalid_path",
                field="path",
            )
        return f"{self._root}/{clean}" if clean else self._root

    def _relative(self, name: str) -> str:
        return name[len(self._root) + 1 :] if name.startswith(self._root + "/") else ""

    def _info(self, entry: dict[str, Any]) -> FileInfo:
        is_dir = entry.get("type") == "directory"
        modified = entry.get("LastModified")
        return FileInfo(
            path=self._relative(entry["name"].rstrip("/")),
            is_dir=is_dir,
            size=0 if is_dir else int(entry.get("size", 0)),
            modified=modified if isinstance(modified, datetime) else None,
        )

    @contextmanager
    def errors(self, path: str) -> Iterator[None]:
        """Turn s3fs's and botocore's exceptions into Shipyard errors that name the endpoint
        and the bucket, never the credentials."""
        try:
            yield
        except FileNotFoundError as exc:
            if _s3_code(exc) == "NoSuchBucket":
                raise NotFoundError(
                    f"bucket {self.bucket!r} does not exist at {self.options.endpoint_name}",
                    code="bucket_not_found",
                ) from exc
            raise NotFoundError(f"nothing at {path!r}", code="file_not_found") from exc
        except (PermissionError, *_NO_CREDENTIALS) as exc:
            raise StorageAccessError(
                f"{self.options.endpoint_name} refused access to bucket {self.bucket!r} "
                f"({self._reason(exc)}); check the storage's credentials and permissions",
                code="storage_access_denied",
            ) from exc
        except _UNREACHABLE as exc:
            raise self._unavailable(exc) from exc
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise InvalidInputError(
                    f"{path[:64]!r} is too long for this storage", code="invalid_path", field="path"
                ) from exc
            if exc.errno == errno.EMSGSIZE:
                raise PayloadTooLargeError(
                    f"{path!r} is larger than the storage accepts", code="storage_object_too_large"
                ) from exc
            if (_s3_status(exc) or 0) >= 500:
                raise self._unavailable(exc) from exc
            raise

    def _unavailable(self, exc: BaseException) -> UnavailableError:
        return UnavailableError(
            f"the S3 storage at {self.options.endpoint_name} (bucket {self.bucket!r}) does not "
            f"answer: {self._reason(exc)}",
            code="storage_unavailable",
        )

    def _reason(self, exc: BaseException) -> str:
        reason = str(exc) or type(exc).__name__
        # Server messages never quote the secret, but a message is no place to find out.
        for secret in (self.options.secret_access_key, self.options.session_token):
            # A very short "secret" would blank out ordinary words; those are not real keys
            # (AWS-style secrets are 40 characters) and no server quotes them anyway.
            if secret and len(secret) >= 8:
                reason = reason.replace(secret, "***")
        return reason[:300]

    # -- the Storage interface ----------------------------------------------------------------

    def ensure_folder(self, path: str) -> None:
        # Object stores have no folders; the path is still checked like every other.
        self._key(path)

    def delete_tree(self, path: str) -> None:
        key = self._key(path)
        if key == self._root:
            raise InvalidInputError(
                "refusing to delete the storage root itself", code="invalid_path", field="path"
            )
        with self.errors(path):
            # s3fs deletes the key itself and the keys under "key/", never "key-other/...".
            with suppress(FileNotFoundError):
                self._fs.rm(key, recursive=True)
            self._remove_markers(key)

    def _remove_markers(self, key: str) -> None:
        """Delete ``folder/`` marker objects left under ``key`` (deepest first)."""
        folders: list[str] = []
        pending = [key]
        while pending:
            folder = pending.pop()
            folders.append(folder)
            try:
                entries = self._fs.ls(folder, detail=True)
            except FileNotFoundError:
                continue
            pending.extend(
                e["name"].rstrip("/")
                for e in entries
                if e.get("type") == "directory" and e["name"].rstrip("/") != folder
            )
        bucket = self.bucket
        for folder in sorted(folders, key=len, reverse=True):
            marker = folder[len(bucket) + 1 :] + "/"
            self._fs.call_s3("delete_object", Bucket=bucket, Key=marker)

    def delete_file(self, path: str) -> None:
        key = self._key(path)
        with self.errors(path):
            info = self._fs.info(key) if key != self._root else {"type": "directory"}
            if info.get("type") != "file":
                raise NotFoundError(f"no file at {path!r}", code="file_not_found")
            self._fs.rm_file(key)

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except NotFoundError:
            return False
        return True

    def stat(self, path: str) -> FileInfo:
        key = self._key(path)
        if key == self._root:
            # The root of an object store is always there: it is where keys would go.
            return FileInfo(path="", is_dir=True)
        with self.errors(path):
            return self._info(self._fs.info(key))

    def list(self, path: str = "", *, recursive: bool = False) -> list[FileInfo]:
        key = self._key(path)
        try:
            with self.errors(path):
                if recursive:
                    entries = list(self._fs.find(key, detail=True).values())
                else:
                    entries = self._fs.ls(key, detail=True)
        except NotFoundError as exc:
            if exc.code == "bucket_not_found":
                raise
            return []
        found = [
            self._info(entry)
            for entry in entries
            # ls of a file lists the file itself; "folder/" markers are no entries of their own.
            if entry["name"].startswith(key + "/") and not entry["name"].endswith("/")
        ]
        if recursive:
            found = [info for info in found if not info.is_dir]
        return sorted(found, key=lambda info: (info.path, info.is_dir))

    def writer(self, path: str) -> S3Writer:
        clean = clean_relative(path)
        if not clean:
            raise InvalidInputError("a file path is required", code="invalid_path", field="path")
        # Cleaned once, here; the key (or file) is built from the clean path.
        return S3Writer(self, self._key_of(clean, path), clean)

    def read(self, path: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        check_range(start, end)
        key = self._key(path)
        with self.errors(path):
            info = self._fs.info(key) if key != self._root else {"type": "directory"}
        if info.get("type") != "file":
            raise NotFoundError(f"no file at {path!r}", code="file_not_found")
        size = int(info["size"])
        stop = size if end is None else min(end, size)
        return self._ranges(key, path, start, stop)

    def _ranges(self, key: str, path: str, start: int, stop: int) -> Iterator[bytes]:
        window = self.options.read_window
        for offset in range(start, stop, window):
            with self.errors(path):
                data = self._fs.cat_file(key, start=offset, end=min(offset + window, stop))
            view = memoryview(data)
            for at in range(0, len(view), CHUNK):
                yield bytes(view[at : at + CHUNK])


class S3Writer:
    """An upload to one key. Bytes are held until a part is full; the first full part starts
    a multipart upload, and nothing is visible at the key before ``commit``."""

    def __init__(self, storage: S3Storage, key: str, path: str) -> None:
        self.path = path
        self.size = 0
        self._storage = storage
        self._key = key
        self._hash = hashlib.sha256()
        # The caller's own chunks, kept as they came (no copy) until a part is full.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._file: Any = None
        self._done = False

    def write(self, data: bytes) -> None:
        if self._done:
            raise RuntimeError("the upload is already finished")
        try:
            with self._storage.errors(self.path):
                if self._file is not None:
                    self._file.write(data)
                else:
                    # bytes() copies only what is not already immutable bytes (a reused
                    # bytearray would otherwise change under the pending part).
                    self._pending.append(bytes(data))
                    self._pending_size += len(data)
                    if self._pending_size >= self._storage.options.part_size:
                        self._start_multipart()
        except BaseException:
            self.abort()
            raise
        self._hash.update(data)
        self.size += len(data)

    def _start_multipart(self) -> None:
        # autocommit=False: closing the file uploads the last part but completes nothing, so
        # an upload dropped without commit (even by the garbage collector) never appears.
        self._file = self._storage._fs.open(
            self._key, "wb", block_size=self._storage.options.part_size, autocommit=False
        )
        # Handed over one chunk at a time, so the chunks are freed as the part fills up.
        self._pending.reverse()
        while self._pending:
            self._file.write(self._pending.pop())
        self._pending_size = 0

    def commit(self) -> Written:
        if self._done:
            raise RuntimeError("the upload is already finished")
        try:
            with self._storage.errors(self.path):
                if self._file is None:
                    self._storage._fs.pipe_file(self._key, b"".join(self._pending))
                else:
                    self._file.close()
                    self._file.commit()
                    self._file = None
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._pending = []
        return Written(path=self.path, size=self.size, sha256=self._hash.hexdigest())

    def abort(self) -> None:
        self._done = True
        self._pending = []
        if self._file is not None:
            file, self._file = self._file, None
            # Aborting the multipart upload frees its parts on the server; a failure here
            # leaves only invisible parts, which a bucket lifecycle rule expires.
            with suppress(Exception):
                file.discard()
            # discard() leaves the file "open"; marked closed, its finaliser uploads nothing.
            file.closed = True


def _s3_code(exc: BaseException) -> str | None:
    cause = exc.__cause__
    if isinstance(cause, botocore.exceptions.ClientError):
        return str(cause.response.get("Error", {}).get("Code") or "") or None
    return None


def _s3_status(exc: BaseException) -> int | None:
    cause = exc.__cause__
    if isinstance(cause, botocore.exceptions.ClientError):
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None
