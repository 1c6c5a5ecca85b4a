"""``shipyard schedule ...`` and ``ws.schedules`` against a real server, from Azure-shaped
YAML files (errors on a real ``python -m shipyard`` process, see tests/cli/test_cli.py)."""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from pathlib import Path

from shipyard.sdk.client import Client
from shipyard.sdk.jobs import command
from shipyard.sdk.sweeps import Choice, sweep
from tests.cli.test_cli import as_admin, invoke, key_values, run, table_rows
from tests.conftest import RunningServer, unique

JOB = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: python main.py --when ${{inputs.when}}
code: src
environment: azureml:shipyard-minimal:1
inputs:
  when: ${{creation_context.trigger_time}}
"""

SCHEDULE = """\
$schema: https://azuremlschemas.azureedge.net/latest/schedule.schema.json
name: nightly
trigger:
  type: cron
  expression: "0 2 * * *"
  time_zone: {zone}
create_job: ./job.yml
"""


def folder(tmp_path: Path, zone: str = "Europe/Paris") -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("print('hi')\n")
    (tmp_path / "job.yml").write_text(JOB)
    (tmp_path / "nightly.yml").write_text(SCHEDULE.format(zone=zone))
    return tmp_path / "nightly.yml"


def test_create_show_list_disable_enable_and_delete(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    env = as_admin(server)
    file = str(folder(tmp_path))
    args = ["schedule", "create", "-f", file, "-w", ws, "-o", "json"]
    made = json.loads(invoke([*args, "--set", "create_job.display_name=retrain"], env).stdout)
    assert made["name"] == "nightly"
    assert made["create_job"]["display_name"] == "retrain"  # --set reaches the job file's job
    assert made["create_job"]["code"].startswith("sha256:")  # uploaded once, at creation
    assert made["create_job"]["inputs"]["when"] == "${{creation_context.trigger_time}}"
    upcoming = [datetime.fromisoformat(t) for t in made["upcoming_fire_times"]]
    assert len(upcoming) == 5
    shown = json.loads(
        invoke(["schedule", "show", "-n", "nightly", "-w", ws, "-o", "json"], env).stdout
    )
    assert shown == admin.workspace(ws).schedules.get("nightly").model_dump(mode="json")
    rows = table_rows(invoke(["schedule", "list", "-w", ws], env).stdout)
    assert [(r["name"], r["is_enabled"]) for r in rows] == [("nightly", "True")]
    off = invoke(["schedule", "disable", "-n", "nightly", "-w", ws], env)
    assert key_values(off.stdout)["is_enabled"] == "False"
    on = invoke(["schedule", "enable", "-n", "nightly", "-w", ws], env)
    assert key_values(on.stdout)["is_enabled"] == "True"
    fires = invoke(["schedule", "show", "-n", "nightly", "-w", ws, "--fires", "-o", "json"], env)
    assert json.loads(fires.stdout) == []
    invoke(["schedule", "delete", "-n", "nightly", "-w", ws], env)
    assert list(admin.workspace(ws).schedules.list()) == []


def test_a_bad_time_zone_or_cron_expression_is_reported_at_its_line(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    file = str(folder(tmp_path, zone="Mars/Olympus"))
    done = run(["schedule", "create", "-f", file, "-w", ws], as_admin(server))
    assert done.returncode == 1, done.stderr
    assert f"{file}:6: field 'trigger.time_zone':" in done.stderr
    assert "Mars/Olympus" in done.stderr
    bad_cron = run(
        [
            "schedule",
            "create",
            "-f",
            file,
            "-w",
            ws,
            "--set",
            "trigger.time_zone=UTC",
            "--set",
            "trigger.expression=0 2 * *",
        ],
        as_admin(server),
    )
    assert bad_cron.returncode == 1, bad_cron.stderr
    assert "field 'trigger.expression'" in bad_cron.stderr


def test_the_sdk_takes_a_command_job_and_lists_fires(admin: Client) -> None:
    ws = admin.workspace(admin.workspaces.create(unique()).name)
    job = command(
        command="echo ${{inputs.when}}", inputs={"when": "${{creation_context.trigger_time}}"}
    )
    made = ws.schedules.create(
        "hourly",
        trigger={"type": "recurrence", "frequency": "hour", "interval": 2},
        create_job=job,
        overrides={"display_name": "every other hour"},
        tags={"team": "ml"},
    )
    assert made.create_job["display_name"] == "every other hour"
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(made.upcoming_fire_times)}
    assert gaps == {7200.0}
    assert [s.name for s in ws.schedules.list()] == ["hourly"]
    assert list(ws.schedules.fires("hourly")) == []
    assert not ws.schedules.disable("hourly").is_enabled
    ws.schedules.delete("hourly")


def test_a_job_file_or_an_existing_job_as_template_with_changes(
    server: RunningServer, admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    folder(tmp_path)
    (tmp_path / "changed.yml").write_text(
        "name: changed\ntrigger: {type: cron, expression: '0 3 * * *'}\n"
        "create_job:\n  job: ./job.yml\n  inputs: {when: fixed}\n  tags: {kind: retrain}\n"
    )
    made = json.loads(
        invoke(
            ["schedule", "create", "-f", str(tmp_path / "changed.yml"), "-w", ws, "-o", "json"],
            as_admin(server),
        ).stdout
    )
    assert made["create_job"]["inputs"] == {"when": "fixed"}
    assert made["create_job"]["tags"] == {"kind": "retrain"}
    assert made["create_job"]["code"].startswith("sha256:")  # the file's code, uploaded

    handle = admin.workspace(ws)
    submitted = handle.jobs.create(
        sweep(
            trial=command(command="echo ${{search_space.lr}}"),
            search_space={"lr": Choice([0.1, 0.2])},
            primary_metric="acc",
            goal="maximize",
            max_total_trials=1,
        )
    )
    handle.jobs.cancel(submitted.name)
    again = handle.schedules.create(
        "again",
        trigger={"type": "cron", "expression": "0 4 * * *"},
        create_job=f"azureml:{submitted.name}",
        overrides={"limits.max_total_trials": 2},
    )
    assert again.create_job["type"] == "sweep"
    assert again.create_job["limits"]["max_total_trials"] == 2
    assert again.create_job["search_space"] == {"lr": {"type": "choice", "values": [0.1, 0.2]}}
