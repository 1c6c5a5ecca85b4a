"""Command jobs end to end: submitted through the SDK to a real server, run on the local
compute in a real environment (built with uv), with the real mlflow client inside."""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.schemas.jobs import JobRead
from shipyard.sdk.client import Client
from shipyard.sdk.jobs import Input, Output, command
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.conftest import RunningServer, start_server, unique

# Built environments are keyed by spec and platform: every module of the run (and the next
# run) may share them, so only the first build of the curated environment costs seconds.
SHARED_ENVIRONMENTS = Path(tempfile.gettempdir()) / f"shipyard-test-environments-{os.getuid()}"
ARGV = "import json, sys; print('ARGV=' + json.dumps(sys.argv[1:]))"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    with start_server(
        tmp_path_factory.mktemp("data"),
        module_database_url,
        environment_cache_dir=SHARED_ENVIRONMENTS,
        local_compute_cpus=2,
        local_compute_gpus=2,  # slots only: no job here touches a real device
        job_kill_grace_seconds=2,
        job_metrics_interval_seconds=0.5,
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
    (folder / "argv.py").write_text(ARGV + "\n")
    return folder


def wait(ws: WorkspaceHandle, name: str, timeout: float = 90) -> JobRead:
    deadline = time.monotonic() + timeout
    while True:
        job = ws.jobs.get_job(name)
        if job.status in ("Completed", "Failed", "Canceled"):
            return job
        assert time.monotonic() < deadline, f"job {name} still {job.status}"
        time.sleep(0.1)


def log_of(ws: WorkspaceHandle, name: str) -> str:
    return "".join(piece.text for piece in ws.jobs._submitted.follow(name))


def test_a_job_runs_to_completion_with_its_history_logs_and_artifacts(
    ws: WorkspaceHandle, code: Path
) -> None:
    (code / "main.py").write_text(
        "import os\nprint('hello from', os.environ['SHIPYARD_JOB_NAME'])\n"
        "open('outputs/result.txt', 'w').write('42')\n"
        "os.makedirs('logs', exist_ok=True); open('logs/extra.log', 'w').write('x')\n"
    )
    job = ws.jobs.create(
        command(command="python main.py", code=code, experiment_name="hello", display_name="hi")
    )
    assert job.status == "Queued"
    assert job.code is not None
    assert job.code.startswith("sha256:")
    assert job.environment == "azureml:shipyard-minimal:1"
    assert job.compute == "local"
    ended = wait(ws, job.name)
    assert ended.status == "Completed", ended.error
    assert ended.exit_code == 0
    assert [s.status for s in ended.status_history] == [
        "NotStarted",
        "Queued",
        "Preparing",
        "Running",
        "Finalizing",
        "Completed",
    ]
    times = [s.time for s in ended.status_history]
    assert times == sorted(times)
    assert ended.start_time is not None
    assert ended.end_time is not None
    assert ended.cost is not None
    assert ended.cost.core_seconds > 0
    assert f"hello from {job.name}" in log_of(ws, job.name)
    files = {e.path for e in ws.jobs.artifacts(job.id).list(recursive=True)}
    assert {"outputs/result.txt", "logs/extra.log", "user_logs/std_log.txt"} <= files
    assert "system_logs/prepare.txt" in files
    # The job is a run of its experiment, with the display name as the run's name.
    run = ws.jobs.get_run(job.id)
    assert run.experiment == "hello"
    assert run.name == "hi"
    assert run.job_type == "command"
    assert ws.jobs.get(job.name).status == "Completed"
    assert job.name in {j.name for j in ws.jobs.list_jobs()}


@pytest.mark.parametrize(
    "value", ["; rm -rf / #", "$(id)", "`id`", "line1\nline2", "a 'b' \"c\" \\d $HOME", "*"]
)
def test_input_values_reach_the_program_as_one_literal_argument(
    ws: WorkspaceHandle, code: Path, value: str
) -> None:
    job = ws.jobs.create(
        command(
            command='python argv.py ${{inputs.x}} "${{inputs.x}}" --flag=${{inputs.x}}',
            code=code,
            inputs={"x": value},
        )
    )
    ended = wait(ws, job.name)
    assert ended.status == "Completed", ended.error
    line = next(x for x in log_of(ws, job.name).splitlines() if x.startswith("ARGV="))
    assert json.loads(line[len("ARGV=") :]) == [value, value, f"--flag={value}"]
    assert ended.inputs["x"].value == value


def test_a_failing_command_ends_failed_with_its_exit_code(ws: WorkspaceHandle) -> None:
    job = ws.jobs.create(command(command="echo about to fail; exit 3"))
    ended = wait(ws, job.name)
    assert ended.status == "Failed"
    assert ended.exit_code == 3
    assert ended.error == "the command exited with code 3"
    assert "about to fail" in log_of(ws, job.name)


def test_a_failed_jobs_error_quotes_the_last_error_its_log_names(ws: WorkspaceHandle) -> None:
    script = "import sys; print('loading'); raise ValueError('column x is missing')"
    job = ws.jobs.create(command(command=f'python -c "{script}"'))
    ended = wait(ws, job.name)
    assert (ended.status, ended.exit_code) == ("Failed", 1)
    assert ended.error == "the command exited with code 1: ValueError: column x is missing"


def test_mlflow_inside_the_job_logs_into_the_job_with_no_setup(
    ws: WorkspaceHandle, code: Path
) -> None:
    (code / "train.py").write_text(
        "import mlflow\n"
        "mlflow.log_param('lr', 0.1)\n"
        "for step in range(3):\n"
        "    mlflow.log_metric('loss', 1.0 / (step + 1), step=step)\n"
        "mlflow.set_tag('stage', 'test')\n"
    )
    job = ws.jobs.create(command(command="python train.py", code=code))
    ended = wait(ws, job.name)
    assert ended.status == "Completed", log_of(ws, job.name)
    run = ws.jobs.get_run(job.id)
    assert run.params == {"lr": "0.1"}
    assert run.tags["stage"] == "test"
    assert run.metrics["loss"].value == pytest.approx(1 / 3)
    assert "system/memory_usage_megabytes" in run.metrics
    # The mlflow client ends "its" run when the script exits; the job's status is the runner's.
    assert ended.status_history[-1].status == "Completed"


def test_the_job_token_works_only_in_the_job_workspace_and_only_while_it_runs(
    ws: WorkspaceHandle, admin: Client, code: Path, server: RunningServer
) -> None:
    other = unique()
    admin.workspaces.create(other)
    (code / "probe.py").write_text(
        "import json, os, urllib.request, urllib.error\n"
        "def get(path):\n"
        "    req = urllib.request.Request(os.environ['SHIPYARD_URL'] + path, headers={\n"
        "        'Authorization': 'Bearer ' + os.environ['SHIPYARD_TOKEN']})\n"
        "    try:\n"
        "        return urllib.request.urlopen(req).status\n"
        "    except urllib.error.HTTPError as e:\n"
        "        return e.code\n"
        "ws = os.environ['SHIPYARD_WORKSPACE']\n"
        f"print('PROBE=' + json.dumps([get('/api/v1/workspaces/' + ws), "
        f"get('/api/v1/workspaces/{other}'), get('/api/v1/users'), get('/api/v1/tokens')]))\n"
        "open('outputs/token', 'w').write(os.environ['SHIPYARD_TOKEN'])\n"
    )
    job = ws.jobs.create(command(command="python probe.py", code=code))
    ended = wait(ws, job.name)
    assert ended.status == "Completed", log_of(ws, job.name)
    text = log_of(ws, job.name)
    line = next(x for x in text.splitlines() if x.startswith("PROBE="))
    mine, others, users, tokens = json.loads(line[len("PROBE=") :])
    assert mine == 200
    assert others == 404  # another workspace looks as if it did not exist
    assert users == 403
    assert tokens == 403
    token = ws.jobs.artifacts(job.id).read_bytes("outputs/token").decode()
    assert token not in text  # masked in the log
    response = httpx.get(
        f"{server.url}/api/v1/workspaces/{ws.name}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401  # revoked when the job ended
    assert response.json()["code"] == "revoked_token"


def test_secrets_are_injected_by_reference_and_masked(
    ws: WorkspaceHandle, admin: Client, code: Path
) -> None:
    ws.secrets.set("api-key", "s3cr3t-value-123")
    (code / "leak.py").write_text(
        "import os\nprint('KEY=' + os.environ['API_KEY'])\n"
        "print('LEN=' + str(len(os.environ['API_KEY'])))\n"
    )
    job = ws.jobs.create(
        command(
            command="python leak.py",
            code=code,
            environment_variables={"API_KEY": "${{secrets.api-key}}"},
        )
    )
    ended = wait(ws, job.name)
    assert ended.status == "Completed", ended.error
    text = log_of(ws, job.name)
    assert "s3cr3t-value-123" not in text
    assert "KEY=***" in text
    assert "LEN=16" in text
    shown = ws.jobs.get_job(job.name)
    assert shown.environment_variables == {"API_KEY": "${{secrets.api-key}}"}
    assert "s3cr3t" not in shown.model_dump_json()
    with pytest.raises(InvalidInputError) as caught:
        ws.jobs.create(command(command="true", environment_variables={"K": "${{secrets.missing}}"}))
    assert caught.value.field == "environment_variables.K"


def test_outputs_are_uploaded_and_registered_and_chain_into_the_next_job(
    ws: WorkspaceHandle,
) -> None:
    first = ws.jobs.create(
        command(
            command="mkdir -p ${{outputs.model}}/sub "
            "&& echo weights > ${{outputs.model}}/sub/w.txt",
            outputs={"model": Output(name="trained", version="1")},
        )
    )
    done = wait(ws, first.name)
    assert done.status == "Completed", done.error
    assert done.outputs["model"].registered == "trained:1"
    assert done.outputs["model"].path.endswith(f"/paths/azureml/{first.name}/model")
    assert ws.data.get("trained", version="1").path == done.outputs["model"].path
    chained = ws.jobs.create(
        command(
            command="cat ${{inputs.a}}/sub/w.txt ${{inputs.b}}/sub/w.txt",
            inputs={
                "a": Input(path=f"azureml://jobs/{first.name}/outputs/model", mode="download"),
                "b": Input(path="azureml:trained@latest"),  # ro_mount: a link, nothing copied
            },
        )
    )
    ended = wait(ws, chained.name)
    assert ended.status == "Completed", log_of(ws, chained.name)
    assert log_of(ws, chained.name).count("weights") == 2
    assert ended.inputs["b"].asset == "trained:1"


def test_local_inputs_are_uploaded_at_submit(ws: WorkspaceHandle, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    job = ws.jobs.create(
        command(
            command="cat ${{inputs.table}}",
            inputs={"table": Input(type="uri_file", path=str(data), mode="download")},
        )
    )
    ended = wait(ws, job.name)
    assert ended.status == "Completed", ended.error
    assert "a,b" in log_of(ws, job.name)
    assert ended.inputs["table"].path.startswith("azureml://datastores/workspaceblobstore/")


def test_cancel_stops_a_running_job_and_a_queued_one(ws: WorkspaceHandle) -> None:
    job = ws.jobs.create(command(command="echo started; sleep 60"))
    deadline = time.monotonic() + 60
    while ws.jobs.get_job(job.name).status != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    ws.jobs.cancel(job.name)
    ended = wait(ws, job.name, timeout=30)
    assert ended.status == "Canceled"
    assert "CancelRequested" in [s.status for s in ended.status_history]
    assert ended.error == "canceled on request"


def test_a_job_over_its_time_limit_is_stopped(ws: WorkspaceHandle) -> None:
    job = ws.jobs.create(command(command="sleep 60", limits={"timeout": 1}))
    ended = wait(ws, job.name, timeout=120)  # a busy machine may hold it in the queue
    assert ended.status == "Canceled"
    assert ended.error is not None
    assert "limits.timeout = 1 s" in ended.error


def test_a_job_over_its_memory_limit_fails_with_that_reason(
    ws: WorkspaceHandle, code: Path
) -> None:
    (code / "hog.py").write_text(
        "import time\nblocks = []\n"
        "for _ in range(60):\n"
        "    blocks.append(bytearray(10 * 1024 * 1024))\n"
        "    time.sleep(0.05)\n"
        "time.sleep(30)\n"
    )
    job = ws.jobs.create(command(command="python hog.py", code=code, resources={"memory": "100m"}))
    ended = wait(ws, job.name, timeout=120)  # a busy machine may hold it in the queue
    assert ended.status == "Failed"
    assert ended.error is not None
    assert "memory limit of 100 MB" in ended.error


def test_resubmitting_unchanged_code_uploads_nothing_and_ignores_are_honoured(
    ws: WorkspaceHandle, code: Path
) -> None:
    (code / ".shipyardignore").write_text("data/\n*.bin\n")
    (code / "data").mkdir()
    (code / "data" / "big.csv").write_text("x" * 1000)
    (code / "model.bin").write_bytes(b"\0" * 100)
    (code / "ls.py").write_text("import os\nprint('FILES=' + ','.join(sorted(os.listdir('.'))))\n")
    first = ws.jobs.create(command(command="python ls.py", code=code))
    seen: list[int] = []

    class Progress:
        def start(self, total_bytes: int, files: int) -> None:
            seen.append(files)

        def advance(self, nbytes: int) -> None:
            pass

    second = ws.jobs.create(command(command="python ls.py", code=code), progress=Progress())
    assert second.code == first.code
    assert seen == [0]  # the workspace had every file already
    ended = wait(ws, second.name)
    assert ended.status == "Completed"
    listing = next(x for x in log_of(ws, second.name).splitlines() if x.startswith("FILES="))
    files = listing[len("FILES=") :].split(",")
    assert "ls.py" in files
    assert "data" not in files
    assert "model.bin" not in files


def test_a_code_folder_with_a_link_outside_it_is_refused(
    ws: WorkspaceHandle, code: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("no")
    (code / "escape").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(InvalidInputError, match="links outside"):
        ws.jobs.create(command(command="true", code=code))


def test_jobs_queue_for_free_slots(ws: WorkspaceHandle) -> None:
    names = [
        ws.jobs.create(command(command="sleep 1", resources={"cpu": 2})).name for _ in range(3)
    ]
    ended = [wait(ws, name) for name in names]
    assert all(j.status == "Completed" for j in ended)
    # Two CPUs, each job takes both: they ran one after another.
    for before, after in itertools.pairwise(ended):
        assert before.end_time is not None
        assert after.start_time is not None
        assert after.start_time >= before.end_time


@pytest.mark.parametrize(
    ("body", "field", "code_"),
    [
        ({"command": "echo ${{inputs.nope}}"}, "command", "undefined_reference"),
        ({"command": "echo ${{secret.x}}"}, "command", "invalid_expression"),
        ({"command": "echo", "inputs": {"path": 1}}, "inputs", None),
        ({"command": "echo", "inputs": {"x y": 1}}, "inputs", None),
        ({"command": "echo", "name": "../etc"}, "name", None),
        ({"command": "echo", "resources": {"cpu": 64}}, "resources", "exceeds_compute"),
        ({"command": "echo", "resources": {"memory": "lots"}}, "resources.memory", None),
        ({"command": "echo", "compute": "azureml:gpu-cluster"}, "compute", "compute_not_found"),
        ({"command": "echo", "code": "./src"}, "code", "invalid_code"),
        ({"command": "echo", "code": "sha256:" + "0" * 64}, "code", "code_not_found"),
        ({"command": "echo", "environment": "azureml:nope:1"}, "environment", None),
        (
            {"command": "cat ${{inputs.d}}", "inputs": {"d": {"path": "./local.csv"}}},
            "inputs.d.path",
            "local_path",
        ),
        (
            {"command": "cat ${{inputs.d}}", "inputs": {"d": {"path": "https://x.org/a"}}},
            "inputs.d.mode",
            "invalid_mode",
        ),
        (
            {"command": "cat ${{inputs.d}}", "inputs": {"d": {"path": "azureml:nothing:1"}}},
            "inputs.d.path",
            None,
        ),
        (
            {"command": "echo", "outputs": {"o": {"path": "https://x.org/out"}}},
            "outputs.o.path",
            "invalid_output_path",
        ),
        ({"command": "echo", "limits": {"timeout": 0}}, "limits.timeout", None),
        ({"command": "echo", "unknown_key": 1}, "unknown_key", None),
        ({"command": ""}, "command", None),
    ],
)
def test_bad_submissions_are_4xx_naming_the_field(
    server: RunningServer, ws: WorkspaceHandle, body: dict[str, Any], field: str, code_: str | None
) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/workspaces/{ws.name}/jobs", json=body, headers=server.auth
    )
    assert 400 <= response.status_code < 500, response.text
    problem = response.json()
    assert problem["field"] is not None, problem
    assert problem["field"].startswith(field), problem
    if code_ is not None:
        assert problem["code"] == code_, problem


def test_names_are_unique_in_a_workspace_and_unknown_jobs_are_404(ws: WorkspaceHandle) -> None:
    ws.jobs.create(command(command="true", name="fixed-name"))
    with pytest.raises(ConflictError):
        ws.jobs.create(command(command="true", name="fixed-name"))
    with pytest.raises(NotFoundError):
        ws.jobs.get_job("no-such-job")
    with pytest.raises(NotFoundError):
        ws.jobs.cancel("no-such-job")


def test_outputs_and_the_code_snapshot_can_be_browsed_and_downloaded(
    ws: WorkspaceHandle, code: Path, tmp_path: Path
) -> None:
    (code / "pkg").mkdir()
    (code / "pkg" / "util.py").write_text("X = 1\n")
    (code / "write.py").write_text(
        "import sys, pathlib\n"
        "pathlib.Path(sys.argv[1], 'table.csv').write_text('a\\n1\\n')\n"
        "pathlib.Path('outputs', 'note.txt').write_text('hi')\n"
    )
    job = ws.jobs.create(
        command(command="python write.py ${{outputs.table}}", code=code, outputs={"table": None})
    )
    assert wait(ws, job.name).status == "Completed"
    table = ws.jobs.download(job.name, output_name="table", download_path=tmp_path / "dl")
    assert (table / "table.csv").read_text() == "a\n1\n"
    artifacts = ws.jobs.download(job.name, download_path=tmp_path / "dl")
    assert (artifacts / "outputs" / "note.txt").read_text() == "hi"
    assert (artifacts / "user_logs" / "std_log.txt").exists()
    assert set(ws.jobs._submitted.code_files(job.name)) == {"argv.py", "write.py", "pkg/util.py"}
    with pytest.raises(NotFoundError):
        ws.jobs.download(job.name, output_name="nope", download_path=tmp_path / "x")


def test_gpu_jobs_get_their_own_devices_and_others_none(ws: WorkspaceHandle) -> None:
    show = "echo CUDA=[$CUDA_VISIBLE_DEVICES]; sleep 1"
    names = [
        ws.jobs.create(command(command=show, resources={"gpu": 1, "cpu": 0.5})).name
        for _ in range(2)
    ]
    plain = ws.jobs.create(command(command=show, resources={"cpu": 0.5})).name
    seen = []
    for name in [*names, plain]:
        assert wait(ws, name).status == "Completed"
        line = next(x for x in log_of(ws, name).splitlines() if x.startswith("CUDA="))
        seen.append(line)
    assert sorted(seen[:2]) == ["CUDA=[0]", "CUDA=[1]"]
    assert seen[2] == "CUDA=[]"
    with pytest.raises(InvalidInputError) as caught:
        ws.jobs.create(command(command="true", resources={"gpu": 3}))
    assert caught.value.field == "resources"


def test_a_failed_environment_build_fails_the_job_with_its_log(ws: WorkspaceHandle) -> None:
    job = ws.jobs.create(
        command(
            command="true",
            environment={"pip_requirements": ["shipyard-no-such-package-zz9==1.0"]},
        )
    )
    ended = wait(ws, job.name, timeout=120)
    assert ended.status == "Failed"
    assert ended.error is not None
    assert "shipyard-no-such-package-zz9" in ended.error
    files = {e.path for e in ws.jobs.artifacts(job.id).list(recursive=True)}
    assert "system_logs/prepare.txt" in files
    system_log = ws.jobs.artifacts(job.id).read_bytes("system_logs/prepare.txt").decode()
    assert "shipyard-no-such-package-zz9" in system_log


def test_the_cost_report_sums_ended_jobs_by_experiment_user_and_compute(
    server: RunningServer, admin: Client
) -> None:
    name = unique()
    admin.workspaces.create(name)
    ws = admin.workspace(name)
    names = [
        ws.jobs.create(command(command="sleep 0.3", experiment_name=e, resources={"cpu": 0.5})).name
        for e in ("etl", "train", "train")
    ]
    ended = [wait(ws, n) for n in names]
    assert all(j.status == "Completed" for j in ended)
    by_experiment = ws.costs.report()
    assert [(line.key, line.jobs) for line in by_experiment.lines] == [("etl", 1), ("train", 2)]
    total_seconds = sum(j.cost.core_seconds for j in ended if j.cost)
    assert by_experiment.total_core_hours == pytest.approx(total_seconds / 3600, rel=1e-3)
    assert all(j.cost and j.cost.core_seconds >= 0.5 * 0.3 for j in ended)
    assert [line.key for line in ws.costs.report(by="user").lines] == ["admin"]
    assert [line.key for line in ws.costs.report(by="compute").lines] == ["local"]
    assert ws.costs.report(since="2999-01-01T00:00:00Z").total_jobs == 0
    response = httpx.get(
        f"{server.url}/api/v1/workspaces/{name}/cost", params={"by": "color"}, headers=server.auth
    )
    assert response.status_code == 400
    assert response.json()["field"] == "by"


def test_lineage_answers_which_models_were_trained_on_a_data_version(
    server: RunningServer, ws: WorkspaceHandle, tmp_path: Path
) -> None:
    (tmp_path / "sales.csv").write_text("x,y\n1,2\n")
    ws.data.create("sales", str(tmp_path / "sales.csv"), type="uri_file")
    train = ws.jobs.create(
        command(
            command="cp ${{inputs.data}} ${{outputs.model}}/model.csv",
            inputs={"data": Input(type="uri_file", path="azureml:sales@latest")},
            outputs={"model": Output(type="custom_model", name="churn")},
        )
    )
    ended = wait(ws, train.name)
    assert ended.status == "Completed", ended.error
    assert ended.outputs["model"].registered == "churn:1"
    shown = ws.jobs.get_job(train.name)
    assert shown.lineage is not None
    assert "data:sales:1" in shown.lineage.inputs
    assert "environment:shipyard-minimal:1" in shown.lineage.inputs
    assert shown.lineage.outputs == ["model:churn:1"]

    def graph(path: str, **params: object) -> dict[str, object]:
        response = httpx.get(f"{server.url}{path}", params=params, headers=server.auth)
        assert response.status_code == 200, response.text
        return dict(response.json())

    down = graph(f"/api/v1/workspaces/{ws.name}/lineage", asset="data:sales:1", depth=2)
    edges = {(e["source"], e["target"]) for e in down["edges"]}  # type: ignore[union-attr]
    assert ("data:sales:1", f"job:{train.name}") in edges
    assert (f"job:{train.name}", "model:churn:1") in edges
    nodes = {n["id"]: n for n in down["nodes"]}  # type: ignore[union-attr]
    assert nodes[f"job:{train.name}"]["status"] == "Completed"
    up = graph(f"/api/v1/workspaces/{ws.name}/lineage", asset="model:churn:1", depth=2)
    assert "data:sales:1" in {n["id"] for n in up["nodes"]}  # type: ignore[union-attr]
    one_hop = graph(f"/api/v1/workspaces/{ws.name}/jobs/{train.name}/lineage", depth=1)
    assert {n["id"] for n in one_hop["nodes"]} >= {"data:sales:1", "model:churn:1"}  # type: ignore[union-attr]
    bad = httpx.get(
        f"{server.url}/api/v1/workspaces/{ws.name}/lineage",
        params={"asset": "sales"},
        headers=server.auth,
    )
    assert bad.status_code == 400
    assert bad.json()["field"] == "asset"


def test_archiving_hides_a_job_from_lists_and_restore_brings_it_back(
    ws: WorkspaceHandle,
) -> None:
    name = ws.jobs.create(command(command="true")).name
    assert name in {j.name for j in ws.jobs.list_jobs()}
    ws.jobs.archive(name)
    assert name not in {j.name for j in ws.jobs.list_jobs()}
    assert ws.jobs.get_job(name).name == name  # show still finds it
    ws.jobs.restore_job(name)
    assert name in {j.name for j in ws.jobs.list_jobs()}
    with pytest.raises(NotFoundError):
        ws.jobs.archive("no-such-job")
