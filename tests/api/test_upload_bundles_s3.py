"""Bundles of small files into S3-compatible storage (a real SeaweedFS server): each file of a
bundle becomes an object; one that fails its check, or is cut short, leaves no object."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_upload_bundles import begin, bundle, missing, upload_root
from tests.conftest import RunningServer, start_server, unique
from tests.s3server import S3Server

LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str, s3_server: S3Server
) -> Iterator[RunningServer]:
    bucket = s3_server.new_bucket("bundles")
    with start_server(
        tmp_path_factory.mktemp("data"),
        module_database_url,
        artifact_root=f"s3://{bucket}/shipyard",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_access_key_id=s3_server.access_key_id,
        s3_secret_access_key=s3_server.secret_access_key,
        s3_region="us-east-1",
        max_artifact_bytes=LIMIT,
    ) as running:
        running.bucket = bucket  # type: ignore[attr-defined]
        yield running


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=60) as client:
        yield client


@pytest.fixture
def ws(http: httpx.Client) -> str:
    name = unique()
    assert http.post("/api/v1/workspaces", json={"name": name}).status_code == 201
    return name


def objects(s3_server: S3Server, server: RunningServer, digest: str) -> dict[str, bytes]:
    fs = s3_server.filesystem()
    bucket = server.bucket  # type: ignore[attr-defined]
    found = [key for key in fs.find(f"{bucket}/shipyard") if f"/LocalUpload/{digest}/" in key]
    return {key.split(f"{digest}/", 1)[1]: fs.cat_file(key) for key in found}


def test_a_bundle_lands_as_one_object_per_file(
    http: httpx.Client, server: RunningServer, s3_server: S3Server, ws: str
) -> None:
    files = {f"part-{i % 3}/row-{i}.csv": os.urandom(100 + i) for i in range(25)}
    files["empty.txt"] = b""
    url = begin(http, ws, files)
    sent = http.put(url, content=bundle(files))
    assert sent.status_code == 200, sent.text
    assert sent.json()["files"] == len(files)
    digest = url.rsplit("/", 1)[1]
    assert objects(s3_server, server, digest) == files
    assert http.post(f"{upload_root(url)}/commit").json()["committed"] is True


def test_a_wrong_or_cut_file_leaves_no_object(
    http: httpx.Client, server: RunningServer, s3_server: S3Server, ws: str
) -> None:
    files = {"good.txt": b"good", "bad.txt": b"right bytes", "cut.bin": os.urandom(50_000)}
    url = begin(http, ws, files)
    digest = url.rsplit("/", 1)[1]
    wrong = bundle({"good.txt": b"good", "bad.txt": b"wrong bytes"})
    refused = http.put(url, content=wrong)
    assert (refused.status_code, refused.json()["code"]) == (400, "content_mismatch")
    assert objects(s3_server, server, digest) == {"good.txt": b"good"}

    cut = http.put(url, content=bundle({"cut.bin": files["cut.bin"]})[:-10])
    assert (cut.status_code, cut.json()["code"]) == (400, "invalid_bundle")
    assert objects(s3_server, server, digest) == {"good.txt": b"good"}
    assert missing(http, url, files) == ["bad.txt", "cut.bin"]
