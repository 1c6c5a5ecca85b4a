"""Jobs on a real local Ray cluster (the Ray launcher, its driver for several instances, and
the runner's Ray path), inside a loopback-only network namespace.

Ray's servers listen on every interface, so the cluster and the Shipyard server that uses it
run in ``unshare -n`` (root only) with just ``lo`` up, and always with
``RAY_AUTH_MODE=disabled`` set explicitly. There is no package index in there: the curated
environment is built here first, into the shared cache the scenario's server reads.
``ray_scenario.py`` starts Ray once, runs every job, and writes what it saw as JSON; the
tests below each assert on one part of it. Should the scenario hang, every process of its
network namespace is killed by PID: nothing of Ray is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.compute.ray_scenario import NASTY, SECRET
from tests.conftest import PG_ENV, RunningServer, start_server

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_TIMEOUT = 240

pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
        reason="needs root with unshare and ip: Ray runs in a loopback-only network namespace",
    ),
    # The scenario's server uses SQLite inside the namespace whatever the suite's database
    # (PostgreSQL is not reachable there), so the PostgreSQL pass would run it again as is.
    pytest.mark.skipif(
        bool(os.environ.get(PG_ENV)),
        reason="runs on SQLite inside its network namespace; the SQLite pass covers it",
    ),
]


@pytest.fixture(scope="module")
def built_environment(tmp_path_factory: pytest.TempPathFactory, module_database_url: str) -> None:
    """The curated environment, built (or found) in the shared cache outside the namespace."""
    with start_server(
        tmp_path_factory.mktemp("build"),
        module_database_url,
        environment_cache_dir=SHARED_ENVIRONMENTS,
        jobs_enabled=False,
    ) as running:
        _build(running)


def _build(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=600) as http:
        assert http.post("/api/v1/workspaces", json={"name": "build"}).status_code == 201
        path = "/api/v1/workspaces/build/environments/shipyard-minimal/versions/1/build"
        built = http.post(path)
        assert built.status_code == 200, built.text
        assert built.json()["status"] == "ready", built.text


@pytest.fixture(scope="module")
def results(built_environment: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("ray")
    return run_scenario(tmp_path_factory.mktemp("ray"), "tests.compute.ray_scenario")


def run_scenario(folder: Path, module: str, timeout: float = SCENARIO_TIMEOUT) -> dict[str, Any]:
    """Run ``python -m <module> OUT RUN`` in a loopback-only network namespace (Ray binds
    every interface) and return the JSON it wrote to OUT; fail with its log's tail when it
    crashed, exited non-zero or ran past ``timeout``. Used by every Ray scenario."""
    out, run = folder / "results.json", folder / "run"
    run.mkdir()
    script = (
        f"ip link set lo up && exec {shlex.quote(sys.executable)} -m {module} "
        f"{shlex.quote(str(out))} {shlex.quote(str(run))}"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    log = folder / "scenario.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            ["unshare", "-n", "bash", "-c", script],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        with _reaped(process):
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{module} did not end in {timeout:.0f} s: {_tail(log)}")
    assert process.returncode == 0, _tail(log)
    found: dict[str, Any] = json.loads(out.read_text())
    assert "crash" not in found, found["crash"] + _tail(log)
    return found


@contextlib.contextmanager
def _reaped(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """Afterwards, kill whatever still runs in the scenario's network namespace: its own
    namespace, so every process in it is one this test started."""
    own = os.readlink("/proc/self/ns/net")
    namespace = None
    deadline = time.monotonic() + 10
    while namespace is None and time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError):
            seen = os.readlink(f"/proc/{process.pid}/ns/net")
            namespace = seen if seen != own else None
        time.sleep(0.01)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if namespace is not None:
            for other in psutil.process_iter():
                with contextlib.suppress(OSError, psutil.Error):
                    if os.readlink(f"/proc/{other.pid}/ns/net") == namespace:
                        other.kill()
        process.wait(timeout=30)


def _tail(log: Path) -> str:
    return "\n" + log.read_text(errors="replace")[-4000:]


def test_a_ray_compute_is_created_against_the_live_cluster(results: dict[str, Any]) -> None:
    compute = results["compute"]
    assert compute["type"] == "ray"
    assert compute["address"] == results["address"]
    assert compute["cost"] == {"rate": 0.12, "unit": "core"}


def test_a_job_runs_with_its_output_streamed_into_its_log(results: dict[str, Any]) -> None:
    hello = results["hello"]
    assert hello["status"] == "Completed", hello
    assert hello["exit_code"] == 0
    assert hello["history"] == [
        "NotStarted",
        "Queued",
        "Preparing",
        "Running",
        "Finalizing",
        "Completed",
    ]
    lines = hello["log"].splitlines()
    assert lines[0].startswith("hello from job_"), hello["log"]
    # The built environment's Python, first on PATH, from the node's view of the cache.
    assert lines[1].startswith(f"python {SHARED_ENVIRONMENTS}/"), hello["log"]
    # Ray's own lines (its header with the entrypoint) went to the system log.
    assert "Running entrypoint" not in hello["log"]
    # It ran in the job's folder: what it wrote under ./outputs is the job's artifact.
    assert "outputs/result.txt" in hello["artifacts"]
    assert {"user_logs/std_log.txt", "system_logs/prepare.txt"} <= set(hello["artifacts"])


def test_secret_values_are_masked_in_the_log(results: dict[str, Any]) -> None:
    assert "secret ***" in results["hello"]["log"]
    for key, value in results.items():
        assert SECRET not in json.dumps(value), key


def test_input_values_with_shell_metacharacters_arrive_literal(results: dict[str, Any]) -> None:
    job = results["argv"]
    assert job["status"] == "Completed", job
    line = next(x for x in job["log"].splitlines() if x.startswith("ARGV="))
    assert json.loads(line[len("ARGV=") :]) == [NASTY]


def test_a_failing_command_ends_failed_with_its_exit_code(results: dict[str, Any]) -> None:
    job = results["fail"]
    assert (job["status"], job["exit_code"]) == ("Failed", 3)
    assert job["error"] == "the command exited with code 3"
    assert "about to fail" in job["log"]


def test_cancel_stops_a_running_ray_job(results: dict[str, Any]) -> None:
    assert results["sleeper_started"]
    assert results["sleeper_status_before_cancel"] == "Running"
    job = results["sleeper"]
    assert job["status"] == "Canceled", job
    assert job["history"][-3:] == ["CancelRequested", "Finalizing", "Canceled"]
    assert "sleeping" in job["log"]
    assert "woke" not in job["log"]
    assert job["cancel_seconds"] < 30  # not the 60 s the command would sleep


def test_two_instances_run_with_their_ranks(results: dict[str, Any]) -> None:
    job = results["multi"]
    assert job["status"] == "Completed", job
    ranks = sorted(
        line[line.index("RANK=") :] for line in job["log"].splitlines() if " RANK=" in line
    )
    assert len(ranks) == 2, job["log"]
    assert ranks[0].startswith("RANK=0 WORLD_SIZE=2 ")
    assert ranks[1].startswith("RANK=1 WORLD_SIZE=2 ")
    assert "MASTER_ADDR=127.0.0.1" in ranks[0]
    assert "MASTER_PORT=" in ranks[0]
    # Two instances of half a CPU each: a core-second per second of wall time.
    assert job["cost"]["core_seconds"] > 0


def test_one_failing_instance_fails_the_job(results: dict[str, Any]) -> None:
    job = results["multi_fail"]
    assert (job["status"], job["exit_code"]) == ("Failed", 4), job
    assert "instance 1 exited with code 4" in job["log"]
    # The other instance (sleep 60) was stopped rather than waited for.
    assert job["cost"]["core_seconds"] < 2 * 0.2 * 50


def test_a_job_over_its_memory_limit_fails_with_that_reason(results: dict[str, Any]) -> None:
    job = results["hog"]
    assert job["status"] == "Failed"
    assert job["error"].startswith("exceeded its memory limit of 100 MB (used ")


def test_cpu_and_memory_are_sampled_into_the_job(results: dict[str, Any]) -> None:
    assert results["busy"]["status"] == "Completed"
    assert "system/cpu_utilization_percentage" in results["busy"]["metrics"]
    assert "system/memory_usage_megabytes" in results["busy"]["metrics"]


def test_mlflow_logging_inside_the_job_reaches_the_job(results: dict[str, Any]) -> None:
    job = results["mlflow"]
    assert job["status"] == "Completed", job
    logged = {k: v for k, v in job["metrics"].items() if not k.startswith("system/")}
    assert logged == {"loss": 0.5}
    assert job["params"] == {"alpha": "0.1"}


def test_cost_is_the_compute_time_at_the_compute_rate(results: dict[str, Any]) -> None:
    per_core = results["hello"]["cost"]
    assert per_core["unit"] == "core"
    assert per_core["rate"] == 0.12
    assert per_core["cost"] == pytest.approx(per_core["core_seconds"] / 3600 * 0.12, abs=1e-6)
    # Per node-hour: one node for one instance, whatever share of its CPUs the job held.
    per_node = results["per_node"]
    assert per_node["status"] == "Completed"
    assert per_node["cost"]["unit"] == "node"
    wall = per_node["cost"]["core_seconds"] / 0.1
    assert per_node["cost"]["cost"] == pytest.approx(wall / 3600 * 2.0, rel=0.01)
    by_compute = {line["key"]: line for line in results["cost_report"]["lines"]}
    assert by_compute["ray-nodes"]["cost"] == pytest.approx(per_node["cost"]["cost"], abs=1e-5)
    assert by_compute["ray"]["jobs"] == 9


def test_a_ray_job_is_reattached_after_a_server_restart(results: dict[str, Any]) -> None:
    assert results["restart_seen_before"]
    assert results["restart_status_at_stop"] == "Running"
    assert results["restart_status_after_start"] == "Running"
    job = results["restart"]
    assert job["status"] == "Completed", job
    # The log is read again from Ray, secrets masked with the values read back from Ray.
    assert job["log"].splitlines() == ["before ***", "after ***"]
