"""Batch endpoints end to end: deployments made through the real API, invoked into real jobs
that run the batch driver in real environments (built with uv, shared across test runs),
their outputs read back through the job routes."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import select

from shipyard.api.app import build_services
from shipyard.schemas.jobs import JobRead
from shipyard.sdk.client import Client
from shipyard.sdk.jobs import Input
from shipyard.sdk.workspaces import WorkspaceHandle
from shipyard.store.batch_endpoints import BatchDeploymentRow, BatchEndpointRow
from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.api.test_upload_gc import age, backdate_files, own_storage, rows
from tests.conftest import RunningServer, start_server, unique

MINIMAL = "azureml:shipyard-minimal@latest"
# Scores each CSV file by the sum of its "x" column times the model's factor; a file whose
# name holds "bad" fails, one whose name holds "slow" takes longer than any timeout here.
SCORE = """\
import csv
import json
import os
import time

factor = None


def init():
    global factor
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.json")) as handle:
        factor = json.load(handle)["factor"]


def run(mini_batch):
    rows = []
    for path in mini_batch:
        name = os.path.basename(path)
        if "bad" in name:
            raise ValueError("cannot score " + name)
        if "slow" in name:
            time.sleep(60)
        with open(path, newline="") as handle:
            total = sum(float(row["x"]) for row in csv.DictReader(handle))
        rows.append([name, factor * total, os.getpid()])
    return rows
"""
# Writes its own summary instead of returning rows (output_action: summary_only).
SUMMARY = """\
import os


def init():
    pass


def run(mini_batch):
    target = os.path.join(os.environ["AZUREML_BI_OUTPUT_PATH"], "summary.txt")
    with open(target, "a") as out:
        for path in mini_batch:
            out.write(os.path.basename(path) + "\\n")
    return []
"""


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    with start_server(
        tmp_path_factory.mktemp("data"),
        module_database_url,
        environment_cache_dir=SHARED_ENVIRONMENTS,
        local_compute_cpus=2,
        job_kill_grace_seconds=2,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def sdk(server: RunningServer) -> Iterator[Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def files(sdk: Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workspace with a model (a factor in a JSON file), the scoring code and CSV files."""
    name = unique("ws")
    sdk.workspaces.create(name)
    root = tmp_path_factory.mktemp("files")
    (root / "model").mkdir()
    (root / "model" / "weights.json").write_text(json.dumps({"factor": 3}))
    (root / "src").mkdir()
    (root / "src" / "score.py").write_text(SCORE)
    (root / "src" / "summary.py").write_text(SUMMARY)
    (root / "data").mkdir()
    for index in range(5):
        _csv(root / "data" / f"part-{index}.csv", [index, 1])
    ws = sdk.workspace(name)
    ws.models.create("triple", root / "model")
    return {"ws": ws, "name": name, "root": root}


def _csv(path: Path, values: list[float]) -> None:
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["x"])
        writer.writerows([v] for v in values)


def _endpoint(ws: WorkspaceHandle) -> str:
    name = unique("be")
    ws.batch_endpoints.create({"name": name})
    return name


def _deploy(files: dict[str, Any], endpoint: str, name: str = "main", **fields: Any) -> Any:
    spec = {
        "name": name,
        "endpoint_name": endpoint,
        "model": "azureml:triple:1",
        "code_configuration": {"code": "./src", "scoring_script": "score.py"},
        "environment": MINIMAL,
        **fields,
    }
    ws: WorkspaceHandle = files["ws"]
    return ws.batch_deployments.create(spec, base_dir=files["root"])


def _wait(ws: WorkspaceHandle, name: str, timeout: float = 600) -> JobRead:
    """Completed, Failed or Canceled (the first build of an environment takes a while)."""
    deadline = time.monotonic() + timeout
    while True:
        job = ws.jobs.get_job(name)
        if job.status in ("Completed", "Failed", "Canceled"):
            return job
        assert time.monotonic() < deadline, f"job {name} still {job.status}"
        time.sleep(0.3)


def _log(ws: WorkspaceHandle, name: str) -> str:
    return "".join(piece.text for piece in ws.jobs._submitted.follow(name))


def _score(ws: WorkspaceHandle, job: str, tmp_path: Path) -> Path:
    return ws.jobs.download(job, output_name="score", download_path=tmp_path)


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def _progress(job: JobRead) -> dict[str, int]:
    return {
        k.removeprefix("batch."): int(v)
        for k, v in job.tags.items()
        if k.startswith("batch.") and v.isdigit()
    }


