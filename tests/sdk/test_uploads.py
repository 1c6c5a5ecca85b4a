"""How the SDK sends a folder by content: small files in bundles within the server's limit for
one request, big ones alone, and a file changed after it was hashed is refused, not sent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.domain.content import ManifestEntry
from shipyard.domain.errors import InvalidInputError
from shipyard.sdk.client import Client
from shipyard.sdk.http import HttpSession
from shipyard.sdk.uploads import (
    BUNDLE_FILE_BYTES,
    BUNDLE_FILES,
    ContentUploads,
    batches,
    bundle_length,
    hash_local,
)
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.conftest import RunningServer, start_server, unique

#: The server's limit for one request body: bundles must be cut to fit it.
LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("data")
    with start_server(data, module_database_url, max_artifact_bytes=LIMIT) as running:
        yield running


@pytest.fixture
def ws(server: RunningServer) -> Iterator[WorkspaceHandle]:
    with Client(server.url, server.admin_token) as client:
        name = unique()
        client.workspaces.create(name)
        yield client.workspace(name)


def entries(sizes: list[int]) -> list[tuple[Path, ManifestEntry]]:
    return [(Path(f"f{i}"), ManifestEntry(f"f{i}", "0" * 64, size)) for i, size in enumerate(sizes)]


def test_small_files_go_in_bundles_and_big_ones_alone() -> None:
    files = entries([10] * 2500 + [BUNDLE_FILE_BYTES + 1, 5 * BUNDLE_FILE_BYTES])
    sent = batches(files, workers=8)
    assert sorted(e.path for batch in sent for _, e in batch) == sorted(e.path for _, e in files)
    alone = [batch for batch in sent if batch[0][1].size > BUNDLE_FILE_BYTES]
    assert [len(batch) for batch in alone] == [1, 1]
    bundles = [batch for batch in sent if batch not in alone]
    assert all(len(batch) <= BUNDLE_FILES for batch in bundles)
    # Spread so that every worker has a bundle to send.
    assert len(bundles) >= 3


def test_bundles_stay_within_the_budget() -> None:
    budget = 10_000
    files = entries([1000] * 50 + [9_990, 10])
    sent = batches(files, workers=2, budget=budget)
    assert all(bundle_length(batch) <= budget for batch in sent if len(batch) > 1)
    # A file that cannot fit a bundle with its framing goes alone.
    assert [[e.size for _, e in batch] for batch in sent if batch[0][1].size == 9_990] == [[9_990]]


def test_a_folder_crosses_in_bundles_and_downloads_the_same(
    ws: WorkspaceHandle, tmp_path: Path
) -> None:
    folder = tmp_path / "many"
    expected: dict[str, bytes] = {}
    for i in range(300):
        path = f"part-{i % 7}/row-{i:04d}.csv"
        expected[path] = os.urandom(i * 11 % 3000)
    expected["big/blob.bin"] = os.urandom(LIMIT - 100)  # fits the limit, not a bundle
    for path, content in expected.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(content)
    made = ws.data.create("many", folder)
    assert made.file_count == len(expected)
    back = tmp_path / "back"
    ws.data.download("many", version=made.version, download_path=back)
    got = {p.relative_to(back).as_posix(): p.read_bytes() for p in back.rglob("*") if p.is_file()}
    assert got == expected


def test_a_file_changed_after_hashing_is_not_sent(
    ws: WorkspaceHandle, server: RunningServer, tmp_path: Path
) -> None:
    folder = tmp_path / "changing"
    folder.mkdir()
    (folder / "a.txt").write_text("before")
    (folder / "b.txt").write_text("steady")
    content = hash_local(folder)
    (folder / "a.txt").write_text("after, and longer")
    http = HttpSession(server.url, server.admin_token, timeout=30, user_agent="test")
    uploads = ContentUploads(http, f"/api/v1/workspaces/{ws.name}/data/artifacts")
    with pytest.raises(InvalidInputError) as refused:
        uploads.upload(content)
    assert refused.value.code == "file_changed"
    # Same size, other bytes: the server's check of the hash refuses it.
    content = hash_local(folder)
    (folder / "a.txt").write_text("AFTER, and longer")
    with pytest.raises(InvalidInputError) as mismatch:
        uploads.upload(content)
    assert mismatch.value.code == "content_mismatch"
