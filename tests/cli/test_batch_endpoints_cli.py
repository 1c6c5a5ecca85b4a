"""``shipyard batch-endpoint ...`` and ``shipyard batch-deployment ...`` against a real
server, from Azure-shaped YAML files, through a real scoring job."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.sdk.client import Client
from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.cli.test_cli import as_admin, invoke, key_values, run, table_rows
from tests.conftest import RunningServer, start_server, unique

ENDPOINT = """\
$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json
name: {name}
description: nightly scoring
auth_mode: aad_token
"""

DEPLOYMENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json
name: {name}
endpoint_name: {endpoint}
type: model
model:
  path: ./model
code_configuration:
  code: ./src
  scoring_script: batch_score.py
environment: azureml:shipyard-minimal@latest
compute: azureml:local
resources:
  instance_count: 1
settings:
  max_concurrency_per_instance: 2
  mini_batch_size: 2
  output_action: append_row
  output_file_name: predictions.csv
  retry_settings:
    max_retries: 1
    timeout: 30
  error_threshold: -1
  logging_level: info
"""

SCORE = """\
import os


def init():
    global prefix
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "prefix.txt")) as handle:
        prefix = handle.read().strip()


def run(mini_batch):
    return [[prefix, os.path.basename(path), len(open(path).read().split())] for path in mini_batch]
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
    ) as running:
        yield running


def _files(tmp_path: Path, endpoint: str) -> dict[str, str]:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "prefix.txt").write_text("words\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "batch_score.py").write_text(SCORE)
    (tmp_path / "data").mkdir()
    for index in range(3):
        (tmp_path / "data" / f"doc{index}.txt").write_text("a b c " * (index + 1))
    (tmp_path / "endpoint.yml").write_text(ENDPOINT.format(name=endpoint))
    for name in ("first", "second"):
        (tmp_path / f"{name}.yml").write_text(DEPLOYMENT.format(name=name, endpoint=endpoint))
    return {p.stem: str(p) for p in tmp_path.glob("*.yml")}


def test_batch_endpoint_round_trip_and_a_scoring_job(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    endpoint = unique("be")
    paths = _files(tmp_path, endpoint)
    ep_args = ["-n", endpoint, "-w", ws]
    dep_args = ["-e", endpoint, "-w", ws]

    made = json.loads(invoke(["batch-endpoint", "create", "-f", paths["endpoint"], "-w", ws,
                              "-o", "json"], env).stdout)  # fmt: skip
    assert made["scoring_uri"].endswith(f"/batchEndpoints/{endpoint}/jobs")
    assert made["auth_mode"] == "aad_token"
    first = json.loads(invoke(["batch-deployment", "create", "-f", paths["first"], "-w", ws,
                               "-o", "json"], env).stdout)  # fmt: skip
    assert first["model"] == f"azureml:{endpoint}-first:1"
    assert first["is_default"] is True
    assert first["settings"]["mini_batch_size"] == 2
    second = invoke(["batch-deployment", "create", "-f", paths["second"], "-w", ws, "--set",
                     "settings.output_file_name=out.csv", "--set-default"], env)  # fmt: skip
    assert key_values(second.stdout)["is_default"] == "True"
    listed = table_rows(invoke(["batch-deployment", "list", *dep_args], env).stdout)
    assert [(r["name"], r["is_default"]) for r in listed] == [
        ("first", "False"),
        ("second", "True"),
    ]
    shown = json.loads(invoke(["batch-endpoint", "show", *ep_args, "-o", "json"], env).stdout)
    assert shown["defaults"] == {"deployment_name": "second"}
    back = invoke(["batch-endpoint", "update", *ep_args, "--default-deployment", "first",
                   "-o", "json"], env)  # fmt: skip
    assert json.loads(back.stdout)["defaults"] == {"deployment_name": "first"}
    rows = table_rows(invoke(["batch-endpoint", "list", "-w", ws], env).stdout)
    assert [r["name"] for r in rows] == [endpoint]

    # A local folder is uploaded; the job is an ordinary job (job show, its outputs).
    started = json.loads(invoke(["batch-endpoint", "invoke", *ep_args, "--input",
                                 str(tmp_path / "data"), "-o", "json"], env).stdout)  # fmt: skip
    job = started["name"]
    deadline = time.monotonic() + 600
    while True:
        shown_job = json.loads(invoke(["job", "show", "-n", job, "-w", ws, "-o", "json"],
                                      env).stdout)  # fmt: skip
        if shown_job["status"] in ("Completed", "Failed", "Canceled"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert shown_job["status"] == "Completed", shown_job
    # Progress is in the job's tags.
    assert shown_job["tags"]["batch.mini_batches_total"] == "2"
    assert shown_job["tags"]["batch.mini_batches_done"] == "2"
    assert shown_job["tags"]["batch.mini_batches_failed"] == "0"
    invoke(["job", "download", "-n", job, "-w", ws, "--output-name", "score",
            "--download-path", str(tmp_path / "out")], env)  # fmt: skip
    lines = (tmp_path / "out" / "score" / "predictions.csv").read_text().splitlines()
    assert sorted(lines) == ["words,doc0.txt,3", "words,doc1.txt,6", "words,doc2.txt,9"]
    jobs = table_rows(invoke(["batch-endpoint", "list-jobs", *ep_args], env).stdout)
    assert [r["name"] for r in jobs] == [job]

    # One file, and a deployment named: uri_file is guessed from the path.
    single = json.loads(invoke(["batch-endpoint", "invoke", *ep_args, "--input",
                                str(tmp_path / "data" / "doc1.txt"), "-d", "second",
                                "-o", "json"], env).stdout)  # fmt: skip
    assert single["inputs"]["input_data"]["type"] == "uri_file"
    assert single["tags"]["azureml.batch_deployment"] == "second"

    # Mistakes name the field; the default cannot go while others remain.
    bad = run(["batch-deployment", "create", "-f", paths["first"], "-w", ws, "-n", "third",
               "--set", "settings.mini_batch_size=0"], env)  # fmt: skip
    assert bad.returncode == 1
    assert "settings.mini_batch_size" in bad.stderr
    refused = run(["batch-deployment", "delete", "-n", "first", *dep_args, "--yes"], env)
    assert refused.returncode == 1
    assert "default" in refused.stderr
    updated = invoke(["batch-deployment", "update", "-f", paths["second"], "-w", ws,
                      "--set", "settings.mini_batch_size=5", "-o", "json"], env)  # fmt: skip
    assert json.loads(updated.stdout)["settings"]["mini_batch_size"] == 5
    invoke(["batch-deployment", "delete", "-n", "second", *dep_args, "--yes"], env)
    shown_dep = run(["batch-deployment", "show", "-n", "second", *dep_args], env)
    assert shown_dep.returncode == 1
    invoke(["batch-endpoint", "delete", *ep_args, "--yes"], env)
    assert table_rows(invoke(["batch-endpoint", "list", "-w", ws], env).stdout) == []
    # The jobs stay.
    assert json.loads(invoke(["job", "show", "-n", job, "-w", ws, "-o", "json"],
                             env).stdout)["status"] == "Completed"  # fmt: skip


@pytest.mark.parametrize("group", ["online-endpoint", "batch-endpoint"])
def test_endpoint_update_needs_a_file_for_set_and_something_to_change(group: str) -> None:
    # Both refused before anything is sent: no server is needed.
    args = [group, "update", "-n", "nightly", "-w", "anywhere"]
    with_set = run([*args, "--set", "description=x"])
    assert with_set.returncode == 2
    assert "--set changes a file's fields: give the file with -f" in with_set.stderr
    nothing = run(args)
    assert nothing.returncode == 2
    assert "nothing to change" in nothing.stderr
