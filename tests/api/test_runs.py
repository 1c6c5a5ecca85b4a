"""Experiments and runs over REST: create on first use, log batches, history, lifecycle."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, unique


@pytest.fixture
def ws(server: RunningServer) -> str:
    name = unique()
    httpx.post(
        f"{server.url}/api/v1/workspaces", json={"name": name}, headers=server.auth
    ).raise_for_status()
    return f"{server.url}/api/v1/workspaces/{name}"


def _run(server: RunningServer, ws: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{ws}/runs", json=body, headers=server.auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _log(server: RunningServer, ws: str, run_id: str, **batch: Any) -> httpx.Response:
    return httpx.post(f"{ws}/runs/{run_id}/log-batch", json=batch, headers=server.auth)


def test_a_run_creates_its_experiment_and_logs_everything(server: RunningServer, ws: str) -> None:
    run = _run(server, ws, experiment="churn", name="first", tags={"team": "nlp"})
    assert (run["status"], run["job_type"], run["experiment"]) == (
        "Running",
        "interactive",
        "churn",
    )
    experiment = httpx.get(f"{ws}/experiments/churn", headers=server.auth).json()
    assert experiment["id"] == run["experiment_id"]

    metrics = [{"key": "loss", "value": 1.0 / (step + 1), "step": step} for step in range(50)]
    metrics += [
        {"key": "odd", "value": "NaN", "step": 0},
        {"key": "odd", "value": "Infinity", "step": 1},
        {"key": "odd", "value": "-Infinity", "step": 2},
    ]
    logged = _log(
        server,
        ws,
        run["id"],
        metrics=metrics,
        params=[{"key": "lr", "value": "0.01"}],
        tags=[{"key": "stage", "value": "dev"}],
    )
    assert logged.status_code == 204, logged.text
    shown = httpx.get(f"{ws}/runs/{run['id']}", headers=server.auth).json()
    assert shown["params"] == {"lr": "0.01"}
    assert shown["tags"] == {"team": "nlp", "stage": "dev"}
    assert shown["metrics"]["loss"]["step"] == 49
    assert math.isclose(shown["metrics"]["loss"]["value"], 1 / 50)
    assert shown["metrics"]["odd"]["value"] == "-Infinity"

    history = httpx.get(f"{ws}/runs/{run['id']}/metrics/odd", headers=server.auth).json()
    assert [p["value"] for p in history["points"]] == ["NaN", "Infinity", "-Infinity"]

    done = httpx.patch(f"{ws}/runs/{run['id']}", json={"status": "Completed"}, headers=server.auth)
    assert done.json()["end_time"] is not None
    assert [s for s, _ in done.json()["status_history"]] == ["Running", "Completed"]


def test_latest_metric_follows_the_highest_step(server: RunningServer, ws: str) -> None:
    run = _run(server, ws)
    _log(server, ws, run["id"], metrics=[{"key": "m", "value": 5, "step": 10}])
    _log(server, ws, run["id"], metrics=[{"key": "m", "value": 1, "step": 3}])  # late, older step
    shown = httpx.get(f"{ws}/runs/{run['id']}", headers=server.auth).json()
    assert (shown["metrics"]["m"]["value"], shown["metrics"]["m"]["step"]) == (5, 10)


def test_history_downsampling_keeps_extremes_and_the_last_point(
    server: RunningServer, ws: str
) -> None:
    run = _run(server, ws)
    values = [math.sin(i / 10) for i in range(3000)]
    values[1234] = 50.0  # a spike a chart must show
    values[2222] = -50.0
    for start in range(0, 3000, 1000):
        chunk = [{"key": "s", "value": values[i], "step": i} for i in range(start, start + 1000)]
        assert _log(server, ws, run["id"], metrics=chunk).status_code == 204
    full = httpx.get(f"{ws}/runs/{run['id']}/metrics/s", headers=server.auth).json()
    assert full["total_points"] == 3000
    assert not full["downsampled"]
    thin = httpx.get(
        f"{ws}/runs/{run['id']}/metrics/s", params={"max_points": 101}, headers=server.auth
    ).json()
    assert thin["downsampled"]
    assert len(thin["points"]) <= 101
    kept = {p["step"]: p["value"] for p in thin["points"]}
    assert kept[1234] == 50.0
    assert kept[2222] == -50.0
    assert thin["points"][-1]["step"] == 2999


def test_params_cannot_change(server: RunningServer, ws: str) -> None:
    run = _run(server, ws)
    assert _log(server, ws, run["id"], params=[{"key": "lr", "value": "1"}]).status_code == 204
    assert _log(server, ws, run["id"], params=[{"key": "lr", "value": "1"}]).status_code == 204
    changed = _log(server, ws, run["id"], params=[{"key": "lr", "value": "2"}])
    assert (changed.status_code, changed.json()["code"]) == (400, "param_changed")


def test_batch_limits_and_bad_values_are_400(server: RunningServer, ws: str) -> None:
    run = _run(server, ws)
    too_many = [{"key": "m", "value": 1, "step": i} for i in range(1001)]
    response = _log(server, ws, run["id"], metrics=too_many)
    assert (response.status_code, response.json()["field"]) == (400, "metrics")
    response = _log(server, ws, run["id"], params=[{"key": "k" * 251, "value": "v"}])
    assert (response.status_code, response.json()["field"]) == (400, "params.0.key")
    response = _log(server, ws, run["id"], metrics=[{"key": "m", "value": "high"}])
    assert (response.status_code, response.json()["field"]) == (400, "metrics.0.value")
    response = _log(server, ws, run["id"], tags=[{"key": "t", "value": "x" * 8001}])
    assert (response.status_code, response.json()["field"]) == (400, "tags.0.value")


def test_unknown_runs_and_deleted_runs(server: RunningServer, ws: str) -> None:
    missing = httpx.get(f"{ws}/runs/{'0' * 32}", headers=server.auth)
    assert (missing.status_code, missing.json()["code"]) == (404, "run_not_found")
    run = _run(server, ws)
    assert httpx.delete(f"{ws}/runs/{run['id']}", headers=server.auth).status_code == 204
    response = _log(server, ws, run["id"], metrics=[{"key": "m", "value": 1}])
    assert (response.status_code, response.json()["code"]) == (409, "run_deleted")
    assert httpx.post(f"{ws}/runs/{run['id']}/restore", headers=server.auth).status_code == 204
    assert _log(server, ws, run["id"], metrics=[{"key": "m", "value": 1}]).status_code == 204


def test_a_run_of_another_workspace_is_not_found_here(server: RunningServer, ws: str) -> None:
    other = unique()
    httpx.post(f"{server.url}/api/v1/workspaces", json={"name": other}, headers=server.auth)
    foreign = _run(server, f"{server.url}/api/v1/workspaces/{other}")
    response = httpx.get(f"{ws}/runs/{foreign['id']}", headers=server.auth)
    assert (response.status_code, response.json()["code"]) == (404, "run_not_found")
    child = httpx.post(f"{ws}/runs", json={"parent_run_id": foreign["id"]}, headers=server.auth)
    assert (child.status_code, child.json()["field"]) == (404, "parent_run_id")


def test_child_runs_and_experiment_lifecycle(server: RunningServer, ws: str) -> None:
    parent = _run(server, ws, experiment="sweep")
    for _ in range(3):
        _run(server, ws, experiment="sweep", parent_run_id=parent["id"])
    children = httpx.get(
        f"{ws}/runs", params={"parent_run_id": parent["id"]}, headers=server.auth
    ).json()["items"]
    assert len(children) == 3
    assert {c["parent_run_id"] for c in children} == {parent["id"]}

    renamed = httpx.patch(f"{ws}/experiments/sweep", json={"name": "sweep-2"}, headers=server.auth)
    assert renamed.json()["name"] == "sweep-2"
    assert httpx.delete(f"{ws}/experiments/sweep-2", headers=server.auth).status_code == 204
    deleted = httpx.get(f"{ws}/experiments", params={"deleted": True}, headers=server.auth)
    assert "sweep-2" in [e["name"] for e in deleted.json()["items"]]
    restored = httpx.post(f"{ws}/experiments/sweep-2/restore", headers=server.auth)
    assert restored.json()["lifecycle_stage"] == "active"
    clash = httpx.post(f"{ws}/experiments", json={"name": "sweep-2"}, headers=server.auth)
    assert (clash.status_code, clash.json()["code"]) == (409, "experiment_exists")


def test_tags_can_be_deleted_and_times_given(server: RunningServer, ws: str) -> None:
    run = _run(server, ws, tags={"a": "1", "b": "2"}, start_time="2026-01-02T03:04:05Z")
    assert run["start_time"] == "2026-01-02T03:04:05Z"
    assert httpx.delete(f"{ws}/runs/{run['id']}/tags/a", headers=server.auth).status_code == 204
    assert httpx.get(f"{ws}/runs/{run['id']}", headers=server.auth).json()["tags"] == {"b": "2"}
    again = httpx.delete(f"{ws}/runs/{run['id']}/tags/a", headers=server.auth)
    assert (again.status_code, again.json()["code"]) == (404, "tag_not_found")
    ended = httpx.patch(
        f"{ws}/runs/{run['id']}",
        json={"status": "Failed", "end_time": "2026-01-02T04:00:00"},
        headers=server.auth,
    ).json()
    assert ended["end_time"] == "2026-01-02T04:00:00Z"
