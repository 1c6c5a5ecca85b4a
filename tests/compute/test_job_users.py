"""Local jobs as their own user ids (``local_compute_uids``): what a job can and cannot
reach, seen by real jobs on a real server running as root.

A job cannot read the master key or the database, list the data folder or storage, read
another job's process environment (where its token sits) or change its read-only inputs; it
can run its environment's Python, write its outputs and log to MLflow; two jobs at once run
as two different users, and what a job leaves running is killed when it ends.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from shipyard.compute.job_users import parse_uid_range
from shipyard.domain.errors import InvalidInputError
from shipyard.sdk.jobs import Input, command
from tests.api.test_jobs import SHARED_ENVIRONMENTS, log_of, wait
from tests.conftest import PG_ENV, RunningServer, start_server, unique

# CI runs the SQLite and PostgreSQL passes at once: each takes its own ids, since ending a
# job kills whatever runs as its id.
UIDS = range(61500, 61504) if os.environ.get(PG_ENV) else range(61400, 61404)

PROBE = """\
import json, os, pathlib, sys, time
data, shared = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
tried = {}
def attempt(name, action):
    try:
        action()
        tried[name] = True
    except OSError:
        tried[name] = False
attempt("read_master_key", lambda: open(data / "master.key", "rb").read(1))
attempt("read_database", lambda: open(data / "shipyard.db", "rb").read(1))
attempt("list_data_dir", lambda: os.listdir(data))
attempt("list_jobs", lambda: os.listdir(data / "jobs"))
attempt("list_storage", lambda: os.listdir(data / "artifacts"))
table = pathlib.Path(sys.argv[3])
attempt("read_input", lambda: table.read_text())
attempt("change_input", lambda: open(table, "a").write("x"))
attempt("add_to_input", lambda: open(table.parent / "new.txt", "w").write("x"))
while not (shared / "sleeper.pid").exists():
    time.sleep(0.05)
other = int((shared / "sleeper.pid").read_text())
attempt("read_other_job_environ", lambda: open(f"/proc/{other}/environ", "rb").read(1))
os.makedirs("outputs", exist_ok=True)
open("outputs/probe.json", "w").write(json.dumps(tried))
import mlflow
mlflow.log_metric("probed", 1)
print("UID", os.getuid(), "GID", os.getgid(), "GROUPS", os.getgroups())
print("TRIED", json.dumps(tried))
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starting jobs as other users needs root")


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """A folder every user may enter (pytest's own temporary folder is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="shipyard-job-users-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server(base: Path, module_database_url: str) -> Iterator[RunningServer]:
    data_dir = base / "data"
    # On SQLite the database sits in the data folder, where a job must not read it.
    url = module_database_url if os.environ.get(PG_ENV) else f"sqlite:///{data_dir}/shipyard.db"
    data_dir.mkdir()
    with start_server(
        data_dir,
        url,
        environment_cache_dir=SHARED_ENVIRONMENTS,
        local_compute_cpus=2,
        local_compute_uids=f"{UIDS.start}-{UIDS.stop - 1}",
        job_kill_grace_seconds=2,
    ) as running:
        yield running


def test_a_job_reaches_only_what_is_its_own(server: RunningServer, base: Path) -> None:
    shared = base / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    code = base / "code"
    code.mkdir()
    (code / "probe.py").write_text(PROBE)
    (base / "table.csv").write_text("a,b\n1,2\n")
    with server.client() as admin:
        name = unique("isolated")
        admin.workspaces.create(name)
        ws = admin.workspace(name)
        ws.data.create("table", str(base / "table.csv"), type="uri_file")
        # A job that stays a while, records its pid, and leaves a process behind that
        # escapes its process group.
        sleeper = ws.jobs.create(
            command(
                command=f"echo $$ > {shared}/sleeper.pid; setsid sleep 300 & sleep 2",
                resources={"cpu": 0.5},
            )
        ).name
        probe = ws.jobs.create(
            command(
                command=f"python probe.py {server.settings.data_dir} {shared} "
                "${{inputs.table}}",
                code=code,
                inputs={"table": Input(type="uri_file", path="azureml:table@latest")},
                resources={"cpu": 0.5},
            )
        ).name
        ran = wait(ws, probe)
        log = log_of(ws, probe)
        assert ran.status == "Completed", log
        tried = json.loads(log.split("TRIED ", 1)[1].splitlines()[0])
        assert tried == {
            "read_master_key": False,
            "read_database": False,  # unreadable on SQLite; no such file on PostgreSQL
            "list_data_dir": False,
            "list_jobs": False,
            "list_storage": False,
            "read_input": True,
            "change_input": False,
            "add_to_input": False,
            "read_other_job_environ": False,
        }
        uid = int(log.split("UID ", 1)[1].split()[0])
        assert uid in UIDS
        assert f"GID {uid} GROUPS []" in log
        assert "probed" in ws.jobs.get_run(ran.id).metrics
        artifacts = {e.path for e in ws.jobs.artifacts(ran.id).list(recursive=True)}
        assert "outputs/probe.json" in artifacts

        first = wait(ws, sleeper)
        assert first.status == "Completed"
        sleeper_uid = os.stat(shared / "sleeper.pid").st_uid
        assert sleeper_uid in UIDS
        assert sleeper_uid != uid
        # The process it left behind was killed when it ended.
        deadline = time.monotonic() + 10
        while _running_as(sleeper_uid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running_as(sleeper_uid)


def _running_as(uid: int) -> list[int]:
    return [
        p.pid
        for p in psutil.process_iter(["uids"])
        if p.info["uids"] is not None and p.info["uids"].real == uid
    ]


@pytest.mark.parametrize("text", ["lots", "500", "70000-60000", "0-10", "61000-"])
def test_a_bad_range_is_refused_naming_the_setting(text: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_uid_range(text)
    assert refused.value.field == "local_compute_uids"
