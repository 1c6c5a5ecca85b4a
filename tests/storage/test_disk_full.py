"""A full disk, for real: a 1 MiB tmpfs mounted for the test (needs root; skipped otherwise)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.domain.errors import InsufficientStorageError
from shipyard.storage.base import write_all
from shipyard.storage.factory import open_storage
from shipyard.storage.local import TEMP_PREFIX

KIB = 1024


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 1 MiB tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX))


def test_an_upload_larger_than_the_disk_is_refused_and_removed(tiny_disk: Path) -> None:
    storage = open_storage(str(tiny_disk))
    kept = write_all(storage, "keep.bin", [b"k" * (256 * KIB)])
    with pytest.raises(InsufficientStorageError) as caught:
        write_all(storage, "folder/big.bin", (b"b" * (64 * KIB) for _ in range(32)))
    error = caught.value
    assert (error.status, error.code, error.field) == (507, "storage_full", "path")
    assert "folder/big.bin" in error.detail
    assert leftovers(tiny_disk) == []
    assert not storage.exists("folder/big.bin")
    assert storage.stat("keep.bin").size == kept.size
    # The space the failed upload took is free again.
    write_all(storage, "after.bin", [b"a" * (512 * KIB)])


def test_a_writer_cleans_up_after_itself_without_abort(tiny_disk: Path) -> None:
    storage = open_storage(str(tiny_disk))
    writer = storage.writer("big.bin")
    for _ in range(8):
        writer.write(b"w" * (64 * KIB))  # 512 KiB: fits
    with pytest.raises(InsufficientStorageError):
        writer.write(b"w" * (1024 * KIB))
    assert leftovers(tiny_disk) == []  # before any abort() by the caller
    writer.abort()


def test_a_full_disk_at_commit_keeps_nothing(tiny_disk: Path) -> None:
    storage = open_storage(str(tiny_disk))
    # Fill the disk behind the storage's back, so the next small upload fails when flushed.
    fd = os.open(tiny_disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while _fits(fd, b"f" * (4 * KIB)):
            pass
    finally:
        os.close(fd)
    with pytest.raises(InsufficientStorageError):
        write_all(storage, "small.txt", [b"s" * 100])
    assert leftovers(tiny_disk) == []
    assert not storage.exists("small.txt")


def _fits(fd: int, data: bytes) -> bool:
    try:
        os.write(fd, data)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return False
    return True
