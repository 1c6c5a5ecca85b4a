"""The column form of ``log-batch`` (the SDK's compact body): what goes in comes back, the
latest value per key follows MLflow's rule, and every malformed column is a 400 naming it."""

from __future__ import annotations

import base64
import math
from array import array
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, unique


def packed(code: str, items: list[Any]) -> str:
    column = array(code, items)
    return base64.b64encode(column.tobytes()).decode()  # the test machines are little-endian


def columns(
    keys: list[str],
    values: list[float],
    steps: list[int],
    timestamps: list[int],
    key_index: list[int] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "keys": keys,
        "values": packed("d", values),
        "steps": packed("q", steps),
        "timestamps": packed("q", timestamps),
    }
    if key_index is not None:
        body["key_index"] = packed("I", key_index)
    return body


@pytest.fixture
def run_url(server: RunningServer) -> str:
    name = unique()
    base = f"{server.url}/api/v1/workspaces/{name}"
    httpx.post(
        f"{server.url}/api/v1/workspaces", json={"name": name}, headers=server.auth
    ).raise_for_status()
    created = httpx.post(f"{base}/runs", json={"experiment": "cols"}, headers=server.auth)
    assert created.status_code == 201, created.text
    return f"{base}/runs/{created.json()['id']}"


def _log(server: RunningServer, run_url: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{run_url}/log-batch", json=body, headers=server.auth)


def _history(server: RunningServer, run_url: str, key: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{run_url}/metrics/{key}", headers=server.auth)
    assert response.status_code == 200, response.text
    return list(response.json()["points"])


def test_ten_thousand_points_of_one_key_in_one_call(server: RunningServer, run_url: str) -> None:
    count = 10_000
    values = [step / 7 for step in range(count)]
    body = columns(
        ["loss"], values, list(range(count)), [1_700_000_000_000 + s for s in range(count)]
    )
    response = _log(server, run_url, columns=body)
    assert response.status_code == 204, response.text
    points = _history(server, run_url, "loss")
    assert len(points) == count
    # Floats travel as 8 bytes: exactly what was logged comes back.
    assert [p["value"] for p in points] == values
    assert points[123] == {"step": 123, "timestamp": 1_700_000_000_123, "value": 123 / 7}
    run = httpx.get(run_url, headers=server.auth).json()
    assert run["metrics"]["loss"] == {
        "value": values[-1],
        "step": count - 1,
        "timestamp": 1_700_000_000_000 + count - 1,
    }


def test_several_keys_nan_infinity_and_the_latest_value(
    server: RunningServer, run_url: str
) -> None:
    body = columns(
        ["a", "b"],
        [1.0, math.nan, math.inf, -math.inf, 5.0, 6.0],
        [0, 0, 1, 2, 7, 3],
        [10, 10, 11, 12, 5, 13],
        key_index=[0, 1, 1, 1, 0, 0],
    )
    # Objects and columns in one call; the objects' point at step 7 is later in time but
    # the columns' point at step 7 has the same step and an earlier time.
    metrics = [{"key": "a", "value": 9.0, "step": 7, "timestamp": 6}]
    assert _log(server, run_url, metrics=metrics, columns=body).status_code == 204
    b = _history(server, run_url, "b")
    assert [p["value"] for p in b] == ["NaN", "Infinity", "-Infinity"]
    a = _history(server, run_url, "a")
    assert [(p["step"], p["value"]) for p in a] == [(0, 1.0), (3, 6.0), (7, 5.0), (7, 9.0)]
    run = httpx.get(run_url, headers=server.auth).json()
    # MLflow's rule: the highest step, then the latest time.
    assert run["metrics"]["a"] == {"value": 9.0, "step": 7, "timestamp": 6}
    assert run["metrics"]["b"]["value"] == "-Infinity"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"values": "not base64!"}, "columns.values"),
        ({"steps": "AAA="}, "columns.steps"),  # 2 bytes: not a whole 8-byte integer
        ({"timestamps": packed("q", [-1])}, "columns.timestamps.0"),
        ({"keys": []}, "columns.keys"),
        ({"keys": ["\x00bad"]}, "columns.keys.0"),
        ({"values": packed("d", [1.0, 2.0])}, "columns"),  # not aligned with steps
        ({"key_index": packed("I", [3])}, "columns"),  # past the keys given
        ({"values": "A" * 200_000}, "columns.values"),  # more than 10,000 points
        ({"extra": 1}, "columns.extra"),
    ],
)
def test_malformed_columns_are_400s_naming_the_column(
    server: RunningServer, run_url: str, change: dict[str, Any], field: str
) -> None:
    body = {**columns(["loss"], [1.0], [0], [1]), **change}
    response = _log(server, run_url, columns=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


def test_a_deleted_run_refuses_columns_and_keeps_nothing(
    server: RunningServer, run_url: str
) -> None:
    assert httpx.delete(run_url, headers=server.auth).status_code == 204
    response = _log(server, run_url, columns=columns(["loss"], [1.0], [0], [1]))
    assert response.status_code == 409
    assert response.json()["code"] == "run_deleted"
    httpx.post(f"{run_url}/restore", headers=server.auth).raise_for_status()
    assert _history(server, run_url, "loss") == []


def test_an_unknown_run_or_workspace_is_named(server: RunningServer, run_url: str) -> None:
    missing_run = run_url.rsplit("/", 1)[0] + "/" + "0" * 32
    response = _log(server, missing_run, columns=columns(["loss"], [1.0], [0], [1]))
    assert (response.status_code, response.json()["code"]) == (404, "run_not_found")
    other = run_url.replace("/workspaces/", "/workspaces/no-such-")
    response = _log(server, other, columns=columns(["loss"], [1.0], [0], [1]))
    assert (response.status_code, response.json()["code"]) == (404, "workspace_not_found")
