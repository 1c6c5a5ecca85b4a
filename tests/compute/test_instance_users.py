"""Online deployment instances as job users (``local_compute_uids``): what a user's scoring
script can and cannot reach, seen by real instances on a real server running as root and
scored through the real gateway.

Each instance process runs as its own id from the pool local jobs use: it cannot read the
master key or the database, list the data folder, read the server's or the other instance's
process environment, change its model or code, or rewrite its own log; it can read its model
and write its own folder (tmp, HOME, status file). The id goes back to the pool, with what the
process left running killed, when the process ends: a deployment restarted again and again
on a pool with one free id keeps getting it, and a pool with none fails the start clearly.
An id is never handed out with something still running as it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from shipyard.compute.job_users import JobUsers
from shipyard.schemas.endpoints import OnlineDeploymentRead
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.conftest import PG_ENV, RunningServer, start_server, unique

# A pool of two ids, apart from the ones test_job_users.py takes (CI runs the SQLite and
# PostgreSQL passes at once: each pass takes its own, since ending an instance kills
# whatever runs as its id).
UIDS = range(61510, 61512) if os.environ.get(PG_ENV) else range(61410, 61412)
MINIMAL = "azureml:shipyard-minimal@latest"

PROBE = """\
import json, os, pathlib, subprocess, sys, tempfile

tried = {}
leftover = None


def attempt(name, action):
    try:
        action()
        tried[name] = True
    except OSError:
        tried[name] = False


def init():
    global leftover
    data = pathlib.Path(os.environ["DATA_DIR"])
    model = pathlib.Path(os.environ["AZUREML_MODEL_DIR"])
    home = pathlib.Path(os.environ["HOME"])
    attempt("read_master_key", lambda: open(data / "master.key", "rb").read(1))
    attempt("read_database", lambda: open(data / "shipyard.db", "rb").read(1))
    attempt("list_data_dir", lambda: os.listdir(data))
    attempt("list_deployments", lambda: os.listdir(data / "deployments"))
    attempt("list_own_deployment", lambda: os.listdir(home.parent))
    log = home.parent / "logs" / (home.name + ".log")
    attempt("rewrite_own_log", lambda: open(log, "a").write("forged"))
    attempt("truncate_own_log", lambda: os.ftruncate(sys.stdout.fileno(), 0))
    attempt("read_server_environ", lambda: open(f"/proc/{os.getppid()}/environ", "rb").read(1))
    attempt("read_own_environ", lambda: open("/proc/self/environ", "rb").read(1))
    attempt("read_model", lambda: (model / "weights.json").read_text())
    attempt("change_model", lambda: open(model / "weights.json", "a").write("x"))
    attempt("add_to_model", lambda: open(model / "new.txt", "w").write("x"))
    attempt("add_to_code", lambda: open(pathlib.Path(__file__).parent / "new.py", "w").write("x"))
    attempt("write_tmp", lambda: tempfile.TemporaryFile().write(b"x"))
    attempt("write_home", lambda: (home / "note.txt").write_text("x"))
    # A process that escapes the instance's process group: killed with its user id.
    leftover = subprocess.Popen(["sleep", "300"], start_new_session=True)
    print("PROBED", json.dumps(tried), flush=True)


def run(raw_data):
    request = json.loads(raw_data)
    model = pathlib.Path(os.environ["AZUREML_MODEL_DIR"])
    factor = json.loads((model / "weights.json").read_text())
    answer = {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "pid": os.getpid(),
        "leftover": leftover.pid,
        "tried": tried,
        "predictions": [factor["factor"] * x for x in request.get("data", [])],
    }
    peek = request.get("peek")
    if peek and peek != os.getpid():
        try:
            open(f"/proc/{peek}/environ", "rb").read(1)
            answer["peeked"] = True
        except OSError:
            answer["peeked"] = False
    return answer
