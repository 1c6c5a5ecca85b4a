"""The real mlflow client logs into a workspace: experiments, runs, metrics, params, tags."""

from __future__ import annotations

import math

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from tests.conftest import unique
from tests.mlflow.conftest import Tracking


def test_a_run_logged_with_the_fluent_api(tracking: Tracking) -> None:
    name = unique("exp")
    experiment = mlflow.set_experiment(name)
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"epochs": 3, "optimizer": "adam"})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "nan": math.nan, "inf": math.inf})
        mlflow.set_tag("team", "vision")
        mlflow.set_tags({"stage": "dev", "owner": "ada"})
        run_id = run.info.run_id

    got = MlflowClient().get_run(run_id)
    assert got.info.experiment_id == experiment.experiment_id
    assert got.info.run_name == "first"
    assert got.info.status == "FINISHED"
    assert got.info.end_time is not None
    assert got.info.end_time >= got.info.start_time > 0
    assert got.info.lifecycle_stage == "active"
    assert got.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert got.data.params == {"lr": "0.01", "epochs": "3", "optimizer": "adam"}
    assert got.data.metrics["loss"] == pytest.approx(1 / 3)
    assert got.data.metrics["acc"] == pytest.approx(0.9)
    assert math.isnan(got.data.metrics["nan"])
    assert got.data.metrics["inf"] == math.inf
    assert got.data.tags["team"] == "vision"
    assert got.data.tags["stage"] == "dev"
    assert got.data.tags["mlflow.runName"] == "first"
    assert got.data.tags["mlflow.user"] == "admin"  # the token's principal, not the OS user

    history = MlflowClient().get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert all(m.key == "loss" and m.timestamp > 0 for m in history)


def test_a_run_without_an_experiment_goes_to_the_workspace_default(tracking: Tracking) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    default = mlflow.get_experiment_by_name("Default")
    assert default is not None
    assert run.info.experiment_id == default.experiment_id
    assert MlflowClient().get_experiment("0").experiment_id == default.experiment_id
    assert run.info.run_name  # the server named it


def test_nested_runs_record_their_parent(tracking: Tracking) -> None:
    mlflow.set_experiment(unique("exp"))
    with mlflow.start_run() as parent, mlflow.start_run(nested=True) as child:
        mlflow.log_param("depth", 1)
    got = MlflowClient().get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert got.data.params == {"depth": "1"}
    # Shipyard's own API sees the same parent.
    body = tracking.admin(
        "GET", f"/api/v1/workspaces/{tracking.workspace}/runs/{child.info.run_id}"
    ).json()
    assert body["parent_run_id"] == parent.info.run_id


def test_client_run_lifecycle(tracking: Tracking) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment(unique("exp"), tags={"purpose": "test"})
    run = client.create_run(experiment_id, run_name="r1", tags={"k": "v"})
    assert run.info.status == "RUNNING"
    assert run.data.tags["k"] == "v"

    client.log_batch(
        run.info.run_id,
        metrics=[Metric("m", 1.5, 1_700_000_000_000, 4)],
        params=[Param("p", "x")],
        tags=[RunTag("t", "y")],
    )
    client.update_run(run.info.run_id, status="FAILED", name="renamed")
    got = client.get_run(run.info.run_id)
    assert (got.info.status, got.info.run_name) == ("FAILED", "renamed")
    assert got.data.metrics == {"m": 1.5}
    assert got.data.params == {"p": "x"}
    assert got.data.tags["t"] == "y"
    history = client.get_metric_history(run.info.run_id, "m")
    assert [(m.value, m.timestamp, m.step) for m in history] == [(1.5, 1_700_000_000_000, 4)]

    client.set_tag(run.info.run_id, "mlflow.runName", "by-tag")
    assert client.get_run(run.info.run_id).info.run_name == "by-tag"

    client.update_run(run.info.run_id, status="KILLED")
    assert client.get_run(run.info.run_id).info.status == "KILLED"

    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException) as caught:
        client.log_param(run.info.run_id, "q", "1")
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    client.restore_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"
    client.log_param(run.info.run_id, "q", "1")


