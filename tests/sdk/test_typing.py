"""A user's code type-checks: ``ws.jobs.create`` (and a schedule's ``create_job``) take a
``command(...)``, a ``@pipeline`` function's result and ``sweep(...)``, under ``mypy
--strict``; something else is an error mypy reports."""

from __future__ import annotations

import shutil
from pathlib import Path

from mypy import api

USER_CODE = """\
from shipyard import Client
from shipyard.sdk.components import load_component
from shipyard.sdk.jobs import command
from shipyard.sdk.pipelines import pipeline
from shipyard.sdk.sweeps import Choice, sweep

ws = Client("http://127.0.0.1:8765", "shp_token").workspace("churn")
train = load_component("train.yml")


@pipeline
def bare(lr: float = 0.1) -> None:
    train(lr=lr)


@pipeline(experiment_name="churn")
def churn(data: str, lr: float = 0.1) -> dict[str, object]:
    return {"model": train(data=data, lr=lr).outputs.model}


trial = command("python train.py --lr ${{search_space.lr}}")
tuned = sweep(trial=trial, search_space={"lr": Choice([0.1, 0.2])}, primary_metric="acc",
              goal="maximize")
for job in (bare(lr=0.2), churn("azureml:customers@latest"), tuned, trial):
    ws.jobs.create(job)
ws.jobs.create({"command": "echo hi"})
ws.schedules.create("nightly", trigger={"type": "cron", "expression": "0 2 * * *"},
                    create_job=churn(data="azureml:customers@latest"))
"""


def test_jobs_built_in_python_are_accepted_by_mypy_and_other_things_are_not(
    tmp_path: Path,
) -> None:
    # The project's own cache (CI type-checks before it tests) keeps this to a second or two.
    cache = tmp_path / "cache"
    if Path(".mypy_cache").is_dir():
        shutil.copytree(".mypy_cache", cache)
    good = tmp_path / "good.py"
    good.write_text(USER_CODE)
    bad = tmp_path / "bad.py"
    bad.write_text(USER_CODE + "ws.jobs.create(42)\nbare(lr='fast')\n")
    out, err, status = api.run(["--strict", f"--cache-dir={cache}", str(good)])
    assert status == 0, out + err
    out, err, status = api.run(["--strict", f"--cache-dir={cache}", str(bad)])
    assert status == 1, out + err
    assert 'Argument 1 to "create" of "JobOperations" has incompatible type "int"' in out, out
    assert 'Argument "lr" to "bare" has incompatible type "str"' in out, out
    assert "Found 2 errors" in out, out
