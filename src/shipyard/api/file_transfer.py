"""Streaming files between an HTTP client and a storage, for every route that moves files.

Uploads are the raw request body (no multipart form), written through a storage ``Writer``
from a thread, so neither the event loop blocks on the disk nor a file is held whole in
memory: a small body in one hop to the thread pool; a big one with a ``Content-Length`` read
by a worker thread straight from the socket when the server offers it (``http_protocol``),
otherwise through a ``BodyPipe`` whose thread writes while the loop receives. The storage
hashes in a thread of its own meanwhile, which lets a big upload use both cores of a small
machine. Downloads stream the storage's
chunks and honour a single ``Range: bytes=...`` (206), which resumable and parallel downloads
need.
"""

from __future__ import annotations

import asyncio
import ctypes
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any, Generic, Protocol, TypeVar, cast
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from shipyard.api.http_protocol import RAW_BODY, RawBody
from shipyard.domain.errors import InvalidInputError, ShipyardError

#: A body smaller than this is gathered and written in one go; a bigger one gets a thread.
INLINE_BYTES = 4 * 1024 * 1024
#: Bytes of a big body received and not yet written, at most (the loop then waits).
PIPE_BYTES = 8 * 1024 * 1024
#: Bytes that wake the writing thread: it writes them in one go rather than waking per piece.
BATCH_BYTES = 1024 * 1024
#: glibc's mallopt parameters: the spare memory kept at the top of the heap, and the size
#: from which a block gets its own mapping (see tune_allocator).
_M_TOP_PAD, _M_MMAP_THRESHOLD = -2, -3
TOP_PAD = 16 * 1024 * 1024
MMAP_THRESHOLD = 4 * 1024 * 1024

T = TypeVar("T", covariant=True)


class Upload(Protocol[T]):
    def write(self, data: bytes) -> None: ...

    def commit(self) -> T: ...

    def abort(self) -> None: ...


def tune_allocator() -> None:
    """Have glibc's malloc keep 16 MiB spare at the top of its heap and serve blocks up to
    4 MiB from it (the server calls this as it starts; calling it again changes nothing).

    A request body reaches the app in pieces of up to 256 KB, each a fresh buffer copied a
    few times on its way through uvicorn. By default glibc gives the top of its heap back to
    the kernel as soon as a few hundred KB of it are free and asks for it again for the next
    piece, so the pages of every piece were faulted in anew: receiving a GiB took 0.9-1.1 s
    of CPU, 0.35-0.45 s with the pad (measured on the benchmark machine). The process keeps
    up to the pad's worth of freed memory instead. Setting any of these fixes glibc's
    otherwise self-adjusting mmap threshold at 128 KiB, which would give every such piece a
    mapping of its own (faulted in anew again): it is set to 4 MiB as well. A no-op where
    there is no mallopt (macOS)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(_M_TOP_PAD, TOP_PAD)


class RangeNotSatisfiableError(ShipyardError):
    default_code = "range_not_satisfiable"
    status = 416


async def receive_upload(request: Request, upload: Upload[T]) -> T:
    """Copy the request body into ``upload`` and commit it; on any failure drop it.

    A small body (under ``INLINE_BYTES``) is gathered and written and committed in one hop
    to a worker thread. A bigger one with a ``Content-Length`` is, after its first piece,
    read from the socket by a worker thread that writes as it reads (``RawBody``). Any
    other big body is handed, piece by piece as it arrives, to a thread of its own
    (``BodyPipe``) that writes while the event loop receives the next pieces; at most
    ``PIPE_BYTES`` wait between the two.
    """
    head: list[bytes] = []
    size = 0
    pipe: BodyPipe[T] | None = None
    take_raw = _raw_body_offer(request)
    try:
        async for chunk in request.stream():
            if pipe is not None:
                if not pipe.put(chunk):
                    await pipe.room()
                continue
            head.append(chunk)
            size += len(chunk)
            # Right after a receive (nothing awaited since): the server's parser holds
            # nothing of the body that the app has not been given.
            if take_raw is not None and (raw := take_raw()) is not None:
                return await run_in_threadpool(_write_raw, upload, head, raw)
            if size >= INLINE_BYTES:
                pipe = BodyPipe(upload, asyncio.get_running_loop())
                for piece in head:
                    pipe.put(piece)
                head = []
        if pipe is None:
            return await run_in_threadpool(_write_and_commit, upload, head)
        return await pipe.finish()
    except ClientDisconnect:
        await _drop(upload, pipe)
        raise InvalidInputError(
            "the client disconnected before the upload finished", code="upload_incomplete"
        ) from None
    except BaseException:
        await _drop(upload, pipe)
        raise


def _raw_body_offer(request: Request) -> Callable[[], RawBody | None] | None:
    """The server's offer to read the rest of a big body from the socket (see
    ``http_protocol``), when the server makes one and the body is big enough to gain."""
    offer = (request.scope.get("extensions") or {}).get(RAW_BODY)
    length = request.headers.get("content-length", "")
    if offer is None or not length.isdigit() or int(length) < INLINE_BYTES:
        return None
    return cast("Callable[[], RawBody | None]", offer)


def _write_raw(upload: Upload[T], head: list[bytes], raw: RawBody) -> T:
    """The body's first pieces, then the rest from the socket, written and committed in
    this (worker) thread; the storage hashes in a thread of its own meanwhile."""
    for chunk in head:
        upload.write(chunk)
    raw.read_into(upload.write)
    return upload.commit()


def _write_and_commit(upload: Upload[T], chunks: list[bytes]) -> T:
    for chunk in chunks:
        upload.write(chunk)
    return upload.commit()


async def _drop(upload: Upload[object], pipe: BodyPipe[object] | None) -> None:
    """Abort the upload once its thread, if any, has stopped writing (aborting under a
    write would race with it); that thread's own error, if any, is moot by now."""
    if pipe is not None:
        await pipe.stop()
    await run_in_threadpool(upload.abort)


