"""One registry, two doors: a model registered through the native API is an MLflow model
(the real client finds and loads it), and the reverse."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

from shipyard.sdk.client import Client
from tests.conftest import unique
from tests.mlflow.conftest import Tracking

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def fitted() -> tuple[LogisticRegression, np.ndarray]:
    features = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(features, np.array([0, 0, 1, 1]))
    return model, features


def test_a_native_mlflow_model_loads_with_the_mlflow_client(
    tracking: Tracking, tmp_path: Path
) -> None:
    model, features = fitted()
    folder = tmp_path / "churn-model"
    mlflow.sklearn.save_model(
        model, str(folder), signature=infer_signature(features, model.predict(features))
    )
    ws = Client(tracking.server.url, tracking.server.admin_token).workspace(tracking.workspace)
    name = unique("native")
    made = ws.models.create(name, folder, type="mlflow_model", tags={"origin": "sdk"})
    assert made.version == 1
    assert made.flavors is not None
    assert "sklearn" in made.flavors
    assert made.signature is not None
    assert made.signature["inputs"]

    client = MlflowClient()
    registered = client.get_registered_model(name)
    assert registered.name == name
    version = client.get_model_version(name, "1")
    assert version.tags == {"origin": "sdk"}
    assert client.get_model_version_download_uri(name, "1") == made.storage_location
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    assert list(loaded.predict(features)) == list(model.predict(features))

    ws.models.set_alias(name, "champion", 1)
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert list(mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(features)) == list(
        model.predict(features)
    )


def test_a_model_mlflow_registered_is_in_the_native_api(tracking: Tracking, tmp_path: Path) -> None:
    model, features = fitted()
    name = unique("from-mlflow")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model")
    mlflow.register_model(f"runs:/{run.info.run_id}/model", name)

    ws = Client(tracking.server.url, tracking.server.admin_token).workspace(tracking.workspace)
    assert name in [m.name for m in ws.models.list()]
    version = ws.models.get(name, 1)
    assert version.job_name == run.info.run_id
    assert version.type == "mlflow_model"
    assert version.properties == {}
    files = {f.path for f in ws.models.files(name, 1, recursive=True)}
    assert "MLmodel" in files
    copy = ws.models.download(name, 1, download_path=tmp_path / "copy")
    assert (copy / "MLmodel").is_file()
    loaded = mlflow.pyfunc.load_model(str(copy))
    assert list(loaded.predict(features)) == list(model.predict(features))
