"""Run artifacts through the real mlflow client: the ``mlflow-artifacts`` proxy of a workspace."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import matplotlib

matplotlib.use("Agg")  # no display in tests
import matplotlib.pyplot as plt
import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

from tests.conftest import unique
from tests.mlflow.conftest import Tracking


def _proxy(tracking: Tracking, path: str) -> str:
    return f"{tracking.uri}/api/2.0/mlflow-artifacts/artifacts/{path}"


def test_files_logged_by_a_user_script_come_back(tracking: Tracking, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("first notes")
    folder = tmp_path / "outputs"
    (folder / "deep" / "deeper").mkdir(parents=True)
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "deep" / "b.bin").write_bytes(bytes(range(256)) * 40)
    (folder / "deep" / "deeper" / "c.json").write_text('{"c": 3}')

    mlflow.set_experiment(unique("exp"))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "notes.txt"))
        mlflow.log_artifact(str(tmp_path / "notes.txt"), artifact_path="docs")
        mlflow.log_artifacts(str(folder), artifact_path="outputs")
        mlflow.log_dict({"lr": 0.1, "layers": [1, 2]}, "config.json")
        mlflow.log_text("hello text", "texts/hello.txt")
        figure, axes = plt.subplots()
        axes.plot([0, 1, 2], [2, 1, 3])
        mlflow.log_figure(figure, "plots/curve.png")
        plt.close(figure)
        run_id = run.info.run_id

    client = MlflowClient()
    top = {f.path: f for f in client.list_artifacts(run_id)}
    assert set(top) == {"config.json", "docs", "notes.txt", "outputs", "plots", "texts"}
    assert top["docs"].is_dir
    assert not top["notes.txt"].is_dir
    assert top["notes.txt"].file_size == len("first notes")
    deep = [f.path for f in client.list_artifacts(run_id, "outputs/deep")]
    assert deep == ["outputs/deep/b.bin", "outputs/deep/deeper"]

    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json") == {
        "lr": 0.1,
        "layers": [1, 2],
    }
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/texts/hello.txt") == "hello text"
    target = tmp_path / "back"
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="outputs", dst_path=str(target)
    )
    assert (Path(local) / "deep" / "b.bin").read_bytes() == bytes(range(256)) * 40
    assert (Path(local) / "deep" / "deeper" / "c.json").read_text() == '{"c": 3}'
    png = Path(client.download_artifacts(run_id, "plots/curve.png", str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_tracking_api_lists_a_runs_artifacts(tracking: Tracking, tmp_path: Path) -> None:
    (tmp_path / "m.txt").write_text("m")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "m.txt"), artifact_path="sub")
    response = tracking.http.get(
        tracking.api("artifacts/list"),
        params={"run_id": run.info.run_id, "path": "sub"},
        headers=tracking.server.auth,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["root_uri"] == run.info.artifact_uri
    assert body["files"] == [{"path": "sub/m.txt", "is_dir": False, "file_size": 1}]


def test_ranged_download_and_delete_through_the_proxy(tracking: Tracking) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("0123456789", "digits.txt")
    path = f"runs/{run.info.run_id}/artifacts/digits.txt"
    auth = tracking.server.auth
    ranged = tracking.http.get(_proxy(tracking, path), headers={**auth, "Range": "bytes=2-5"})
    assert ranged.status_code == 206
    assert ranged.content == b"2345"
    assert ranged.headers["content-range"] == "bytes 2-5/10"
    beyond = tracking.http.get(_proxy(tracking, path), headers={**auth, "Range": "bytes=50-"})
    assert beyond.status_code == 416

    MlflowClient()._tracking_client._get_artifact_repo(run.info.run_id).delete_artifacts(
        "digits.txt"
    )
    assert MlflowClient().list_artifacts(run.info.run_id) == []
    gone = tracking.http.get(_proxy(tracking, path), headers=auth)
    assert gone.status_code == 404
    assert gone.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


# Encoded forms reach the server as they are; a literal ``..`` in a URL's path is folded by
# HTTP clients before sending, so it is tried where a client cannot fold it: the query.
ENCODED_ATTACKS = ["%2e%2e/%2e%2e/x", "%252e%252e/%252e%252e/x", "sub%5c..%5c..%5cx", "a%00b"]
LITERAL_ATTACKS = ["../../../../etc/passwd", "sub/../../x", "sub\\..\\x", "a\x00b"]


@pytest.mark.parametrize("attack", ENCODED_ATTACKS)
def test_encoded_paths_that_try_to_leave_the_run_are_refused(
    tracking: Tracking, attack: str
) -> None:
    with mlflow.start_run() as run:
        pass
    url = _proxy(tracking, f"runs/{run.info.run_id}/artifacts/{attack}")
    auth = tracking.server.auth
    for response in (
        tracking.http.put(url, content=b"evil", headers=auth),
        tracking.http.get(url, headers=auth),
        tracking.http.delete(url, headers=auth),
    ):
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("attack", ENCODED_ATTACKS + LITERAL_ATTACKS)
def test_listed_paths_that_try_to_leave_the_run_are_refused(
    tracking: Tracking, attack: str
) -> None:
    with mlflow.start_run() as run:
        pass
    listed = tracking.http.get(
        _proxy(tracking, "").rstrip("/"),
        params={"path": f"runs/{run.info.run_id}/artifacts/{attack}"},
        headers=tracking.server.auth,
    )
    assert listed.status_code == 400, listed.text
    tracked = tracking.http.get(
        tracking.api("artifacts/list"),
        params={"run_id": run.info.run_id, "path": attack},
        headers=tracking.server.auth,
    )
    assert tracked.status_code == 400, tracked.text


def test_an_absolute_or_foreign_path_finds_nothing(tracking: Tracking) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("mine", "mine.txt")
    auth = tracking.server.auth
    for path in ("etc/passwd", f"experiments/{run.info.run_id}/x", "runs/nope/artifacts/x"):
        response = tracking.http.get(_proxy(tracking, path), headers=auth)
        assert response.status_code == 404, (path, response.text)
    # .../artifacts//etc/passwd: an absolute path is refused outright
    response = tracking.http.get(_proxy(tracking, "/etc/passwd"), headers=auth)
    assert response.status_code == 400


def test_another_workspace_cannot_reach_a_runs_artifacts(tracking: Tracking) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("secret", "s.txt")
    other = unique("ws")
    tracking.admin("POST", "/api/v1/workspaces", json={"name": other})
    foreign = f"{tracking.server.url}/mlflow/workspaces/{other}/api/2.0/mlflow-artifacts/artifacts"
    response = tracking.http.get(
        f"{foreign}/runs/{run.info.run_id}/artifacts/s.txt", headers=tracking.server.auth
    )
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_reader_reads_but_cannot_write(tracking: Tracking, tmp_path: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_text("hi", "hi.txt")
    _, token = tracking.user("Reader")
    headers = {"Authorization": f"Bearer {token}"}
    path = _proxy(tracking, f"runs/{run.info.run_id}/artifacts/hi.txt")
    assert tracking.http.get(path, headers=headers).content == b"hi"
    refused = tracking.http.put(path, content=b"changed", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error_code"] == "PERMISSION_DENIED"
    assert tracking.http.delete(path, headers=headers).status_code == 403
    anonymous = httpx.get(path)
    assert anonymous.status_code == 401


def test_a_deleted_run_takes_no_artifacts(tracking: Tracking, tmp_path: Path) -> None:
    with mlflow.start_run() as run:
        pass
    MlflowClient().delete_run(run.info.run_id)
    (tmp_path / "late.txt").write_text("late")
    # The artifact client raises requests' HTTPError with the server's message in it.
    with pytest.raises(requests.HTTPError, match="is deleted") as caught:
        MlflowClient().log_artifact(run.info.run_id, str(tmp_path / "late.txt"))
    assert caught.value.response.status_code == 400  # MLflow's status for a deleted run


def test_a_big_file_goes_up_in_parts(
    tracking: Tracking, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the client does for files of 500 MB and more, tried on a small file.
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(1024 * 1024))
    # A spy on the client (it still does the work) shows that it took the multipart path.
    real = HttpArtifactRepository._try_multipart_upload
    calls: list[str] = []

    def spy(self: HttpArtifactRepository, local_file: str, artifact_path: str | None = None):  # type: ignore[no-untyped-def]
        calls.append(local_file)
        return real(self, local_file, artifact_path)

    monkeypatch.setattr(HttpArtifactRepository, "_try_multipart_upload", spy)
    data = os.urandom(3 * 1024 * 1024 + 12345)  # four parts, the last one short
    (tmp_path / "big.bin").write_bytes(data)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "big.bin"), artifact_path="weights")
    back = MlflowClient().download_artifacts(run.info.run_id, "weights/big.bin", str(tmp_path))
    assert Path(back).read_bytes() == data
    assert len(calls) == 1
    uploads = tracking.server.settings.data_dir / "artifacts"
    assert not [p for p in uploads.rglob("uploads/*") if p.is_file()]  # parts cleaned up


def test_multipart_parts_need_their_uploads_key(tracking: Tracking) -> None:
    with mlflow.start_run() as run:
        pass
    auth = tracking.server.auth
    mpu = f"{tracking.uri}/api/2.0/mlflow-artifacts/mpu"
    folder = f"runs/{run.info.run_id}/artifacts/out"
    created = tracking.http.post(
        f"{mpu}/create/{folder}", json={"path": "/home/me/f.bin", "num_parts": 2}, headers=auth
    )
    assert created.status_code == 200, created.text
    body = created.json()
    first, second = body["credentials"]
    assert first["url"].endswith(f"/part/{body['upload_id']}/1")
    assert tracking.http.put(first["url"], content=b"a").status_code == 401
    wrong = tracking.http.put(
        first["url"], content=b"a", headers={"X-Shipyard-Upload-Key": "guess"}
    )
    assert wrong.status_code == 404
    ok = tracking.http.put(first["url"], content=b"abc", headers=first["headers"])
    assert ok.status_code == 200
    assert ok.headers["etag"].strip('"') == hashlib.sha256(b"abc").hexdigest()
    ref = {"path": "/home/me/f.bin", "upload_id": body["upload_id"]}
    incomplete = tracking.http.post(f"{mpu}/complete/{folder}", json=ref, headers=auth)
    assert incomplete.status_code == 400
    assert "not uploaded" in incomplete.json()["message"]
    tracking.http.put(second["url"], content=b"def", headers=second["headers"])
    done = tracking.http.post(f"{mpu}/complete/{folder}", json=ref, headers=auth)
    assert done.status_code == 200, done.text
    got = tracking.http.get(_proxy(tracking, f"{folder}/f.bin"), headers=auth)
    assert got.content == b"abcdef"
    again = tracking.http.put(second["url"], content=b"x", headers=second["headers"])
    assert again.status_code == 404  # a finished upload takes no more parts

    aborted = tracking.http.post(
        f"{mpu}/create/{folder}", json={"path": "g.bin", "num_parts": 1}, headers=auth
    ).json()
    ref = {"path": "g.bin", "upload_id": aborted["upload_id"]}
    assert tracking.http.post(f"{mpu}/abort/{folder}", json=ref, headers=auth).status_code == 200
    cred = aborted["credentials"][0]
    assert tracking.http.put(cred["url"], content=b"x", headers=cred["headers"]).status_code == 404
