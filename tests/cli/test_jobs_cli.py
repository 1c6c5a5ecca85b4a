"""``shipyard job ...`` against a real server running real jobs on its local compute: a job
YAML with a code folder and inputs, ``--stream``, ``--set``, show/list/cancel/download, exit
statuses, and errors that name the file's line."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from shipyard.cli.main import cli
from shipyard.domain.errors import NotFoundError
from shipyard.sdk.client import Client
from tests.cli.test_cli import WIDE, as_admin, invoke, key_values, run, table_rows
from tests.conftest import RunningServer, unique

# The program prints its arguments as JSON, so a test sees exactly how many it got.
HELLO = """\
import json, pathlib, sys
data, out, *rest = sys.argv[1:]
print("argv", json.dumps(rest))
print("data", pathlib.Path(data).read_text().strip())
pathlib.Path("outputs").mkdir(exist_ok=True)
pathlib.Path("outputs/greeting.txt").write_text("hello " + rest[1])
pathlib.Path(out, "count.txt").write_text(rest[3])
"""

JOB_YAML = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
type: command
display_name: Hello
code: ./src
command: >-
  python hello.py ${{inputs.data}} ${{outputs.result}}
  --msg ${{inputs.msg}} --count ${{inputs.count}} $[[--lr ${{inputs.lr}}]]
inputs:
  msg: "; rm -rf / $(id)"
  count: 3
  lr:
  data:
    type: uri_file
    path: ./data.txt
    mode: download
outputs:
  result:
    type: uri_folder
tags:
  team: cli
"""


def project(tmp_path: Path, text: str = JOB_YAML) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "hello.py").write_text(HELLO)
    (tmp_path / "data.txt").write_text("forty-two\n")
    job_file = tmp_path / "job.yml"
    job_file.write_text(text)
    return job_file


