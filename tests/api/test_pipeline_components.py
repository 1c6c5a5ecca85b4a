"""Pipeline components end to end: registered with their steps pinned, run as a step of a
pipeline job (the step a child job of type pipeline, its inner steps children of it),
bindings across levels, reuse of inner steps, failure and cancel cascading, and cycles,
nesting depth and bad values refused naming the field."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.domain.errors import InvalidInputError
from shipyard.domain.pipeline_components import MAX_NESTING
from shipyard.schemas.jobs import JobRead
from shipyard.sdk.client import Client
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.api.test_jobs import SHARED_ENVIRONMENTS, log_of
from tests.cli.test_cli import as_admin, invoke
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
        job_kill_grace_seconds=1,
    ) as running:
        yield running


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=60) as client:
        yield client


@pytest.fixture
def ws(admin: Client) -> WorkspaceHandle:
    name = unique()
    admin.workspaces.create(name)
    return admin.workspace(name)


def register(http: httpx.Client, ws: WorkspaceHandle, body: dict[str, Any]) -> httpx.Response:
    return http.post(f"/api/v1/workspaces/{ws.name}/components/{body['name']}/versions", json=body)


def submit(http: httpx.Client, ws: WorkspaceHandle, body: dict[str, Any]) -> httpx.Response:
    return http.post(f"/api/v1/workspaces/{ws.name}/jobs", json=body)


def wait(ws: WorkspaceHandle, name: str, timeout: float = 120) -> JobRead:
    deadline = time.monotonic() + timeout
    while True:
        job = ws.jobs.get_job(name)
        if job.status in TERMINAL:
            return job
        assert time.monotonic() < deadline, f"{name} still {job.status}"
        time.sleep(0.1)


def children(ws: WorkspaceHandle, name: str) -> dict[str, JobRead]:
    """A job's child jobs by step name (``job list --parent-job-name``)."""
    return {str(job.step): job for job in ws.jobs.list_jobs(parent_job_name=name)}


# A command component that writes its text input (its min/max checked) into its output.
WRITE = {
    "name": "write",
    "version": "1",
    "command": "echo ${{inputs.text}} lr=${{inputs.lr}} > ${{outputs.out}}/note.txt",
    "environment": "azureml:shipyard-minimal@latest",
    "inputs": {
        "text": {"type": "string"},
        "lr": {"type": "number", "default": 0.1, "min": 0, "max": 1},
    },
    "outputs": {"out": {"type": "uri_folder"}},
}
# A pipeline component: prefix a folder's note (an inline component), then write a line of
# its own (a registered component, by @latest); its output is the second step's.
NOTES = {
    "name": "notes",
    "version": "1",
    "type": "pipeline",
    "inputs": {
        "folder": {"type": "uri_folder"},
        "text": {"type": "string", "default": "hello"},
        "lr": {"type": "number", "default": 0.5},
    },
    "outputs": {"result": {"type": "uri_folder"}},
    "jobs": {
        "copy": {
            "component": {
                "command": "cat ${{inputs.src}}/note.txt > ${{outputs.copied}}/note.txt",
                "environment": "azureml:shipyard-minimal@latest",
                "inputs": {"src": {"type": "uri_folder"}},
                "outputs": {"copied": {"type": "uri_folder"}},
            },
            "inputs": {"src": "${{parent.inputs.folder}}"},
        },
        "add": {
            "component": "azureml:write@latest",
            "inputs": {"text": "${{parent.inputs.text}}", "lr": "${{parent.inputs.lr}}"},
            "outputs": {"out": "${{parent.outputs.result}}"},
        },
        "show": {
            "command": "cat ${{inputs.a}}/note.txt ${{inputs.b}}/note.txt",
            "inputs": {
                "a": "${{parent.jobs.copy.outputs.copied}}",
                "b": "${{parent.jobs.add.outputs.out}}",
            },
        },
    },
}


