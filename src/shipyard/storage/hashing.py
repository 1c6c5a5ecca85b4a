"""The sha256 of an upload, computed beside the thread that writes it.

Hashing is the biggest single cost of storing a big upload (0.5-0.9 s of CPU per GiB on the
benchmark machine, more than writing it into the page cache). Done in the writing thread, it
makes that thread the upload's bottleneck; hashlib releases the GIL for buffers over 2 KiB, so
a second thread can hash while the first writes and the event loop receives, and on two cores
a big upload takes about as long as its slowest stage instead of the sum of them.

Small files are hashed inline: starting a thread costs more than hashing them, and a folder
of 10,000 small files must not start 10,000 threads.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque

#: Bytes hashed inline before a file counts as big and gets a hashing thread.
BACKGROUND_AFTER = 4 * 1024 * 1024
#: Bytes handed to the hashing thread and not yet hashed, at most: past this ``update``
#: waits, so a slow hash holds the writer back instead of piling the file up in memory.
MAX_PENDING = 8 * 1024 * 1024


class StreamHash:
    """A sha256 fed in order by one writer thread; ``hexdigest`` waits for the last byte."""

    def __init__(
        self, *, background_after: int = BACKGROUND_AFTER, max_pending: int = MAX_PENDING
    ) -> None:
        self._hash = hashlib.sha256()
        self._background_after = background_after
        self._max_pending = max_pending
        self._inline = 0  # bytes hashed inline so far
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0  # queued or being hashed
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._dropping = False  # stopping without hashing the rest
        self._digest: str | None = None
        self._error: BaseException | None = None  # the thread's, raised to the writer
        self._writer_waits = False  # for room to queue (notified only then)
        self._hasher_waits = False  # for a chunk

    @property
    def in_background(self) -> bool:
        return self._thread is not None

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._digest is not None or self._stopping:
            raise RuntimeError("the hash is already finished")
        if self._thread is None:
            if self._inline + len(data) <= self._background_after:
                self._inline += len(data)
                self._hash.update(data)
                return
            self._thread = threading.Thread(target=self._run, name="shipyard-sha256", daemon=True)
            self._thread.start()
        # The thread reads the bytes later: a buffer the caller may reuse is copied first.
        chunk = data if isinstance(data, bytes) else bytes(data)
        with self._changed:
            if self._pending_bytes >= self._max_pending:
                # Full: wait until half is hashed, not for the next chunk, so the two threads
                # do not wake each other for every chunk.
                self._writer_waits = True
                while self._pending_bytes > self._max_pending // 2 and self._error is None:
                    self._changed.wait()
                self._writer_waits = False
            if self._error is not None:
                raise self._error
            self._pending.append(chunk)
            self._pending_bytes += len(chunk)
            if self._hasher_waits:
                self._changed.notify_all()

    def hexdigest(self) -> str:
        """The sha256 of every byte given (hex), once the thread has hashed them all."""
        if self._digest is None:
            self._stop(drain=True)
            if self._error is not None:
                raise self._error
            self._digest = self._hash.hexdigest()
        return self._digest

    def close(self) -> None:
        """Drop whatever is not hashed yet and end the thread (an aborted upload)."""
        self._stop(drain=False)

    def _stop(self, *, drain: bool) -> None:
        thread = self._thread
        if thread is None:
            if not drain:
                self._stopping = True
            return
        with self._changed:
            self._stopping = True
            if not drain:
                self._dropping = True
                self._pending.clear()
            self._changed.notify_all()
        thread.join()
        self._thread = None

    def _run(self) -> None:
        while True:
            with self._changed:
                self._hasher_waits = True
                while not self._pending and not self._stopping:
                    self._changed.wait()
                self._hasher_waits = False
                if not self._pending:
                    return  # told to stop and nothing is left
                chunks, self._pending = self._pending, deque()  # all of them, one lock
            for chunk in chunks:
                try:
                    self._hash.update(chunk)  # outside the lock, without the GIL
                except BaseException as exc:  # (MemoryError): the writer must not wait forever
                    with self._changed:
                        self._error = exc
                        self._changed.notify_all()
                    return
                with self._changed:
                    if self._dropping:
                        return
                    self._pending_bytes -= len(chunk)
                    if self._writer_waits and self._pending_bytes <= self._max_pending // 2:
                        self._changed.notify_all()
