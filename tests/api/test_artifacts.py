"""Run artifacts through the native REST API: streaming uploads, limits, ranges, bad paths."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, start_server, unique

LIMIT = 3 * 1024 * 1024  # this module's server: uploads up to 3 MiB


@pytest.fixture(scope="module")
def small_server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("data")
    with start_server(data, module_database_url, max_artifact_bytes=LIMIT) as running:
        yield running


@pytest.fixture
def http(small_server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=small_server.url, headers=small_server.auth, timeout=30) as client:
        yield client


def _run(http: httpx.Client) -> tuple[str, str]:
    """A new workspace and a run in it; returns (workspace, the run's artifacts URL)."""
    workspace = unique("ws")
    assert http.post("/api/v1/workspaces", json={"name": workspace}).status_code == 201
    run = http.post(f"/api/v1/workspaces/{workspace}/runs", json={}).json()["id"]
    return workspace, f"/api/v1/workspaces/{workspace}/runs/{run}/artifacts"


def _storage_files(server: RunningServer) -> list[Path]:
    """Every file in the server's artifact storage (upload leftovers included)."""
    root = server.settings.data_dir / "artifacts"
    return [p for p in root.rglob("*") if p.is_file()]


def test_an_upload_records_size_and_sha256_and_reads_back_in_ranges(http: httpx.Client) -> None:
    _, base = _run(http)
    data = os.urandom(LIMIT - 1)
    put = http.put(f"{base}/weights/w.bin", content=data)
    assert put.status_code == 201, put.text
    assert put.json() == {
        "path": "weights/w.bin",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    whole = http.get(f"{base}/weights/w.bin")
    assert whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["x-content-type-options"] == "nosniff"
    part = http.get(f"{base}/weights/w.bin", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == data[1000:2000]
    tail = http.get(f"{base}/weights/w.bin", headers={"Range": "bytes=-10"})
    assert tail.content == data[-10:]
    assert (
        http.get(f"{base}/weights/w.bin", headers={"Range": "bytes=99999999-"}).status_code == 416
    )
    listed = http.get(base, params={"path": "weights"}).json()["items"]
    assert [(i["path"], i["size"]) for i in listed] == [("weights/w.bin", len(data))]


def test_a_second_upload_replaces_the_first(http: httpx.Client) -> None:
    _, base = _run(http)
    http.put(f"{base}/a.txt", content=b"one")
    http.put(f"{base}/a.txt", content=b"two!")
    assert http.get(f"{base}/a.txt").content == b"two!"


def test_uploads_over_the_limit_are_refused_and_leave_nothing(
    http: httpx.Client, small_server: RunningServer
) -> None:
    _, base = _run(http)
    before = set(_storage_files(small_server))
    declared = http.put(f"{base}/big.bin", content=b"x" * (LIMIT + 1))
    assert declared.status_code == 413
    assert declared.json()["code"] in ("payload_too_large", "artifact_too_large", "http")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it writes
        for _ in range(4):
            yield b"y" * (1024 * 1024)

    streamed = http.put(f"{base}/big.bin", content=chunks())
    assert streamed.status_code == 413
    assert http.get(base, params={"recursive": "true"}).json()["items"] == []
    assert set(_storage_files(small_server)) == before  # no partial file left behind


@pytest.mark.parametrize(
    "attack",
    ["%2e%2e/%2e%2e/escape", "%252e%252e/x", "a%5c..%5c..%5cx", "a%00b", "%2fetc%2fpasswd"],
)
def test_paths_that_try_to_leave_the_run_are_refused(http: httpx.Client, attack: str) -> None:
    _, base = _run(http)
    for response in (
        http.put(f"{base}/{attack}", content=b"evil"),
        http.get(f"{base}/{attack}"),
        http.delete(f"{base}/{attack}"),
        http.get(base, params={"path": attack.replace("%2e", ".").replace("%00", "\x00")}),
    ):
        assert response.status_code == 400, response.text
        assert response.json()["field"] == "path"


def test_a_folder_is_listed_not_downloaded(http: httpx.Client) -> None:
    _, base = _run(http)
    http.put(f"{base}/dir/f.txt", content=b"f")
    got = http.get(f"{base}/dir")
    assert got.status_code == 400
    assert got.json()["code"] == "path_is_folder"
    assert http.get(f"{base}/missing.txt").status_code == 404


def test_another_workspace_and_a_deleted_run(http: httpx.Client) -> None:
    workspace, base = _run(http)
    http.put(f"{base}/a.txt", content=b"a")
    other = unique("ws")
    http.post("/api/v1/workspaces", json={"name": other})
    foreign = base.replace(f"/workspaces/{workspace}/", f"/workspaces/{other}/")
    response = http.get(f"{foreign}/a.txt")
    assert response.status_code == 404
    assert response.json()["code"] == "run_not_found"

    run_path = base.removesuffix("/artifacts")
    assert http.delete(run_path).status_code == 204
    refused = http.put(f"{base}/b.txt", content=b"b")
    assert refused.status_code == 409
    assert refused.json()["code"] == "run_deleted"
    assert http.get(f"{base}/a.txt").content == b"a"  # a deleted run's files stay readable
