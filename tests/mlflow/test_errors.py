"""Errors under /mlflow/ reach the client in MLflow's shape, with MLflow's codes; the rest
of the API keeps problem+json."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking._tracking_service.utils import _get_store

from tests.conftest import unique
from tests.mlflow.conftest import Tracking


def _error(call: object) -> MlflowException:
    with pytest.raises(MlflowException) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_unknown_run_and_experiment(tracking: Tracking) -> None:
    client = MlflowClient()
    assert _error(lambda: client.get_run("0" * 32)).error_code == "RESOURCE_DOES_NOT_EXIST"
    assert _error(lambda: client.log_metric("0" * 32, "m", 1.0)).error_code == (
        "RESOURCE_DOES_NOT_EXIST"
    )
    assert _error(lambda: client.get_experiment("f" * 32)).error_code == "RESOURCE_DOES_NOT_EXIST"
    assert _error(lambda: client.get_metric_history("0" * 32, "m")).error_code == (
        "RESOURCE_DOES_NOT_EXIST"
    )


def test_a_batch_over_mlflows_limits_is_refused(tracking: Tracking) -> None:
    client = MlflowClient()
    run = client.create_run(client.create_experiment(unique("exp")))
    store = _get_store()  # the client's own REST store: the client itself splits big batches
    run_id = run.info.run_id
    too_many_metrics = [Metric("m", 1.0, 1, i) for i in range(1001)]
    too_many_params = [Param(f"p{i}", "v") for i in range(101)]
    too_many_tags = [RunTag(f"t{i}", "v") for i in range(101)]
    for kwargs in (
        {"metrics": too_many_metrics, "params": [], "tags": []},
        {"metrics": [], "params": too_many_params, "tags": []},
        {"metrics": [], "params": [], "tags": too_many_tags},
        {
            "metrics": [Metric("m", 1.0, 1, i) for i in range(950)],
            "params": too_many_params[:60],
            "tags": [],
        },
        {"metrics": [Metric("k" * 251, 1.0, 1, 0)], "params": [], "tags": []},
        {"metrics": [], "params": [Param("p", "v" * 6001)], "tags": []},
    ):
        error = _error(lambda kwargs=kwargs: store.log_batch(run_id, **kwargs))
        assert error.error_code == "INVALID_PARAMETER_VALUE", error.message
    # At the limits, it is accepted; and the client splits anything bigger by itself.
    store.log_batch(
        run_id, metrics=too_many_metrics[:999], params=[Param("p", "v" * 6000)], tags=[]
    )
    client.log_batch(run_id, metrics=too_many_metrics, params=too_many_params)
    assert len(client.get_run(run_id).data.params) == 1 + 101


def test_changing_a_param_is_refused(tracking: Tracking) -> None:
    with mlflow.start_run():
        mlflow.log_param("lr", 1)
        error = _error(lambda: mlflow.log_param("lr", 2))
    assert error.error_code == "INVALID_PARAMETER_VALUE"


def test_bad_bodies_and_unknown_methods_in_mlflow_shape(tracking: Tracking) -> None:
    headers = tracking.server.auth
    response = tracking.http.post(tracking.api("runs/create"), headers=headers, content=b"{")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"]
    response = tracking.http.post(
        tracking.api("runs/log-metric"), headers=headers, json={"key": "m", "value": 1}
    )
    assert (response.status_code, response.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    response = tracking.http.post(
        tracking.api("runs/update"), headers=headers, json={"run_id": "x", "status": "DONE"}
    )
    assert (response.status_code, response.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    response = tracking.http.get(tracking.api("no-such-method"), headers=headers)
    assert (response.status_code, response.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    # Outside /mlflow/, problems stay problems.
    response = tracking.http.get(
        tracking.server.url + "/api/v1/workspaces/x/runs/y", headers=headers
    )
    assert response.headers["content-type"].startswith("application/problem+json")


def test_nan_and_infinity_travel_as_mlflow_spells_them(tracking: Tracking) -> None:
    run = MlflowClient().create_run("0")
    body = {"run_id": run.info.run_id, "key": "m", "value": "-Infinity", "timestamp": 1}
    response = tracking.http.post(
        tracking.api("runs/log-metric"), headers=tracking.server.auth, json=body
    )
    assert response.status_code == 200, response.text
    assert response.json() == {}
    got = tracking.http.get(
        tracking.api("metrics/get-history"),
        headers=tracking.server.auth,
        params={"run_id": run.info.run_id, "metric_key": "m"},
    )
    assert got.json()["metrics"][0]["value"] == "-Infinity"
