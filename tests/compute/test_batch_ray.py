"""A batch endpoint's scoring job on a real local Ray cluster, inside a loopback-only network
namespace (as tests/compute/test_ray_launcher.py runs its jobs, and for the same reasons):
the batch driver travels in the deployment's code snapshot, so it runs there unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.compute import test_ray_launcher as launcher
from tests.conftest import start_server

SCENARIO_TIMEOUT = 240
# Root with unshare and ip, and not the PostgreSQL pass: the launcher tests' reasons.
pytestmark = launcher.pytestmark


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, module_database_url: str) -> dict[str, Any]:
    pytest.importorskip("ray")
    with start_server(
        tmp_path_factory.mktemp("build"),
        module_database_url,
        environment_cache_dir=SHARED_ENVIRONMENTS,
        jobs_enabled=False,
    ) as running:
        launcher._build(running)  # no package index inside the namespace
    return launcher.run_scenario(
        tmp_path_factory.mktemp("ray"), "tests.compute.batch_ray_scenario", SCENARIO_TIMEOUT
    )


def test_a_batch_job_scores_on_a_ray_compute(results: dict[str, Any]) -> None:
    assert results["deployment_compute"] == "ray"
    job = results["job"]
    assert job["status"] == "Completed", results["log"]
    assert job["compute"] == "ray"
    assert job["tags"]["batch.mini_batches_done"] == "2"
    rows = sorted(results["predictions"].splitlines())
    assert rows == ["doc0.txt,1", "doc1.txt,2", "doc2.txt,3", "doc3.txt,4"]
