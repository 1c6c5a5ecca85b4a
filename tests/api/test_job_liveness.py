"""Nothing stays Running forever: a job whose runner stopped reporting (another server that
died) turns NotResponding, and a restarted server does not take other servers' jobs."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from shipyard.sdk.jobs import command
from shipyard.store.base import utcnow
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.tracking import JobRow
from tests.conftest import start_server


def test_a_silent_runner_s_job_turns_not_responding(tmp_path: Path, database_url: str) -> None:
    data = tmp_path / "data"
    with start_server(data, database_url, jobs_enabled=False) as quiet:
        with quiet.client() as client:
            client.workspaces.create("liveness")
            name = client.workspace("liveness").jobs.create(command(command="sleep 600")).name
        # As if another server had launched it and then gone silent an hour ago.
        with quiet.db.write() as session:
            row = session.scalars(
                select(JobSubmissionRow).where(JobSubmissionRow.name == name)
            ).one()
            row.state = "running"
            row.handle = {"host": "another-host", "pid": 1, "started": 0.0}
            row.heartbeat_at = utcnow() - timedelta(hours=1)
            job = session.get(JobRow, row.job_id)
            assert job is not None
            job.status = "Running"
    with start_server(data, database_url) as runner, runner.client() as client:
        deadline = time.monotonic() + 30
        while (status := client.workspace("liveness").jobs.get_job(name).status) != (
            "NotResponding"
        ):
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        # Not taken over, not killed: pid 1 belongs to another host's numbering.
        with runner.db.read() as session:
            row = session.scalars(
                select(JobSubmissionRow).where(JobSubmissionRow.name == name)
            ).one()
            assert row.state == "running"
            assert row.handle["host"] == "another-host"
