"""The native model API over real HTTP: versions from uploads, runs and job outputs, what an
MLmodel file says, aliases, stages, files, deletes, and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_data import TRAVERSALS, model_upload
from tests.api.test_uploads import manifest, upload
from tests.conftest import RunningServer, unique

BLOB = "azureml://datastores/workspaceblobstore/paths"
MLMODEL = b"""\
artifact_path: model
flavors:
  python_function:
    env:
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    python_version: 3.11.9
  sklearn:
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.5.0
mlflow_version: 3.1.0
model_uuid: 0123456789abcdef
signature:
  inputs: '[{"type": "double", "name": "x", "required": true}]'
  outputs: '[{"type": "long", "required": true}]'
  params: null
"""


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=30) as client:
        yield client


@pytest.fixture
def ws(http: httpx.Client) -> str:
    name = unique()
    assert http.post("/api/v1/workspaces", json={"name": name}).status_code == 201
    return name


def models_url(ws: str, rest: str = "") -> str:
    return f"/api/v1/workspaces/{ws}/models{rest}"


def register(http: httpx.Client, ws: str, name: str, **body: Any) -> httpx.Response:
    return http.post(models_url(ws, f"/{name}/versions"), json=body)


def stored_files(server: RunningServer) -> list[str]:
    root = Path(server.settings.artifact_root_uri)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def run_with_artifact(http: httpx.Client, ws: str, path: str, content: bytes) -> str:
    run = str(http.post(f"/api/v1/workspaces/{ws}/runs", json={}).json()["id"])
    put = http.put(f"/api/v1/workspaces/{ws}/runs/{run}/artifacts/{path}", content=content)
    assert put.status_code == 201, put.text
    return run


def test_an_uploaded_mlflow_model_shows_its_flavors_and_signature(
    http: httpx.Client, ws: str, server: RunningServer
) -> None:
    files = {"MLmodel": MLMODEL, "model.pkl": b"\x80\x04not unpickled"}
    uri = model_upload(http, ws, files)
    made = register(
        http,
        ws,
        "churn",
        path=uri,
        type="mlflow_model",
        description="first",
        tags={"team": "growth"},
        properties={"auc": "0.91"},
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["name"], body["version"], body["type"]) == ("churn", 1, "mlflow_model")
    assert body["path"] == uri
    assert body["storage_location"] == "mlflow-artifacts:/" + uri.split("/paths/", 1)[1]
    assert body["logged_model_id"].startswith("m-")
    assert set(body["flavors"]) == {"python_function", "sklearn"}
    assert body["flavors"]["sklearn"]["sklearn_version"] == "1.5.0"
    assert body["signature"]["inputs"] == [{"type": "double", "name": "x", "required": True}]
    assert body["properties"] == {"auc": "0.91"}
    assert (body["description"], body["tags"]) == ("first", {"team": "growth"})

    # The same files again: no new bytes, the same logged model, a new version.
    before = stored_files(server)
    assert model_upload(http, ws, files) == uri
    again = register(http, ws, "churn", path=uri, type="mlflow_model").json()
    assert again["version"] == 2
    assert again["logged_model_id"] == body["logged_model_id"]
    assert stored_files(server) == before

    model = http.get(models_url(ws, "/churn")).json()
    assert model["latest_version"] == 2
    listed = http.get(models_url(ws)).json()["items"]
    assert [m["name"] for m in listed] == ["churn"]
    versions = http.get(models_url(ws, "/churn/versions")).json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    assert http.get(models_url(ws, "/churn/versions/latest")).json()["version"] == 2


def test_versions_from_runs_and_job_outputs_keep_their_lineage(http: httpx.Client, ws: str) -> None:
    run = run_with_artifact(http, ws, "model/weights.bin", b"weights")
    from_run = register(http, ws, "lineage", path=f"runs:/{run}/model").json()
    assert from_run["job_name"] == from_run["run_id"] == run
    assert from_run["storage_location"] == f"mlflow-artifacts:/runs/{run}/artifacts/model"
    from_job = register(
        http, ws, "lineage", path=f"azureml://jobs/{run}/outputs/artifacts/paths/model/"
    ).json()
    assert from_job["job_name"] == run
    assert from_job["storage_location"] == from_run["storage_location"]
    files = http.get(models_url(ws, "/lineage/versions/2/files"), params={"recursive": True})
    assert [f["path"] for f in files.json()["items"]] == ["weights.bin"]
    assert http.get(models_url(ws, "/lineage/versions/2/files/weights.bin")).content == b"weights"

    named = register(http, ws, "lineage", path=f"azureml://jobs/{run}/outputs/model/paths/x")
    assert (named.status_code, named.json()["code"]) == (404, "output_not_found")
    explicit = register(
        http, ws, "lineage", path=f"{BLOB}/runs/{run}/artifacts/model", job_name=run
    )
    assert explicit.status_code == 201, explicit.text
    other_run = str(http.post(f"/api/v1/workspaces/{ws}/runs", json={}).json()["id"])
    wrong = register(http, ws, "lineage", path=f"runs:/{run}/model", job_name=other_run)
    assert (wrong.status_code, wrong.json()["field"]) == (400, "job_name")


def test_explicit_versions_must_be_new_numbers(http: httpx.Client, ws: str) -> None:
    uri = model_upload(http, ws, {"m.bin": b"m"})
    assert register(http, ws, "numbered", path=uri, version="5").json()["version"] == 5
    assert register(http, ws, "numbered", path=uri).json()["version"] == 6
    for taken in ("5", "3"):
        got = register(http, ws, "numbered", path=uri, version=taken)
        assert (got.status_code, got.json()["code"]) == (409, "model_version_exists")
    for bad in ("abc", "0", "1.0"):
        got = register(http, ws, "numbered", path=uri, version=bad)
        assert (got.status_code, got.json()["field"]) == (400, "version")
    assert http.delete(models_url(ws, "/numbered/versions/6")).status_code == 204
    assert register(http, ws, "numbered", path=uri).json()["version"] == 7  # never reused


def test_aliases_stages_and_updates(http: httpx.Client, ws: str) -> None:
    uri = model_upload(http, ws, {"m.bin": b"aliases"})
    register(http, ws, "aliased", path=uri)
    register(http, ws, "aliased", path=uri)
    set_alias = http.put(models_url(ws, "/aliased/aliases/champion"), json={"version": 1})
    assert set_alias.json()["aliases"] == ["champion"]
    assert http.get(models_url(ws, "/aliased/aliases/champion")).json()["version"] == 1
    http.put(models_url(ws, "/aliased/aliases/champion"), json={"version": 2})
    assert http.get(models_url(ws, "/aliased")).json()["aliases"] == {"champion": 2}
    reserved = http.put(models_url(ws, "/aliased/aliases/latest"), json={"version": 1})
    assert (reserved.status_code, reserved.json()["field"]) == (400, "alias")
    assert http.delete(models_url(ws, "/aliased/aliases/champion")).status_code == 204
    missing = http.get(models_url(ws, "/aliased/aliases/champion"))
    assert (missing.status_code, missing.json()["code"]) == (404, "alias_not_found")

    staged = http.post(models_url(ws, "/aliased/versions/1/stage"), json={"stage": "production"})
    assert staged.json()["stage"] == "Production"
    http.post(
        models_url(ws, "/aliased/versions/2/stage"),
        json={"stage": "Production", "archive_existing_versions": True},
    )
    assert http.get(models_url(ws, "/aliased/versions/1")).json()["stage"] == "Archived"
    bad_stage = http.post(models_url(ws, "/aliased/versions/1/stage"), json={"stage": "Live"})
    assert (bad_stage.status_code, bad_stage.json()["field"]) == (400, "stage")

    changed = http.patch(models_url(ws, "/aliased/versions/2"), json={"description": "v2"}).json()
    assert changed["description"] == "v2"
    model = http.patch(models_url(ws, "/aliased"), json={"tags": {"owner": "ml"}}).json()
    assert model["tags"] == {"owner": "ml"}
    renamed = http.patch(models_url(ws, "/aliased"), json={"name": "other"})
    assert (renamed.status_code, renamed.json()["code"]) == (400, "unknown_field")


def test_model_files_must_be_there_and_be_what_the_type_says(http: httpx.Client, ws: str) -> None:
    no_mlmodel = model_upload(http, ws, {"model.pkl": b"x"})
    cases = [
        ({"path": no_mlmodel, "type": "mlflow_model"}, 400, "mlmodel_missing", "path"),
        (
            {"path": f"{no_mlmodel}/model.pkl", "type": "mlflow_model"},
            400,
            "mlmodel_missing",
            "path",
        ),
        ({"path": f"{BLOB}/nowhere"}, 404, "path_not_found", "path"),
        ({"path": "azureml://datastores/lake/paths/m"}, 404, "datastore_not_found", "path"),
        ({"path": "./model"}, 400, "unsupported_path", "path"),
        ({"path": "https://example.com/m.pkl"}, 400, "unsupported_path", "path"),
        ({"path": "runs:/nope/model"}, 400, "invalid_source", "path"),
        (
            {"path": no_mlmodel, "training_data": ["azureml:nothing:1"]},
            404,
            "data_version_not_found",
            "training_data.0",
        ),
        (
            {"path": no_mlmodel, "training_data": ["nothing"]},
            400,
            "invalid_reference",
            "training_data.0",
        ),
        ({"path": no_mlmodel, "type": "triton_model"}, 400, "invalid_field", "type"),
    ]
    for body, status, code, field in cases:
        got = register(http, ws, "checked", **body)
        assert (got.status_code, got.json()["code"], got.json()["field"]) == (
            status,
            code,
            field,
        ), body
    assert http.get(models_url(ws, "/checked")).status_code == 404  # nothing half-registered

    for text, code in (
        (b"flavors: [unclosed\n", "invalid_descriptor"),
        (b"a: &a [*a, *a, *a]\n", "invalid_descriptor"),
        (b"just text\n", "invalid_mlmodel"),
        (b"flavors: not-a-mapping\n", "invalid_mlmodel"),
    ):
        uri = model_upload(http, ws, {"MLmodel": text})
        got = register(http, ws, "checked", path=uri, type="mlflow_model")
        assert (got.status_code, got.json()["code"]) == (400, code), text


def test_an_unfinished_upload_is_not_a_model(http: httpx.Client, ws: str) -> None:
    digest, body = manifest({"m.bin": b"half"})
    begun = http.put(f"/api/v1/workspaces/{ws}/models/artifacts/{digest}", json=body).json()
    got = register(http, ws, "half", path=begun["uri"])
    # Nothing arrived yet: the folder does not exist (404), or exists half-filled (409).
    assert got.status_code in (404, 409), got.text
    http.put(f"/api/v1/workspaces/{ws}/models/artifacts/{digest}/m.bin", content=b"half")
    got = register(http, ws, "half", path=begun["uri"])
    assert (got.status_code, got.json()["code"]) == (409, "upload_incomplete")


@pytest.mark.parametrize("bad", TRAVERSALS)
def test_traversal_in_a_model_path_is_refused(http: httpx.Client, ws: str, bad: str) -> None:
    got = register(http, ws, "evil", path=f"{BLOB}/{bad}")
    assert got.status_code == 400, got.text
    assert got.json()["field"] == "path"
    run = str(http.post(f"/api/v1/workspaces/{ws}/runs", json={}).json()["id"])
    got = register(http, ws, "evil", path=f"runs:/{run}/{bad}")
    assert (got.status_code, got.json()["field"]) == (400, "path"), got.text


@pytest.mark.parametrize("bad", ["%2e%2e/%2e%2e/x", "%252e%252e/x", "a%5cb", "a%00b", "x" * 300])
def test_traversal_in_model_file_routes_is_refused(http: httpx.Client, ws: str, bad: str) -> None:
    register(http, ws, "files", path=model_upload(http, ws, {"m.bin": b"files"}))
    got = http.get(models_url(ws, f"/files/versions/1/files/{bad}"))
    assert (got.status_code, got.json()["code"]) == (400, "invalid_path"), got.text
    listed = http.get(models_url(ws, "/files/versions/1/files"), params={"path": bad})
    assert (listed.status_code, listed.json()["code"]) == (400, "invalid_path"), listed.text


def test_deletes_and_other_workspaces(http: httpx.Client, ws: str) -> None:
    uri = model_upload(http, ws, {"m.bin": b"delete me"})
    register(http, ws, "doomed", path=uri)
    register(http, ws, "doomed", path=uri)
    other = unique()
    http.post("/api/v1/workspaces", json={"name": other})
    for route in ("/doomed", "/doomed/versions/1", "/doomed/versions/latest"):
        got = http.get(models_url(other, route))
        assert (got.status_code, got.json()["code"]) == (404, "model_not_found")
    # Another workspace's files by URI: its logged model is not this workspace's.
    stolen = register(http, other, "stolen", path=uri)
    assert stolen.status_code in (400, 404), stolen.text
    bad_version = http.get(models_url(ws, "/doomed/versions/one"))
    assert (bad_version.status_code, bad_version.json()["field"]) == (400, "version")

    assert http.delete(models_url(ws, "/doomed/versions/1")).status_code == 204
    assert [v["version"] for v in http.get(models_url(ws, "/doomed/versions")).json()["items"]] == [
        2
    ]
    assert http.delete(models_url(ws, "/doomed")).status_code == 204
    assert http.get(models_url(ws, "/doomed")).status_code == 404


def test_upload_sizes_are_refused_before_sending(http: httpx.Client, ws: str) -> None:
    digest = upload(http, ws, {"ok.bin": b"ok"}, area="models")
    committed = http.post(f"/api/v1/workspaces/{ws}/models/artifacts/{digest}/commit").json()
    assert committed["committed"] is True
    assert committed["logged_model_id"].startswith("m-")


def test_naming_training_data_needs_data_read(
    http: httpx.Client, ws: str, server: RunningServer
) -> None:
    role = f"Modeller {unique('r')}"
    body = {"name": role, "actions": ["workspaces/read", "workspaces/models/*"]}
    assert http.post("/api/v1/roles", json=body).status_code == 201
    user = unique("modeller")
    http.post("/api/v1/users", json={"name": user})
    token = http.post("/api/v1/tokens", json={"name": unique("t"), "user": user}).json()["token"]
    assignment = {"role": role, "user": user}
    assert (
        http.post(f"/api/v1/workspaces/{ws}/role-assignments", json=assignment).status_code == 201
    )
    digest = upload(http, ws, {"t.csv": b"a\n1\n"})
    data_path = f"{BLOB}/LocalUpload/{digest}"
    http.post(f"/api/v1/workspaces/{ws}/data/train/versions", json={"path": data_path})
    uri = model_upload(http, ws, {"m.bin": b"modeller"})

    as_user = {"Authorization": f"Bearer {token}"}
    refused = http.post(
        models_url(ws, "/guarded/versions"),
        json={"path": uri, "training_data": ["azureml:train:1"]},
        headers=as_user,
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    allowed = http.post(models_url(ws, "/guarded/versions"), json={"path": uri}, headers=as_user)
    assert allowed.status_code == 201, allowed.text
