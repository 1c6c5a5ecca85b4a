"""Content-addressed uploads over real HTTP: the manifest, the files, the commit, and every way
a client can get them wrong (traversal, wrong content, over the limit, a full disk)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.domain.content import ManifestEntry, manifest_digest
from tests.conftest import RunningServer, start_server, unique

LIMIT = 64 * 1024

BAD_PATHS = [
    "../escape.txt",
    "a/../../escape.txt",
    "%2e%2e/escape.txt",
    "%252e%252e/escape.txt",
    "/etc/passwd",
    "a\\..\\b.txt",
    "a\x00b.txt",
    "a/" + "x" * 300,
    "a/" * 600 + "b",
]


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("data")
    with start_server(data, module_database_url, max_artifact_bytes=LIMIT) as running:
        yield running


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=30) as client:
        yield client


@pytest.fixture
def ws(http: httpx.Client) -> str:
    name = unique()
    assert http.post("/api/v1/workspaces", json={"name": name}).status_code == 201
    return name


def manifest(files: dict[str, bytes]) -> tuple[str, dict[str, Any]]:
    entries = [ManifestEntry(p, hashlib.sha256(b).hexdigest(), len(b)) for p, b in files.items()]
    body = {"files": [{"path": e.path, "sha256": e.sha256, "size": e.size} for e in entries]}
    return manifest_digest(entries), body


def upload(http: httpx.Client, ws: str, files: dict[str, bytes], area: str = "data") -> str:
    digest, body = manifest(files)
    root = f"/api/v1/workspaces/{ws}/{area}/artifacts/{digest}"
    begun = http.put(root, json=body)
    assert begun.status_code == 200, begun.text
    for path in begun.json()["missing"]:
        assert http.put(f"{root}/{path}", content=files[path]).status_code == 201
    committed = http.post(f"{root}/commit")
    assert committed.status_code == 200, committed.text
    return digest


def stored_files(server: RunningServer) -> list[str]:
    root = Path(server.settings.artifact_root_uri)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_missing_files_are_listed_then_committed(http: httpx.Client, ws: str) -> None:
    files = {"a.csv": b"x,y\n1,2\n", "sub/b.txt": b"hello"}
    digest, body = manifest(files)
    root = f"/api/v1/workspaces/{ws}/data/artifacts/{digest}"
    begun = http.put(root, json=body).json()
    assert begun["missing"] == ["a.csv", "sub/b.txt"]
    assert begun["committed"] is False
    assert begun["uri"] == f"azureml://datastores/workspaceblobstore/paths/LocalUpload/{digest}"
    assert http.put(f"{root}/a.csv", content=files["a.csv"]).status_code == 201

    # Asking again (a resumed upload) lists only what is still missing.
    assert http.put(root, json=body).json()["missing"] == ["sub/b.txt"]
    early = http.post(f"{root}/commit")
    assert early.status_code == 409
    assert early.json()["code"] == "upload_incomplete"
    assert "sub/b.txt" in early.json()["detail"]

    written = http.put(f"{root}/sub/b.txt", content=files["sub/b.txt"]).json()
    assert written["sha256"] == hashlib.sha256(b"hello").hexdigest()
    done = http.post(f"{root}/commit").json()
    assert (done["committed"], done["file_count"], done["size"]) == (True, 2, 13)
    # Committed files never change.
    again = http.put(f"{root}/a.csv", content=files["a.csv"])
    assert (again.status_code, again.json()["code"]) == (409, "upload_committed")


def test_identical_content_is_stored_once(
    http: httpx.Client, server: RunningServer, ws: str
) -> None:
    files = {"one.bin": os.urandom(2000), "two/three.bin": os.urandom(3000)}
    upload(http, ws, files)
    before = stored_files(server)
    digest, body = manifest(files)
    again = http.put(f"/api/v1/workspaces/{ws}/data/artifacts/{digest}", json=body).json()
    assert again["committed"] is True
    assert again["missing"] == []
    assert stored_files(server) == before
    # Another file set differing in one byte is another upload.
    upload(http, ws, {**files, "one.bin": files["one.bin"][:-1] + b"!"})
    assert len(stored_files(server)) == len(before) + 2


def test_content_must_match_the_manifest(
    http: httpx.Client, server: RunningServer, ws: str
) -> None:
    files = {"a.txt": b"right content"}
    digest, body = manifest(files)
    root = f"/api/v1/workspaces/{ws}/data/artifacts/{digest}"
    http.put(root, json=body)
    before = stored_files(server)
    for wrong in (b"wrong content", b"right", b"right content and more"):
        refused = http.put(f"{root}/a.txt", content=wrong)
        assert refused.status_code == 400, refused.text
        assert (refused.json()["code"], refused.json()["field"]) == ("content_mismatch", "path")
    assert stored_files(server) == before  # nothing partial kept
    stray = http.put(f"{root}/other.txt", content=b"x")
    assert (stray.status_code, stray.json()["code"]) == (404, "file_not_in_manifest")


def test_a_manifest_must_hash_to_its_name(http: httpx.Client, ws: str) -> None:
    digest, body = manifest({"a.txt": b"a"})
    other, _ = manifest({"b.txt": b"b"})
    wrong = http.put(f"/api/v1/workspaces/{ws}/data/artifacts/{other}", json=body)
    assert (wrong.status_code, wrong.json()["code"]) == (400, "digest_mismatch")
    for bad in ("notahash", digest.upper(), digest[:-1]):
        got = http.put(f"/api/v1/workspaces/{ws}/data/artifacts/{bad}", json=body)
        assert (got.status_code, got.json()["field"]) == (400, "digest"), bad
    unknown = http.put(f"/api/v1/workspaces/{ws}/data/artifacts/{digest}/a.txt", content=b"a")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "upload_not_found")


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"files": []}, "files", "invalid_field"),
        (
            {"files": [{"path": "a", "sha256": "z" * 64, "size": 1}]},
            "files.0.sha256",
            "invalid_field",
        ),
        (
            {"files": [{"path": "a", "sha256": "a" * 64, "size": -1}]},
            "files.0.size",
            "invalid_field",
        ),
        ({"files": [{"path": "a", "sha256": "a" * 64}]}, "files.0.size", "missing_field"),
        (
            {"files": [{"path": "a", "sha256": "a" * 64, "size": 1}], "extra": 1},
            "extra",
            "unknown_field",
        ),
    ],
)
def test_malformed_manifests_name_the_field(
    http: httpx.Client, ws: str, body: dict[str, Any], field: str, code: str
) -> None:
    got = http.put(f"/api/v1/workspaces/{ws}/data/artifacts/{'a' * 64}", json=body)
    assert (got.status_code, got.json()["code"], got.json()["field"]) == (400, code, field)


def test_not_json_is_a_clear_error(http: httpx.Client, ws: str) -> None:
    got = http.put(f"/api/v1/workspaces/{ws}/data/artifacts/{'a' * 64}", content=b"{not json")
    assert (got.status_code, got.json()["code"]) == (400, "malformed_json")


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_traversal_in_a_manifest_path_is_refused(
    http: httpx.Client, server: RunningServer, ws: str, bad: str
) -> None:
    entries = [ManifestEntry(bad, "a" * 64, 1)]
    body = {"files": [{"path": bad, "sha256": "a" * 64, "size": 1}]}
    before = stored_files(server)
    got = http.put(f"/api/v1/workspaces/{ws}/data/artifacts/{manifest_digest(entries)}", json=body)
    assert got.status_code == 400, got.text
    assert got.json()["code"] == "invalid_path"
    assert got.json()["field"] == "files.0.path"
    assert stored_files(server) == before


@pytest.mark.parametrize(
    "bad", ["%2e%2e/escape.txt", "%252e%252e/escape.txt", "a%5c..%5cb", "a%00b", "x" * 300]
)
def test_traversal_in_a_file_route_is_refused(
    http: httpx.Client, server: RunningServer, ws: str, bad: str
) -> None:
    digest, body = manifest({"a.txt": b"a"})
    root = f"/api/v1/workspaces/{ws}/data/artifacts/{digest}"
    http.put(root, json=body)
    before = stored_files(server)
    got = http.put(f"{root}/{bad}", content=b"a")
    assert got.status_code == 400, got.text
    assert got.json()["code"] == "invalid_path"
    assert stored_files(server) == before


def test_manifest_paths_must_form_a_tree(http: httpx.Client, ws: str) -> None:
    for files, code in (
        ({"a": b"1", "a/b": b"2"}, "path_is_file"),
        ({"a": b"1", "./a": b"1"}, "duplicate_path"),
    ):
        digest, body = manifest(files)
        got = http.put(f"/api/v1/workspaces/{ws}/data/artifacts/{digest}", json=body)
        assert (got.status_code, got.json()["code"]) == (400, code)


def test_files_over_the_limit_get_413_and_leave_nothing(
    http: httpx.Client, server: RunningServer, ws: str
) -> None:
    big = os.urandom(LIMIT + 1)
    digest, body = manifest({"big.bin": big})
    declared = http.put(f"/api/v1/workspaces/{ws}/data/artifacts/{digest}", json=body)
    assert declared.status_code == 413
    assert (declared.json()["code"], declared.json()["field"]) == ("file_too_large", "files.0.size")

    # A client that lies in its manifest is stopped while it sends, and nothing is kept.
    lie = {"files": [{"path": "big.bin", "sha256": body["files"][0]["sha256"], "size": 10}]}
    entries = [ManifestEntry("big.bin", body["files"][0]["sha256"], 10)]
    root = f"/api/v1/workspaces/{ws}/data/artifacts/{manifest_digest(entries)}"
    assert http.put(root, json=lie).status_code == 200
    before = stored_files(server)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced as it streams
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    sent = http.put(f"{root}/big.bin", content=chunks())
    assert sent.status_code == 413, sent.text
    assert stored_files(server) == before
    assert not [p for p in stored_files(server) if ".shipyard-upload-" in p]


def test_another_workspaces_upload_is_not_found(http: httpx.Client, ws: str) -> None:
    digest = upload(http, ws, {"secret.txt": b"mine"})
    other = unique()
    http.post("/api/v1/workspaces", json={"name": other})
    got = http.post(f"/api/v1/workspaces/{other}/data/artifacts/{digest}/commit")
    assert (got.status_code, got.json()["code"]) == (404, "upload_not_found")
    # Registering it there by its URI is refused too (not a committed upload of that workspace).
    uri = f"azureml://datastores/workspaceblobstore/paths/LocalUpload/{digest}"
    made = http.post(f"/api/v1/workspaces/{other}/data/x/versions", json={"path": uri})
    assert (made.status_code, made.json()["code"]) == (404, "upload_not_found")


# --- a real full disk ----------------------------------------------------------------------


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


def test_a_full_disk_is_507_and_nothing_is_registered(
    tmp_path: Path, database_url: str, tiny_disk: Path
) -> None:
    big = os.urandom(2 * 1024 * 1024)
    with (
        start_server(tmp_path / "data", database_url, artifact_root=str(tiny_disk)) as running,
        httpx.Client(base_url=running.url, headers=running.auth, timeout=60) as http,
    ):
        http.post("/api/v1/workspaces", json={"name": "full"})
        digest, body = manifest({"big.bin": big})
        root = f"/api/v1/workspaces/full/data/artifacts/{digest}"
        assert http.put(root, json=body).status_code == 200
        sent = http.put(f"{root}/big.bin", content=big)
        assert (sent.status_code, sent.json()["code"]) == (507, "storage_full")
        commit = http.post(f"{root}/commit")
        assert (commit.status_code, commit.json()["code"]) == (409, "upload_incomplete")
        uri = f"azureml://datastores/workspaceblobstore/paths/LocalUpload/{digest}"
        made = http.post("/api/v1/workspaces/full/data/big/versions", json={"path": uri})
        assert (made.status_code, made.json()["code"]) == (409, "upload_incomplete")
        assert http.get("/api/v1/workspaces/full/data").json()["items"] == []
        leftovers = [p for p in tiny_disk.rglob("*") if p.is_file()]
        assert leftovers == []
