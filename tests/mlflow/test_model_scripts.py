"""Models end to end with the real mlflow client: autolog, log_model, the registry, load_model.

The model files go up through the workspace's artifact proxy and come back down when the
client loads ``models:/...``; the server stores them and never opens them.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LinearRegression, LogisticRegression

from tests.conftest import unique
from tests.mlflow.conftest import Tracking


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(60, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.3
    return x, y


def test_a_model_logged_registered_and_loaded_back(tracking: Tracking) -> None:
    x, y = _data()
    model = LinearRegression().fit(x, y)
    name = unique("model")
    mlflow.set_experiment(unique("exp"))
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", input_example=x[:2])
    version = mlflow.register_model(info.model_uri, name)
    assert version.version == "1"
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", "1")

    expected = model.predict(x[:5])
    for uri in (f"models:/{name}/1", f"models:/{name}@champion", info.model_uri):
        loaded = mlflow.pyfunc.load_model(uri)
        np.testing.assert_allclose(loaded.predict(x[:5]), expected)
    sk = mlflow.sklearn.load_model(f"models:/{name}/1")
    np.testing.assert_allclose(sk.predict(x[:5]), expected)

    got = client.get_model_version(name, "1")
    assert got.run_id == run.info.run_id
    logged = client.get_logged_model(info.model_id)
    assert logged.source_run_id == run.info.run_id
    files = {f.path for f in client.list_logged_model_artifacts(info.model_id)}
    assert "MLmodel" in files
    assert any(f.startswith("model.") for f in files)  # the pickled or skops-saved model


def test_sklearn_autolog_around_a_real_fit(tracking: Tracking) -> None:
    x, y = _data()
    labels = (y > y.mean()).astype(int)
    mlflow.set_experiment(unique("exp"))
    mlflow.sklearn.autolog(log_input_examples=True, silent=True)
    try:
        with mlflow.start_run() as run:
            LogisticRegression(C=0.5, max_iter=200).fit(x, labels)
    finally:
        mlflow.sklearn.autolog(disable=True)
    got = MlflowClient().get_run(run.info.run_id)
    assert got.data.params["C"] == "0.5"
    assert got.data.params["max_iter"] == "200"
    assert 0.5 < got.data.metrics["training_accuracy_score"] <= 1.0
    assert got.data.tags["estimator_class"].endswith("LogisticRegression")
    models = MlflowClient().search_logged_models(experiment_ids=[got.info.experiment_id])
    assert [m.source_run_id for m in models] == [run.info.run_id]
    loaded = mlflow.pyfunc.load_model(f"models:/{models[0].model_id}")
    assert set(loaded.predict(x[:10])) <= {0, 1}


def test_a_reader_loads_but_cannot_register(
    tracking: Tracking, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = _data()
    name = unique("model")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(LinearRegression().fit(x, y), name="model")
    mlflow.register_model(info.model_uri, name)
    _, token = tracking.user("Reader")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    assert loaded.predict(x[:1]).shape == (1,)
    with pytest.raises(mlflow.exceptions.MlflowException) as caught:
        mlflow.register_model(info.model_uri, name)
    assert caught.value.error_code == "PERMISSION_DENIED"
