"""Data assets and uploaded models in S3-compatible storage: a server whose ``artifact_root``
is a bucket on a real SeaweedFS server. The same behaviour as on a folder: uploads by content
(counted in objects), previews through ranged reads, downloads, the size limit."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.domain.errors import PayloadTooLargeError
from shipyard.sdk.client import Client
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.api.test_uploads import manifest
from tests.conftest import RunningServer, start_server, unique
from tests.s3server import S3Server

LIMIT = 256 * 1024
CSV = "id,name\n" + "".join(f"{i},name-{i}\n" for i in range(50))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str, s3_server: S3Server
) -> Iterator[RunningServer]:
    bucket = s3_server.new_bucket("data")
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
def ws(server: RunningServer) -> Iterator[WorkspaceHandle]:
    with Client(server.url, server.admin_token) as client:
        name = unique()
        client.workspaces.create(name)
        yield client.workspace(name)


def objects(s3_server: S3Server, server: RunningServer) -> list[str]:
    bucket = server.bucket  # type: ignore[attr-defined]
    return sorted(s3_server.filesystem().find(f"{bucket}/shipyard"))


def test_uploads_land_once_in_the_bucket_and_read_back(
    ws: WorkspaceHandle, server: RunningServer, s3_server: S3Server, tmp_path: Path
) -> None:
    folder = tmp_path / "table"
    (folder / "parts").mkdir(parents=True)
    (folder / "parts" / "a.csv").write_text(CSV)
    table = pa.table({"x": list(range(1000)), "y": [f"v{i}" for i in range(1000)]})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=100)
    (folder / "parts" / "b.parquet").write_bytes(sink.getvalue())
    (folder / "MLTable").write_text(
        "paths:\n  - pattern: ./parts/*.csv\ntransformations:\n"
        "  - read_delimited: {}\n  - skip: 10\n  - take: 3\n  - drop_columns: [name]\n"
    )
    made = ws.data.create("csv-table", folder, type="mltable")
    assert made.file_count == 3
    stored = objects(s3_server, server)
    assert any(key.endswith(f"LocalUpload/{made.content_digest}/parts/a.csv") for key in stored)

    again = ws.data.create("csv-table", folder, type="mltable")
    assert again.version == "2"
    assert objects(s3_server, server) == stored  # nothing new in the bucket

    shown = ws.data.preview("csv-table")
    assert shown.rows == [[10], [11], [12]]
    parquet_uri = f"{made.path}/parts/b.parquet"
    ws.data.create("pq", parquet_uri, type="uri_file")
    tail = ws.data.preview("pq", rows=3)
    assert [c.name for c in tail.columns] == ["x", "y"]
    assert tail.rows == [[0, "v0"], [1, "v1"], [2, "v2"]]

    copy = ws.data.download("csv-table", version="1", download_path=tmp_path / "copy")
    assert (copy / "parts" / "a.csv").read_text() == CSV
    assert (copy / "MLTable").is_file()


def test_models_and_limits_in_the_bucket(
    ws: WorkspaceHandle, server: RunningServer, s3_server: S3Server, tmp_path: Path
) -> None:
    weights = tmp_path / "model" / "weights.bin"
    weights.parent.mkdir()
    weights.write_bytes(os.urandom(100_000))
    made = ws.models.create("s3-model", weights.parent)
    assert made.logged_model_id is not None
    copy = ws.models.download("s3-model", download_path=tmp_path / "copy")
    assert (copy / "weights.bin").read_bytes() == weights.read_bytes()

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(LIMIT + 1))
    before = objects(s3_server, server)
    with pytest.raises(PayloadTooLargeError):
        ws.data.create("big", big, type="uri_file")
    # A client lying about the size is stopped while it sends; nothing is left in the bucket.
    digest, body = manifest({"big.bin": b"x" * 10})
    root = f"{server.url}/api/v1/workspaces/{ws.name}/data/artifacts/{digest}"
    with httpx.Client(headers=server.auth, timeout=60) as http:
        assert http.put(root, json=body).status_code == 200
        sent = http.put(f"{root}/big.bin", content=big.read_bytes())
    assert sent.status_code in (400, 413)
    assert objects(s3_server, server) == before
