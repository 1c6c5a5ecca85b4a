"""Streaming files between an HTTP client and a storage, for every route that moves files.

Uploads are the raw request body (no multipart form), read chunk by chunk and written through
a storage ``Writer`` from a worker thread, so neither the event loop blocks on disk or network
nor a file is held whole in memory. Downloads stream the storage's chunks and honour a single
``Range: bytes=...`` (206), which resumable and parallel downloads need.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from shipyard.domain.errors import InvalidInputError, ShipyardError

#: Bytes gathered from the request before each write to storage (one thread hop per MiB).
CHUNK = 1024 * 1024

T = TypeVar("T", covariant=True)


class Upload(Protocol[T]):
    def write(self, data: bytes) -> None: ...

    def commit(self) -> T: ...

    def abort(self) -> None: ...


class RangeNotSatisfiableError(ShipyardError):
    default_code = "range_not_satisfiable"
    status = 416


async def receive_upload(request: Request, upload: Upload[T]) -> T:
    """Copy the request body into ``upload`` and commit it; on any failure drop it.

    The body is handed to a worker thread a batch (``CHUNK`` bytes) at a time, and the next
    batch is received while the thread writes (and hashes) the last one: network and disk
    overlap, and at most two batches are held.
    """
    batch: list[bytes] = []
    size = 0
    writing: asyncio.Future[None] | None = None
    try:
        async for chunk in request.stream():
            batch.append(chunk)
            size += len(chunk)
            if size >= CHUNK:
                if writing is not None:
                    await writing
                # The chunks go as they came: joining them would copy every byte once more.
                writing = asyncio.ensure_future(run_in_threadpool(_write_all, upload, batch))
                batch, size = [], 0
        if writing is not None:
            await writing
            writing = None
        if batch:
            await run_in_threadpool(_write_all, upload, batch)
        return await run_in_threadpool(upload.commit)
    except ClientDisconnect:
        await _drop(upload, writing)
        raise InvalidInputError(
            "the client disconnected before the upload finished", code="upload_incomplete"
        ) from None
    except BaseException:
        await _drop(upload, writing)
        raise


def _write_all(upload: Upload[object], chunks: list[bytes]) -> None:
    for chunk in chunks:
        upload.write(chunk)


async def _drop(upload: Upload[object], writing: asyncio.Future[None] | None) -> None:
    """Abort the upload once a write still running in its thread is over (aborting under it
    would race with it); that write's own error, if any, is moot by now."""
    try:
        if writing is not None:
            await asyncio.wait([writing])
    finally:
        if writing is not None and writing.done() and not writing.cancelled():
            writing.exception()  # retrieved, so asyncio does not log it as never retrieved
        await run_in_threadpool(upload.abort)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The half-open byte range ``[start, end)`` a ``Range`` header asks for, or None for the
    whole file. Several ranges or another unit are served whole (RFC 9110 allows that)."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiableError(f"range {header!r} selects no bytes")
        return max(0, size - length), size
    start = int(first)
    end = size if not last else min(size, int(last) + 1)
    if start >= size or end <= start:
        raise RangeNotSatisfiableError(f"range {header!r} is outside the file's {size} bytes")
    return start, end


def file_response(
    size: int,
    read: Callable[[int, int | None], Iterator[bytes]],
    range_header: str | None,
    *,
    filename: str | None = None,
) -> Response:
    """A streamed download of a file; ``read(start, end)`` opens the storage's chunks."""
    span = parse_range(range_header, size)
    headers = {
        "Accept-Ranges": "bytes",
        # Files are users' bytes: never let a browser run them as a page of this origin.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
    if filename:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
    if span is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(
            read(0, None), media_type="application/octet-stream", headers=headers
        )
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(
        read(start, end), status_code=206, media_type="application/octet-stream", headers=headers
    )