def test_a_scoring_script_scores_a_folder_of_csv_files(
    files: dict[str, Any], tmp_path: Path
) -> None:
    ws: WorkspaceHandle = files["ws"]
    endpoint = _endpoint(ws)
    made = _deploy(
        files,
        endpoint,
        settings={"mini_batch_size": 2, "max_concurrency_per_instance": 2},
    )
    assert made.is_default
    assert made.model == "azureml:triple:1"
    assert made.settings["output_file_name"] == "predictions.csv"
    assert ws.batch_endpoints.get(endpoint).defaults == {"deployment_name": "main"}
    job = ws.batch_endpoints.invoke(endpoint, input="./data", base_dir=files["root"])
    assert job.tags["azureml.batch_endpoint"] == endpoint
    done = _wait(ws, job.name)
    assert done.status == "Completed", _log(ws, job.name)
    rows = _rows(_score(ws, job.name, tmp_path) / "predictions.csv")
    assert sorted((name, float(value)) for name, value, _ in rows) == [
        (f"part-{i}.csv", 3.0 * (i + 1)) for i in range(5)
    ]
    assert _progress(done) == {
        "mini_batches_total": 3,
        "mini_batches_done": 3,
        "mini_batches_failed": 0,
        "files_failed": 0,
    }
    metrics = ws.jobs.get_run(done.id).metrics  # the same figures, as the run's metrics
    assert metrics["batch.mini_batches_done"].value == 3
    assert [j.name for j in ws.batch_endpoints.list_jobs(endpoint)] == [job.name]


def test_azures_invoke_body_and_header_pick_the_deployment(
    server: RunningServer, files: dict[str, Any], tmp_path: Path
) -> None:
    ws: WorkspaceHandle = files["ws"]
    endpoint = _endpoint(ws)
    _deploy(files, endpoint, "first")
    _deploy(files, endpoint, "second", settings={"output_file_name": "out.csv"})
    assert ws.batch_endpoints.get(endpoint).defaults == {"deployment_name": "first"}
    # A datastore URI of the data, uploaded as a job's local input is.
    uploaded = ws.jobs._submitted.prepare(
        {"inputs": {"d": {"type": "uri_folder", "path": str(files["root"] / "data")}}}
    )["inputs"]["d"]["path"]
    url = f"{server.url}/api/v1/workspaces/{files['name']}/batchEndpoints/{endpoint}/jobs"
    body = {"properties": {"InputData": {"data": {"JobInputType": "UriFolder", "Uri": uploaded}}}}
    headers = {**server.auth, "azureml-model-deployment": "second"}
    answer = httpx.post(url, json=body, headers=headers, timeout=60)
    assert answer.status_code == 201, answer.text
    job = answer.json()["name"]
    assert answer.json()["tags"]["azureml.batch_deployment"] == "second"
    assert _wait(ws, job).status == "Completed", _log(ws, job)
    assert len(_rows(_score(ws, job, tmp_path) / "out.csv")) == 5


