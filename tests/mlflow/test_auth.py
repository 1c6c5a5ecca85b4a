"""Who may use a workspace's tracking server: tokens as Bearer or as a Basic password."""

from __future__ import annotations

import base64

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from shipyard.api.authz import basic_auth_token
from tests.mlflow.conftest import Tracking


def test_basic_auth_with_the_token_as_password(
    tracking: Tracking, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, token = tracking.user("Data Scientist")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", name)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", token)
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    got = MlflowClient().get_run(run.info.run_id)
    assert got.data.metrics == {"m": 1.0}
    assert got.info.user_id == name

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "shp_not-a-token")
    with pytest.raises(MlflowException) as caught:
        MlflowClient().get_run(run.info.run_id)
    assert caught.value.error_code == "UNAUTHENTICATED"


def test_a_bad_token_is_unauthenticated(
    tracking: Tracking, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "shp_not-a-token")
    with pytest.raises(MlflowException) as caught:
        mlflow.get_experiment_by_name("Default")
    assert caught.value.error_code == "UNAUTHENTICATED"


def test_a_user_without_access_is_refused_not_failed(
    tracking: Tracking, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = MlflowClient().create_run("0")  # as the admin
    _, outsider = tracking.user()  # no role at this workspace: it does not exist for them
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", outsider)
    with pytest.raises(MlflowException) as caught:
        MlflowClient().get_run(run.info.run_id)
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert tracking.workspace in caught.value.message

    _, reader = tracking.user("Reader")  # may read, may not log
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", reader)
    assert MlflowClient().get_run(run.info.run_id).info.run_id == run.info.run_id
    with pytest.raises(MlflowException) as caught:
        MlflowClient().log_metric(run.info.run_id, "m", 1.0)
    assert caught.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(MlflowException) as caught:
        mlflow.start_run()
    assert caught.value.error_code == "PERMISSION_DENIED"


def _basic(value: str) -> str:
    return "Basic " + base64.b64encode(value.encode()).decode()


def test_reading_a_basic_credential() -> None:
    assert basic_auth_token(_basic("ada:shp_abc")) == "shp_abc"
    assert basic_auth_token(_basic(":shp_abc")) == "shp_abc"
    assert basic_auth_token(_basic("ada:shp:with:colons")) == "shp:with:colons"
    assert basic_auth_token("basic " + base64.b64encode(b"u:t").decode()) == "t"
    for bad in (
        None,
        "",
        "Bearer shp_abc",
        "Basic",
        "Basic !!!",
        _basic("no-colon"),
        _basic("ada:"),
        "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
    ):
        assert basic_auth_token(bad) is None, bad
