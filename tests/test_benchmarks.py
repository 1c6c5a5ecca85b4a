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
