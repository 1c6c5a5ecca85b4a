"""Online deployments on a Ray compute run as Ray Serve applications, on a real local Ray
cluster inside a loopback-only network namespace (as tests/compute/test_ray_launcher.py runs
its jobs, and for the same reasons). ``serve_ray_scenario.py`` does the work once and writes
what it saw; each test asserts on one part of it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.compute import test_ray_launcher as launcher
from tests.conftest import start_server

SCENARIO_TIMEOUT = 300
# Root with unshare and ip, and not the PostgreSQL pass: the launcher tests' reasons.
pytestmark = launcher.pytestmark


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, module_database_url: str) -> dict[str, Any]:
    pytest.importorskip("ray.serve")
    with start_server(
        tmp_path_factory.mktemp("build"),
        module_database_url,
        environment_cache_dir=SHARED_ENVIRONMENTS,
        jobs_enabled=False,
    ) as running:
        launcher._build(running)  # no package index inside the namespace
    return launcher.run_scenario(
        tmp_path_factory.mktemp("serve"), "tests.compute.serve_ray_scenario", SCENARIO_TIMEOUT
    )


def test_a_deployment_on_a_ray_compute_serves_through_the_gateway(
    results: dict[str, Any],
) -> None:
    assert results["endpoint_compute"] == "ray"
    blue = results["blue"]
    assert blue["provisioning_state"] == "Succeeded", blue["error"]
    assert blue["compute"] == "ray"
    assert [i["state"] for i in blue["instances"]] == ["Ready"]
    scores = results["scores"]
    status, answer, deployment = scores["ok"]
    assert status == 200, answer
    # The script's own answer: its init() read the model folder, run() the variables.
    assert answer == {"answer": ["ray-1", "ray-2"], "greeting": "hello from the replica"}
    assert deployment == "blue"
    # The gateway's key check comes first; the replica's 400 passes through.
    assert scores["refused"] == 401
    assert scores["malformed"] == 400


def test_run_raising_is_a_500_with_an_error_id(results: dict[str, Any]) -> None:
    status, body = results["scores"]["boom"]
    assert status == 500
    assert len(body["error_id"]) == 16
    assert body["error_id"] in body["error"]
    assert "boom from run()" not in body["error"]  # the message stays in the logs
    # ... which get-logs shows: the replica's output, copied from the cluster.
    log = results["replica_log"]
    assert f"error {body['error_id']}: run() raised an exception" in log
    assert "ValueError: boom from run()" in log


def test_requests_past_the_replicas_and_their_queue_get_429(results: dict[str, Any]) -> None:
    """Two running (max_concurrent_requests_per_instance: 2), one waiting at Serve's proxy;
    the other three refused at once, as a busy local instance refuses them."""
    statuses, others = results["busy"]
    assert set(statuses) == {200, 429}, others
    assert statuses.count(200) in (2, 3), statuses  # 3 unless the waiting one raced
    refused = json.loads(others[0][1])
    assert refused["code"] == "too_many_requests"
    assert "'blue'" in refused["detail"]


def test_an_mlflow_model_is_served_without_code(results: dict[str, Any]) -> None:
    found = results["mlflow"]
    assert found["shown"]["provisioning_state"] == "Succeeded", found["shown"]["error"]
    status, answer = found["inputs"]
    assert status == 200, answer
    assert answer["predictions"][0] == pytest.approx(5.0)
    status, answer = found["split"]
    assert status == 200, answer
    assert answer["predictions"] == [pytest.approx(5.0)]
    assert found["wrong"] == 400


def test_an_init_that_raises_fails_with_its_traceback(results: dict[str, Any]) -> None:
    bad = results["bad"]
    assert bad["provisioning_state"] == "Failed"
    assert "RuntimeError: cannot load the model: bad weights" in bad["error"]
    assert 'bad.py", line 2, in init' in bad["error"]
    assert "\x1b[" not in bad["error"]


def test_each_deployment_is_a_serve_application_at_its_prefix(results: dict[str, Any]) -> None:
    apps = results["apps_before"]
    assert len(apps) == 2
    for name, app in apps.items():
        assert name.startswith("shipyard-")
        assert app["route_prefix"] == "/shipyard/" + name.removeprefix("shipyard-")
    assert sorted(app["status"] for app in apps.values()) == ["DEPLOY_FAILED", "RUNNING"]


def test_scaling_rolls_to_more_replicas(results: dict[str, Any]) -> None:
    assert results["scaled"] == {"state": "Succeeded", "ready": 2, "error": None}
    assert [line.rsplit(" ", 1)[1] for line in results["ready_metric"]] == ["2.0"], results[
        "ready_metric"
    ]
    running = sorted(app["running"] for app in results["scaled_apps"].values())
    assert running == [0, 2]
    assert all(ok[0] == 200 for ok in results["scores_after_scale"])
    assert "submitted Ray job shipyard-" in results["logs"]


def test_deleting_removes_the_serve_application(results: dict[str, Any]) -> None:
    assert results["apps_after_delete"] == {}
    assert results["score_after_delete"] == 503


def test_a_compute_that_is_not_there_is_a_400_naming_it(results: dict[str, Any]) -> None:
    assert results["refused"] == {"unknown": [400, "compute"], "bad_name": [400, "compute"]}
    assert results["endpoint_compute_change"] == [409, "compute"]
