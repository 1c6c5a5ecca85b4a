"""Sweep jobs end to end: trials as child jobs on the local compute, sampled by Optuna, their
objective read from the metrics they log, early termination, limits, cancel, bad input, and
a sweep as a pipeline step."""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.schemas.jobs import JobRead
from shipyard.sdk.client import Client
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.conftest import RunningServer, start_server, unique

TERMINAL = ("Completed", "Failed", "Canceled")
# A trial: logs `score` (one value per step, `--pause` seconds apart) with the MLflow REST API
# and the job's own MLflow variables; no client library, so a trial starts in milliseconds.
TRIAL_PY = """\
import argparse, json, os, time, urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--score", type=float, required=True)
parser.add_argument("--steps", type=int, default=1)
parser.add_argument("--pause", type=float, default=0.0)
parser.add_argument("--other", action="append", default=[])
args = parser.parse_args()
print("ARGS", json.dumps(vars(args)))
for step in range(args.steps):
    body = {"run_id": os.environ["MLFLOW_RUN_ID"], "metrics": [{
        "key": "score", "value": args.score, "step": step,
        "timestamp": int(time.time() * 1000)}]}
    request = urllib.request.Request(
        os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-batch",
        data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"],
                 "Content-Type": "application/json"})
    urllib.request.urlopen(request).read()
    time.sleep(args.pause)
"""
# The same with the real MLflow client, as users write it.
MLFLOW_PY = """\
import sys
import mlflow
x, k = float(sys.argv[1]), int(sys.argv[2])
mlflow.log_metric("score", x * k)
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


@pytest.fixture
def ws(admin: Client) -> WorkspaceHandle:
    name = unique()
    admin.workspaces.create(name)
    return admin.workspace(name)


@pytest.fixture
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "trial.py").write_text(TRIAL_PY)
    (folder / "ml.py").write_text(MLFLOW_PY)
    return folder


def submit(server: RunningServer, ws: WorkspaceHandle, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/workspaces/{ws.name}/jobs", json=body, headers=server.auth
    )


def wait(ws: WorkspaceHandle, name: str, timeout: float = 90) -> JobRead:
    deadline = time.monotonic() + timeout
    while True:
        job = ws.jobs.get_job(name)
        if job.status in TERMINAL:
            return job
        assert time.monotonic() < deadline, f"{name} still {job.status}"
        time.sleep(0.1)


def trials_of(ws: WorkspaceHandle, sweep: str) -> list[JobRead]:
    found = list(ws.jobs.list_jobs(parent_job_name=sweep))
    return sorted(found, key=lambda t: t.trial.number if t.trial else -1)


def most_at_once(trials: list[JobRead]) -> int:
    """The most trials that were running at one moment, from their start and end times."""
    events: list[tuple[datetime, int]] = []
    for trial in trials:
        if trial.start_time is not None and trial.end_time is not None:
            events += [(trial.start_time, 1), (trial.end_time, -1)]
    running = most = 0
    for _, change in sorted(events):  # an end sorts before a start at the same instant
        running += change
        most = max(most, running)
    return most


def sweep_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "sweep",
        "experiment_name": "sweeps",
        "trial": {"command": "echo ${{search_space.x}}", "resources": {"cpu": 0.5}},
        "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        "objective": {"goal": "maximize", "primary_metric": "score"},
        "limits": {"max_total_trials": 2},
    }
    body.update(overrides)
    return body


def test_a_random_sweep_runs_trials_in_range_and_shows_the_best(
    ws: WorkspaceHandle, code: Path
) -> None:
    body = sweep_body(
        trial={
            "command": "python ml.py ${{search_space.x}} ${{search_space.k}} "
            "&& echo n=${{search_space.n}} q=${{search_space.q}}",
            "code": str(code),
            "resources": {"cpu": 0.5},
        },
        search_space={
            "x": {"type": "uniform", "min_value": 0.2, "max_value": 0.8},
            "k": {"type": "choice", "values": [1, 2, 3]},
            "n": {"type": "randint", "upper": 4},
            "q": {"type": "qloguniform", "min_value": 0, "max_value": 3, "q": 2},
        },
        sampling_algorithm={"type": "random", "seed": 7},
        limits={"max_total_trials": 5, "max_concurrent_trials": 2},
    )
    sweep = wait(ws, ws.jobs.create(body).name)
    assert sweep.status == "Completed", sweep
    assert sweep.type == "sweep"
    trials = trials_of(ws, sweep.name)
    assert [t.name for t in trials] == [f"{sweep.name}_{n}" for n in range(5)]
    assert most_at_once(trials) <= 2  # the compute had room for four
    scores = {}
    for trial in trials:
        assert trial.status == "Completed", trial
        assert trial.trial is not None
        values = trial.trial.parameters
        assert 0.2 <= values["x"] <= 0.8
        assert values["k"] in (1, 2, 3)
        assert values["n"] in range(4)
        assert values["q"] % 2 == 0
        assert 1 <= values["q"] <= math.exp(3) + 1
        assert trial.inputs["x"].value == repr(values["x"])  # what the command was given
        assert trial.parent_job_name == sweep.name
        scores[trial.name] = ws.jobs.get_run(trial.id).metrics["score"].value
        assert scores[trial.name] == pytest.approx(values["x"] * values["k"])
    assert len({repr(t.trial.parameters) for t in trials if t.trial}) == 5
    assert sweep.sweep is not None
    best = max(scores, key=lambda name: scores[name])
    assert sweep.sweep.best_trial == best
    assert sweep.sweep.best_value == pytest.approx(scores[best])
    assert sweep.sweep.best_parameters == next(t.trial for t in trials if t.name == best).parameters  # type: ignore[union-attr]
    assert (sweep.sweep.trials, sweep.sweep.completed, sweep.sweep.active) == (5, 5, 0)
    assert sweep.sweep.ended_because == "max_total_trials trials were run"


def test_a_grid_sweep_enumerates_exactly_the_product(
    server: RunningServer, ws: WorkspaceHandle, code: Path
) -> None:
    body = sweep_body(
        trial={
            "command": "python trial.py --score ${{search_space.a}} --other ${{search_space.b}}",
            "code": str(code),
            "resources": {"cpu": 0.5},
        },
        search_space={
            "a": {"type": "choice", "values": [1, 2]},
            "b": {"type": "choice", "values": ["x", "y z", "$(id)"]},  # quoted as values
        },
        sampling_algorithm="grid",
        objective={"goal": "minimize", "primary_metric": "score"},
        limits={"max_total_trials": 100, "max_concurrent_trials": 3},
    )
    sweep = wait(ws, ws.jobs.create(body).name)
    assert sweep.status == "Completed", sweep
    trials = trials_of(ws, sweep.name)
    pairs = sorted((t.trial.parameters["a"], t.trial.parameters["b"]) for t in trials if t.trial)
    assert pairs == sorted(itertools.product([1, 2], ["x", "y z", "$(id)"]))
    assert all(t.status == "Completed" for t in trials)
    assert most_at_once(trials) <= 3
    assert sweep.sweep is not None
    assert sweep.sweep.best_value == 1
    assert sweep.sweep.best_parameters is not None
    assert sweep.sweep.best_parameters["a"] == 1
    assert sweep.sweep.ended_because == "every point of the grid was tried"


def test_a_bayesian_sweep_samples_within_its_space(ws: WorkspaceHandle, code: Path) -> None:
    body = sweep_body(
        trial={
            "command": "python trial.py --score ${{search_space.x}} --other ${{search_space.c}}"
            " --other ${{search_space.q}}",
            "code": str(code),
            "resources": {"cpu": 0.5},
        },
        search_space={
            "x": {"type": "uniform", "min_value": -1, "max_value": 1},
            "c": {"type": "choice", "values": ["a", "b"]},
            "q": {"type": "quniform", "min_value": 0, "max_value": 10, "q": 5},
        },
        sampling_algorithm="bayesian",
        limits={"max_total_trials": 3, "max_concurrent_trials": 3},
    )
    sweep = wait(ws, ws.jobs.create(body).name)
    assert sweep.status == "Completed", sweep
    trials = trials_of(ws, sweep.name)
    assert len(trials) == 3
    for trial in trials:
        assert trial.trial is not None
        assert -1 <= trial.trial.parameters["x"] <= 1
        assert trial.trial.parameters["c"] in ("a", "b")
        assert trial.trial.parameters["q"] in (0, 5, 10)
    assert sweep.sweep is not None
    assert sweep.sweep.sampling_algorithm["type"] == "bayesian"


def test_the_bandit_policy_stops_a_trial_far_behind_the_best(
    ws: WorkspaceHandle, code: Path
) -> None:
    # Two trials at once (a grid of two): a good one that logs ten values at once, and a bad
    # one that logs a value every 0.3 s for 18 s. Once the good one's values are in, the bad
    # one's next value is outside the slack of the best at that interval.
    body = sweep_body(
        trial={
            "command": "if [ ${{search_space.bad}} = yes ]; "
            "then python trial.py --score 0.1 --steps 60 --pause 0.3; "
            "else python trial.py --score 1.0 --steps 10; fi",
            "code": str(code),
            "resources": {"cpu": 0.5},
        },
        search_space={"bad": {"type": "choice", "values": ["yes", "no"]}},
        sampling_algorithm="grid",
        early_termination={"type": "bandit", "slack_factor": 0.1},
        limits={"max_total_trials": 2, "max_concurrent_trials": 2},
    )
    sweep = wait(ws, ws.jobs.create(body).name, timeout=60)
    assert sweep.status == "Completed", sweep
    trials = {t.trial.parameters["bad"]: t for t in trials_of(ws, sweep.name) if t.trial}
    stopped, good = trials["yes"], trials["no"]
    assert good.status == "Completed"
    assert stopped.status == "Canceled", stopped
    assert stopped.trial is not None
    assert stopped.trial.early_terminated is not None
    assert "bandit" in stopped.trial.early_terminated
    assert sweep.sweep is not None
    assert sweep.sweep.best_trial == good.name
    assert sweep.sweep.early_terminated == 1


def test_canceling_a_sweep_cancels_its_trials(
    server: RunningServer, ws: WorkspaceHandle, code: Path
) -> None:
    body = sweep_body(
        trial={"command": "sleep 60 # ${{search_space.x}}", "resources": {"cpu": 0.5}},
        limits={"max_total_trials": 10, "max_concurrent_trials": 2},
    )
    response = submit(server, ws, body)
    assert response.status_code == 201, response.text
    name = response.json()["name"]
    deadline = time.monotonic() + 60
    while not [t for t in trials_of(ws, name) if t.status == "Running"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    ws.jobs.cancel(name)
    ended = wait(ws, name, timeout=30)
    assert ended.status == "Canceled"
    trials = trials_of(ws, name)
    assert len(trials) == 2  # nothing sampled after the cancel
    assert {t.status for t in trials} == {"Canceled"}


def test_a_sweep_that_times_out_stops_its_trials(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    body = sweep_body(
        trial={"command": "sleep 60 # ${{search_space.x}}", "resources": {"cpu": 0.5}},
        limits={"max_total_trials": 10, "max_concurrent_trials": 1, "timeout": 2},
    )
    response = submit(server, ws, body)
    assert response.status_code == 201, response.text
    ended = wait(ws, response.json()["name"], timeout=40)
    assert ended.status == "Failed"  # no trial completed
    assert ended.error is not None
    assert "timeout" in ended.error
    assert {t.status for t in trials_of(ws, ended.name)} == {"Canceled"}


def test_a_sweep_whose_first_trials_all_fail_stops_sampling(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    body = sweep_body(
        trial={"command": "exit 3 # ${{search_space.x}}", "resources": {"cpu": 0.25}},
        limits={"max_total_trials": 50, "max_concurrent_trials": 5},
    )
    response = submit(server, ws, body)
    assert response.status_code == 201, response.text
    ended = wait(ws, response.json()["name"])
    assert ended.status == "Failed"
    assert ended.error is not None
    assert "first 5 trials failed, so the trial itself is likely broken" in ended.error
    trials = trials_of(ws, ended.name)
    assert 5 <= len(trials) <= 10  # the first five, and those started while they ran
    assert [t.status for t in trials[:5]] == ["Failed"] * 5
    assert {t.status for t in trials} <= {"Failed", "Canceled"}  # later ones: stopped


GOOD = sweep_body(trial={"command": "echo ${{search_space.x}}"})


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD, "search_space": {"x": {"type": "gaussian"}}}, "search_space.x.type"),
        (
            {**GOOD, "search_space": {"x": {"type": "uniform", "min_value": 0}}},
            "search_space.x.max_value",
        ),
        (
            {**GOOD, "search_space": {"x": {"type": "uniform", "min_value": 2, "max_value": 1}}},
            "search_space.x.min_value",
        ),
        (
            {
                **GOOD,
                "search_space": {"x": {"type": "quniform", "min_value": 0, "max_value": 1, "q": 0}},
            },
            "search_space.x.q",
        ),
        (
            {**GOOD, "search_space": {"x": {"type": "normal", "mu": 0, "sigma": -1}}},
            "search_space.x.sigma",
        ),
        ({**GOOD, "search_space": {"x": {"type": "choice", "values": []}}}, "search_space.x"),
        ({**GOOD, "search_space": {"x": {"type": "randint", "upper": 0}}}, "search_space.x.upper"),
        (
            {
                **GOOD,
                "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1, "q": 1}},
            },
            "search_space.x.q",
        ),
        ({**GOOD, "sampling_algorithm": "grid"}, "search_space.x"),
        (
            {
                **GOOD,
                "search_space": {"x": {"type": "normal", "mu": 0, "sigma": 1}},
                "sampling_algorithm": "bayesian",
            },
            "search_space.x",
        ),
        (
            {
                **GOOD,
                "sampling_algorithm": "bayesian",
                "early_termination": {"type": "bandit", "slack_factor": 0.1},
            },
            "early_termination",
        ),
        ({**GOOD, "early_termination": {"type": "bandit"}}, "early_termination.slack_factor"),
        ({**GOOD, "early_termination": {"type": "median"}}, "early_termination.type"),
        (_without("objective"), "objective"),
        ({**GOOD, "objective": {"goal": "best", "primary_metric": "score"}}, "objective.goal"),
        ({**GOOD, "objective": {"goal": "maximize"}}, "objective.primary_metric"),
        ({**GOOD, "limits": {"max_total_trials": 0}}, "limits.max_total_trials"),
        ({**GOOD, "limits": {"max_concurrent_trials": -1}}, "limits.max_concurrent_trials"),
        ({**GOOD, "limits": {"timeout": 0}}, "limits.timeout"),
        ({**GOOD, "limits": {"trial_timeout": 0}}, "limits.trial_timeout"),
        ({**GOOD, "sampling_algorithm": "annealing"}, "sampling_algorithm.type"),
        ({**GOOD, "trial": {"command": "echo ${{search_space.y}}"}}, "trial.command"),
        ({**GOOD, "trial": {"command": "echo ${{inputs.nope}}"}}, "trial.command"),
        ({**GOOD, "inputs": {"x": 1}}, "search_space.x"),
        ({**GOOD, "search_space": {}}, "search_space"),
        (
            {**GOOD, "trial": {"command": "echo", "environment": "azureml:nope:1"}},
            "trial.environment",
        ),
        ({**GOOD, "compute": "nowhere"}, "compute"),
    ],
)
def test_bad_sweeps_are_400s_naming_the_field(
    server: RunningServer, ws: WorkspaceHandle, body: dict[str, Any], field: str
) -> None:
    response = submit(server, ws, body)
    assert 400 <= response.status_code < 500, response.text
    problem = response.json()
    assert problem["field"] is not None, problem
    assert problem["field"].startswith(field), problem
    assert list(ws.jobs.list_jobs()) == []  # nothing half-submitted


def test_a_sweep_is_a_pipeline_step_whose_outputs_are_the_best_trials(
    server: RunningServer, ws: WorkspaceHandle, code: Path
) -> None:
    body = {
        "type": "pipeline",
        "experiment_name": "sweep-pipes",
        "jobs": {
            "prep": {
                "command": "echo 3 > ${{outputs.data}}/factor.txt",
                "outputs": {"data": {"type": "uri_folder"}},
            },
            "tune": {
                "type": "sweep",
                "trial": {
                    "command": "python trial.py --score ${{search_space.x}} "
                    "--other $(cat ${{inputs.data}}/factor.txt) "
                    "&& echo ${{search_space.x}} > ${{outputs.model}}/x.txt",
                    "code": str(code),
                    "resources": {"cpu": 0.5},
                },
                "inputs": {"data": "${{parent.jobs.prep.outputs.data}}"},
                "outputs": {"model": {"type": "uri_folder"}},
                "search_space": {"x": {"type": "choice", "values": [1, 5, 3]}},
                "sampling_algorithm": "grid",
                "objective": {"goal": "maximize", "primary_metric": "score"},
                "limits": {"max_concurrent_trials": 3},
            },
            "report": {
                "command": "cat ${{inputs.model}}/x.txt",
                "inputs": {"model": "${{parent.jobs.tune.outputs.model}}"},
            },
        },
    }
    pipeline = wait(ws, ws.jobs.create(body).name)
    assert pipeline.status == "Completed", pipeline
    assert pipeline.steps is not None
    tune = ws.jobs.get_job(pipeline.steps["tune"])
    assert tune.type == "sweep"
    assert tune.sweep is not None
    assert tune.sweep.best_parameters == {"x": 5}
    trials = trials_of(ws, tune.name)
    assert len(trials) == 3
    best = next(t for t in trials if t.name == tune.sweep.best_trial)
    assert tune.outputs["model"].path == best.outputs["model"].path
    assert all(t.outputs["model"].path != best.outputs["model"].path for t in trials if t != best)
    report = ws.jobs.get_job(pipeline.steps["report"])
    log = "".join(piece.text for piece in ws.jobs._submitted.follow(report.name))
    assert log.strip() == "5"


TRAIN_YML = """
name: train
version: "1"
command: >-
  python trial.py --score ${{inputs.lr}} --other ${{inputs.epochs}}
  && echo lr=${{inputs.lr}} > ${{outputs.model}}/model.txt
