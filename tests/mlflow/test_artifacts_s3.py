"""Run artifacts in S3-compatible storage: the same client scripts, a server whose
``artifact_root`` is a bucket on a real SeaweedFS server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

from shipyard.sdk.client import Client
from tests.conftest import RunningServer, free_port, start_server
from tests.mlflow.conftest import Tracking
from tests.s3server import S3Server


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str, s3_server: S3Server
) -> Iterator[RunningServer]:
    """This module's server keeps every workspace's files in a fresh bucket."""
    bucket = s3_server.new_bucket("artifacts")
    with start_server(
        tmp_path_factory.mktemp("data"),
        module_database_url,
        artifact_root=f"s3://{bucket}/shipyard",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_access_key_id=s3_server.access_key_id,
        s3_secret_access_key=s3_server.secret_access_key,
        s3_region="us-east-1",
    ) as running:
        running.bucket = bucket  # type: ignore[attr-defined]
        yield running


def _objects(s3_server: S3Server, server: RunningServer) -> list[str]:
    bucket = server.bucket  # type: ignore[attr-defined]
    return sorted(s3_server.filesystem().find(f"{bucket}/shipyard"))


def test_mlflow_artifacts_land_in_the_bucket(
    tracking: Tracking, tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.bin").write_bytes(os.urandom(70_000))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(1024 * 1024))
    big = os.urandom(2 * 1024 * 1024 + 99)
    (tmp_path / "big.bin").write_bytes(big)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), artifact_path="out")
        mlflow.log_text("hello", "notes/hello.txt")
        mlflow.log_artifact(str(tmp_path / "big.bin"))  # in parts

    run_id = run.info.run_id
    stored = _objects(s3_server, tracking.server)
    for name in ("out/a.txt", "out/sub/b.bin", "notes/hello.txt", "big.bin"):
        assert any(key.endswith(f"/runs/{run_id}/artifacts/{name}") for key in stored), name
    assert not [key for key in stored if "/uploads/" in key]  # multipart parts cleaned up

    client = MlflowClient()
    assert [f.path for f in client.list_artifacts(run_id)] == ["big.bin", "notes", "out"]
    back = Path(client.download_artifacts(run_id, "out", str(tmp_path / "back")))
    assert (back / "sub" / "b.bin").read_bytes() == (folder / "sub" / "b.bin").read_bytes()
    assert Path(client.download_artifacts(run_id, "big.bin", str(tmp_path))).read_bytes() == big
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/hello.txt") == "hello"


def test_the_sdk_reads_the_same_files(tracking: Tracking, tmp_path: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_dict({"k": 1}, "conf/c.json")
    ws = Client(tracking.server.url, tracking.server.admin_token).workspace(tracking.workspace)
    files = ws.jobs.artifacts(run.info.run_id)
    assert [a.path for a in files.list(recursive=True)] == ["conf/c.json"]
    assert files.read_bytes("conf/c.json").startswith(b"{")
    ranged = tracking.http.get(
        f"{tracking.server.url}/api/v1/workspaces/{tracking.workspace}/runs/"
        f"{run.info.run_id}/artifacts/conf/c.json",
        headers={**tracking.server.auth, "Range": "bytes=0-0"},
    )
    assert ranged.status_code == 206
    assert ranged.content == b"{"


@pytest.mark.parametrize("fault", ["endpoint down", "wrong secret"])
def test_storage_faults_are_clear_errors_not_500(
    tmp_path: Path, database_url: str, s3_server: S3Server, fault: str
) -> None:
    endpoint = s3_server.endpoint_url
    secret = s3_server.secret_access_key
    if fault == "endpoint down":
        endpoint = f"http://127.0.0.1:{free_port()}"
    else:
        secret = "not-the-secret"
    with (
        start_server(
            tmp_path / "data",
            database_url,
            artifact_root=f"s3://{s3_server.new_bucket('faulty')}/root",
            s3_endpoint_url=endpoint,
            s3_access_key_id=s3_server.access_key_id,
            s3_secret_access_key=secret,
            s3_region="us-east-1",
        ) as running,
        httpx.Client(base_url=running.url, headers=running.auth, timeout=60) as http,
    ):
        assert http.post("/api/v1/workspaces", json={"name": "faulty"}).status_code == 201
        run = http.post("/api/v1/workspaces/faulty/runs", json={}).json()["id"]
        put = http.put(f"/api/v1/workspaces/faulty/runs/{run}/artifacts/a.txt", content=b"a")
        listed = http.get(f"/api/v1/workspaces/faulty/runs/{run}/artifacts")
    expected = (
        (503, "storage_unavailable")
        if fault == "endpoint down"
        else (
            403,
            "storage_access_denied",
        )
    )
    for response in (put, listed):
        assert (response.status_code, response.json()["code"]) == expected, response.text
        assert "not-the-secret" not in response.text