"""

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="starting instances as other users needs root"
)


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """A folder every user may enter (pytest's own temporary folder is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="shipyard-instance-users-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server(base: Path, module_database_url: str) -> Iterator[RunningServer]:
    data_dir = base / "data"
    # On SQLite the database sits in the data folder, where an instance must not read it.
    url = module_database_url if os.environ.get(PG_ENV) else f"sqlite:///{data_dir}/shipyard.db"
    data_dir.mkdir()
    with start_server(
        data_dir,
        url,
        environment_cache_dir=SHARED_ENVIRONMENTS,
        # The pool exists for the deployments alone too: no job runs on this server.
        jobs_enabled=False,
        serving_enabled=True,
        local_compute_uids=f"{UIDS.start}-{UIDS.stop - 1}",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def workspace(server: RunningServer, base: Path) -> Iterator[dict[str, Any]]:
    """A workspace with a model (a factor in a JSON file), the probing scoring code and an
    endpoint."""
    root = base / "files"
    (root / "model").mkdir(parents=True)
    (root / "model" / "weights.json").write_text(json.dumps({"factor": 3}))
    (root / "src").mkdir()
    (root / "src" / "score.py").write_text(PROBE)
    with server.client() as admin:
        name = unique("instance-users")
        admin.workspaces.create(name)
        ws = admin.workspace(name)
        ws.models.create("weights", root / "model")
        endpoint = unique("ep")
        ws.online_endpoints.create({"name": endpoint, "auth_mode": "key"})
        yield {
            "ws": ws,
            "root": root,
            "endpoint": endpoint,
            "key": ws.online_endpoints.list_keys(endpoint).primary_key,
            "url": f"{server.url}/api/v1/workspaces/{name}/onlineEndpoints/{endpoint}/score",
            "data_dir": str(server.settings.data_dir),
        }


def _deploy(files: dict[str, Any], name: str, count: int) -> OnlineDeploymentRead:
    ws: WorkspaceHandle = files["ws"]
    spec = {
        "name": name,
        "endpoint_name": files["endpoint"],
        "model": "azureml:weights:1",
        "code_configuration": {"code": "./src", "scoring_script": "score.py"},
        "environment": MINIMAL,
        "instance_count": count,
        "environment_variables": {"DATA_DIR": files["data_dir"]},
    }
    # Never in the traffic split: every request names its deployment.
    return ws.online_deployments.create(spec, base_dir=files["root"])


def _settled(files: dict[str, Any], name: str, timeout: float = 600) -> OnlineDeploymentRead:
    """Succeeded or Failed (the first build of an environment takes a while)."""
    ws: WorkspaceHandle = files["ws"]
    deadline = time.monotonic() + timeout
    while True:
        found = ws.online_deployments.get(name, endpoint_name=files["endpoint"])
        if found.provisioning_state in ("Succeeded", "Failed"):
            return found
        assert time.monotonic() < deadline, f"{name} still {found.provisioning_state}"
        time.sleep(0.2)


def _score(files: dict[str, Any], deployment: str, **body: Any) -> dict[str, Any]:
    headers = {
        "Authorization": f"Bearer {files['key']}",
        "azureml-model-deployment": deployment,
    }
    with httpx.Client(timeout=30) as http:
        answer = http.post(files["url"], json={"data": [1, 2], **body}, headers=headers)
    assert answer.status_code == 200, answer.text
    scored: dict[str, Any] = answer.json()
    assert scored["predictions"] == [3, 6]
    return scored


def _until(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_an_instance_reaches_only_what_is_its_own(workspace: dict[str, Any]) -> None:
    ws: WorkspaceHandle = workspace["ws"]
    endpoint = workspace["endpoint"]
    _deploy(workspace, "probe", 2)
    shown = _settled(workspace, "probe")
    assert shown.provisioning_state == "Succeeded", shown.error
    pids = [i["pid"] for i in shown.instances]
    assert len(pids) == 2
    answers: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while len(answers) < 2:  # the gateway picks the instance: ask until both answered
        assert time.monotonic() < deadline, answers
        scored = _score(workspace, "probe", peek=pids[0])
        answers[scored["pid"]] = scored
    assert set(answers) == set(pids)
    for scored in answers.values():
        assert scored["tried"] == {
            "read_master_key": False,
            "read_database": False,  # unreadable on SQLite; no such file on PostgreSQL
            "list_data_dir": False,
            "list_deployments": False,
            "list_own_deployment": False,
            "rewrite_own_log": False,
            "truncate_own_log": False,
            "read_server_environ": False,
            "read_own_environ": True,
            "read_model": True,
            "change_model": False,
            "add_to_model": False,
            "add_to_code": False,
            "write_tmp": True,
            "write_home": True,
        }
        assert scored["uid"] in UIDS
        assert scored["gid"] == scored["uid"]
        assert scored["groups"] == []
    # Two instances, two users: neither reads the other's environment.
    assert {a["uid"] for a in answers.values()} == set(UIDS)
    assert answers[pids[1]]["peeked"] is False
    logs = ws.online_deployments.get_logs("probe", endpoint_name=endpoint)
    assert "forged" not in logs
    assert logs.count("PROBED") == 2  # what the instances printed reached the log

    # Both ids are taken: a new deployment cannot start, and says why.
    _deploy(workspace, "starved", 1)
    starved = _settled(workspace, "starved", timeout=120)
    assert starved.provisioning_state == "Failed"
    assert starved.error is not None
    assert "no_free_job_user" in starved.error
    assert "widen local_compute_uids" in starved.error

    # Deleting the deployment frees its ids, and kills what its instances left running.
    leftovers = [a["leftover"] for a in answers.values()]
    assert all(_alive(pid) for pid in leftovers)
    ws.online_deployments.delete("starved", endpoint_name=endpoint)
    ws.online_deployments.delete("probe", endpoint_name=endpoint)
    _until(lambda: not any(_alive(pid) for pid in [*pids, *leftovers]))


def test_a_restarted_instance_gets_an_id_again_and_gives_the_old_one_back(
    workspace: dict[str, Any],
) -> None:
    ws: WorkspaceHandle = workspace["ws"]
    endpoint = workspace["endpoint"]
    # One deployment holds one of the two ids throughout: the restarted one has one id to
    # use, so an id not given back fails its next start.
    _deploy(workspace, "holder", 1)
    _deploy(workspace, "steady", 1)
    for name in ("holder", "steady"):
        shown = _settled(workspace, name)
        assert shown.provisioning_state == "Succeeded", shown.error
    held = _score(workspace, "holder")["uid"]
    before = _score(workspace, "steady")
    assert {held, before["uid"]} == set(UIDS)
    for restart in range(1, 4):
        os.kill(before["pid"], signal.SIGKILL)

        def restarted(count: int = restart) -> bool:
            found = ws.online_deployments.get("steady", endpoint_name=endpoint)
            return [(i["restarts"], i["state"]) for i in found.instances] == [(count, "Ready")]

        _until(restarted)
        after = _score(workspace, "steady")
        assert after["pid"] != before["pid"]
        assert after["uid"] == before["uid"]  # the only id left: it was given back
        assert after["tried"]["read_master_key"] is False
        assert not _alive(before["leftover"])  # what the killed one left ran as its id
        before = after
    shown = ws.online_deployments.get("steady", endpoint_name=endpoint)
    assert shown.provisioning_state == "Succeeded"
    assert _score(workspace, "holder")["uid"] == held


def test_an_id_is_handed_out_with_nothing_left_running_as_it() -> None:
    """What a killed server's instances left behind (init() started a daemon) does not meet
    the next holder of the id: taking an id kills it."""
    uid = UIDS.stop  # outside the server's pool above
    stray = subprocess.Popen(["sleep", "300"], user=uid, group=uid, start_new_session=True)
    try:
        assert JobUsers(range(uid, uid + 1)).take("next holder") == uid
        assert stray.wait(10) == -signal.SIGKILL
    finally:
        stray.kill()
        stray.wait()
