"""The benchmark scripts still run: each one's ``--smoke`` mode, as a real subprocess.

Nothing here asserts a timing; figures belong in benchmarks/RESULTS.md. With
``SHIPYARD_TEST_DATABASE_URL`` set, the script runs against that PostgreSQL server (it creates
and drops its own database there), as the rest of the suite does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PG_ENV

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_smoke(script: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(BENCHMARKS / script), "--smoke"]
    server_url = os.environ.get(PG_ENV)
    if server_url:
        command += ["--db-url", server_url]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env=dict(os.environ)
    )


def test_authz_benchmark_smoke_runs_and_prints_its_table() -> None:
    result = run_smoke("authz.py")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    backend = "postgresql" if os.environ.get(PG_ENV) else "sqlite"
    assert f"authz benchmark: {backend}" in out
    for row in (
        "GET /api/v1/workspaces/{ws}, authz on",
        "GET /api/v1/workspaces/{ws}, authz off",
        "difference per repetition (on - off)",
        "authorize() in process, RoleBased",
        "authorize() in process, AllowAll",
        "median added by authz over HTTP:",
    ):
        assert row in out, out


def test_tracking_benchmark_smoke_runs_and_prints_every_measure() -> None:
    result = run_smoke("tracking.py")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    backend = "postgresql" if os.environ.get(PG_ENV) else "sqlite"
    assert f"({backend}) vs MLflow" in out, out
    for row in (
        "1. log_batch ingest",
        "2. single log_metric",
        "3. create_run",
        "4. get_metric_history",
        "5. search_runs with a filter",
        "6. concurrent: points sent",
        "6. concurrent: points found",
        "6. concurrent: errors",
        "6. concurrent: batch p99",
        "7. server RSS at the end",
        "8. native SDK ingest (Shipyard)",
        "targets (Shipyard vs the better of MLflow's two modes, same run):",
    ):
        assert row in out, out
    # The client's floor (the replay server) is measured for the client's own calls: each of
    # those rows ends with two ratios, Shipyard's and the ceiling.
    assert "client floor" in out, out
    assert "ceiling" in out, out
    for label in ("1. log_batch", "2. single", "3. create_run", "4. get_metric", "5. search"):
        line = next(x for x in out.splitlines() if x.startswith(label))
        assert [t[-1] for t in line.split()[-2:]] == ["x", "x"], line


def test_storage_benchmark_smoke_runs_and_prints_every_measure() -> None:
    result = run_smoke("storage.py")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    backend = "postgresql" if os.environ.get(PG_ENV) else "sqlite"
    assert f"({backend}) vs a plain copy and MLflow" in out, out
    for row in (
        "1. plain local copy of 4 MiB",
        "1. upload through the API",
        "1. download through the API",
        "1. server RSS growth while moving",
        "2. mlflow.log_artifacts, 20 files",
        "2. ws.data.create, 20 files",
        "targets (same run):",
        "folder >= 3x MLflow:",
    ):
        assert row in out, out


def test_environments_benchmark_smoke_runs_and_prints_every_measure() -> None:
    result = run_smoke("environments.py")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    backend = "postgresql" if os.environ.get(PG_ENV) else "sqlite"
    assert f"environments benchmark ({backend}): six;" in out, out
    for row in (
        "1. bare uv venv + uv pip install",
        "1. Shipyard builder, first build",
        "2. cache hit (ensure on a built spec)",
        "targets (same run):",
        "first build within 1.5x of bare uv:",
        "cache hit under 200 ms:",
    ):
        assert row in out, out


def test_jobs_benchmark_smoke_runs_and_prints_every_measure() -> None:
    result = run_smoke("jobs.py")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    backend = "postgresql" if os.environ.get(PG_ENV) else "sqlite"
    assert f"jobs benchmark ({backend}), smoke sizes" in out, out
    for row in (
        "1. hello-world job, submit -> Running / -> Completed",
        "Shipyard local :",
        "Ray job submit :",
        "2. queue: 11 no-op jobs over 2 slots, 3 workspaces (0 failed)",
        "scheduler overhead per job",
        "queue policy alone",
        "bench-c: 2 jobs, first started",
    ):
        assert row in out, out
    if os.geteuid() == 0:  # Ray's half runs in a network namespace, which needs root
        assert "ratio (Ray / Shipyard)" in out, out


def test_pipelines_benchmark_smoke_runs_and_prints_every_measure() -> None:
    result = run_smoke("pipelines.py")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    backend = "postgresql" if os.environ.get(PG_ENV) else "sqlite"
    assert f"pipelines benchmark ({backend}), smoke sizes" in out, out
    for row in (
        "1. chain of 3 no-op steps: wall",
        "orchestration overhead:",
        "2. resubmitted unchanged: 3/3 steps reused",
        "3. random sweep of 4 trials of 0.5 s, 2 at once: 4/4 completed",
    ):
        assert row in out, out


def test_serving_benchmark_smoke_runs_and_prints_every_measure() -> None:
    result = run_smoke("serving.py")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    backend = "postgresql" if os.environ.get(PG_ENV) else "sqlite"
    assert f"serving benchmark ({backend})" in out, out
    rows = {line[:22].strip(): line.split() for line in out.splitlines()}
    for server in ("mlflow models serve", "Shipyard endpoint", "bare ASGI app"):
        assert server in rows, out
        assert float(rows[server][-4]) > 0, out  # req/s
        assert rows[server][-1] == "0", out  # failed requests
    for row in ("req/s", "p99", "of the bare app's req/s", "traffic shift + update under load"):
        assert row in out, out