code: ./src
environment: azureml:shipyard-minimal@latest
inputs:
  lr: {type: number, min: 0, max: 1}
  epochs: {type: integer, default: 3}
outputs:
  model: {type: uri_folder}
"""


def test_a_sweep_step_sweeps_a_component_and_the_cli_submits_it(
    server: RunningServer, ws: WorkspaceHandle, code: Path
) -> None:
    import os
    import subprocess
    import sys

    from tests.cli.test_cli import WIDE, as_admin

    (code.parent / "train.yml").write_text(TRAIN_YML)
    (code.parent / "pipeline.yml").write_text(
        """
type: pipeline
experiment_name: cli-sweeps
jobs:
  tune:
    type: sweep
    trial: ./train.yml
    inputs: {epochs: 2}
    search_space:
      lr: {type: choice, values: [0.25, 0.75, 0.5]}
    sampling_algorithm: grid
    objective: {goal: minimize, primary_metric: score}
    limits: {max_total_trials: 2, max_concurrent_trials: 2}
  show:
    command: cat ${{inputs.model}}/model.txt
    inputs: {model: "${{parent.jobs.tune.outputs.model}}"}
"""
    )
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", "job", "create", "-f", str(code.parent / "pipeline.yml"),
         "-w", ws.name, "--stream", "-o", "json"],
        env={**os.environ, **WIDE, **as_admin(server)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    pipeline = next(j for j in ws.jobs.list_jobs() if j.type == "pipeline")
    assert pipeline.steps is not None
    tune = ws.jobs.get_job(pipeline.steps["tune"])
    trials = trials_of(ws, tune.name)
    assert len(trials) == 2  # max_total_trials cuts the grid short
    assert all(t.inputs["epochs"].value == "2" for t in trials)
    assert tune.sweep is not None
    assert tune.sweep.best_parameters is not None
    lowest = min(t.trial.parameters["lr"] for t in trials if t.trial)
    assert tune.sweep.best_parameters == {"lr": lowest}
    log = "".join(piece.text for piece in ws.jobs._submitted.follow(pipeline.steps["show"]))
    assert log.strip() == f"lr={lowest}"

    # A sweep job file, as `az ml job create -f` takes it; `job show` shows the best trial.
    (code.parent / "sweep.yml").write_text(
        """
