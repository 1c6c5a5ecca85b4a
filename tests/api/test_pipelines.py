"""Pipeline jobs end to end: steps as child jobs on the local compute, bindings, parallel
branches, failure handling, cancel, and reuse with its explanation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shipyard.schemas.jobs import JobRead
from shipyard.sdk.client import Client
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.api.test_jobs import SHARED_ENVIRONMENTS, log_of
from tests.conftest import RunningServer, start_server, unique

TERMINAL = ("Completed", "Failed", "Canceled")


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


@pytest.fixture
def ws(admin: Client) -> WorkspaceHandle:
    name = unique()
    admin.workspaces.create(name)
    return admin.workspace(name)


def submit(server: RunningServer, ws: WorkspaceHandle, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/workspaces/{ws.name}/jobs", json=body, headers=server.auth
    )


def wait(ws: WorkspaceHandle, name: str, timeout: float = 120) -> JobRead:
    deadline = time.monotonic() + timeout
    while True:
        job = ws.jobs.get_job(name)
        if job.status in TERMINAL:
            return job
        assert time.monotonic() < deadline, f"{name} still {job.status}"
        time.sleep(0.1)


def register_train(ws: WorkspaceHandle, server: RunningServer) -> None:
    body = {
        "name": "train",
        "version": "1",
        "command": "cat ${{inputs.data}}/table.csv > ${{outputs.model}}/model.txt "
        "&& echo lr=${{inputs.lr}} >> ${{outputs.model}}/model.txt "
        "$[[&& echo epochs=${{inputs.epochs}} >> ${{outputs.model}}/model.txt]]",
        "environment": "azureml:shipyard-minimal@latest",
        "inputs": {
            "data": {"type": "uri_folder"},
            "lr": {"type": "number", "default": 0.1, "min": 0, "max": 1},
            "epochs": {"type": "integer", "optional": True},
        },
        "outputs": {"model": {"type": "uri_folder"}},
    }
    response = httpx.post(
        f"{server.url}/api/v1/workspaces/{ws.name}/components/train/versions",
        json=body,
        headers=server.auth,
    )
    assert response.status_code == 201, response.text


def three_steps(lr: float = 0.5) -> dict[str, Any]:
    return {
        "type": "pipeline",
        "experiment_name": "pipes",
        "inputs": {"rows": 3, "lr": lr},
        "outputs": {"final": {"type": "uri_folder"}},
        "jobs": {
            "prep": {
                "command": "seq ${{inputs.n}} > ${{outputs.table}}/table.csv",
                "inputs": {"n": "${{parent.inputs.rows}}"},
                "outputs": {"table": {"type": "uri_folder"}},
            },
            "train": {
                "component": "azureml:train:1",
                "inputs": {
                    "data": "${{parent.jobs.prep.outputs.table}}",
                    "lr": "${{parent.inputs.lr}}",
                },
                "outputs": {"model": "${{parent.outputs.final}}"},
            },
            "side": {"command": "echo independent branch"},
            "report": {
                "command": "cat ${{inputs.model}}/model.txt",
                "inputs": {"model": "${{parent.jobs.train.outputs.model}}"},
            },
        },
    }


def steps_of(ws: WorkspaceHandle, pipeline: JobRead) -> dict[str, JobRead]:
    assert pipeline.steps is not None
    return {step: ws.jobs.get_job(child) for step, child in pipeline.steps.items()}


def test_a_pipeline_runs_its_steps_in_dependency_order_and_reuses_them_when_resubmitted(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    register_train(ws, server)
    response = submit(server, ws, three_steps())
    assert response.status_code == 201, response.text
    first = wait(ws, response.json()["name"])
    assert first.status == "Completed", first
    assert first.type == "pipeline"
    steps = steps_of(ws, first)
    assert all(s.status == "Completed" for s in steps.values())
    assert steps["prep"].end_time is not None
    assert steps["train"].start_time is not None
    assert steps["train"].start_time >= steps["prep"].end_time
    assert steps["report"].start_time >= steps["train"].end_time  # type: ignore[operator]
    assert "1\n2\n3\nlr=0.5" in log_of(ws, steps["report"].name)
    assert "epochs" not in log_of(ws, steps["report"].name)  # the optional fragment dropped
    children = {j.name for j in ws.jobs.list_jobs(parent_job_name=first.name)}
    assert children == {s.name for s in steps.values()}
    assert (
        steps["train"].outputs["model"].path.endswith(f"/paths/azureml/{steps['train'].name}/model")
    )
    assert steps["train"].reuse is not None
    assert steps["train"].reuse["reused_from"] is None

    again = wait(ws, submit(server, ws, three_steps()).json()["name"])
    assert again.status == "Completed"
    reused = steps_of(ws, again)
    assert {s: j.reused_from for s, j in reused.items()} == {s: j.name for s, j in steps.items()}
    assert reused["report"].outputs == steps["report"].outputs

    changed = wait(ws, submit(server, ws, three_steps(lr=0.25)).json()["name"])
    assert changed.status == "Completed"
    third = steps_of(ws, changed)
    assert third["prep"].reused_from == steps["prep"].name  # its inputs did not change
    assert third["train"].reused_from is None
    assert third["train"].reuse is not None
    assert third["train"].reuse["differs"] == ["inputs"]
    assert "lr=0.25" in log_of(ws, third["report"].name)


def test_a_failed_step_stops_its_downstream_steps_only(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    body = {
        "type": "pipeline",
        "jobs": {
            "broken": {"command": "exit 2", "outputs": {"out": {"type": "uri_folder"}}},
            "after": {
                "command": "ls ${{inputs.x}}",
                "inputs": {"x": "${{parent.jobs.broken.outputs.out}}"},
            },
            "other": {"command": "sleep 1; echo fine"},
        },
    }
    pipeline = wait(ws, submit(server, ws, body).json()["name"])
    assert pipeline.status == "Failed"
    assert pipeline.error is not None
    assert "broken" in pipeline.error
    steps = steps_of(ws, pipeline)
    assert steps["broken"].status == "Failed"
    assert steps["after"].status == "Canceled"
    assert steps["other"].status == "Completed"  # continue_on_step_failure is on by default

    body["settings"] = {"continue_on_step_failure": False}
    body["jobs"]["other"] = {"command": "sleep 30"}  # type: ignore[index]
    stopped = wait(ws, submit(server, ws, body).json()["name"], timeout=60)
    assert stopped.status == "Failed"
    assert steps_of(ws, stopped)["other"].status == "Canceled"


def test_canceling_a_pipeline_cancels_its_steps(server: RunningServer, ws: WorkspaceHandle) -> None:
    body = {
        "type": "pipeline",
        "jobs": {
            "slow": {"command": "sleep 60", "outputs": {"o": {"type": "uri_folder"}}},
            "next": {
                "command": "ls ${{inputs.i}}",
                "inputs": {"i": "${{parent.jobs.slow.outputs.o}}"},
            },
        },
    }
    name = submit(server, ws, body).json()["name"]
    deadline = time.monotonic() + 60
    while steps_of(ws, ws.jobs.get_job(name))["slow"].status != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    ws.jobs.cancel(name)
    ended = wait(ws, name, timeout=30)
    assert ended.status == "Canceled"
    assert {s.status for s in steps_of(ws, ended).values()} == {"Canceled"}


@pytest.mark.parametrize(
    ("jobs", "field", "code"),
    [
        (
            {
                "a": {
                    "command": "ls ${{inputs.x}}",
                    "inputs": {"x": "${{parent.jobs.b.outputs.o}}"},
                    "outputs": {"o": {"type": "uri_folder"}},
                },
                "b": {
                    "command": "ls ${{inputs.x}}",
                    "inputs": {"x": "${{parent.jobs.a.outputs.o}}"},
                    "outputs": {"o": {"type": "uri_folder"}},
                },
            },
            "jobs.",
            "pipeline_cycle",
        ),
        (
            {
                "a": {
                    "command": "ls ${{inputs.x}}",
                    "inputs": {"x": "${{parent.jobs.nope.outputs.o}}"},
                }
            },
            "jobs.a.inputs.x",
            "unknown_binding",
        ),
        (
            {"a": {"command": "echo ${{inputs.x}}", "inputs": {"x": "${{parent.inputs.missing}}"}}},
            "jobs.a.inputs.x",
            "unknown_binding",
        ),
        (
            {
                "a": {
                    "component": "azureml:train:1",
                    "inputs": {
                        "data": {"path": "azureml://datastores/workspaceblobstore/paths/x"},
                        "lr": 7,
                    },
                }
            },
            "jobs.a.inputs.lr",
            None,
        ),
        (
            {"a": {"component": "azureml:train:1", "inputs": {"lr": 0.1}}},
            "jobs.a.inputs.data",
            None,
        ),
        (
            {"a": {"command": "echo ${{inputs.nope}}"}},
            "jobs.a",
            None,
        ),
        ({"a": {}}, "jobs.a.component", "invalid_step"),
        ({"a": {"component": "azureml:nothing:1"}}, "jobs.a.component", None),
    ],
)
def test_bad_pipelines_are_400s_naming_the_field(
    server: RunningServer, ws: WorkspaceHandle, jobs: dict[str, Any], field: str, code: str | None
) -> None:
    register_train(ws, server)
    response = submit(server, ws, {"type": "pipeline", "jobs": jobs})
    assert 400 <= response.status_code < 500, response.text
    problem = response.json()
    assert problem["field"] is not None, problem
    assert problem["field"].startswith(field), problem
    if code is not None:
        assert problem["code"] == code, problem
    assert ws.jobs.list_jobs() is not None
    assert list(ws.jobs.list_jobs()) == []  # nothing half-submitted


PREP_YML = """
name: prep
version: "1"
command: python prep.py ${{inputs.rows}} ${{outputs.table}}
code: ./prep_src
environment: azureml:shipyard-minimal@latest
inputs:
  rows: {type: integer, min: 1}