def test_an_mlflow_model_is_scored_without_code(files: dict[str, Any], tmp_path: Path) -> None:
    from mlflow.sklearn import save_model
    from sklearn.linear_model import LinearRegression

    fitted = LinearRegression().fit([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [0.0, 2.0, 3.0])
    save_model(fitted, tmp_path / "regression")  # MLflow 3's default format: skops
    ws: WorkspaceHandle = files["ws"]
    ws.models.create("regression", tmp_path / "regression", type="mlflow_model")
    data = tmp_path / "tables"
    data.mkdir()
    (data / "a.csv").write_text("a,b\n1,1\n2,0\n")
    (data / "b.csv").write_text("a,b\n0,0\n")
    endpoint = _endpoint(ws)
    made = ws.batch_deployments.create(
        {"name": "sklearn", "endpoint_name": endpoint, "model": "azureml:regression:1"}
    )
    assert made.environment is not None
    assert "shipyard-sklearn" in made.environment
    job = ws.batch_endpoints.invoke(endpoint, input=str(data))
    done = _wait(ws, job.name)
    assert done.status == "Completed", _log(ws, job.name)
    rows = _rows(_score(ws, job.name, tmp_path / "out") / "predictions.csv")
    assert sorted((file, round(float(value), 6)) for value, file in rows) == [
        ("a.csv", 4.0),
        ("a.csv", 5.0),
        ("b.csv", 0.0),
    ]


def test_failed_files_past_the_error_threshold_fail_the_job(files: dict[str, Any]) -> None:
    ws: WorkspaceHandle = files["ws"]
    root: Path = files["root"]
    data = root / "mixed"
    data.mkdir()
    for name in ("a.csv", "bad-1.csv", "bad-2.csv", "c.csv", "slow.csv"):
        _csv(data / name, [1])
    endpoint = _endpoint(ws)
    retry = {"max_retries": 1, "timeout": 2}
    _deploy(
        files,
        endpoint,
        "strict",
        settings={"mini_batch_size": 1, "error_threshold": 1, "retry_settings": retry},
    )
    _deploy(
        files,
        endpoint,
        "lenient",
        settings={"mini_batch_size": 1, "error_threshold": -1, "retry_settings": retry},
    )
    strict = ws.batch_endpoints.invoke(endpoint, input=str(data))
    lenient = ws.batch_endpoints.invoke(endpoint, input=str(data), deployment_name="lenient")
    failed = _wait(ws, strict.name)
    assert failed.status == "Failed"
    assert "error_threshold exceeded: 2 files failed" in failed.tags["batch.error"]
    assert "cannot score bad-" in failed.tags["batch.error"]
    assert "error_threshold exceeded" in _log(ws, strict.name)
    # The job's own error says why, not only that the driver exited with 1.
    assert failed.error is not None
    assert failed.error.startswith("the command exited with code 1: batch scoring failed: ")
    assert "error_threshold exceeded: 2 files failed" in failed.error
    done = _wait(ws, lenient.name)
    assert done.status == "Completed", _log(ws, lenient.name)
    # The slow file timed out twice (tried again once), the bad ones raised twice.
    assert _progress(done) == {
        "mini_batches_total": 5,
        "mini_batches_done": 2,
        "mini_batches_failed": 3,
        "files_failed": 3,
    }
    log = _log(ws, lenient.name)
    assert "timed out" in log
    assert "ValueError: cannot score bad-1.csv" in log


def test_summary_only_leaves_the_output_to_the_script(
    files: dict[str, Any], tmp_path: Path
) -> None:
    ws: WorkspaceHandle = files["ws"]
    endpoint = _endpoint(ws)
    _deploy(
        files,
        endpoint,
        code_configuration={"code": "./src", "scoring_script": "summary.py"},
        settings={"output_action": "summary_only", "mini_batch_size": 3},
    )
    job = ws.batch_endpoints.invoke(endpoint, input=str(files["root"] / "data"))
    assert _wait(ws, job.name).status == "Completed", _log(ws, job.name)
    score = _score(ws, job.name, tmp_path)
    assert not (score / "predictions.csv").exists()
    written = (score / "summary.txt").read_text().split()
    assert sorted(written) == [f"part-{i}.csv" for i in range(5)]


def test_bad_input_is_a_400_naming_the_field(server: RunningServer, files: dict[str, Any]) -> None:
    ws: WorkspaceHandle = files["ws"]
    endpoint = _endpoint(ws)
    base = f"{server.url}/api/v1/workspaces/{files['name']}/batchEndpoints"
    headers = server.auth
    model = {"model": "azureml:triple:1", "environment": MINIMAL}
    code = {"code_configuration": {"code": "sha256:" + "0" * 64, "scoring_script": "s.py"}}
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("POST", "", {"name": "1bad"}, 400, "name"),
        ("POST", "", {"name": endpoint}, 409, "name"),
        ("POST", "", {"name": unique("be"), "auth_mode": "key"}, 400, "auth_mode"),
        (
            "POST",
            "",
            {"name": unique("be"), "defaults": {"deployment_name": "x"}},
            400,
            "defaults.deployment_name",
        ),
        (
            "PATCH",
            f"/{endpoint}",
            {"defaults": {"deployment_name": "nope"}},
            400,
            "defaults.deployment_name",
        ),
        ("POST", f"/{endpoint}/deployments", {"name": "dep1"}, 400, "model"),
        ("POST", f"/{endpoint}/deployments", {"name": "dep1", **model}, 400, "code_configuration"),
        (
            "POST",
            f"/{endpoint}/deployments",
            {"name": "dep1", **model, **code, "settings": {"mini_batch_size": 0}},
            400,
            "settings.mini_batch_size",
        ),
        (
            "POST",
            f"/{endpoint}/deployments",
            {"name": "dep1", **model, **code, "settings": {"output_file_name": "../up.csv"}},
            400,
            "settings.output_file_name",
        ),
        (
            "POST",
            f"/{endpoint}/deployments",
            {"name": "dep1", **model, **code, "settings": {"nonsense": 1}},
            400,
            "settings.nonsense",
        ),
        (
            "POST",
            f"/{endpoint}/deployments",
            {"name": "dep1", **model, **code},
            404,
            "code_configuration.code",
        ),
        (
            "POST",
            f"/{endpoint}/deployments",
            {"name": "dep1", "model": "azureml:nope:1"},
            404,
            "model",
        ),
        (
            "POST",
            f"/{endpoint}/deployments",
            {"name": "dep1", "type": "pipeline"},
            400,
            "component",
        ),
        (
            "POST",
            f"/{endpoint}/deployments",
            {"name": "dep1", "type": "pipeline", "component": "azureml:c:1", **model},
            400,
            "model",
        ),
        (
            "POST",
            f"/{endpoint}/jobs",
            {"inputs": {"d": {"path": "azureml:x@latest"}}},
            400,
            "deployment_name",
        ),
        ("POST", f"/{endpoint}/jobs", {}, 400, "inputs"),
        (
            "POST",
            f"/{endpoint}/jobs",
            {"properties": {"InputData": {"d": {"JobInputType": "Table", "Uri": "x"}}}},
            400,
            "properties.InputData.d.JobInputType",
        ),
        ("POST", "/nope-nope/jobs", {"inputs": {"d": {"path": "x"}}}, 404, "endpoint_name"),
    ]
    for method, path, body, status, field in cases:
        answer = httpx.request(method, base + path, json=body, headers=headers, timeout=30)
        assert answer.status_code == status, (path, body, answer.text)
        assert answer.json().get("field") == field, (path, body, answer.text)
    _deploy(files, endpoint, "main")
    jobs = f"{base}/{endpoint}/jobs"
    cases = [
        ("POST", "", {"inputs": {"a": {"path": "azureml:x@latest"}, "b": 1}}, 400, "inputs"),
        ("POST", "", {"inputs": {"a": {"path": "x", "type": "mltable"}}}, 400, "inputs.a.type"),
        ("POST", "", {"inputs": {"a": {"path": "azureml:nope@latest"}}}, 404, "inputs.a.path"),
        (
            "POST",
            "",
            {"inputs": {"a": {"path": "x"}}, "deployment_name": "zz-nope"},
            404,
            "deployment_name",
        ),
    ]
    for method, path, body, status, field in cases:
        answer = httpx.request(method, jobs + path, json=body, headers=headers, timeout=30)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json().get("field") == field, (body, answer.text)
    default = httpx.delete(f"{base}/{endpoint}/deployments/main", headers=headers)
    assert default.status_code == 204  # the only deployment: the default may go
    assert ws.batch_endpoints.get(endpoint).defaults == {"deployment_name": None}


