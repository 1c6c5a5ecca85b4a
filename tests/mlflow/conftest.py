"""The real ``mlflow`` client against a real server: each test gets a fresh workspace whose
tracking URI and token are in the environment, the way a user configures the client."""

from __future__ import annotations

import os

# Before mlflow is imported: no telemetry from tests (MLflow reads these when it loads).
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import mlflow
import pytest

from shipyard.mlflow import tracking_uri
from tests.conftest import RunningServer, unique


@dataclass
class Tracking:
    server: RunningServer
    workspace: str
    uri: str
    http: httpx.Client

    def api(self, method: str) -> str:
        """The URL of an MLflow REST method (``runs/get``) in this workspace."""
        return f"{self.uri}/api/2.0/mlflow/{method}"

    def user(self, role: str | None = None) -> tuple[str, str]:
        """A new user (with ``role`` at this workspace, if given) and a token of theirs."""
        name = unique("user")
        self.admin("POST", "/api/v1/users", json={"name": name})
        if role is not None:
            body = {"role": role, "user": name}
            self.admin("POST", f"/api/v1/workspaces/{self.workspace}/role-assignments", json=body)
        token = self.admin("POST", "/api/v1/tokens", json={"name": unique("t"), "user": name})
        return name, str(token.json()["token"])

    def admin(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        response = self.http.request(
            method, self.server.url + path, headers=self.server.auth, **kwargs
        )
        assert response.status_code < 300, response.text
        return response


@pytest.fixture
def tracking(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tracking]:
    # The client writes some of these itself (set_experiment sets MLFLOW_EXPERIMENT_ID):
    # touching each first makes monkeypatch put back the original, absent, state.
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        monkeypatch.setenv(name, "")
    for name in list(os.environ):
        if name.startswith("MLFLOW_") and name != "MLFLOW_DISABLE_TELEMETRY":
            monkeypatch.delenv(name)
    workspace = unique("ws")
    uri = tracking_uri(server.url, workspace)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.admin_token)
    # Fail fast: the client would otherwise retry a 5xx for minutes.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    with httpx.Client(timeout=30) as http:
        found = Tracking(server, workspace, uri, http)
        found.admin("POST", "/api/v1/workspaces", json={"name": workspace})
        try:
            yield found
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
