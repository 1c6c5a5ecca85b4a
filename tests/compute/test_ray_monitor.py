"""The monitor every Ray job runs under, run here as Ray runs it but without a cluster: the
command's exit code and output unchanged, the group's SIGTERM reaching the command, the memory
limit enforced with its reason, and CPU/memory samples landing in a real server's run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from shipyard.compute.launchers.ray import MONITOR, RayJob, RayLauncher
from shipyard.compute.launchers.ray_monitor import MEMORY_EXIT, MEMORY_LINE, _usage
from shipyard.sdk.client import Client
from tests.conftest import ADMIN_TOKEN, RunningServer, unique

ALLOCATE = "x = bytearray(300 * 1024 * 1024); import time; time.sleep(60)"


def monitor(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-I", str(MONITOR), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def test_the_exit_code_and_output_are_the_command_s() -> None:
    done = monitor("--", "bash", "-c", "echo out; echo err >&2; exit 5")
    out, err = done.communicate(timeout=30)
    assert (done.returncode, out, err) == (5, "out\n", "err\n")


def test_a_job_past_its_memory_limit_is_killed_with_the_reason() -> None:
    done = monitor("--memory-mb", "100", "--", sys.executable, "-c", ALLOCATE)
    _, err = done.communicate(timeout=30)
    assert done.returncode == MEMORY_EXIT
    assert f"{MEMORY_LINE} of 100 MB (used " in err


def test_the_group_s_sigterm_reaches_the_command_and_its_exit_code_returns() -> None:
    done = monitor(
        "--", "bash", "-c", "trap 'echo got-term; exit 3' TERM; echo ready; sleep 30 & wait"
    )
    assert done.stdout is not None
    assert done.stdout.readline() == "ready\n"
    os.killpg(done.pid, signal.SIGTERM)  # Ray stops a job by signalling its group
    out, _ = done.communicate(timeout=30)
    assert done.returncode == 3
    assert out == "got-term\n"


def test_without_the_server_s_python_on_the_node_the_command_runs_bare(tmp_path: Path) -> None:
    job = RayJob("http://127.0.0.1:8265", "shipyard-abc-0", 0.5, 0, 0, 1)
    line = RayLauncher(python=str(tmp_path / "no-python")).entrypoint(
        job, "echo bare; exit 6", tmp_path
    )
    done = subprocess.run(
        ["/bin/sh", "-c", line], capture_output=True, text=True, timeout=30, check=False
    )
    assert (done.returncode, done.stdout) == (6, "bare\n")


def test_a_command_that_has_ended_gives_no_sample() -> None:
    # Ended but not yet waited for (a zombie), as between the monitor's wait and its sample:
    # psutil would read it as 0 MB and 0 CPU seconds, a false last sample.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        root = psutil.Process(child.pid)
        deadline = time.monotonic() + 10
        while root.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.02)
        assert root.status() == psutil.STATUS_ZOMBIE
        assert _usage(root) is None
    finally:
        child.wait()
    # Sampled once it has started: right after the fork it is not Python yet (4 KB in CI).
    running = subprocess.Popen(
        [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(5)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert running.stdout is not None
        assert running.stdout.readline() == "ready\n"
        usage = _usage(psutil.Process(running.pid))
        assert usage is not None
        assert usage[0] > 1024 * 1024  # a Python process holds several MB
    finally:
        running.kill()
        running.wait()


def test_samples_reach_the_job_s_run(server: RunningServer) -> None:
    workspace = unique("monitor")
    with Client(server.url, ADMIN_TOKEN) as client:
        client.workspaces.create(workspace)
        ws = client.workspace(workspace)
        with ws.start_run(experiment="monitored") as run:
            run_id = run.id
        env = {
            "PATH": os.environ["PATH"],
            "MLFLOW_TRACKING_URI": f"{server.url}/mlflow/workspaces/{workspace}",
            "MLFLOW_TRACKING_TOKEN": ADMIN_TOKEN,
            "MLFLOW_RUN_ID": run_id,
        }
        burn = "import time\nend = time.time() + 4\nwhile time.time() < end: pass"
        done = monitor(
            "--interval",
            "0.5",
            "--prefix",
            "system/instance_1/",
            "--",
            sys.executable,
            "-c",
            burn,
            env=env,
        )
        done.communicate(timeout=30)
        assert done.returncode == 0
        deadline = time.monotonic() + 10
        while True:
            read = ws.jobs.get_run(run_id)
            if (
                "system/instance_1/memory_usage_megabytes" in read.metrics
                or time.monotonic() > deadline
            ):
                break
            time.sleep(0.1)
        memory = ws.jobs.get_metric_history(run_id, "system/instance_1/memory_usage_megabytes")
        cpu = ws.jobs.get_metric_history(run_id, "system/instance_1/cpu_utilization_percentage")
        assert len(memory) >= 2
        assert all(float(p.value) > 1 for p in memory)  # a Python process holds several MB
        assert max(float(p.value) for p in cpu) > 1  # the loop keeps a core busy (shared here)
        assert [p.step for p in memory] == list(range(len(memory)))