# A pipeline component: count the files of a folder, and write the count with a label.
COUNT = {
    "name": "count_files",
    "version": "1",
    "type": "pipeline",
    "inputs": {"folder": {"type": "uri_folder"}, "label": {"type": "string", "default": "n"}},
    "outputs": {"result": {"type": "uri_folder"}},
    "jobs": {
        "count": {
            "component": {
                "command": (
                    "echo ${{inputs.label}}=$(ls ${{inputs.src}} | wc -l) "
                    "> ${{outputs.counted}}/count.txt"
                ),
                "environment": MINIMAL,
                "inputs": {"src": {"type": "uri_folder"}, "label": {"type": "string"}},
                "outputs": {"counted": {"type": "uri_folder"}},
            },
            "inputs": {"src": "${{parent.inputs.folder}}", "label": "${{parent.inputs.label}}"},
            "outputs": {"counted": "${{parent.outputs.result}}"},
        }
    },
}


def test_a_pipeline_deployment_submits_a_pipeline_job(
    server: RunningServer, files: dict[str, Any], tmp_path: Path
) -> None:
    ws: WorkspaceHandle = files["ws"]
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=60) as http:
        made = http.post(f"/api/v1/workspaces/{files['name']}/components/count_files/versions",
                         json=COUNT)  # fmt: skip
        assert made.status_code in (200, 201), made.text
    endpoint = _endpoint(ws)
    deployment = ws.batch_deployments.create(
        {
            "name": "counting",
            "endpoint_name": endpoint,
            "type": "pipeline",
            "component": "azureml:count_files@latest",
            "settings": {"continue_on_step_failure": False},
        }
    )
    assert deployment.type == "pipeline"
    assert deployment.component == "azureml:count_files@latest"
    folder = files["root"] / "data"
    job = ws.batch_endpoints.invoke(
        endpoint, inputs={"folder": Input(path=str(folder)), "label": "files"}
    )
    assert job.type == "pipeline"
    done = _wait(ws, job.name)
    assert done.status == "Completed", done.error
    assert [j.name for j in ws.batch_endpoints.list_jobs(endpoint)] == [job.name]
    # An earlier pipeline job as the template (job_definition), its inputs replaced.
    template = ws.batch_deployments.create(
        {
            "name": "again",
            "endpoint_name": endpoint,
            "type": "pipeline",
            "job_definition": f"azureml:{job.name}",
        }
    )
    assert template.job_definition == f"azureml:{job.name}"
    again = ws.batch_endpoints.invoke(
        endpoint,
        deployment_name="again",
        inputs={"folder": Input(path=str(folder)), "label": "again"},
    )
    assert _wait(ws, again.name).status == "Completed"
    steps = {str(j.step): j for j in ws.jobs.list_jobs(parent_job_name=again.name)}
    inner = ws.jobs.download(steps["batch"].name, output_name="result", download_path=tmp_path)
    assert (inner / "count.txt").read_text().strip() == "again=5"


