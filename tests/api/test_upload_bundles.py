"""Bundles of small files (``PUT .../artifacts/bundles/{digest}``) over real HTTP: many files
in one body, each checked against the manifest, and every way a body can be wrong: not a
bundle, cut short, a path outside the manifest or outside the folder, the wrong content, a
file over the limit. Nothing wrong is ever written; nothing partial is ever left."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.domain.content import ManifestEntry, manifest_digest
from shipyard.schemas.uploads import BUNDLE_MAGIC, bundle_header
from tests.api.test_uploads import manifest, stored_files
from tests.conftest import RunningServer, start_server, unique

LIMIT = 64 * 1024


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


def bundle(files: dict[str, bytes]) -> bytes:
    return BUNDLE_MAGIC + b"".join(bundle_header(p, len(b)) + b for p, b in files.items())


def begin(http: httpx.Client, ws: str, files: dict[str, bytes], area: str = "data") -> str:
    """Sends the manifest of ``files``; returns the upload's bundle URL."""
    digest, body = manifest(files)
    begun = http.put(f"/api/v1/workspaces/{ws}/{area}/artifacts/{digest}", json=body)
    assert begun.status_code == 200, begun.text
    return f"/api/v1/workspaces/{ws}/{area}/artifacts/bundles/{digest}"


def upload_root(bundle_url: str) -> str:
    base, digest = bundle_url.rsplit("/bundles/", 1)
    return f"{base}/{digest}"


def missing(http: httpx.Client, bundle_url: str, files: dict[str, bytes]) -> list[str]:
    _, body = manifest(files)
    return list(http.put(upload_root(bundle_url), json=body).json()["missing"])


def temp_files(server: RunningServer) -> list[str]:
    return [p for p in stored_files(server) if ".shipyard-upload-" in p]


def test_a_bundle_stores_many_files_in_one_request(
    http: httpx.Client, server: RunningServer, ws: str
) -> None:
    files = {
        "a.csv": b"x,y\n1,2\n",
        "deep/er/b.txt": b"hello",
        "empty.txt": b"",
        "c.bin": os.urandom(LIMIT // 2),
    }
    url = begin(http, ws, files)
    sent = http.put(url, content=bundle({k: files[k] for k in ("a.csv", "empty.txt", "c.bin")}))
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"files": 3, "size": 8 + 0 + LIMIT // 2}
    assert missing(http, url, files) == ["deep/er/b.txt"]

    # A bundle of one, then the commit: the upload is the same as one sent file by file.
    assert http.put(url, content=bundle({"deep/er/b.txt": b"hello"})).status_code == 200
    done = http.post(f"{upload_root(url)}/commit").json()
    assert (done["committed"], done["file_count"]) == (True, 4)
    digest = url.rsplit("/", 1)[1]
    stored = [p for p in stored_files(server) if f"LocalUpload/{digest}/" in p]
    assert sorted(p.split(f"{digest}/", 1)[1] for p in stored) == sorted(files)
    root = Path(server.settings.artifact_root_uri)
    kept = next(root.rglob(f"LocalUpload/{digest}/c.bin"))
    assert kept.read_bytes() == files["c.bin"]
    assert temp_files(server) == []

    # Committed files never change, in bundles either.
    again = http.put(url, content=bundle({"a.csv": files["a.csv"]}))
    assert (again.status_code, again.json()["code"]) == (409, "upload_committed")


def test_a_bundle_may_arrive_in_pieces_of_any_size(http: httpx.Client, ws: str) -> None:
    files = {f"part-{i}/row-{i}.csv": os.urandom(i * 37) for i in range(40)}
    url = begin(http, ws, files)
    body = bundle(files)

    def pieces() -> Iterator[bytes]:  # chunked: headers and files cut at odd places
        for start in range(0, len(body), 997):
            yield body[start : start + 997]

    sent = http.put(url, content=pieces())
    assert sent.status_code == 200, sent.text
    assert sent.json()["files"] == 40
    assert missing(http, url, files) == []


def test_the_bundle_route_checks_its_upload(http: httpx.Client, ws: str) -> None:
    files = {"a.txt": b"a"}
    digest, _ = manifest(files)
    base = f"/api/v1/workspaces/{ws}/data/artifacts/bundles"
    unknown = http.put(f"{base}/{digest}", content=bundle(files))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "upload_not_found")
    for bad in ("notahash", digest.upper()):
        got = http.put(f"{base}/{bad}", content=bundle(files))
        assert (got.status_code, got.json()["code"]) == (400, "invalid_digest"), bad
    other = unique()
    http.post("/api/v1/workspaces", json={"name": other})
    url = begin(http, ws, files)
    elsewhere = http.put(url.replace(f"/{ws}/", f"/{other}/"), content=bundle(files))
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "upload_not_found")


