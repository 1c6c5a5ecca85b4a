"""Pipeline orchestration speed: a 50-step pipeline, and the same pipeline resubmitted.

    python benchmarks/pipelines.py            # full sizes
    python benchmarks/pipelines.py --smoke    # tiny sizes: proves the script still runs

What it measures (the issue's targets in brackets), against a ``shipyard server`` process
with a cached environment:

1. A pipeline of 50 no-op steps (``true``) in one chain, each taking the previous step's
   output: orchestration overhead = wall time (submit -> pipeline Completed) minus the
   critical path of the steps' own times (each step from leaving the queue to Completed:
   preparing, running and finalizing its job). In a chain the critical path is every step,
   so what is left is the time between a step completing and the next one leaving the
   queue, plus submission [under 5 s].
2. The unchanged pipeline resubmitted: every step reused, submit -> Completed [under 2 s].
3. A random sweep of 20 trials, each sleeping 1 s then logging its metric (with the MLflow
   REST API: no client library to import), 2 at once on a 2-CPU local compute: wall time
   (submit -> sweep Completed) against the ideal 20 x 1 s / 2 = 10 s [within 20 %].

Nothing is asserted; RESULTS.md records the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobs import TERMINAL, fresh_database, start_shipyard, stop, when  # type: ignore[import-not-found]

from shipyard.schemas.jobs import JobRead
from shipyard.sdk.client import Client


def chain(steps: int) -> dict[str, Any]:
    jobs: dict[str, Any] = {
        "s0": {"command": "true ${{outputs.out}}", "outputs": {"out": {"type": "uri_folder"}}}
    }
    for i in range(1, steps):
        jobs[f"s{i}"] = {
            "command": "true ${{inputs.previous}} ${{outputs.out}}",
            "inputs": {"previous": f"${{{{parent.jobs.s{i - 1}.outputs.out}}}}"},
            "outputs": {"out": {"type": "uri_folder"}},
        }
    return {"type": "pipeline", "experiment_name": "bench-pipelines", "jobs": jobs}


def wait(client: Client, workspace: str, name: str, timeout: float = 900) -> JobRead:
    jobs = client.workspace(workspace).jobs
    deadline = time.monotonic() + timeout
    while True:
        job = jobs.get_job(name)
        if job.status in TERMINAL:
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"pipeline {name} is still {job.status}")
        time.sleep(0.02)


def run_pipeline(client: Client, workspace: str, body: dict[str, Any]) -> tuple[float, JobRead]:
    sent = datetime.now(UTC)
    name = client.workspace(workspace).jobs.create(body).name
    ended = wait(client, workspace, name)
    if ended.status != "Completed":
        raise RuntimeError(f"the pipeline ended {ended.status}: {ended.error}")
    return (when(ended, ended.status) - sent).total_seconds(), ended


def step_times(client: Client, workspace: str, pipeline: JobRead) -> list[float]:
    jobs = client.workspace(workspace).jobs
    times = []
    for child in (pipeline.steps or {}).values():
        step = jobs.get_job(child)
        if step.reused_from is None:
            times.append((when(step, "Completed") - when(step, "Preparing")).total_seconds())
    return times


# The trial sleeps, then logs its metric through MLflow's REST API with one raw HTTP request:
# a socket only, as importing urllib would add a tenth of a second to each one-second trial.
TRIAL = """\
import json, os, socket, sys, time
from urllib.parse import urlsplit
time.sleep(float(sys.argv[1]))
url = urlsplit(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-batch")
body = json.dumps({"run_id": os.environ["MLFLOW_RUN_ID"], "metrics": [
    {"key": "score", "value": float(sys.argv[2]), "step": 0,
     "timestamp": int(time.time() * 1000)}]}).encode()
head = (f"POST {url.path} HTTP/1.1\\r\\nHost: {url.netloc}\\r\\nConnection: close\\r\\n"
        f"Authorization: Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}\\r\\n"
        f"Content-Type: application/json\\r\\nContent-Length: {len(body)}\\r\\n\\r\\n")
with socket.create_connection((url.hostname, url.port)) as connection:
    connection.sendall(head.encode() + body)
    answer = b"".join(iter(lambda: connection.recv(65536), b""))
if not answer.startswith(b"HTTP/1.1 200"):
    sys.exit("logging the metric failed: " + answer[:200].decode(errors="replace"))
"""


def run_sweep(
    client: Client, workspace: str, folder: Path, trials: int, seconds: float
) -> tuple[float, JobRead]:
    """A random sweep of ``trials`` trials of ``seconds`` each, two at once."""
    code = folder / "sweep_src"
    code.mkdir(exist_ok=True)
    (code / "trial.py").write_text(TRIAL)
    body = {
        "type": "sweep",
        "experiment_name": "bench-sweeps",
        "trial": {
            "command": f"python trial.py {seconds} ${{{{search_space.x}}}}",
            "code": str(code),
        },
        "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        "sampling_algorithm": "random",
        "objective": {"goal": "maximize", "primary_metric": "score"},
        "limits": {"max_total_trials": trials, "max_concurrent_trials": 2},
    }
    return run_pipeline(client, workspace, body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--db-url", help="PostgreSQL server URL (a fresh database is made)")
    args = parser.parse_args(argv)
    steps = 3 if args.smoke else 50
    folder = Path(tempfile.mkdtemp(prefix="shipyard-bench-pipelines-"))
    env_cache = Path(tempfile.gettempdir()) / f"shipyard-test-environments-{os.getuid()}"
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(fresh_database(args.db_url)) if args.db_url else None
        server = start_shipyard(folder, db_url, env_cache)
        stack.callback(stop, server)
        client = stack.enter_context(Client(server.url, server.token))
        client.workspaces.create("bench-pipes")
        print("warming up: one job builds (or finds) the curated environment", file=sys.stderr)
        run_pipeline(client, "bench-pipes", chain(1))
        print(f"1. a chain of {steps} no-op steps", file=sys.stderr)
        body = chain(steps)
        body["inputs"] = {"run": 1}  # a fresh fingerprint: nothing to reuse yet
        body["jobs"]["s0"]["inputs"] = {"run": "${{parent.inputs.run}}"}
        body["jobs"]["s0"]["command"] = "true ${{inputs.run}} ${{outputs.out}}"
        wall, first = run_pipeline(client, "bench-pipes", body)
        critical = sum(step_times(client, "bench-pipes", first))
        print("2. the same pipeline resubmitted", file=sys.stderr)
        again_wall, again = run_pipeline(client, "bench-pipes", body)
        reused = sum(
            1
            for child in (again.steps or {}).values()
            if client.workspace("bench-pipes").jobs.get_job(child).reused_from
        )
        trials, seconds = (4, 0.5) if args.smoke else (20, 1.0)
        print(f"3. a random sweep of {trials} trials of {seconds:g} s, 2 at once", file=sys.stderr)
        sweep_wall, sweep = run_sweep(client, "bench-pipes", folder, trials, seconds)
        children = client.workspace("bench-pipes").jobs.list_jobs(parent_job_name=sweep.name)
        trial_times = [
            (when(t, "Completed") - when(t, "Preparing")).total_seconds()
            for t in children
            if t.status == "Completed"
        ]
        # A trial that did not complete is named with its error: a smoke run in CI that
        # misses one must say why.
        missed = [f"{t.name} {t.status}: {t.error}" for t in children if t.status != "Completed"]
    shutil.rmtree(folder, ignore_errors=True)
    backend = "postgresql" if db_url else "sqlite"
    print(f"pipelines benchmark ({backend}), {'smoke' if args.smoke else 'full'} sizes")
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print()
    print(f"1. chain of {steps} no-op steps: wall {wall:.2f} s, critical path {critical:.2f} s")
    print(
        f"   orchestration overhead: {wall - critical:.2f} s "
        f"({(wall - critical) / steps * 1000:.0f} ms per step)   target: < 5 s"
    )
    print(
        f"2. resubmitted unchanged: {reused}/{steps} steps reused, Completed in "
        f"{again_wall:.2f} s   target: < 2 s"
    )
    ideal = trials * seconds / 2
    done = sweep.sweep.completed if sweep.sweep else 0
    print(
        f"3. random sweep of {trials} trials of {seconds:g} s, 2 at once: {done}/{trials} "
        f"completed, wall {sweep_wall:.2f} s, ideal {ideal:.2f} s "
        f"({(sweep_wall / ideal - 1) * 100:+.0f} %)   target: within 20 % of the ideal"
    )
    for line in missed:
        print(f"   not completed: {line}")
    own = sum(trial_times) / 2
    mean = own * 2 / max(len(trial_times), 1)
    print(
        f"   trials' own time (Preparing -> Completed): mean {mean:.3f} s;"
        f" wall beyond it (2 at once): {sweep_wall - own:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
