"""The pipeline DSL's pipeline components: a ``@pipeline`` function called inside another is
a nested pipeline step, run by a real server like ``component: {type: pipeline, ...}`` in
YAML (a child job of type pipeline whose inner steps are its children), its outputs wired
to later steps, and every inner step reused on resubmit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.jobs import JobRead
from shipyard.sdk.client import Client
from shipyard.sdk.components import load_component
from shipyard.sdk.pipelines import pipeline
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.conftest import RunningServer, start_server, unique

TERMINAL = ("Completed", "Failed", "Canceled")
ENVIRONMENT = "azureml:shipyard-minimal@latest"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    with start_server(
        tmp_path_factory.mktemp("data"),
        module_database_url,
        environment_cache_dir=SHARED_ENVIRONMENTS,
        local_compute_cpus=2,
    ) as running:
        yield running


@pytest.fixture
def ws(admin: Client) -> WorkspaceHandle:
    name = unique()
    admin.workspaces.create(name)
    return admin.workspace(name)


def wait(ws: WorkspaceHandle, name: str, timeout: float = 120) -> JobRead:
    deadline = time.monotonic() + timeout
    while True:
        job = ws.jobs.get_job(name)
        if job.status in TERMINAL:
            return job
        assert time.monotonic() < deadline, f"{name} still {job.status}"
        time.sleep(0.1)


def children(ws: WorkspaceHandle, name: str) -> dict[str, JobRead]:
    return {str(job.step): job for job in ws.jobs.list_jobs(parent_job_name=name)}


def components(folder: Path) -> tuple[Any, Any]:
    (folder / "write.yml").write_text(
        "name: write\n"
        "command: echo ${{inputs.text}} x${{inputs.times}} > ${{outputs.out}}/note.txt\n"
        f"environment: {ENVIRONMENT}\n"
        "inputs: {text: {type: string}, times: {type: integer, default: 1}}\n"
        "outputs: {out: {type: uri_folder}}\n"
    )
    (folder / "stamp.yml").write_text(
        "name: stamp\n"
        "command: (cat ${{inputs.src}}/note.txt; echo stamped) > ${{outputs.out}}/note.txt\n"
        f"environment: {ENVIRONMENT}\n"
        "inputs: {src: {type: uri_folder}}\noutputs: {out: {type: uri_folder}}\n"
    )
    return load_component(folder / "write.yml"), load_component(folder / "stamp.yml")


def test_an_inner_pipeline_used_twice_runs_nested_and_is_reused(
    ws: WorkspaceHandle, tmp_path: Path
) -> None:
    write, stamp = components(tmp_path)

    @pipeline
    def write_and_stamp(text: Any, times: int = 2) -> dict[str, Any]:
        written = write(text=text, times=times)
        stamped = stamp(src=written.outputs.out)
        return {"note": stamped.outputs.out}

    @pipeline(experiment_name="nested-dsl")
    def twice(greeting: str = "hello") -> dict[str, Any]:
        first = write_and_stamp(text=greeting)
        second = write_and_stamp(text="bye", times=3)
        both = stamp(src=second.outputs.note)
        return {"a": first.outputs.note, "b": both.outputs.out}

    built = twice()
    jobs = built.spec["jobs"]
    assert set(jobs) == {"first", "second", "both"}
    inner = jobs["first"]["component"]
    assert inner["type"] == "pipeline"
    assert inner["name"] == "write_and_stamp"
    assert inner["inputs"] == {
        "text": {"type": "string"},
        "times": {"type": "integer", "default": 2},
    }
    assert inner["outputs"] == {"note": {"type": "uri_folder"}}
    assert set(inner["jobs"]) == {"written", "stamped"}
    assert inner["jobs"]["stamped"]["outputs"] == {"out": "${{parent.outputs.note}}"}
    assert jobs["first"]["inputs"] == {"text": "${{parent.inputs.greeting}}", "times": 2}
    assert jobs["first"]["outputs"] == {"note": "${{parent.outputs.a}}"}
    assert jobs["both"]["inputs"] == {"src": "${{parent.jobs.second.outputs.note}}"}

    done = wait(ws, ws.jobs.create(built).name)
    assert done.status == "Completed", done
    outer = children(ws, done.name)
    assert set(outer) == {"first", "second", "both"}
    assert outer["first"].type == "pipeline"
    inner_steps = children(ws, outer["second"].name)
    assert set(inner_steps) == {"written", "stamped"}
    both = outer["both"]
    assert "out" in both.outputs

    again = wait(ws, ws.jobs.create(twice()).name)
    assert again.status == "Completed", again
    rerun = children(ws, again.name)
    for step in ("first", "second"):
        before = children(ws, outer[step].name)
        after = children(ws, rerun[step].name)
        assert {s: j.reused_from for s, j in after.items()} == {
            s: j.name for s, j in before.items()
        }
    assert rerun["both"].reused_from == both.name


def test_an_inner_pipeline_input_of_unknown_type_is_refused(tmp_path: Path) -> None:
    write, _ = components(tmp_path)

    @pipeline
    def unused(flag: Any = None) -> dict[str, Any]:
        return {"out": write(text="x").outputs.out}

    @pipeline
    def outer() -> dict[str, Any]:
        return {"out": unused().outputs.out}

    with pytest.raises(InvalidInputError) as caught:
        outer()
    assert caught.value.field == "inputs.flag"


def test_outputs_of_a_pipeline_job_are_only_for_nesting(tmp_path: Path) -> None:
    write, _ = components(tmp_path)

    @pipeline
    def alone() -> dict[str, Any]:
        return {"out": write(text="x").outputs.out}

    with pytest.raises(InvalidInputError):
        _ = alone().outputs