def test_files_named_like_the_bundle_route_still_upload_alone(http: httpx.Client, ws: str) -> None:
    # ".../artifacts/bundles/<digest>" never shadows a file: file routes start with a digest.
    files = {"bundles": b"1", "x/bundles/" + "a" * 64: b"2"}
    digest, body = manifest(files)
    root = f"/api/v1/workspaces/{ws}/data/artifacts/{digest}"
    assert http.put(root, json=body).status_code == 200
    for path, content in files.items():
        assert http.put(f"{root}/{path}", content=content).status_code == 201, path
    assert http.post(f"{root}/commit").json()["committed"] is True


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "invalid_bundle"),
        (b"PK\x03\x04 a zip file", "invalid_bundle"),
        (b"shipyard-bundle 2\na.txt\n1\na", "invalid_bundle"),
        (BUNDLE_MAGIC + b"a.txt\n-1\n", "invalid_bundle"),
        (BUNDLE_MAGIC + b"a.txt\n1e3\n", "invalid_bundle"),
        (BUNDLE_MAGIC + b"a.txt\n 1\na", "invalid_bundle"),
        (BUNDLE_MAGIC + b"a.txt\n", "invalid_bundle"),  # ends before the size
        (BUNDLE_MAGIC + b"a.t", "invalid_bundle"),  # ends inside a path
        (BUNDLE_MAGIC + b"a" * 5000, "invalid_bundle"),  # a header line with no end
        (BUNDLE_MAGIC + b"\xff\xfe.txt\n1\na", "invalid_path"),
        (BUNDLE_MAGIC + b"a.txt\n1\naa.txt\n1\na", "duplicate_path"),
    ],
)
def test_a_malformed_bundle_is_a_clear_400(
    http: httpx.Client, server: RunningServer, ws: str, body: bytes, code: str
) -> None:
    url = begin(http, ws, {"a.txt": b"a", "b.txt": b"b"})
    got = http.put(url, content=body)
    assert got.status_code == 400, got.text
    assert (got.json()["code"], got.json()["field"]) == (code, "bundle"), got.text
    assert temp_files(server) == []


def test_a_bundle_cut_inside_a_file_keeps_nothing_of_it(
    http: httpx.Client, server: RunningServer, ws: str
) -> None:
    files = {"first.txt": b"complete", "second.bin": os.urandom(40_000)}
    url = begin(http, ws, files)
    body = bundle(files)
    cut = http.put(url, content=body[:-1000])
    assert (cut.status_code, cut.json()["code"]) == (400, "invalid_bundle")
    assert "second.bin" in cut.json()["detail"]
    assert temp_files(server) == []
    # The whole file before the cut was checked and stays; the cut one is still missing.
    assert missing(http, url, files) == ["second.bin"]


@pytest.mark.parametrize(
    "bad",
    [
        "../escape.txt",
        "a/../../escape.txt",
        "/etc/escape.txt",
        "%2e%2e/escape.txt",
        "%252e%252e/escape.txt",
        "a\\..\\escape.txt",
        "a\x00escape.txt",
        "./a.txt",
        "a//b.txt",
    ],
)
def test_traversal_inside_a_bundle_writes_nothing(
    http: httpx.Client, server: RunningServer, ws: str, tmp_path: Path, bad: str
) -> None:
    url = begin(http, ws, {"a.txt": b"a", "a/b.txt": b"b"})
    before = stored_files(server)
    root = Path(server.settings.artifact_root_uri)
    body = BUNDLE_MAGIC + bad.encode() + b"\n7\nescaped"
    got = http.put(url, content=body)
    assert got.status_code == 400, got.text
    assert (got.json()["code"], got.json()["field"]) == ("invalid_path", "bundle")
    assert stored_files(server) == before
    # Nowhere around the storage either (an escape would land next to it, or at /etc).
    assert not list(root.parent.rglob("escape.txt"))
    assert not Path("/etc/escape.txt").exists()