def outer_pipeline(text: str = "from-outer") -> dict[str, Any]:
    """seed -> notes (nested) -> report: inputs and outputs cross both levels."""
    return {
        "type": "pipeline",
        "experiment_name": "nested",
        "inputs": {"text": text},
        "outputs": {"final": {"type": "uri_folder"}},
        "jobs": {
            "seed": {
                "command": "echo seeded > ${{outputs.out}}/note.txt",
                "outputs": {"out": {"type": "uri_folder"}},
            },
            "inner": {
                "component": "azureml:notes:1",
                "inputs": {
                    "folder": "${{parent.jobs.seed.outputs.out}}",
                    "text": "${{parent.inputs.text}}",
                },
                "outputs": {"result": "${{parent.outputs.final}}"},
            },
            "report": {
                "command": "cat ${{inputs.r}}/note.txt",
                "inputs": {"r": "${{parent.jobs.inner.outputs.result}}"},
            },
        },
    }


def test_a_pipeline_component_runs_as_a_nested_pipeline_and_its_steps_are_reused(
    http: httpx.Client, ws: WorkspaceHandle
) -> None:
    assert register(http, ws, WRITE).status_code == 201
    made = register(http, ws, NOTES)
    assert made.status_code == 201, made.text
    shown = made.json()
    assert shown["type"] == "pipeline"
    assert shown["jobs"]["add"]["component"] == "azureml:write:1"  # @latest pinned
    anonymous = shown["jobs"]["copy"]["component"]
    assert anonymous.startswith("azureml:azureml_anonymous:")  # the inline one, kept
    assert shown["jobs"]["show"]["component"].startswith("azureml:azureml_anonymous:")
    assert "command" not in shown["jobs"]["show"]
    listed = http.get(f"/api/v1/workspaces/{ws.name}/components").json()["items"]
    assert {c["name"] for c in listed} == {"write", "notes"}  # anonymous ones hidden

    response = submit(http, ws, outer_pipeline())
    assert response.status_code == 201, response.text
    first = wait(ws, response.json()["name"])
    assert first.status == "Completed", first
    steps = children(ws, first.name)
    assert set(steps) == {"seed", "inner", "report"}
    nested = steps["inner"]
    assert nested.type == "pipeline"
    assert nested.status == "Completed"
    assert nested.parent_job_name == first.name
    inner = children(ws, nested.name)
    assert set(inner) == {"copy", "add", "show"}
    assert {j.parent_job_name for j in inner.values()} == {nested.name}
    assert inner["add"].inputs["text"].value == "from-outer"  # outer input, two levels down
    assert str(inner["add"].inputs["lr"].value) == "0.5"  # the pipeline component's default
    assert inner["copy"].inputs["src"].path == steps["seed"].outputs["out"].path
    assert "seeded" in log_of(ws, inner["show"].name)
    assert "from-outer lr=0.5" in log_of(ws, steps["report"].name)
    # The nested step's output is the inner step's that makes it, and so the pipeline's.
    assert nested.outputs["result"].path == inner["add"].outputs["out"].path
    assert first.outputs["final"].path == inner["add"].outputs["out"].path
    assert steps["report"].inputs["r"].path == inner["add"].outputs["out"].path

    again = wait(ws, submit(http, ws, outer_pipeline()).json()["name"])
    assert again.status == "Completed"
    reused = children(ws, children(ws, again.name)["inner"].name)
    assert {s: j.reused_from for s, j in reused.items()} == {s: j.name for s, j in inner.items()}

    changed = wait(ws, submit(http, ws, outer_pipeline(text="changed")).json()["name"])
    third = children(ws, children(ws, changed.name)["inner"].name)
    assert third["copy"].reused_from == inner["copy"].name
    assert third["add"].reused_from is None
    assert third["add"].reuse is not None
    assert third["add"].reuse["differs"] == ["inputs"]


def test_a_failed_inner_step_fails_the_nested_pipeline_and_stops_what_follows(
    http: httpx.Client, ws: WorkspaceHandle
) -> None:
    body = {
        "type": "pipeline",
        "jobs": {
            "nested": {
                "component": {
                    "type": "pipeline",
                    "outputs": {"o": {"type": "uri_folder"}},
                    "jobs": {
                        "broken": {"command": "exit 3", "outputs": {"o": "${{parent.outputs.o}}"}},
                    },
                },
            },
            "after": {
                "command": "ls ${{inputs.i}}",
                "inputs": {"i": "${{parent.jobs.nested.outputs.o}}"},
            },
        },
    }
    response = submit(http, ws, body)
    assert response.status_code == 201, response.text
    pipeline = wait(ws, response.json()["name"])
    assert pipeline.status == "Failed"
    steps = children(ws, pipeline.name)
    assert steps["nested"].status == "Failed"
    assert steps["nested"].error is not None
    assert "broken" in steps["nested"].error
    assert steps["after"].status == "Canceled"
    assert children(ws, steps["nested"].name)["broken"].status == "Failed"


