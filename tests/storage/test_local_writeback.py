"""A big local upload hands its bytes to the disk as it goes (the fsync at commit then has
little left) and is hashed in a thread beside the writer: the file and its sha256 are still
exactly what was written, and an abort still leaves nothing behind, thread included."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from shipyard.storage.local import TEMP_PREFIX, WRITEBACK_BYTES, LocalStorage

PIECE = 1024 * 1024


def hashing_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "shipyard-sha256"]


def pieces(total: int) -> list[bytes]:
    block = os.urandom(PIECE)
    return [i.to_bytes(8, "little") + block[8:] for i in range(total // PIECE)]


def test_a_file_written_back_as_it_grows_is_whole(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    data = pieces(3 * WRITEBACK_BYTES + 2 * PIECE)  # several rounds of writeback, and a rest
    writer = storage.writer("big/file.bin")
    for piece in data:
        writer.write(piece)
    written = writer.commit()
    assert hashing_threads() == []
    expected = b"".join(data)
    assert written.size == len(expected)
    assert written.sha256 == hashlib.sha256(expected).hexdigest()
    assert (tmp_path / "big" / "file.bin").read_bytes() == expected
    assert (
        b"".join(storage.read("big/file.bin", start=WRITEBACK_BYTES - 5))
        == expected[WRITEBACK_BYTES - 5 :]
    )


def test_an_abort_after_writeback_leaves_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    writer = storage.writer("big.bin")
    for piece in pieces(WRITEBACK_BYTES + PIECE):
        writer.write(piece)
    writer.abort()
    assert hashing_threads() == []
    assert [p.name for p in tmp_path.rglob("*")] == []
    assert not any(p.name.startswith(TEMP_PREFIX) for p in tmp_path.iterdir())