outputs:
  table: {type: uri_folder}
"""
SCORE_YML = """
name: score
command: >-
  wc -l ${{inputs.table}}/table.csv > ${{outputs.result}}/count.txt
  && cat ${{outputs.result}}/count.txt
environment: azureml:shipyard-minimal@latest
inputs:
  table: {type: uri_folder}
outputs:
  result: {type: uri_folder}
"""
PREP_PY = (
    "import sys, pathlib\n"
    "rows = ''.join(f'{i}\\n' for i in range(int(sys.argv[1])))\n"
    "pathlib.Path(sys.argv[2], 'table.csv').write_text(rows)\n"
)


def local_components(folder: Any) -> None:
    (folder / "prep_src").mkdir()
    (folder / "prep_src" / "prep.py").write_text(PREP_PY)
    (folder / "prep.yml").write_text(PREP_YML)
    (folder / "score.yml").write_text(SCORE_YML)


def test_the_python_dsl_builds_steps_named_after_variables(
    ws: WorkspaceHandle, tmp_path: Any
) -> None:
    from shipyard.sdk.components import load_component
    from shipyard.sdk.pipelines import pipeline

    local_components(tmp_path)
    prep = load_component(tmp_path / "prep.yml")
    score = load_component(tmp_path / "score.yml")

    @pipeline(experiment_name="dsl")
    def counting(rows: int = 4) -> dict[str, Any]:
        table = prep(rows=rows)
        counted = score(table=table.outputs.table)
        return {"result": counted.outputs.result}

    built = counting(rows=5)
    assert set(built.spec["jobs"]) == {"table", "counted"}
    assert built.spec["jobs"]["counted"]["inputs"]["table"] == (
        "${{parent.jobs.table.outputs.table}}"
    )
    first = wait(ws, ws.jobs.create(built).name)
    assert first.status == "Completed", first
    steps = steps_of(ws, first)
    assert "5 " in log_of(ws, steps["counted"].name)
    assert steps["table"].code is not None
    again = wait(ws, ws.jobs.create(counting(rows=5)).name)
    assert {s.reused_from for s in steps_of(ws, again).values()} == {
        steps["table"].name,
        steps["counted"].name,
    }


def test_the_cli_submits_a_pipeline_yaml_with_local_component_files(
    server: RunningServer, ws: WorkspaceHandle, tmp_path: Any
) -> None:
    import subprocess
    import sys

    from tests.cli.test_cli import WIDE, as_admin

    local_components(tmp_path)
    (tmp_path / "pipeline.yml").write_text(
        """
type: pipeline
experiment_name: cli-pipes
inputs:
  rows: 7
jobs:
  make:
    component: ./prep.yml
    inputs: {rows: "${{parent.inputs.rows}}"}
  count:
    component: ./score.yml
    inputs: {table: "${{parent.jobs.make.outputs.table}}"}
"""
    )
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", "job", "create", "-f", str(tmp_path / "pipeline.yml"),
         "-w", ws.name, "--stream", "-o", "json"],
        env={**__import__("os").environ, **WIDE, **as_admin(server)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    pipelines = [j for j in ws.jobs.list_jobs() if j.type == "pipeline"]
    assert len(pipelines) == 1
    assert pipelines[0].status == "Completed"
    steps = steps_of(ws, pipelines[0])
    assert "7 " in log_of(ws, steps["count"].name)