def test_cancel_cascades_into_nested_pipelines(http: httpx.Client, ws: WorkspaceHandle) -> None:
    def nested(command: str) -> dict[str, Any]:
        return {
            "type": "pipeline",
            "inputs": {"i": {"type": "uri_folder", "optional": True}},
            "jobs": {"work": {"command": command}},
        }

    body = {
        "type": "pipeline",
        "jobs": {
            "slow": {"command": "sleep 60", "outputs": {"o": {"type": "uri_folder"}}},
            "later": {  # waits for slow: canceled on its own, before it starts
                "component": nested("echo never"),
                "inputs": {"i": "${{parent.jobs.slow.outputs.o}}"},
            },
            "busy": {"component": nested("sleep 60")},
        },
    }
    response = submit(http, ws, body)
    assert response.status_code == 201, response.text
    name = response.json()["name"]
    deadline = time.monotonic() + 60
    while True:
        steps = children(ws, name)
        busy = children(ws, steps["busy"].name)["work"]
        if steps["slow"].status == "Running" and busy.status == "Running":
            break
        assert time.monotonic() < deadline, (steps, busy)
        time.sleep(0.1)
    assert ws.jobs.cancel(steps["later"].name).status == "Canceled"
    deadline = time.monotonic() + 30
    while children(ws, steps["later"].name)["work"].status != "Canceled":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    ws.jobs.cancel(name)
    ended = wait(ws, name, timeout=30)
    assert ended.status == "Canceled"
    after = children(ws, name)
    assert {j.status for j in after.values()} == {"Canceled"}
    assert children(ws, after["busy"].name)["work"].status == "Canceled"


def chain_component(name: str, inner: str | None) -> dict[str, Any]:
    """A pipeline component with one step: a command, or the pipeline component ``inner``."""
    step: dict[str, Any] = (
        {"component": f"azureml:{inner}:1"} if inner else {"command": "echo deepest"}
    )
    return {"name": name, "version": "1", "type": "pipeline", "jobs": {"step": step}}


