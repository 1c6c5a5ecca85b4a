"""One suite for the storage interface, run against every implementation: a local folder and
a bucket on a real S3-compatible server (SeaweedFS, started once per session).

What differs by nature (S3 has no empty folders, local folders have symlinks) is tested at
the end of the module, for the one implementation it concerns.
"""

from __future__ import annotations

import hashlib
import os
import random
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard.domain.errors import (
    InvalidInputError,
    NotFoundError,
    StorageAccessError,
    UnavailableError,
)
from shipyard.storage.base import CHUNK, Storage, write_all
from shipyard.storage.factory import open_storage
from shipyard.storage.local import TEMP_PREFIX
from shipyard.storage.s3_options import MIN_PART_SIZE
from tests.conftest import free_port
from tests.s3server import S3Server

#: Parts as small as S3 allows, so a few MiB already make a multipart upload.
PART = MIN_PART_SIZE


@dataclass
class Case:
    kind: str
    storage: Storage
    root: Path | None = None  # local: the folder
    bucket: str | None = None  # s3: the bucket (the storage sits under PREFIX in it)
    server: S3Server | None = None


PREFIX = "some/prefix"


@pytest.fixture(params=["local", "s3"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    if request.param == "local":
        root = tmp_path / "root"
        root.mkdir()
        return Case("local", open_storage(str(root)), root=root)
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = server.new_bucket()
    options = server.options(part_size=PART)
    storage = open_storage(f"s3://{bucket}/{PREFIX}", s3=options)
    return Case("s3", storage, bucket=bucket, server=server)


@pytest.fixture
def storage(case: Case) -> Storage:
    return case.storage


def read_all(storage: Storage, path: str, **kw: int | None) -> bytes:
    return b"".join(storage.read(path, **kw))  # type: ignore[arg-type]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pending_uploads(case: Case) -> list[object]:
    """Multipart uploads the server still holds (S3) or temporary files left (local)."""
    if case.kind == "s3":
        assert case.server is not None
        assert case.bucket is not None
        return list(case.server.filesystem().list_multipart_uploads(case.bucket))
    assert case.root is not None
    return [p for p in case.root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def chunks(seed: int, count: int, size: int = CHUNK) -> Iterator[bytes]:
    """Deterministic pseudo-random chunks, generated one at a time."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    for _ in range(count):
        yield rng.randbytes(size)


# -- writing ------------------------------------------------------------------------------


def test_roundtrip_records_size_and_sha256(storage: Storage) -> None:
    data = b"hello, storage\n" * 1000
    written = write_all(storage, "a/b/hello.txt", [data[:100], data[100:]])
    assert (written.path, written.size, written.sha256) == ("a/b/hello.txt", len(data), sha(data))
    assert read_all(storage, "a/b/hello.txt") == data
    info = storage.stat("a/b/hello.txt")
    assert (info.path, info.is_dir, info.size) == ("a/b/hello.txt", False, len(data))
    assert info.modified is not None


def test_empty_file(storage: Storage) -> None:
    written = write_all(storage, "empty", [])
    assert (written.size, written.sha256) == (0, sha(b""))
    assert read_all(storage, "empty") == b""
    assert storage.stat("empty").size == 0


@pytest.mark.parametrize("size", [10, 2 * PART + 7], ids=["small", "multipart"])
def test_nothing_is_visible_before_commit(case: Case, size: int) -> None:
    storage = case.storage
    writer = storage.writer("dir/file.bin")
    for piece in chunks(1, size // CHUNK):
        writer.write(piece)
    writer.write(b"x" * (size % CHUNK))
    assert not storage.exists("dir/file.bin")
    assert storage.list("dir") == []
    with pytest.raises(NotFoundError):
        storage.stat("dir/file.bin")
    written = writer.commit()
    assert written.size == size
    assert storage.stat("dir/file.bin").size == size
    assert pending_uploads(case) == []


@pytest.mark.parametrize("size", [10, 2 * PART + 7], ids=["small", "multipart"])
def test_abort_leaves_nothing(case: Case, size: int) -> None:
    storage = case.storage
    writer = storage.writer("dir/file.bin")
    writer.write(b"y" * size)
    if size > PART:
        assert pending_uploads(case) != [], "a multipart upload is under way"
    writer.abort()
    writer.abort()  # twice is fine
    assert not storage.exists("dir/file.bin")
    assert storage.list("", recursive=True) == []
    assert pending_uploads(case) == []
    with pytest.raises(RuntimeError):
        writer.write(b"more")


def test_write_all_aborts_when_the_source_fails(case: Case) -> None:
    def failing() -> Iterator[bytes]:
        yield b"z" * (PART + 1)
        raise OSError("the client went away")

    with pytest.raises(OSError, match="went away"):
        write_all(case.storage, "broken", failing())
    assert not case.storage.exists("broken")
    assert pending_uploads(case) == []


def test_overwrite_replaces_the_file(storage: Storage) -> None:
    write_all(storage, "f.txt", [b"first version, longer"])
    written = write_all(storage, "f.txt", [b"second"])
    assert read_all(storage, "f.txt") == b"second"
    assert storage.stat("f.txt").size == written.size == 6


def test_writer_needs_a_file_path(storage: Storage) -> None:
    for path in ("", ".", "/", "a/.."):
        with pytest.raises(InvalidInputError) as caught:
            storage.writer(path)
        assert caught.value.code == "invalid_path"


def test_ensure_folder_then_write_into_it(storage: Storage) -> None:
    storage.ensure_folder("new/folder")
    write_all(storage, "new/folder/x", [b"1"])
    assert [i.path for i in storage.list("new/folder")] == ["new/folder/x"]


def test_names_with_spaces_and_unicode(storage: Storage) -> None:
    path = "données/a file #1 (copy) 100%.txt"
    written = write_all(storage, path, [b"ok"])
    assert written.path == path
    assert read_all(storage, path) == b"ok"
    assert [i.path for i in storage.list("données")] == [path]


def test_the_written_path_is_where_the_file_is(storage: Storage) -> None:
    # Percent-encoding is undone fully ("%2541" → "%41" → "A"); the writer reports the result.
    written = write_all(storage, "x%2541", [b"1"])
    assert storage.stat(written.path).size == 1
    assert [i.path for i in storage.list("")] == [written.path]


# -- reading ------------------------------------------------------------------------------

DATA = bytes(range(256)) * 40  # 10,240 bytes


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, DATA),
        (100, None, DATA[100:]),
        (100, 200, DATA[100:200]),
        (0, 1, DATA[:1]),
        (10_000, 99_999, DATA[10_000:]),  # end past the size is clipped
        (50, 50, b""),  # empty range
        (60, 50, b""),  # end before start: empty too
        (len(DATA), None, b""),  # starting at the end
        (99_999, None, b""),  # starting past the end
    ],
)
def test_ranged_reads(storage: Storage, start: int, end: int | None, expected: bytes) -> None:
    write_all(storage, "data.bin", [DATA])
    assert read_all(storage, "data.bin", start=start, end=end) == expected


def test_negative_ranges_are_refused(storage: Storage) -> None:
    write_all(storage, "data.bin", [DATA])
    with pytest.raises(InvalidInputError) as caught:
        storage.read("data.bin", start=-1)
    assert (caught.value.code, caught.value.field) == ("invalid_range", "start")


def test_missing_file_raises_at_the_call(storage: Storage) -> None:
    with pytest.raises(NotFoundError):
        storage.read("nope.txt")  # not at the first chunk: no iteration here
    storage.ensure_folder("folder")
    write_all(storage, "folder/inside", [b"1"])
    with pytest.raises(NotFoundError):
        storage.read("folder")  # a folder is no file


def test_a_large_file_streams_in_bounded_memory(case: Case) -> None:
    storage = case.storage
    count = 48  # MiB: ten 5 MiB parts on S3; the server's memory grows with neither
    # Warm up first, so what the client loads once (botocore's service model) is not counted.
    write_all(storage, "warm-up", [b"w" * (PART + 1)])
    read_all(storage, "warm-up")
    expected = hashlib.sha256()
    tracemalloc.start()
    try:
        writer = storage.writer("big.bin")
        for piece in chunks(7, count):
            expected.update(piece)
            writer.write(piece)
        written = writer.commit()
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got = hashlib.sha256()
        sizes = []
        for piece in storage.read("big.bin"):
            got.update(piece)
            sizes.append(len(piece))
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (written.size, written.sha256) == (count * CHUNK, expected.hexdigest())
    assert got.hexdigest() == expected.hexdigest()
    assert max(sizes) <= CHUNK
    assert sum(sizes) == count * CHUNK
    # The file never sits whole in memory: a few parts (upload) or windows (download) at most.
    assert write_peak < count * CHUNK // 2, f"upload peaked at {write_peak:,} bytes"
    assert read_peak < count * CHUNK // 3, f"download peaked at {read_peak:,} bytes"
    assert pending_uploads(case) == []


# -- listing and stat ---------------------------------------------------------------------


def _tree(storage: Storage) -> None:
    for path in ("top.txt", "a/one.txt", "a/two.txt", "a/b/three.txt", "a/b/c/four.txt", "z/5"):
        write_all(storage, path, [path.encode()])


def test_list_direct_children(storage: Storage) -> None:
    _tree(storage)
    assert [(i.path, i.is_dir) for i in storage.list("")] == [
        ("a", True),
        ("top.txt", False),
        ("z", True),
    ]
    listed = storage.list("a")
    assert [(i.path, i.is_dir) for i in listed] == [
        ("a/b", True),
        ("a/one.txt", False),
        ("a/two.txt", False),
    ]
    assert {i.path: i.size for i in listed if not i.is_dir} == {"a/one.txt": 9, "a/two.txt": 9}
    assert [i.path for i in storage.list("a/b/")] == ["a/b/c", "a/b/three.txt"]


def test_list_recursive_gives_files_only(storage: Storage) -> None:
    _tree(storage)
    assert [i.path for i in storage.list("a", recursive=True)] == [
        "a/b/c/four.txt",
        "a/b/three.txt",
        "a/one.txt",
        "a/two.txt",
    ]
    everything = storage.list("", recursive=True)
    assert len(everything) == 6
    assert not any(i.is_dir for i in everything)


def test_list_of_a_missing_folder_or_a_file_is_empty(storage: Storage) -> None:
    _tree(storage)
    assert storage.list("missing") == []
    assert storage.list("missing", recursive=True) == []
    assert storage.list("top.txt") == []
    assert storage.list("a/on") == [], "a prefix of a name is no folder"


def test_stat_of_file_folder_and_missing(storage: Storage) -> None:
    _tree(storage)
    file = storage.stat("a/one.txt")
    assert (file.path, file.is_dir, file.size) == ("a/one.txt", False, 9)
    folder = storage.stat("a/b")
    assert (folder.path, folder.is_dir, folder.size) == ("a/b", True, 0)
    assert storage.stat("").is_dir
    with pytest.raises(NotFoundError):
        storage.stat("a/missing")
    with pytest.raises(NotFoundError):
        storage.stat("a/on")
    assert storage.exists("a/b")
    assert storage.exists("a/one.txt")
    assert not storage.exists("a/missing")


# -- deleting -----------------------------------------------------------------------------


def test_delete_file(storage: Storage) -> None:
    _tree(storage)
    storage.delete_file("a/one.txt")
    assert not storage.exists("a/one.txt")
    assert storage.exists("a/two.txt")
    with pytest.raises(NotFoundError):
        storage.delete_file("a/one.txt")
    with pytest.raises(NotFoundError):
        storage.delete_file("a/b")  # a folder is no file


def test_delete_tree(storage: Storage) -> None:
    _tree(storage)
    write_all(storage, "ab/keep", [b"a sibling whose name starts like the folder"])
    storage.delete_tree("a")
    assert not storage.exists("a")
    assert storage.list("a", recursive=True) == []
    assert [i.path for i in storage.list("")] == ["ab", "top.txt", "z"]
    assert read_all(storage, "ab/keep").startswith(b"a sibling")
    storage.delete_tree("a")  # already gone: fine
    storage.delete_tree("top.txt")  # a file goes too
    assert not storage.exists("top.txt")
    with pytest.raises(InvalidInputError):
        storage.delete_tree("")


# -- paths from clients -------------------------------------------------------------------

BAD_PATHS = [
    "..",
    "../x",
    "a/../../b",
    "a/..",
    "%2e%2e/x",
    "%2E%2E%2Fx",
    "%252e%252e/x",
    "%25252e%25252e/x",
    "/etc/passwd",
    "%2Fetc/passwd",
    "..\\x",
    "a\\b",
    "a\x00b",
    "a%00b",
    "line\nbreak",
    "x" * 256,
    "/".join(["abcdefghij"] * 100),  # 1,099 characters
    "é" * 128,  # 256 bytes in UTF-8
]


@pytest.mark.parametrize("bad", BAD_PATHS, ids=range(len(BAD_PATHS)))
def test_untrusted_paths_are_refused(case: Case, tmp_path: Path, bad: str) -> None:
    storage = case.storage
    operations = [
        lambda: storage.writer(bad),
        lambda: storage.read(bad),
        lambda: storage.stat(bad),
        lambda: storage.exists(bad),
        lambda: storage.list(bad),
        lambda: storage.list(bad, recursive=True),
        lambda: storage.delete_file(bad),
        lambda: storage.delete_tree(bad),
        lambda: storage.ensure_folder(bad),
    ]
    for operation in operations:
        with pytest.raises(InvalidInputError) as caught:
            operation()
        assert (caught.value.code, caught.value.field) == ("invalid_path", "path")
    assert sorted(os.listdir(tmp_path)) == (["root"] if case.kind == "local" else [])
    assert storage.list("", recursive=True) == []


# -- what only one implementation has -----------------------------------------------------


def test_local_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    (root / "link").symlink_to(outside)
    (root / "file-link").symlink_to(outside / "secret.txt")
    storage = open_storage(root.as_uri())
    for path in ("link/secret.txt", "file-link"):
        for operation in (storage.read, storage.stat, storage.writer, storage.delete_file):
            with pytest.raises(InvalidInputError) as caught:
                operation(path)
            assert caught.value.code == "invalid_path"
    assert (outside / "secret.txt").read_text() == "not yours"


def test_local_writes_under_a_file_are_refused(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path))
    write_all(storage, "file", [b"1"])
    for path in ("file/child", "file/deeper/child"):
        with pytest.raises(InvalidInputError) as caught:
            storage.writer(path)
        assert caught.value.code == "path_is_file"
    storage.ensure_folder("folder")
    write_all(storage, "folder/x", [b"1"])
    with pytest.raises(InvalidInputError) as caught:
        write_all(storage, "folder", [b"2"])
    assert caught.value.code == "path_is_folder"
    assert sorted(os.listdir(tmp_path)) == ["file", "folder"]


def test_s3_wrong_credentials_are_a_clear_4xx(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    good = open_storage(f"s3://{bucket}", s3=s3_server.options())
    write_all(good, "x", [b"1"])
    wrong_secret = "not-the-secret-" + "q" * 20
    bad = open_storage(
        f"s3://{bucket}", s3=s3_server.options(secret_access_key=wrong_secret, attempts=1)
    )
    for operation in (
        lambda: bad.stat("x"),
        lambda: bad.read("x"),
        lambda: bad.list(""),
        lambda: write_all(bad, "y", [b"2"]),
    ):
        with pytest.raises(StorageAccessError) as caught:
            operation()
        error = caught.value
        assert (error.status, error.code) == (403, "storage_access_denied")
        assert s3_server.endpoint_url in error.detail
        assert bucket in error.detail
        assert wrong_secret not in str(error)
        assert s3_server.secret_access_key not in str(error)
    assert not good.exists("y")


def test_s3_unknown_access_key_is_a_clear_4xx(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    bad = open_storage(f"s3://{bucket}", s3=s3_server.options(access_key_id="AKNOBODY"))
    with pytest.raises(StorageAccessError):
        bad.list("")


def test_s3_endpoint_down_is_unavailable(s3_server: S3Server) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    options = s3_server.options(endpoint_url=endpoint, connect_timeout=1.0, attempts=1)
    storage = open_storage("s3://some-bucket/p", s3=options)
    for operation in (
        lambda: storage.stat("x"),
        lambda: storage.read("x"),
        lambda: storage.list(""),
        lambda: storage.delete_tree("x"),
        lambda: write_all(storage, "y", [b"2"]),
    ):
        with pytest.raises(UnavailableError) as caught:
            operation()
        error = caught.value
        assert (error.status, error.code) == (503, "storage_unavailable")
        assert endpoint in error.detail
        assert "some-bucket" in error.detail
        assert s3_server.secret_access_key not in str(error)


def test_s3_paths_are_checked_before_any_request(s3_server: S3Server) -> None:
    # The endpoint is down: reaching it would be an UnavailableError, not an invalid path.
    options = s3_server.options(endpoint_url=f"http://127.0.0.1:{free_port()}", attempts=1)
    storage = open_storage("s3://some-bucket", s3=options)
    for bad in ("../x", "%252e%252e/x", "/etc/passwd"):
        with pytest.raises(InvalidInputError):
            storage.read(bad)
        with pytest.raises(InvalidInputError):
            write_all(storage, bad, [b"1"])


def test_s3_missing_bucket(s3_server: S3Server) -> None:
    storage = open_storage("s3://no-such-bucket-here", s3=s3_server.options())
    with pytest.raises(NotFoundError) as caught:
        storage.read("x")
    assert caught.value.code in ("bucket_not_found", "file_not_found")
    with pytest.raises(NotFoundError) as caught:
        storage.list("")
    assert caught.value.code == "bucket_not_found"


def test_s3_folder_markers_are_hidden_and_deleted(s3_server: S3Server) -> None:
    # Consoles and some servers keep "folder/" objects; they are no files of their own.
    bucket = s3_server.new_bucket()
    fs = s3_server.filesystem()
    fs.pipe_file(f"{bucket}/p/empty/", b"")
    fs.pipe_file(f"{bucket}/p/full/", b"")
    fs.pipe_file(f"{bucket}/p/full/file", b"1")
    storage = open_storage(f"s3://{bucket}/p", s3=s3_server.options())
    assert [(i.path, i.is_dir) for i in storage.list("")] == [("empty", True), ("full", True)]
    assert [i.path for i in storage.list("full")] == ["full/file"]
    assert [i.path for i in storage.list("", recursive=True)] == ["full/file"]
    storage.delete_tree("empty")
    storage.delete_tree("full")
    assert storage.list("") == []
