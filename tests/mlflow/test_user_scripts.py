"""Typical user scripts, unchanged, with the real mlflow client against a workspace."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
from mlflow import MlflowClient

from tests.conftest import unique
from tests.mlflow.conftest import Tracking


def test_asynchronous_logging_loses_nothing(tracking: Tracking) -> None:
    mlflow.set_experiment(unique("exp"))
    with mlflow.start_run() as run:
        pending = [
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step, synchronous=False)
            for step in range(300)
        ]
        mlflow.log_params({"lr": 0.1, "batch": 32}, synchronous=False)
        mlflow.set_tags({"phase": "async"}, synchronous=False)
        for operation in pending:
            operation.wait()
    client = MlflowClient()
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(m.step for m in history) == list(range(300))
    got = client.get_run(run.info.run_id)
    assert got.data.params == {"lr": "0.1", "batch": "32"}
    assert got.data.tags["phase"] == "async"
    assert got.info.status == "FINISHED"


def test_async_logging_enabled_for_the_whole_script(tracking: Tracking) -> None:
    mlflow.config.enable_async_logging(True)
    try:
        with mlflow.start_run() as run:
            for step in range(200):
                mlflow.log_metrics({"a": step, "b": -step}, step=step)
    finally:
        mlflow.config.enable_async_logging(False)
    client = MlflowClient()  # ending the run flushed the queue
    assert len(client.get_metric_history(run.info.run_id, "a")) == 200
    assert client.get_run(run.info.run_id).data.metrics == {"a": 199.0, "b": -199.0}


def test_datasets_logged_as_inputs_come_back_with_the_run(tracking: Tracking) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.1, 0.2, 0.3]})
    train = mlflow.data.from_pandas(frame, source="s3://bucket/train.csv", name="train")
    evaluation = mlflow.data.from_pandas(frame.head(2), name="eval")
    mlflow.set_experiment(unique("exp"))
    with mlflow.start_run() as run:
        mlflow.log_input(train, context="training")
        mlflow.log_input(train, context="training")  # twice: still one input
        mlflow.log_input(evaluation, context="eval", tags={"split": "holdout"})
    with mlflow.start_run() as other:
        mlflow.log_input(train, context="training")  # the same data, another run

    got = MlflowClient().get_run(run.info.run_id)
    inputs = {i.dataset.name: i for i in got.inputs.dataset_inputs}
    assert set(inputs) == {"train", "eval"}
    assert inputs["train"].dataset.digest == train.digest
    assert inputs["train"].dataset.source_type == "s3"
    assert json.loads(inputs["train"].dataset.source) == {"uri": "s3://bucket/train.csv"}
    assert {t.key: t.value for t in inputs["train"].tags} == {"mlflow.data.context": "training"}
    assert {t.key: t.value for t in inputs["eval"].tags} == {
        "mlflow.data.context": "eval",
        "split": "holdout",
    }
    assert inputs["train"].dataset.schema  # the frame's schema, as the client computed it
    found = mlflow.search_runs(
        experiment_ids=[got.info.experiment_id], output_format="list", order_by=["start_time"]
    )
    assert [len(r.inputs.dataset_inputs) for r in found] == [2, 1]
    assert other.info.run_id == found[1].info.run_id


def test_inputs_to_an_unknown_or_deleted_run_are_refused(tracking: Tracking) -> None:
    body = {
        "datasets": [
            {"dataset": {"name": "d", "digest": "1", "source_type": "code", "source": "{}"}}
        ]
    }
    auth = tracking.server.auth
    missing = tracking.http.post(
        tracking.api("runs/log-inputs"), json={"run_id": "nope", **body}, headers=auth
    )
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    with mlflow.start_run() as run:
        pass
    too_long = {"datasets": [{"dataset": {**body["datasets"][0]["dataset"], "digest": "x" * 37}}]}
    bad = tracking.http.post(
        tracking.api("runs/log-inputs"),
        json={"run_id": run.info.run_id, **too_long},
        headers=auth,
    )
    assert bad.status_code == 400
    assert "digest" in bad.json()["message"]
    MlflowClient().delete_run(run.info.run_id)
    deleted = tracking.http.post(
        tracking.api("runs/log-inputs"), json={"run_id": run.info.run_id, **body}, headers=auth
    )
    assert deleted.status_code == 400
    assert deleted.json()["error_code"] == "INVALID_PARAMETER_VALUE"