@pytest.fixture(scope="module")
def registered(server: RunningServer) -> Iterator[WorkspaceHandle]:
    """One workspace for the bad-input cases (none of them makes anything): write, notes,
    and chain_1 (a command step) ... chain_5 (chain_4 inside)."""
    with (
        server.client() as admin,
        httpx.Client(base_url=server.url, headers=server.auth, timeout=60) as http,
    ):
        ws = admin.workspace(admin.workspaces.create(unique()).name)
        for body in (WRITE, NOTES):
            assert register(http, ws, body).status_code == 201
        for depth in range(1, MAX_NESTING + 1):
            inner = f"chain_{depth - 1}" if depth > 1 else None
            response = register(http, ws, chain_component(f"chain_{depth}", inner))
            assert response.status_code == 201, response.text
        yield ws


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        # a new version of notes holding notes:1; chain_1 holding chain_3 (chain_2, chain_1)
        ({**chain_component("notes", "notes"), "version": "2"}, "jobs.step.component",
         "component_cycle"),
        ({**chain_component("chain_1", "chain_3"), "version": "2"}, "jobs.step.component",
         "component_cycle"),
        (chain_component("chain_6", "chain_5"), "jobs.step.component", "nesting_too_deep"),
        ({**chain_component("bare", None), "outputs": {"y": {"type": "uri_folder"}}},
         "outputs.y", "unbound_output"),
        ({**chain_component("bare", None),
          "jobs": {"s": {"component": "azureml:write:1",
                         "inputs": {"text": "${{parent.inputs.nope}}"}}}},
         "jobs.s.inputs.text", "unknown_binding"),
        ({**chain_component("bare", None), "inputs": {"f": {"type": "uri_folder"}},
          "jobs": {"s": {"component": "azureml:write:1",
                         "inputs": {"text": "${{parent.inputs.f}}"}}}},
         "jobs.s.inputs.text", "type_mismatch"),
        ({**chain_component("bare", None),
          "jobs": {"s": {"component": "azureml:write:1", "inputs": {"text": "x", "lr": 5}}}},
         "jobs.s.inputs.lr", "out_of_range"),
        ({**chain_component("bare", None), "jobs": {"s": {"component": "azureml:write:1"}}},
         "jobs.s.inputs.text", "missing_input"),
        ({**chain_component("bare", None),
          "jobs": {"a": {"command": "echo", "inputs": {"x": "${{parent.jobs.b.outputs.o}}"},
                         "outputs": {"o": {}}},
                   "b": {"command": "echo", "inputs": {"x": "${{parent.jobs.a.outputs.o}}"},
                         "outputs": {"o": {}}}}},
         "jobs.", "pipeline_cycle"),
        ({**chain_component("bare", None), "settings": {}}, "settings", "unknown_field"),
        ({**chain_component("bare", None),
          "jobs": {"tune": {"type": "sweep", "trial": {"command": "echo ${{search_space.x}}"},
                            "search_space": {"x": {"type": "choice", "values": [1]}},
                            "objective": {"goal": "maximize", "primary_metric": "m"},
                            "limits": {"max_total_trials": 1}}}},
         "jobs.tune.trial", "unsupported_step"),
    ],
)  # fmt: skip
def test_bad_pipeline_components_are_400s_naming_the_field(
    http: httpx.Client, registered: WorkspaceHandle, body: dict[str, Any], field: str, code: str
) -> None:
    response = register(http, registered, body)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == code, problem
    assert problem["field"].startswith(field), problem


FOLDER = {"type": "uri_folder", "path": "azureml://datastores/workspaceblobstore/paths/x"}


def uses(component: Any, **step: Any) -> dict[str, Any]:
    return {"type": "pipeline", "jobs": {"outer": {"component": component, **step}}}


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (uses("azureml:notes:1", inputs={"lr": 7, "folder": FOLDER}),  # write's max is 1
         "jobs.outer.jobs.add.inputs.lr", "out_of_range"),
        (uses("azureml:notes:1", inputs={"text": "x"}), "jobs.outer.inputs.folder",
         "missing_input"),
        (uses({**chain_component("chain_3", "chain_1"), "name": "chain_1"}),
         "jobs.outer.jobs.step.component", "component_cycle"),
        (uses({"type": "pipeline", "jobs": {"deeper": {"component": "azureml:chain_5:1"}}}),
         "jobs.outer.jobs.deeper.component", "nesting_too_deep"),
        (uses("azureml:chain_1:1", environment_variables={"A": "1"}),
         "jobs.outer.environment_variables", "invalid_step"),
        (uses("azureml:chain_1:1", outputs={"nope": {}}), "jobs.outer.outputs.nope",
         "unknown_output"),
        (uses({"type": "pipeline", "jobs": {"s": {"command": "echo ${{inputs.x}}",
                                                  "inputs": {"x": "${{parent.inputs.x}}"}}}}),
         # an error inside an inline definition names its place in the body
         "jobs.outer.component.jobs.s.inputs.x", "unknown_binding"),
    ],
)  # fmt: skip
def test_bad_nested_pipelines_are_refused_at_submit_naming_the_field(
    http: httpx.Client, registered: WorkspaceHandle, body: dict[str, Any], field: str, code: str
) -> None:
    response = submit(http, registered, body)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == code, problem
    assert problem["field"].startswith(field), problem
    assert list(registered.jobs.list_jobs()) == []  # nothing half-submitted


PREP = """\
name: prep
command: python prep.py ${{inputs.text}} ${{outputs.table}}
code: ./prep_src
environment: azureml:shipyard-minimal@latest
inputs:
  text: {type: string}
outputs:
  table: {type: uri_folder}
"""
PIPE = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json
type: pipeline
name: prep_twice
inputs:
  text: {type: string}
outputs:
  table: {type: uri_folder}