def line_of(text: str, start: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def argv_line(stdout: str) -> list[str]:
    line = next(line for line in stdout.splitlines() if line.startswith("argv "))
    return list(json.loads(line[len("argv ") :]))


def test_create_stream_show_list_and_download(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    job_file = project(tmp_path)

    create = ["job", "create", "-f", str(job_file), "-w", ws, "--stream"]
    made = invoke([*create, "-n", "hello-1", "--experiment-name", "greetings"], env)
    # The value with shell metacharacters reached the program as one literal argument, and
    # the fragment naming the unset optional input was left out.
    assert argv_line(made.stdout) == ["--msg", "; rm -rf / $(id)", "--count", "3"]
    assert "data forty-two" in made.stdout
    assert "job hello-1 Completed" in made.stderr

    shown = json.loads(invoke(["job", "show", "-n", "hello-1", "-w", ws, "-o", "json"], env).stdout)
    assert shown["status"] == "Completed"
    assert shown["experiment_name"] == "greetings"
    assert shown["display_name"] == "Hello"
    assert shown["tags"] == {"team": "cli"}
    assert shown["inputs"]["msg"]["value"] == "; rm -rf / $(id)"
    assert shown["outputs"]["result"]["path"].endswith("/paths/azureml/hello-1/result")
    assert shown["code"].startswith("sha256:")
    history = [change["status"] for change in shown["status_history"]]
    assert history[0] == "NotStarted"
    assert history[-3:] == ["Running", "Finalizing", "Completed"]
    table = key_values(invoke(["job", "show", "-n", "hello-1", "-w", ws], env).stdout)
    assert table["status"] == "Completed"
    assert table["inputs.msg.value"] == "; rm -rf / $(id)"
    assert "inputs.msg.path" not in table  # empty fields are left out of the table

    # The same file again with --set: the code is unchanged, so nothing is uploaded.
    overrides = ["--set", "inputs.msg=second", "--set", "inputs.lr=0.5"]
    again = invoke([*create, "-n", "hello-2", *overrides], env)
    assert argv_line(again.stdout) == ["--msg", "second", "--count", "3", "--lr", "0.5"]
    assert "nothing to upload" in again.stderr

    listed = table_rows(invoke(["job", "list", "-w", ws], env).stdout)
    assert [(r["name"], r["status"], r["experiment_name"]) for r in listed] == [
        ("hello-1", "Completed", "greetings"),
        ("hello-2", "Completed", Path.cwd().name or "Default"),
    ]
    failed = invoke(["job", "list", "-w", ws, "--status", "failed", "-o", "json"], env)
    assert json.loads(failed.stdout) == []

    target = tmp_path / "down"
    invoke(["job", "download", "-n", "hello-1", "--download-path", str(target), "-w", ws], env)
    artifacts = target / "artifacts"
    assert (artifacts / "outputs" / "greeting.txt").read_text() == "hello ; rm -rf / $(id)"
    assert "data forty-two" in (artifacts / "user_logs" / "std_log.txt").read_text()
    named = ["--output-name", "result", "--download-path", str(target)]
    invoke(["job", "download", "-n", "hello-1", *named, "-w", ws], env)
    assert (target / "result" / "count.txt").read_text() == "3"
    unknown = CliRunner().invoke(
        cli, ["job", "download", "-n", "hello-1", "--output-name", "nope", "-w", ws], env=env
    )
    assert isinstance(unknown.exception, NotFoundError)
    assert unknown.exception.code == "output_not_found"


def test_a_failing_job_makes_stream_exit_non_zero(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    job_file = tmp_path / "fail.yml"
    job_file.write_text("command: echo about to fail && exit 3\n")

    process = run(
        ["job", "create", "-f", str(job_file), "-w", ws, "-n", "fails", "--stream"],
        as_admin(server),
    )
    assert process.returncode == 1
    assert "about to fail" in process.stdout
    assert "job fails ended Failed" in process.stderr
    assert "exited with code 3" in process.stderr
    assert admin.workspace(ws).jobs.get("fails").status == "Failed"


def test_cancel_a_running_job(server: RunningServer, admin: Client, tmp_path: Path) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    job_file = tmp_path / "sleep.yml"
    job_file.write_text("command: echo sleeping && sleep 60\n")
    made = json.loads(
        invoke(["job", "create", "-f", str(job_file), "-w", ws, "-o", "json"], env).stdout
    )
    name = made["name"]
    assert made["status"] == "Queued"
    jobs = admin.workspace(ws).jobs
    wait_for(lambda: jobs.get(name).status == "Running")

    cancel = invoke(["job", "cancel", "-n", name, "-w", ws], env)
    assert name in cancel.stderr
    followed = CliRunner().invoke(cli, ["job", "stream", "-n", name, "-w", ws], env={**WIDE, **env})
    assert followed.exit_code == 1
    assert f"job {name} ended Canceled" in followed.stderr
    assert "canceled on request" in followed.stderr
    assert jobs.get(name).status == "Canceled"


def test_file_errors_name_the_file_line_and_field(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    text = JOB_YAML.replace("${{inputs.count}}", "${{inputs.nope}}")
    undefined = project(tmp_path, text)
    process = run(["job", "create", "-f", str(undefined), "-w", ws], env)
    assert process.returncode == 1
    assert f"{undefined}:{line_of(text, 'command:')}: field 'command':" in process.stderr
    assert "inputs.nope" in process.stderr
    assert "[undefined_reference]" in process.stderr

    text = JOB_YAML + "colour: red\n"
    unknown = project(tmp_path, text)
    process = run(["job", "create", "-f", str(unknown), "-w", ws], env)
    assert process.returncode == 1
    assert f"{unknown}:{line_of(text, 'colour:')}: field 'colour':" in process.stderr
    assert "[unknown_field]" in process.stderr

    no_code = project(tmp_path, JOB_YAML.replace("./src", "./missing"))
    process = run(["job", "create", "-f", str(no_code), "-w", ws], env)
    assert f"{no_code}:{line_of(JOB_YAML, 'code:')}: field 'code':" in process.stderr
    assert "[path_not_found]" in process.stderr

    automl = project(tmp_path, "type: automl\ntask: classification\n")
    process = run(["job", "create", "-f", str(automl), "-w", ws], env)
    assert f"{automl}:1: field 'type':" in process.stderr
    empty = project(tmp_path, "type: pipeline\njobs: {}\n")
    process = run(["job", "create", "-f", str(empty), "-w", ws], env)
    assert f"{empty}:2: field 'jobs':" in process.stderr
    assert list(admin.workspace(ws).jobs.list_jobs()) == []

    process = run(["job", "stream", "-n", "nope", "-w", ws], env)
    assert process.returncode == 1
    assert "[job_not_found]" in process.stderr
    for command in (["show"], ["download", "--output-name", "model"], ["cancel"]):
        refused = CliRunner().invoke(cli, ["job", *command, "-n", "nope", "-w", ws], env=env)
        assert isinstance(refused.exception, NotFoundError)
        assert refused.exception.code == "job_not_found"


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("the condition did not come true in time")
