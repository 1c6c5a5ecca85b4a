"""Killing the server (SIGKILL) while jobs run leaves every job in a truthful state after a
restart: jobs whose processes still run are re-attached and finish normally, jobs that ended
meanwhile are finalized from the exit status their supervisor left, and a job whose process
vanished without one (its supervisor killed too) is retried as an infrastructure failure."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psutil

from shipyard.sdk.client import Client
from shipyard.sdk.jobs import command
from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.cli.test_server_process import ENV_ADMIN_TOKEN, environment, server_process


def status_of(client: Client, workspace: str, name: str) -> str:
    return client.workspace(workspace).jobs.get_job(name).status


def wait_for(client: Client, workspace: str, name: str, wanted: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = status_of(client, workspace, name)
        if status in wanted:
            return status
        assert time.monotonic() < deadline, f"{name} is still {status}"
        time.sleep(0.1)


def test_jobs_survive_a_killed_server(tmp_path: Path, database_url: str) -> None:
    env = environment(
        database_url,
        SHIPYARD_ADMIN_TOKEN=ENV_ADMIN_TOKEN,
        SHIPYARD_ENVIRONMENT_CACHE_DIR=str(SHARED_ENVIRONMENTS),
    )
    data_dir = tmp_path / "data"
    with server_process(data_dir, env) as first, Client(first.url, ENV_ADMIN_TOKEN) as client:
        client.workspaces.create("restart")
        jobs = client.workspace("restart").jobs
        long = jobs.create(command(command="echo begun; sleep 4; echo survived")).name
        short = jobs.create(command(command="echo begun; sleep 1; exit 4")).name
        # The first attempt waits to be killed; the retry finds the mark and ends at once.
        mark = tmp_path / "first-attempt"
        lost = jobs.create(
            command(command=f"if [ -e {mark} ]; then echo retried; else touch {mark}; sleep 60; fi")
        ).name
        for name in (long, short, lost):
            wait_for(client, "restart", name, {"Running"}, timeout=120)
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
    # The lost job's supervisor dies with it, so no exit status is left behind.
    supervisors = [
        p
        for p in psutil.process_iter(["cmdline"])
        if any("supervise.py" in part for part in p.info["cmdline"] or [])
        and any(str(mark) in part for part in p.info["cmdline"] or [])
    ]
    assert len(supervisors) == 1
    os.killpg(supervisors[0].pid, signal.SIGKILL)
    time.sleep(1.5)  # the short job ends while no server is up
    with server_process(data_dir, env) as second, Client(second.url, ENV_ADMIN_TOKEN) as client:
        assert wait_for(client, "restart", short, {"Failed"}, timeout=30) == "Failed"
        ended = client.workspace("restart").jobs.get_job(short)
        assert ended.exit_code == 4
        assert ended.error == "the command exited with code 4"
        assert wait_for(client, "restart", long, {"Completed", "Failed"}, timeout=60) == "Completed"
        log = httpx.get(
            f"{second.url}/api/v1/workspaces/restart/jobs/{long}/logs",
            headers={"Authorization": f"Bearer {ENV_ADMIN_TOKEN}"},
        ).text
        assert "begun" in log
        assert "survived" in log
        assert wait_for(client, "restart", lost, {"Completed", "Failed"}, timeout=60) == "Completed"
        retried = client.workspace("restart").jobs.get_job(lost)
        assert retried.attempt == 1
        assert mark.exists()