jobs:
  first:
    component: ./prep.yml
    inputs: {text: "${{parent.inputs.text}}"}
  second:
    component: ./prep.yml
    inputs: {text: again}
    outputs: {table: "${{parent.outputs.table}}"}
"""
JOB = """\
type: pipeline
jobs:
  twice:
    component: ./pipe.yml
    inputs: {text: local}
  count:
    command: cat ${{inputs.t}}/table.txt
    inputs: {t: "${{parent.jobs.twice.outputs.table}}"}
"""


def local_files(folder: Path) -> None:
    (folder / "prep_src").mkdir()
    (folder / "prep_src" / "prep.py").write_text(
        "import sys, pathlib\npathlib.Path(sys.argv[2], 'table.txt').write_text(sys.argv[1])\n"
    )
    (folder / "prep.yml").write_text(PREP)
    (folder / "pipe.yml").write_text(PIPE)
    (folder / "job.yml").write_text(JOB)


def test_the_cli_registers_and_runs_pipeline_component_files_with_local_parts(
    server: RunningServer, ws: WorkspaceHandle, tmp_path: Path
) -> None:
    local_files(tmp_path)
    env = as_admin(server)
    made = invoke(["component", "create", "-f", str(tmp_path / "pipe.yml"), "-w", ws.name,
                   "-o", "json"], env)  # fmt: skip
    assert '"type": "pipeline"' in made.output
    registered = ws.components.get("prep_twice", "1")
    assert registered.jobs is not None
    assert str(registered.jobs["first"]["component"]).startswith("azureml:azureml_anonymous:")

    submitted = ws.jobs.create(load_yaml(tmp_path / "job.yml"), base_dir=tmp_path)
    pipeline = wait(ws, submitted.name)
    assert pipeline.status == "Completed", pipeline
    steps = children(ws, pipeline.name)
    assert "again" in log_of(ws, steps["count"].name)
    inner = children(ws, steps["twice"].name)
    assert inner["first"].inputs["text"].value == "local"
    assert inner["first"].code is not None  # the local code folder, uploaded


def test_a_local_pipeline_component_file_that_contains_itself_is_refused(
    ws: WorkspaceHandle, tmp_path: Path
) -> None:
    (tmp_path / "loop.yml").write_text(
        "type: pipeline\njobs:\n  again:\n    component: ./loop.yml\n"
    )
    body = {"type": "pipeline", "jobs": {"outer": {"component": "./loop.yml"}}}
    with pytest.raises(InvalidInputError) as refused:
        ws.jobs.create(body, base_dir=tmp_path)
    assert refused.value.code == "component_cycle"
    assert refused.value.field == "jobs.outer.component.jobs.again.component"
    assert list(ws.jobs.list_jobs()) == []


def load_yaml(path: Path) -> dict[str, Any]:
    from shipyard.sdk.yaml import load_yaml_file

    return dict(load_yaml_file(path).data)


def test_a_sweep_step_inside_a_pipeline_component_has_its_trial_pinned(
    http: httpx.Client, ws: WorkspaceHandle
) -> None:
    assert register(http, ws, WRITE).status_code == 201
    body = {
        "name": "tuned",
        "type": "pipeline",
        "inputs": {"text": {"type": "string"}},
        "outputs": {"best": {"type": "uri_folder"}},
        "jobs": {
            "tune": {
                "type": "sweep",
                "trial": "azureml:write@latest",
                "inputs": {"text": "${{parent.inputs.text}}"},
                "search_space": {"lr": {"type": "uniform", "min_value": 0, "max_value": 1}},
                "objective": {"goal": "maximize", "primary_metric": "score"},
                "limits": {"max_total_trials": 2},
                "outputs": {"out": "${{parent.outputs.best}}"},
            }
        },
    }
    made = register(http, ws, body)
    assert made.status_code == 201, made.text
    assert made.json()["jobs"]["tune"]["trial"] == "azureml:write:1"
    wrong = {**body, "jobs": {"tune": {**body["jobs"]["tune"], "trial": "azureml:tuned:1"}}}
    refused = register(http, ws, {**wrong, "name": "tuned_twice"})
    assert refused.status_code == 400, refused.text
    assert (refused.json()["field"], refused.json()["code"]) == ("jobs.tune.trial", "invalid_trial")
