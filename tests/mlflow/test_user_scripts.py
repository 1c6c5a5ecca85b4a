"""Typical user scripts, unchanged, with the real mlflow client against a workspace."""

from __future__ import annotations

import mlflow
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
