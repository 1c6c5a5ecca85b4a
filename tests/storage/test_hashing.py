"""A stream's sha256, inline for small files and in a thread of its own for big ones: the same
digest either way, in order, with at most a bounded amount of data waiting for the thread."""

from __future__ import annotations

import hashlib
import itertools
import os
import threading

import pytest

from shipyard.storage.hashing import StreamHash


def hashing_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "shipyard-sha256"]


def test_a_small_stream_is_hashed_inline() -> None:
    stream = StreamHash(background_after=1024)
    stream.update(b"a" * 1000)
    stream.update(b"b" * 24)
    assert not stream.in_background
    assert stream.hexdigest() == hashlib.sha256(b"a" * 1000 + b"b" * 24).hexdigest()


def test_a_big_stream_is_hashed_in_order_by_a_thread_that_then_ends() -> None:
    data = os.urandom(3 * 1024 * 1024)
    # A small bound, so the writer waits for the thread again and again.
    stream = StreamHash(background_after=64 * 1024, max_pending=128 * 1024)
    sizes = itertools.cycle([1, 7, 4096, 65_536, 300_000])
    at, seen_thread = 0, False
    while at < len(data):
        size = next(sizes)
        stream.update(data[at : at + size])
        at += size
        seen_thread = seen_thread or stream.in_background
    assert seen_thread
    assert stream.hexdigest() == hashlib.sha256(data).hexdigest()
    assert stream.hexdigest() == hashlib.sha256(data).hexdigest()  # asked twice: the same
    assert not stream.in_background
    assert hashing_threads() == []


def test_a_buffer_the_writer_reuses_is_hashed_as_it_was_given() -> None:
    stream = StreamHash(background_after=0)
    buffer = bytearray(b"x" * 10_000)
    stream.update(buffer)
    buffer[:] = b"y" * 10_000  # changed before the thread may have read it
    stream.update(memoryview(buffer))
    assert stream.in_background
    assert stream.hexdigest() == hashlib.sha256(b"x" * 10_000 + b"y" * 10_000).hexdigest()


def test_closing_drops_what_is_left_and_ends_the_thread() -> None:
    stream = StreamHash(background_after=0)
    for _ in range(16):
        stream.update(os.urandom(256 * 1024))
    stream.close()
    assert not stream.in_background
    assert hashing_threads() == []
    with pytest.raises(RuntimeError):
        stream.update(b"more")
