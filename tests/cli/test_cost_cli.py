"""``shipyard cost report`` against a real server with jobs that really ran."""

from __future__ import annotations

import json
import time

from shipyard.sdk.client import Client
from shipyard.sdk.jobs import command
from tests.cli.test_cli import as_admin, invoke, table_rows
from tests.conftest import RunningServer, unique


def test_cost_report_by_experiment_as_table_and_json(server: RunningServer, admin: Client) -> None:
    ws = admin.workspaces.create(unique()).name
    jobs = admin.workspace(ws).jobs
    names = [jobs.create(command(command="true", experiment_name=e)).name for e in ("a", "b")]
    deadline = time.monotonic() + 120
    while any(jobs.get_job(n).status != "Completed" for n in names):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    env = as_admin(server)
    table = invoke(["cost", "report", "-w", ws], env)
    assert [row["key"] for row in table_rows(table.stdout)] == ["a", "b"]
    assert "total: 2 jobs" in table.stdout
    shown = json.loads(
        invoke(["cost", "report", "-w", ws, "--by", "compute", "-o", "json"], env).stdout
    )
    assert shown["lines"][0]["key"] == "local"
    assert shown["total_jobs"] == 2
    later = json.loads(
        invoke(["cost", "report", "-w", ws, "--since", "0d", "-o", "json"], env).stdout
    )
    assert later["total_jobs"] == 0
