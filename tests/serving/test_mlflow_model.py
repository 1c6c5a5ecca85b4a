"""An MLflow model without code, served through pyfunc with MLflow's request formats: a real
scikit-learn model saved with ``mlflow.sklearn.save_model``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow.sklearn
import pandas as pd
import pytest
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.serving.conftest import ScoringServer


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    data = load_iris(as_frame=True)
    frame: pd.DataFrame = data.frame
    frame.columns = ["sl", "sw", "pl", "pw", "target"]
    return frame


@pytest.fixture(scope="module")
def model_root(tmp_path_factory: pytest.TempPathFactory, iris: pd.DataFrame) -> Path:
    """A model folder as a registered model is laid out: the MLflow model in a subfolder."""
    features = iris.drop(columns="target")
    model = LogisticRegression(max_iter=500).fit(features, iris["target"])
    root = tmp_path_factory.mktemp("registered")
    mlflow.sklearn.save_model(
        model, root / "model", signature=infer_signature(features, model.predict(features))
    )
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_root: Path) -> Iterator[ScoringServer]:
    started = ScoringServer(
        tmp_path_factory.mktemp("server"), model_dir=str(model_root), mlflow_model=True
    )
    assert started.status["state"] == "ready", started.log()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def expected(iris: pd.DataFrame, model_root: Path) -> list[int]:
    model = mlflow.sklearn.load_model(str(model_root / "model"))
    return [int(v) for v in model.predict(iris.drop(columns="target").iloc[[0, 60, 120]])]


def _rows(iris: pd.DataFrame) -> pd.DataFrame:
    return iris.drop(columns="target").iloc[[0, 60, 120]]


def _score(server: ScoringServer, payload: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/score", json=payload, timeout=30)


def test_dataframe_split(server: ScoringServer, iris: pd.DataFrame, expected: list[int]):
    rows = _rows(iris)
    payload = {"dataframe_split": rows.to_dict(orient="split")}
    response = _score(server, payload)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}
    assert len(set(expected)) == 3  # the rows are of three different classes


def test_dataframe_records(server: ScoringServer, iris: pd.DataFrame, expected: list[int]):
    payload = {"dataframe_records": _rows(iris).to_dict(orient="records")}
    assert _score(server, payload).json() == {"predictions": expected}


def test_instances(server: ScoringServer, iris: pd.DataFrame, expected: list[int]):
    payload = {"instances": _rows(iris).to_dict(orient="records")}
    assert _score(server, payload).json() == {"predictions": expected}


def test_inputs(server: ScoringServer, iris: pd.DataFrame, expected: list[int]):
    payload = {"inputs": _rows(iris).to_dict(orient="list")}
    assert _score(server, payload).json() == {"predictions": expected}


def test_csv(server: ScoringServer, iris: pd.DataFrame, expected: list[int]):
    response = httpx.post(
        f"{server.url}/score",
        content=_rows(iris).to_csv(index=False),
        headers={"content-type": "text/csv"},
    )
    assert response.json() == {"predictions": expected}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2, 3], "must be a JSON object"),
        ({"data": [[1, 2, 3, 4]]}, "exactly one of"),
        ({"inputs": {"sl": [1.0]}, "instances": [{"sl": 1.0}]}, "exactly one of"),
        ({"dataframe_split": [[1, 2]]}, "dataframe_split must be an object"),
        ({"dataframe_records": {"sl": 1}}, "must be a list of records"),
        # The model's own error: a column the signature requires is missing.
        ({"dataframe_records": [{"sl": 1.0, "sw": 2.0}]}, "missing inputs"),
    ],
)
def test_a_wrong_payload_shape_is_a_400_with_the_models_error(
    server: ScoringServer, payload: Any, message: str
):
    response = _score(server, payload)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_malformed_json_is_a_400_and_the_instance_keeps_serving(
    server: ScoringServer, iris: pd.DataFrame, expected: list[int]
):
    bad = httpx.post(
        f"{server.url}/score", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400
    assert "malformed JSON" in bad.json()["error"]
    assert _score(server, {"dataframe_split": _rows(iris).to_dict(orient="split")}).json() == {
        "predictions": expected
    }


def test_an_unsupported_content_type_is_a_415(server: ScoringServer):
    response = httpx.post(
        f"{server.url}/score", content=b"x", headers={"content-type": "application/xml"}
    )
    assert response.status_code == 415


def test_a_folder_without_an_mlflow_model_fails_init(tmp_path: Path):
    (tmp_path / "model").mkdir()
    server = ScoringServer(
        tmp_path / "server", model_dir=str(tmp_path / "model"), mlflow_model=True
    )
    try:
        assert server.status["state"] == "failed"
        assert "no MLmodel file" in server.status["error"]
    finally:
        server.stop()