$schema: https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json
type: sweep
name: cli-sweep
trial:
  code: ./src
  command: python trial.py --score ${{search_space.x}}
  environment: azureml:shipyard-minimal@latest
  resources: {cpu: 0.5}
search_space:
  x: {type: choice, values: [2, 1]}
sampling_algorithm: grid
objective: {goal: Maximize, primary_metric: score}
limits: {max_total_trials: 5, max_concurrent_trials: 2, trial_timeout: 60}
"""
    )
    env = {**os.environ, **WIDE, **as_admin(server)}
    shipyard = [sys.executable, "-m", "shipyard", "job"]
    made = subprocess.run(
        [*shipyard, "create", "-f", str(code.parent / "sweep.yml"), "-w", ws.name, "--stream"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    shown = subprocess.run(
        [*shipyard, "show", "-n", "cli-sweep", "-w", ws.name, "-o", "json"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    view = json.loads(shown.stdout)
    assert view["status"] == "Completed"
    assert view["sweep"]["best_parameters"] == {"x": 2}
    assert view["sweep"]["best_trial"] == "cli-sweep_" + str(
        next(
            t.trial.number
            for t in trials_of(ws, "cli-sweep")
            if t.trial and t.trial.parameters["x"] == 2
        )
    )
    assert view["limits"]["trial_timeout"] == 60


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"objective": None}, "jobs.tune.objective"),
        ({"search_space": {"momentum": {"type": "uniform", "min_value": 0, "max_value": 1}}},
         "jobs.tune.search_space.momentum"),
        ({"inputs": {"lr": 0.5}}, "jobs.tune.search_space.lr"),
        ({"trial": None}, "jobs.tune.trial"),
        ({"trial": {"command": "echo ${{search_space.nope}}"}}, "jobs.tune.trial.command"),
        ({"trial": {"command": "echo", "colour": "red"}}, "jobs.tune.trial.colour"),
        ({"sampling_algorithm": "grid"}, "jobs.tune.search_space.lr"),
        ({"limits": {"max_total_trials": 0}}, "jobs.tune.limits"),
    ],
)  # fmt: skip
def test_bad_sweep_steps_are_400s_naming_the_field(
    server: RunningServer, ws: WorkspaceHandle, step: dict[str, Any], field: str
) -> None:
    tune: dict[str, Any] = {
        "type": "sweep",
        "trial": {
            "name": "train",
            "command": "echo ${{inputs.lr}}",
            "environment": "azureml:shipyard-minimal@latest",
            "inputs": {"lr": {"type": "number"}},
        },
        "search_space": {"lr": {"type": "uniform", "min_value": 0, "max_value": 1}},
        "objective": {"goal": "maximize", "primary_metric": "score"},
    }
    tune.update(step)
    tune = {k: v for k, v in tune.items() if v is not None}
    response = submit(server, ws, {"type": "pipeline", "jobs": {"tune": tune}})
    assert 400 <= response.status_code < 500, response.text
    problem = response.json()
    assert problem["field"] is not None, problem
    assert problem["field"].startswith(field), problem
    assert list(ws.jobs.list_jobs()) == []


def test_two_servers_advancing_one_sweep_create_each_trial_once(
    server: RunningServer,
    ws: WorkspaceHandle,
    code: Path,
    tmp_path_factory: pytest.TempPathFactory,
    module_database_url: str,
) -> None:
    """A second server on the same store samples and ends sweeps too (its compute is too
    small to run a trial, so the trials run here): trials are numbered without gaps or
    repeats, and the sweep goes on when that server stops half way."""
    second = start_server(
        tmp_path_factory.mktemp("second"),
        module_database_url,
        environment_cache_dir=SHARED_ENVIRONMENTS,
        local_compute_cpus=0.1,
    )
    body = sweep_body(
        trial={
            "command": "python trial.py --score ${{search_space.x}} --pause 0.2",
            "code": str(code),
            "resources": {"cpu": 0.5},
        },
        sampling_algorithm={"type": "random", "seed": 3},
        limits={"max_total_trials": 8, "max_concurrent_trials": 2},
    )
    with second:
        name = ws.jobs.create(body).name
        deadline = time.monotonic() + 60
        while len(trials_of(ws, name)) < 4:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    sweep = wait(ws, name)
    assert sweep.status == "Completed", sweep
    trials = trials_of(ws, name)
    assert [t.trial.number for t in trials if t.trial] == list(range(8))
    assert len({t.trial.parameters["x"] for t in trials if t.trial}) == 8
    assert most_at_once(trials) <= 2
