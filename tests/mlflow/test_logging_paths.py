"""The MLflow surface's fast paths give the same answers as the slow ones did: history pages
that resume after the last point (ties on step and time included), special values, keys
stripped like every Shipyard key, and run creation checking its experiment in one go."""

from __future__ import annotations

import math

import pytest
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from shipyard.api.app import build_services
from shipyard.mlflow import convert
from tests.conftest import unique
from tests.mlflow.conftest import Tracking


def test_history_pages_resume_after_the_last_point_even_on_ties(tracking: Tracking) -> None:
    from mlflow.tracking._tracking_service.utils import _get_store

    client = MlflowClient()
    run_id = client.create_run(client.create_experiment(unique("exp"))).info.run_id
    # Points 1, 2, 3 and 5 share step 1 and time 5: only the order they were logged in tells
    # them apart; point 4 (step 1, time 4) comes before them.
    points = [Metric("m", float(i), 5 if i in (1, 2, 3) else i, min(i, 1)) for i in range(6)]
    client.log_batch(run_id, metrics=points)
    store = _get_store()
    seen: list[float] = []
    token = None
    while True:
        page = store.get_metric_history(run_id, "m", max_results=2, page_token=token)
        seen += [m.value for m in page]
        token = page.token
        if token is None:
            break
    assert seen == [0.0, 4.0, 1.0, 2.0, 3.0, 5.0]
    assert [m.value for m in client.get_metric_history(run_id, "m")] == seen


def test_history_spells_special_values_and_keeps_floats_exact(tracking: Tracking) -> None:
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment(unique("exp"))).info.run_id
    values = [math.nan, math.inf, -math.inf, 0.1 + 0.2, 1e-300, -0.0]
    client.log_batch(run_id, metrics=[Metric("v", v, 1, i) for i, v in enumerate(values)])
    got = [m.value for m in client.get_metric_history(run_id, "v")]
    assert math.isnan(got[0])
    assert got[1:] == values[1:]
    raw = tracking.http.get(
        tracking.api("metrics/get-history"),
        params={"run_id": run_id, "metric_key": "v"},
        headers=tracking.server.auth,
    ).json()
    assert [m["value"] for m in raw["metrics"][:3]] == ["NaN", "Infinity", "-Infinity"]


def test_a_page_token_not_issued_here_is_refused(tracking: Tracking) -> None:
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment(unique("exp"))).info.run_id
    for token in ("bm9wZQ", "eyJhZnRlciI6ICIxOjI6eCJ9"):  # not a token; a token of garbage
        response = tracking.http.get(
            tracking.api("metrics/get-history"),
            params={"run_id": run_id, "metric_key": "m", "page_token": token},
            headers=tracking.server.auth,
        )
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_logged_keys_and_values_are_stripped_and_blank_keys_refused(tracking: Tracking) -> None:
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment(unique("exp"))).info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric(" loss ", 1.0, 1, 0)],
        params=[Param(" lr", " 0.1 ")],
        tags=[RunTag("team ", "nlp")],
    )
    run = client.get_run(run_id)
    assert run.data.metrics == {"loss": 1.0}
    assert run.data.params == {"lr": "0.1"}
    assert run.data.tags["team"] == "nlp"
    response = tracking.http.post(
        tracking.api("runs/log-metric"),
        json={"run_id": run_id, "key": "   ", "value": 1.0, "timestamp": 1, "step": 0},
        headers=tracking.server.auth,
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_each_key_keeps_its_latest_point_in_batches_of_many_keys(tracking: Tracking) -> None:
    """The latest values go in as multi-row upserts (several statements for 1,000 keys):
    only a later point (higher step, or the same step and a later or equal time) replaces
    one. (``Metric`` takes key, value, timestamp, step.)"""
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment(unique("exp"))).info.run_id
    client.log_batch(run_id, metrics=[Metric(f"k{i}", float(i), 5, 100) for i in range(1000)])
    client.log_batch(
        run_id,
        metrics=[
            Metric("k0", -1.0, 4, 100),  # the same step, earlier: kept out
            Metric("k1", -1.0, 9, 99),  # an older step: kept out
            Metric("k2", -2.0, 5, 100),  # the same step and time: replaces
            Metric("k3", -3.0, 6, 100),  # the same step, later: replaces
            Metric("k4", math.nan, 0, 101),  # a higher step: replaces, NaN and all
        ],
    )
    metrics = client.get_run(run_id).data.metrics
    assert len(metrics) == 1000
    assert (metrics["k0"], metrics["k1"], metrics["k2"], metrics["k3"]) == (0.0, 1.0, -2.0, -3.0)
    assert math.isnan(metrics["k4"])
    assert all(metrics[f"k{i}"] == float(i) for i in range(5, 1000))
    found = client.search_runs([client.get_run(run_id).info.experiment_id], "metrics.k999 > 998")
    assert [run.info.run_id for run in found] == [run_id]


def test_run_creation_checks_its_experiment(tracking: Tracking) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment(unique("exp"))
    run = client.create_run(experiment_id, tags={"k": "v"}, run_name="named")
    assert (run.info.experiment_id, run.info.run_name) == (experiment_id, "named")
    assert run.data.tags["k"] == "v"
    assert run.data.tags["mlflow.user"] == "admin"
    assert client.get_run(run.info.run_id).data.tags["k"] == "v"

    with pytest.raises(MlflowException) as caught:
        client.create_run("0" * 32)
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_experiment(experiment_id)
    with pytest.raises(MlflowException) as caught:
        client.create_run(experiment_id)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "deleted" in caught.value.message


def test_search_answers_exactly_what_convert_run_makes(tracking: Tracking) -> None:
    """The search builds its JSON straight from the store's rows; it must stay the same as
    ``convert.run`` of the same runs (metrics, NaN, params, tags, parent, end time, inputs)."""
    client = MlflowClient()
    experiment_id = client.create_experiment(unique("exp"))
    parent = client.create_run(experiment_id, run_name="parent").info.run_id
    child = client.create_run(
        experiment_id, tags={"mlflow.parentRunId": parent, "k": "v"}
    ).info.run_id
    client.log_batch(
        child,
        metrics=[Metric("b", math.nan, 1, 0), Metric("a", 0.25, 2, 3)],
        params=[Param("p", "1")],
    )
    client.log_param(parent, "q", "x")
    dataset = Dataset("train", "d1", "local", '{"uri": "/data/train.csv"}', schema='{"a": 1}')
    client.log_inputs(child, datasets=[DatasetInput(dataset, [InputTag("split", "train")])])
    client.set_terminated(parent, "FINISHED", end_time=1_700_000_000_123)

    response = tracking.http.post(
        tracking.api("runs/search"),
        json={"experiment_ids": [experiment_id]},
        headers=tracking.server.auth,
    )
    assert response.status_code == 200, response.text
    answered = {run["info"]["run_id"]: run for run in response.json()["runs"]}
    assert set(answered) == {parent, child}

    services = build_services(tracking.server.settings, tracking.server.db)
    inputs = services.run_inputs.of_runs([parent, child])
    for run_id in (parent, child):
        run = services.runs.get(tracking.workspace, run_id)
        expected = convert.run(run, inputs[run_id]).model_dump(mode="json", by_alias=True)
        assert answered[run_id] == expected
    assert answered[child]["inputs"]["dataset_inputs"][0]["dataset"]["schema"] == '{"a": 1}'
    assert answered[child]["data"]["metrics"][1]["value"] == "NaN"