def test_cancel_stops_the_driver_and_its_workers(files: dict[str, Any]) -> None:
    ws: WorkspaceHandle = files["ws"]
    data = files["root"] / "slow"
    data.mkdir()
    for name in ("slow-1.csv", "slow-2.csv"):
        _csv(data / name, [1])
    endpoint = _endpoint(ws)
    _deploy(
        files,
        endpoint,
        settings={"mini_batch_size": 1, "max_concurrency_per_instance": 2,
                  "retry_settings": {"timeout": 300}},
    )  # fmt: skip
    job = ws.batch_endpoints.invoke(endpoint, input=str(data))
    deadline = time.monotonic() + 120
    while "mini-batches" not in _log_so_far(ws, job.name):
        assert time.monotonic() < deadline, _log_so_far(ws, job.name)
        time.sleep(0.3)
    driver = [p for p in psutil.process_iter(["cmdline"]) if _runs(p, job.id)]
    assert len(driver) >= 3  # the driver and its two workers
    ws.jobs.cancel(job.name)
    assert _wait(ws, job.name, timeout=60).status == "Canceled"
    _gone, alive = psutil.wait_procs(driver, timeout=20)
    assert alive == []


def _log_so_far(ws: WorkspaceHandle, name: str) -> str:
    data, _, _, _ = ws.jobs._submitted.logs(name, 0)
    return data.decode(errors="replace")


def _runs(process: Any, job_id: str) -> bool:
    cmdline = " ".join(process.info["cmdline"] or [])
    return "_shipyard_batch_driver.py" in cmdline and job_id in cmdline


def test_the_code_snapshot_stays_while_the_deployment_names_it(
    server: RunningServer, sdk: Client, files: dict[str, Any]
) -> None:
    """The snapshot a deployment's jobs run (the code and the driver) outlives the upload
    collector's sweeps while the deployment exists, and goes once it is deleted (and no job
    names it)."""
    name = unique("ws")
    sdk.workspaces.create(name)
    ws = sdk.workspace(name)
    ws.models.create("triple", files["root"] / "model")
    endpoint = _endpoint(ws)
    ws.batch_deployments.create(
        {
            "name": "main",
            "endpoint_name": endpoint,
            "model": "azureml:triple:1",
            "code_configuration": {"code": "./src", "scoring_script": "score.py"},
            "environment": MINIMAL,
        },
        base_dir=files["root"],
    )
    with server.db.read() as session:
        digest = session.scalars(
            select(BatchDeploymentRow.code_digest)
            .join(BatchEndpointRow, BatchEndpointRow.id == BatchDeploymentRow.endpoint_id)
            .where(BatchEndpointRow.name == endpoint)
        ).one()
    assert digest is not None
    collector = build_services(server.settings, server.db).upload_gc
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=60) as http:
        assert [r.committed_at is not None for r in rows(server, name, digest)] == [True]
        folder = own_storage(http, name) / "LocalUpload" / digest
        assert sorted(p.name for p in folder.iterdir()) == [
            "_shipyard_batch_driver.py",
            "score.py",
            "summary.py",
        ]
        age(server, name, digest)
        backdate_files(folder)
        assert [r for r in collector.collect().removed if r.digest == digest] == []
        ws.batch_deployments.delete("main", endpoint_name=endpoint)
        removed = [r for r in collector.collect().removed if r.digest == digest]
        assert [(r.purpose, r.files_removed) for r in removed] == [("code", True)]