def test_experiments(tracking: Tracking) -> None:
    client = MlflowClient()
    name = unique("exp")
    experiment_id = client.create_experiment(name, tags={"a": "1"})
    got = client.get_experiment(experiment_id)
    assert (got.name, got.lifecycle_stage, got.tags) == (name, "active", {"a": "1"})
    assert got.creation_time > 0
    assert mlflow.get_experiment_by_name(name).experiment_id == experiment_id
    assert mlflow.get_experiment_by_name(unique("missing")) is None

    with pytest.raises(MlflowException) as caught:
        client.create_experiment(name)
    assert caught.value.error_code == "RESOURCE_ALREADY_EXISTS"

    client.set_experiment_tag(experiment_id, "b", "2")
    assert client.get_experiment(experiment_id).tags == {"a": "1", "b": "2"}
    client.delete_experiment_tag(experiment_id, "a")
    assert client.get_experiment(experiment_id).tags == {"b": "2"}

    renamed = unique("renamed")
    client.rename_experiment(experiment_id, renamed)
    assert client.get_experiment(experiment_id).name == renamed

    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    active = {e.experiment_id for e in client.search_experiments()}
    deleted = {e.experiment_id for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)}
    assert experiment_id not in active
    assert experiment_id in deleted
    with pytest.raises(MlflowException) as caught:
        client.create_run(experiment_id)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_search_experiments_filters_orders_and_pages(tracking: Tracking) -> None:
    client = MlflowClient()
    prefix = unique("s")
    ids = [
        client.create_experiment(f"{prefix}-{i}", tags={"even": str(i % 2 == 0)}) for i in range(5)
    ]
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}-%'", order_by=["name"])
    assert [e.experiment_id for e in found] == ids

    found = client.search_experiments(
        filter_string=f"name ILIKE '{prefix.upper()}%' AND tags.even = 'True'",
        order_by=["name DESC"],
    )
    assert [e.experiment_id for e in found] == [ids[4], ids[2], ids[0]]

    pages, token = [], None
    while True:
        page = client.search_experiments(
            filter_string=f"name LIKE '{prefix}%'",
            order_by=["name ASC"],
            max_results=2,
            page_token=token,
        )
        pages.append([e.experiment_id for e in page])
        token = page.token
        if not token:
            break
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]

    with pytest.raises(MlflowException) as caught:
        client.search_experiments(filter_string="name ~ 'x'")
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def test_metric_history_pages(tracking: Tracking) -> None:
    from mlflow.tracking._tracking_service.utils import _get_store

    client = MlflowClient()
    run = client.create_run(client.create_experiment(unique("exp")))
    client.log_batch(run.info.run_id, metrics=[Metric("m", float(i), 1, i) for i in range(5)])
    store = _get_store()
    first = store.get_metric_history(run.info.run_id, "m", max_results=3)
    rest = store.get_metric_history(run.info.run_id, "m", max_results=3, page_token=first.token)
    assert [m.step for m in first] == [0, 1, 2]
    assert [m.step for m in rest] == [3, 4]
    assert rest.token is None


def test_search_runs(tracking: Tracking) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment(unique("exp"))
    ids = []
    for i, optimizer in enumerate(["adam", "sgd", "adam"]):
        run = client.create_run(experiment_id, run_name=f"r{i}")
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", 0.5 + i / 10, 1, 0)],
            params=[Param("optimizer", optimizer)],
        )
        ids.append(run.info.run_id)
    client.set_terminated(ids[0])

    found = client.search_runs(
        [experiment_id], "params.optimizer = 'adam'", order_by=["metrics.acc DESC"]
    )
    assert [r.info.run_id for r in found] == [ids[2], ids[0]]
    found = client.search_runs([experiment_id], "attributes.status = 'FINISHED'")
    assert [r.info.run_id for r in found] == [ids[0]]
    assert found[0].data.params == {"optimizer": "adam"}

    page = client.search_runs([experiment_id], order_by=["attributes.run_name"], max_results=2)
    assert [r.info.run_name for r in page] == ["r0", "r1"]
    rest = client.search_runs(
        [experiment_id], order_by=["attributes.run_name"], max_results=2, page_token=page.token
    )
    assert [r.info.run_name for r in rest] == ["r2"]

    client.delete_run(ids[1])
    deleted = client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [ids[1]]
    assert len(client.search_runs([experiment_id], run_view_type=ViewType.ALL)) == 3
    assert len(client.search_runs([experiment_id])) == 2

    mlflow.set_experiment(experiment_id=experiment_id)
    frame = mlflow.search_runs(filter_string="metrics.acc > 0.55")
    assert sorted(frame["run_id"]) == sorted([ids[2]])

    with pytest.raises(MlflowException) as caught:
        client.search_runs([experiment_id], "metrics.acc >")
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def test_search_runs_in_the_default_experiment(tracking: Tracking) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    found = MlflowClient().search_runs(["0"])
    assert [r.info.run_id for r in found] == [run.info.run_id]


def test_the_workspace_names_its_tracking_uri(tracking: Tracking) -> None:
    body = tracking.admin("GET", f"/api/v1/workspaces/{tracking.workspace}").json()
    assert body["mlflow_tracking_uri"] == tracking.uri


def test_delete_tag_and_client_times(tracking: Tracking) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment(unique("exp"))
    run = client.create_run(experiment_id, start_time=1_700_000_000_000, tags={"gone": "soon"})
    assert run.info.start_time == 1_700_000_000_000
    client.delete_tag(run.info.run_id, "gone")
    assert "gone" not in client.get_run(run.info.run_id).data.tags
    with pytest.raises(MlflowException) as caught:
        client.delete_tag(run.info.run_id, "gone")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.set_terminated(run.info.run_id, status="FINISHED", end_time=1_700_000_360_000)
    ended = client.get_run(run.info.run_id).info
    assert (ended.status, ended.end_time) == ("FINISHED", 1_700_000_360_000)
