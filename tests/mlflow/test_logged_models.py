"""MLflow 3's logged models through the real client: create, get, finalize, tags, params,
search, delete; what ``log_model`` calls; and registering a logged model."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from tests.conftest import unique
from tests.mlflow.conftest import Tracking


@pytest.fixture
def client(tracking: Tracking) -> MlflowClient:
    return MlflowClient()


@pytest.fixture
def experiment_id(client: MlflowClient) -> str:
    return str(client.create_experiment(unique("exp")))


def refused(call: Callable[[], Any]) -> MlflowException:
    with pytest.raises(MlflowException) as caught:
        call()
    return caught.value


def test_a_logged_model_from_creation_to_deletion(client: MlflowClient, experiment_id: str) -> None:
    run = client.create_run(experiment_id)
    made = client.create_logged_model(
        experiment_id,
        name="clf",
        source_run_id=run.info.run_id,
        tags={"team": "vision"},
        params={"C": "1.0"},
        model_type="classifier",
    )
    assert made.model_id.startswith("m-")
    assert len(made.model_id) == 34
    assert made.status == LoggedModelStatus.PENDING
    assert made.artifact_location == f"mlflow-artifacts:/models/{made.model_id}/artifacts"
    assert (made.name, made.experiment_id, made.source_run_id) == (
        "clf",
        experiment_id,
        run.info.run_id,
    )
    assert made.params == {"C": "1.0"}
    assert made.tags == {"team": "vision"}
    assert made.model_type == "classifier"

    ready = client.finalize_logged_model(made.model_id, LoggedModelStatus.READY)
    assert ready.status == LoggedModelStatus.READY
    client.set_logged_model_tags(made.model_id, {"stage": "candidate", "team": "nlp"})
    client.delete_logged_model_tag(made.model_id, "stage")
    client.log_model_params(made.model_id, {"max_iter": "100"})
    got = client.get_logged_model(made.model_id)
    assert got.tags == {"team": "nlp"}
    assert got.params == {"C": "1.0", "max_iter": "100"}
    assert got.last_updated_timestamp >= got.creation_timestamp

    client.delete_logged_model(made.model_id)
    gone = refused(lambda: client.get_logged_model(made.model_id))
    assert gone.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.search_logged_models([experiment_id]) == []


def test_many_params_arrive_in_batches(client: MlflowClient, experiment_id: str) -> None:
    params = {f"p{i:03d}": str(i) for i in range(250)}  # the client sends 100, then the rest
    made = client.create_logged_model(experiment_id, params=params)
    assert made.params == params
    assert made.name  # the server named it


def test_search_logged_models(client: MlflowClient, experiment_id: str) -> None:
    other = str(client.create_experiment(unique("exp")))
    made = {}
    for name, kind, lr in (("a", "tree", "0.1"), ("b", "tree", "0.2"), ("c", "linear", "0.1")):
        made[name] = client.create_logged_model(
            experiment_id, name=name, params={"lr": lr}, tags={"kind": kind}
        )
    client.create_logged_model(other, name="a")
    client.finalize_logged_model(made["b"].model_id, LoggedModelStatus.READY)

    def names(**kwargs: Any) -> list[str]:
        return [m.name for m in client.search_logged_models([experiment_id], **kwargs)]

    assert names() == ["c", "b", "a"]  # newest first
    assert names(filter_string="name = 'a'") == ["a"]
    assert names(filter_string="tags.kind = 'tree'") == ["b", "a"]
    assert names(filter_string="params.lr = '0.1' AND tags.kind = 'tree'") == ["a"]
    assert names(filter_string="status = 'READY'") == ["b"]
    assert names(filter_string="name LIKE '%'", order_by=[{"field_name": "name"}]) == [
        "a",
        "b",
        "c",
    ]
    assert names(order_by=[{"field_name": "name", "ascending": False}]) == ["c", "b", "a"]
    both = client.search_logged_models([experiment_id, other], filter_string="name = 'a'")
    assert len(both) == 2

    first = client.search_logged_models([experiment_id], max_results=2)
    assert len(first) == 2
    assert first.token
    rest = client.search_logged_models([experiment_id], max_results=2, page_token=first.token)
    assert [m.name for m in [*first, *rest]] == ["c", "b", "a"]
    assert not rest.token

    for bad in ("metrics.acc > 0.5", "nope = 'x'", "name = "):
        error = refused(lambda b=bad: client.search_logged_models([experiment_id], b))
        assert error.error_code == "INVALID_PARAMETER_VALUE", bad
    error = refused(
        lambda: client.search_logged_models(
            [experiment_id], order_by=[{"field_name": "metrics.acc"}]
        )
    )
    assert error.error_code == "INVALID_PARAMETER_VALUE"


def test_bad_input_is_refused(
    tracking: Tracking, client: MlflowClient, experiment_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = refused(lambda: client.get_logged_model("m-" + "0" * 32))
    assert unknown.error_code == "RESOURCE_DOES_NOT_EXIST"
    no_experiment = refused(lambda: client.create_logged_model("123456"))
    assert no_experiment.error_code == "RESOURCE_DOES_NOT_EXIST"
    no_run = refused(lambda: client.create_logged_model(experiment_id, source_run_id="f" * 32))
    assert no_run.error_code == "INVALID_PARAMETER_VALUE"
    made = client.create_logged_model(experiment_id)
    unfinished = refused(
        lambda: client.finalize_logged_model(made.model_id, LoggedModelStatus.PENDING)
    )
    assert unfinished.error_code == "INVALID_PARAMETER_VALUE"
    no_tag = refused(lambda: client.delete_logged_model_tag(made.model_id, "missing"))
    assert no_tag.error_code == "RESOURCE_DOES_NOT_EXIST"

    # Another workspace sees none of it, and cannot register it.
    other = unique("ws")
    tracking.admin("POST", "/api/v1/workspaces", json={"name": other})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.uri.replace(tracking.workspace, other))
    elsewhere = MlflowClient()
    hidden = refused(lambda: elsewhere.get_logged_model(made.model_id))
    assert hidden.error_code == "RESOURCE_DOES_NOT_EXIST"
    # (the client checks with a get first; the server refuses on its own too)
    response = tracking.http.patch(
        f"{tracking.uri.replace(tracking.workspace, other)}/api/2.0/mlflow/logged-models/"
        f"{made.model_id}/tags",
        json={"tags": [{"key": "k", "value": "v"}]},
        headers=tracking.server.auth,
    )
    assert (response.status_code, response.json()["error_code"]) == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    name = unique("thief")
    elsewhere.create_registered_model(name)
    stolen = refused(lambda: elsewhere.create_model_version(name, f"models:/{made.model_id}"))
    assert stolen.error_code == "INVALID_PARAMETER_VALUE"


def test_a_reader_sees_logged_models_but_cannot_create_them(
    tracking: Tracking, client: MlflowClient, experiment_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = client.create_logged_model(experiment_id, name="shared")
    _, reader = tracking.user("Reader")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", reader)
    as_reader = MlflowClient()
    assert as_reader.get_logged_model(made.model_id).name == "shared"
    assert len(as_reader.search_logged_models([experiment_id])) == 1
    for change in (
        lambda: as_reader.create_logged_model(experiment_id),
        lambda: as_reader.finalize_logged_model(made.model_id, LoggedModelStatus.READY),
        lambda: as_reader.delete_logged_model(made.model_id),
    ):
        assert refused(change).error_code == "PERMISSION_DENIED"


def test_log_model_then_register_and_load(tracking: Tracking, client: MlflowClient) -> None:
    """What ``log_model`` asks of the server, end to end: the logged model is READY, its
    files are at its artifact location, and a version registered from it downloads there."""
    features = np.array([[0.0], [1.0], [2.0], [3.0]])
    fitted = LogisticRegression().fit(features, np.array([0, 0, 1, 1]))
    mlflow.set_experiment(unique("exp"))
    name = unique("clf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn and pip-inference chatter
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(fitted, name="model")
        version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)

    logged = client.get_logged_model(info.model_id)
    assert logged.status == LoggedModelStatus.READY
    assert logged.source_run_id == run.info.run_id
    files = {f.path for f in client.list_logged_model_artifacts(info.model_id)}
    assert "MLmodel" in files
    assert version.source == f"models:/{info.model_id}"
    assert version.run_id == run.info.run_id
    download = client.get_model_version_download_uri(name, version.version)
    assert download == logged.artifact_location

    client.set_registered_model_alias(name, "champion", version.version)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = mlflow.sklearn.load_model(f"models:/{name}/{version.version}")
        by_alias = mlflow.sklearn.load_model(f"models:/{name}@champion")
    assert list(loaded.predict(features)) == [0, 0, 1, 1]
    assert list(by_alias.predict(features)) == [0, 0, 1, 1]