class BodyPipe(Generic[T]):
    """Pieces of a request body, written to an upload by a thread of their own.

    The event loop ``put``s pieces as they arrive and the thread writes them in order, so
    receiving, writing and (in the storage's writer) hashing run side by side. A piece is
    handed over with a lock and a notify rather than a hop through the thread pool per
    batch: those hops added 0.15-0.25 s of the event loop's CPU per GiB to the 0.45 s that
    receiving itself takes (measured). ``put`` says when ``PIPE_BYTES`` are waiting; the
    loop then awaits ``room``, which the thread grants once half of that is written.
    """

    def __init__(self, upload: Upload[T], loop: asyncio.AbstractEventLoop) -> None:
        self._upload = upload
        self._loop = loop
        self._changed = threading.Condition()
        self._pieces: deque[bytes] = deque()
        self._waiting = 0  # bytes put and not written yet
        self._closing = False  # no more pieces will come
        self._dropping = False  # stop writing, whatever is left
        self._room: asyncio.Future[None] | None = None
        self._done: asyncio.Future[T] = loop.create_future()
        self._thread = threading.Thread(target=self._run, name="shipyard-upload", daemon=True)
        self._thread.start()

    def put(self, piece: bytes) -> bool:
        """Queue a piece; False when the loop should await ``room`` before the next."""
        with self._changed:
            self._pieces.append(piece)
            self._waiting += len(piece)
            if self._waiting >= BATCH_BYTES:
                self._changed.notify()
            return self._waiting < PIPE_BYTES and not self._done.done()

    async def room(self) -> None:
        """Wait until the thread has caught up; raises the thread's error if it failed (a
        413 or a full disk), so the rest of the body is not received for nothing."""
        room: asyncio.Future[None] | None = None
        with self._changed:
            if not self._done.done() and self._waiting >= PIPE_BYTES // 2:
                room = self._room = self._loop.create_future()
        if room is not None:
            either: list[asyncio.Future[Any]] = [room, self._done]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if self._done.done():
            self._done.result()

    async def finish(self) -> T:
        """Write what is left, commit, and return the upload's result."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        return await self._done

    async def stop(self) -> None:
        """Stop writing and wait for the thread to end (its result or error is dropped)."""
        with self._changed:
            self._closing = self._dropping = True
            self._pieces.clear()
            self._changed.notify()
        await asyncio.wait([self._done])
        if not self._done.cancelled():
            self._done.exception()  # retrieved, so asyncio does not log it as never retrieved

    def _next(self) -> deque[bytes] | None:
        """The pieces waiting, once there are ``BATCH_BYTES`` of them or the body is all in;
        None when there is nothing more to write."""
        with self._changed:
            while self._waiting < BATCH_BYTES and not self._closing:
                self._changed.wait()
            if self._dropping or not self._pieces:
                return None
            pieces, self._pieces = self._pieces, deque()
            return pieces

    def _written(self, size: int) -> None:
        with self._changed:
            self._waiting -= size
            if self._room is not None and self._waiting < PIPE_BYTES // 2:
                room, self._room = self._room, None
                self._tell(_resolve, room, None)

    def _tell(self, callback: Callable[..., None], *args: object) -> None:
        """Run ``callback`` on the event loop, unless the loop is gone (the server stopped
        under the upload; nobody waits for the answer any more)."""
        with suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)

    def _run(self) -> None:
        try:
            while (pieces := self._next()) is not None:
                for piece in pieces:
                    if self._dropping:  # read without the lock: stop soon, not at once
                        break
                    self._upload.write(piece)
                self._written(sum(map(len, pieces)))
            result = None if self._dropping else self._upload.commit()
        except BaseException as exc:
            self._tell(_fail, self._done, exc)
        else:
            self._tell(_resolve, self._done, result)


def _resolve(future: asyncio.Future[Any], result: object) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


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
