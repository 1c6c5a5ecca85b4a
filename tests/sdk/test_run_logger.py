"""The SDK's batching sender: points travel in the column form, and fall back to the object
form the server has always known (a step past 64 bits, or a server without columns)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request, Response

from shipyard import Client
from shipyard.api.authz import require
from shipyard.domain import actions
from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.tracking import LogBatch
from shipyard.sdk.http import HttpSession
from shipyard.sdk.run_logger import MAX_COLUMN_POINTS, RunLogger, _Columns
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.conftest import ADMIN_TOKEN, RunningServer, start_server, unique


@pytest.fixture
def ws(admin: Client) -> WorkspaceHandle:
    name = unique()
    admin.workspaces.create(name=name)
    return admin.workspace(name)


def _history(server: RunningServer, ws: str, run_id: str, key: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/api/v1/workspaces/{ws}/runs/{run_id}/metrics/{key}", headers=server.auth
    )
    response.raise_for_status()
    return list(response.json()["points"])


def test_many_points_of_several_keys_arrive_whole(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    count = MAX_COLUMN_POINTS + 2_500  # more than one call's worth
    with ws.start_run(experiment="e") as run:
        for step in range(count):
            run.log_metric("a" if step % 3 else "b", step / 3, step=step, timestamp=step + 1)
        run.log_metric("odd", math.nan, step=0)
        run.log_metric("odd", -math.inf, step=1)
        run.flush()
    a = _history(server, ws.name, run.id, "a")
    b = _history(server, ws.name, run.id, "b")
    assert len(a) + len(b) == count
    assert a[0] == {"step": 1, "timestamp": 2, "value": 1 / 3}
    assert [p["step"] for p in b[:3]] == [0, 3, 6]
    odd = _history(server, ws.name, run.id, "odd")
    assert [p["value"] for p in odd] == ["NaN", "-Infinity"]


def test_the_object_form_of_a_batch_is_what_the_server_stores(
    server: RunningServer, ws: WorkspaceHandle
) -> None:
    batch = _Columns()
    for i, (key, value) in enumerate([("x", 1.5), ("y", math.inf), ("x", math.nan)]):
        batch.points.append(("m", key, value, i, 100 + i))
    run = ws.start_run(experiment="e")
    (body,) = batch.objects()
    response = httpx.post(
        f"{server.url}/api/v1/workspaces/{ws.name}/runs/{run.id}/log-batch",
        content=body,
        headers={**server.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 204, response.text
    x = _history(server, ws.name, run.id, "x")
    assert [(p["step"], p["value"]) for p in x] == [(0, 1.5), (2, "NaN")]
    assert _history(server, ws.name, run.id, "y")[0]["value"] == "Infinity"
    run.end()


def test_a_step_past_64_bits_is_refused_by_the_server_naming_it(ws: WorkspaceHandle) -> None:
    run = ws.start_run(experiment="e")
    run.log_metric("m", 1.0, step=2**64)  # no column can carry it: sent as objects
    with pytest.raises(InvalidInputError) as caught:
        run.flush()
    assert caught.value.field == "metrics.0.step"
    run.end()


def test_against_a_server_without_the_column_form_points_go_as_objects(
    tmp_path: Path, database_url: str
) -> None:
    """An older server refuses ``columns`` as an unknown field: the logger switches to the
    object form for good, and nothing is lost."""
    thread = start_server(tmp_path, database_url)
    app = thread.app
    calls: list[str] = []

    # The log-batch of an older server: the same body model without ``columns``.
    @app.post(
        "/old/{workspace}/runs/{run_id}/log-batch", dependencies=[require(actions.JOBS_WRITE)]
    )
    async def old_log_batch(workspace: str, run_id: str, request: Request) -> Response:
        body = await request.json()
        calls.append("columns" if "columns" in body else "metrics")
        if "columns" in body:
            problem = {"code": "unknown_field", "field": "columns", "detail": "unknown field"}
            return Response(json.dumps(problem), 400, media_type="application/problem+json")
        services = request.app.state.services
        services.runs.log_batch(workspace, run_id, LogBatch.model_validate(body))
        return Response(status_code=204)

    with thread as running:
        client = running.client()
        client.workspaces.create(name="old")
        run = client.workspace("old").start_run(experiment="e")
        http = HttpSession(running.url, ADMIN_TOKEN, timeout=30, user_agent="test")
        logger = RunLogger(http, f"/old/old/runs/{run.id}/log-batch")
        for step in range(2_500):
            logger.put(("m", "loss", float(step), step, 1))
        logger.close()
        history = client.workspace("old").jobs.get_metric_history(run.id, "loss")
        assert len(history) == 2_500
        assert calls[0] == "columns"
        # One refused call, then only objects (1,000 points per call), never columns again.
        assert set(calls[1:]) == {"metrics"}
        assert len(calls) >= 4
        run.end()
        http.close()
        client.close()
