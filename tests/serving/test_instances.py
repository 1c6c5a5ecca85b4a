"""The instance supervisor with real instance processes: readiness, failures surfaced with
their traceback, restarts, rolling updates under load, scaling, probes and stopping."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from shipyard.compute.job_users import JobUsers
from shipyard.serving.spec import DeploymentState, InstanceState, Probe
from tests.serving.conftest import Load, script_spec, wait_for, write_code

FAILING_INIT = """
def init():
    raise ZeroDivisionError("init() of this model divides by zero")
"""


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_until(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_instances_start_get_ready_and_serve(supervise: Any, tmp_path: Path):
    supervisor = supervise(script_spec(tmp_path, instance_count=2))
    status = wait_for(supervisor, "Ready")
    assert status.ready_count == 2
    assert [i.state for i in status.instances] == [InstanceState.READY] * 2
    endpoints = supervisor.endpoints()
    assert len(endpoints) == 2
    pids = set()
    for host, port in endpoints:
        response = httpx.post(f"http://{host}:{port}/score", json={"x": [1]})
        assert response.json()["y"] == [2.0]
        pids.add(response.json()["pid"])
    assert pids == {i.pid for i in status.instances}
    assert all(i.log_file.read_text().count("ready after") == 1 for i in status.instances)


def test_init_raising_fails_the_deployment_with_its_traceback(supervise: Any, tmp_path: Path):
    code = write_code(tmp_path / "bad", extra=FAILING_INIT)
    supervisor = supervise(script_spec(tmp_path, code_dir=code, instance_count=2))
    seen_endpoints = []
    deadline = time.monotonic() + 30
    while supervisor.status().state is not DeploymentState.FAILED:
        assert time.monotonic() < deadline
        seen_endpoints += supervisor.endpoints()
        time.sleep(0.01)
    status = supervisor.status()
    assert seen_endpoints == []  # it never took traffic
    assert status.error is not None
    assert "ZeroDivisionError: init() of this model divides by zero" in status.error
    assert 'score.py", line' in status.error
    _wait_until(lambda: not supervisor.status().instances)  # nothing keeps running


def test_a_crashed_instance_is_restarted_and_serves_again(supervise: Any, tmp_path: Path):
    supervisor = supervise(script_spec(tmp_path, instance_count=2))
    status = wait_for(supervisor, "Ready")
    victim = status.instances[0]
    with Load(supervisor) as load:
        _wait_until(lambda: load.ok > 20)
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        _wait_until(lambda: victim.port not in [p for _, p in supervisor.endpoints()])
        delisted = time.monotonic()
        _wait_until(lambda: supervisor.status().instances[0].restarts == 1)
        status = wait_for(supervisor, "Ready")
        served_before = load.ok
        _wait_until(lambda: load.ok > served_before + 40)
    restarted = status.instances[0]
    assert restarted.id == victim.id
    assert restarted.pid != victim.pid
    assert "signal SIGKILL" in (restarted.error or "")
    # Requests fail only at the killed instance, and only until it left the list.
    assert {port for _, port in load.failed_at} <= {victim.port}
    assert all(at <= delisted + 0.1 for at, _ in load.failed_at), load.failures
    assert restarted.pid in load.pids  # the new process took traffic


def test_a_rolling_update_under_load_fails_no_request(supervise: Any, tmp_path: Path):
    spec = script_spec(tmp_path, instance_count=2)
    supervisor = supervise(spec)
    wait_for(supervisor, "Ready")
    old_pids = {i.pid for i in supervisor.status().instances}
    new_code = write_code(tmp_path / "code-v2", version="v2")
    with Load(supervisor) as load:
        _wait_until(lambda: load.ok > 20)
        supervisor.update(spec.__class__(**{**spec.__dict__, "code_dir": new_code}))
        assert supervisor.status().state is DeploymentState.UPDATING
        status = wait_for(supervisor, "Ready")
        served = load.ok
        _wait_until(lambda: load.ok > served + 20)
    assert load.failures == []
    assert load.versions["v1"] > 0
    assert load.versions["v2"] > 0
    assert status.revision == 2
    assert {i.revision for i in status.instances} == {2}
    assert not any(_alive(pid) for pid in old_pids)


def test_an_update_that_cannot_start_is_rolled_back(supervise: Any, tmp_path: Path):
    spec = script_spec(tmp_path, instance_count=1)
    supervisor = supervise(spec)
    wait_for(supervisor, "Ready")
    bad = write_code(tmp_path / "bad", version="v2", extra=FAILING_INIT)
    with Load(supervisor) as load:
        supervisor.update(spec.__class__(**{**spec.__dict__, "code_dir": bad}))
        _wait_until(lambda: supervisor.status().error is not None)
        status = wait_for(supervisor, "Ready")
    assert load.failures == []
    assert set(load.versions) == {"v1"}
    assert status.revision == 1
    assert "rolled back" in (status.error or "")
    assert "ZeroDivisionError" in (status.error or "")


def test_scale_up_and_down(supervise: Any, tmp_path: Path):
    supervisor = supervise(script_spec(tmp_path, instance_count=1))
    wait_for(supervisor, "Ready")
    supervisor.scale(3)
    status = wait_for(supervisor, "Ready")
    assert status.ready_count == 3
    assert len(supervisor.endpoints()) == 3
    pids = [i.pid for i in status.instances]
    with Load(supervisor) as load:
        _wait_until(lambda: load.ok > 20)
        supervisor.scale(1)
        _wait_until(lambda: len(supervisor.status().instances) == 1)
        served = load.ok
        _wait_until(lambda: load.ok > served + 10)
    assert load.failures == []
    assert sum(_alive(pid) for pid in pids) == 1


def test_an_update_of_the_count_alone_scales_without_a_new_revision(supervise: Any, tmp_path: Path):
    spec = script_spec(tmp_path, instance_count=1)
    supervisor = supervise(spec)
    first = wait_for(supervisor, "Ready").instances[0]
    supervisor.update(spec.__class__(**{**spec.__dict__, "instance_count": 2}))
    status = wait_for(supervisor, "Ready")
    assert status.revision == 1
    assert status.ready_count == 2
    assert first.pid in {i.pid for i in status.instances}


def test_a_hung_instance_fails_its_liveness_probe_and_is_restarted(supervise: Any, tmp_path: Path):
    probe = Probe(initial_delay=0, period=0.2, timeout=0.3, failure_threshold=2)
    supervisor = supervise(script_spec(tmp_path, liveness_probe=probe))
    hung = wait_for(supervisor, "Ready").instances[0]
    assert hung.pid is not None
    os.kill(hung.pid, signal.SIGSTOP)
    _wait_until(lambda: supervisor.status().instances[0].restarts == 1)
    status = wait_for(supervisor, "Ready")
    assert "liveness probe failed" in (status.instances[0].error or "")
    assert not _alive(hung.pid)


def test_stop_ends_every_instance(supervise: Any, tmp_path: Path):
    supervisor = supervise(script_spec(tmp_path, instance_count=2))
    pids = [i.pid for i in wait_for(supervisor, "Ready").instances]
    status = supervisor.stop()
    assert status.state is DeploymentState.STOPPED
    assert not any(_alive(pid) for pid in pids)


def test_secrets_are_masked_in_the_instance_log(supervise: Any, tmp_path: Path):
    spec = script_spec(
        tmp_path, environment_variables={"API_SECRET": "hunter2-value"}, masked=("hunter2-value",)
    )
    supervisor = supervise(spec)
    instance = wait_for(supervisor, "Ready").instances[0]
    _wait_until(lambda: "init: secret is" in instance.log_file.read_text())
    log = instance.log_file.read_text()
    assert "init: secret is ***" in log
    assert "hunter2" not in log


def test_instances_see_none_of_the_servers_environment(
    supervise: Any, tmp_path: Path, monkeypatch: Any
):
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", "postgresql://user:pw@db/x")
    extra = """
    def run(raw_data):
        return sorted(os.environ)
    """
    code = write_code(tmp_path / "env", extra=extra)
    supervisor = supervise(script_spec(tmp_path, code_dir=code, environment_variables={"A": "1"}))
    wait_for(supervisor, "Ready")
    host, port = supervisor.endpoints()[0]
    names = httpx.post(f"http://{host}:{port}/score", content=b"{}").json()
    assert "SHIPYARD_DATABASE_URL" not in names
    assert {"A", "AZUREML_MODEL_DIR", "PATH", "HOME"} <= set(names)


def test_no_free_job_user_fails_the_start_like_any_other(supervise: Any, tmp_path: Path):
    """A pool with every id taken: each start fails with the pool's error (no process is
    started), with the backoff, until the revision is given up."""
    users = JobUsers(range(61990, 61991))
    users.take("a job that holds the only id")
    supervisor = supervise(script_spec(tmp_path), users=users)
    status = wait_for(supervisor, "Failed")
    assert status.error is not None
    assert status.error.startswith("the instance could not be started: no_free_job_user")
    assert "widen local_compute_uids" in status.error
    assert not (tmp_path / "deployments" / "blue" / "logs" / "i0.log").exists()