def test_a_file_outside_the_manifest_is_refused(
    http: httpx.Client, server: RunningServer, ws: str
) -> None:
    url = begin(http, ws, {"a.txt": b"a"})
    before = stored_files(server)
    got = http.put(url, content=bundle({"a.txt": b"a", "stray.txt": b"stray"}))
    assert got.status_code == 400, got.text
    assert (got.json()["code"], got.json()["field"]) == ("file_not_in_manifest", "bundle")
    assert not [p for p in stored_files(server) if p.endswith("stray.txt")]
    assert len(stored_files(server)) == len(before) + 1  # a.txt, checked, came before it


@pytest.mark.parametrize("wrong", [b"wrong", b"WRONG CONTENT"])
def test_content_must_match_the_manifest_inside_a_bundle(
    http: httpx.Client, server: RunningServer, ws: str, wrong: bytes
) -> None:
    files = {"a.txt": b"right", "b.txt": b"fine"}
    url = begin(http, ws, files)
    before = stored_files(server)
    body = BUNDLE_MAGIC + bundle_header("a.txt", len(wrong)) + wrong
    body += bundle_header("b.txt", 4) + b"fine"
    got = http.put(url, content=body)
    assert got.status_code == 400, got.text
    assert got.json()["code"] == "content_mismatch"
    assert "a.txt" in got.json()["detail"]
    assert stored_files(server) == before
    assert missing(http, url, files) == ["a.txt", "b.txt"]


def test_a_file_over_the_limit_in_a_bundle_is_413_and_leaves_nothing(
    http: httpx.Client, server: RunningServer, ws: str
) -> None:
    # The manifest cannot hold such a file (refused when it is sent); a bundle that claims
    # one is stopped at its header, before a byte of it is written.
    content = b"small"
    digest, body = manifest({"a.txt": content})
    root = f"/api/v1/workspaces/{ws}/data/artifacts/{digest}"
    assert http.put(root, json=body).status_code == 200
    before = stored_files(server)
    # (The body itself stays under the request limit, which would refuse it first.)
    oversized = BUNDLE_MAGIC + bundle_header("a.txt", LIMIT + 1) + b"x" * 1000
    got = http.put(f"/api/v1/workspaces/{ws}/data/artifacts/bundles/{digest}", content=oversized)
    assert got.status_code == 413, got.text
    assert (got.json()["code"], got.json()["field"]) == ("file_too_large", "bundle")
    assert stored_files(server) == before
    assert temp_files(server) == []


def test_a_bundle_body_over_the_request_limit_is_413(
    http: httpx.Client, server: RunningServer, ws: str
) -> None:
    files = {f"f{i}.bin": os.urandom(LIMIT // 4) for i in range(6)}  # 1.5 x the body limit
    url = begin(http, ws, files)
    before = stored_files(server)
    body = bundle(files)

    def pieces() -> Iterator[bytes]:  # no Content-Length: stopped while it streams
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    got = http.put(url, content=pieces())
    assert got.status_code == 413, got.text
    assert temp_files(server) == []
    assert len(stored_files(server)) <= len(before) + len(files)


def test_models_take_bundles_too(http: httpx.Client, ws: str) -> None:
    files = {"MLmodel": b"flavors: {}\n", "model.pkl": b"\x80\x04N."}
    url = begin(http, ws, files, area="models")
    assert http.put(url, content=bundle(files)).json() == {"files": 2, "size": 16}
    done = http.post(f"{upload_root(url)}/commit").json()
    assert done["committed"] is True
    assert done["logged_model_id"]


def test_a_lying_manifest_size_is_caught_by_the_hash(http: httpx.Client, ws: str) -> None:
    content = b"twelve bytes"
    sha = hashlib.sha256(content).hexdigest()
    entries = [ManifestEntry("a.txt", sha, 5)]
    body = {"files": [{"path": "a.txt", "sha256": sha, "size": 5}]}
    digest = manifest_digest(entries)
    assert http.put(f"/api/v1/workspaces/{ws}/data/artifacts/{digest}", json=body).is_success
    url = f"/api/v1/workspaces/{ws}/data/artifacts/bundles/{digest}"
    sized = http.put(url, content=BUNDLE_MAGIC + bundle_header("a.txt", 12) + content)
    assert (sized.status_code, sized.json()["code"]) == (400, "content_mismatch")
    cut = http.put(url, content=BUNDLE_MAGIC + bundle_header("a.txt", 5) + content[:5])
    assert (cut.status_code, cut.json()["code"]) == (400, "content_mismatch")
