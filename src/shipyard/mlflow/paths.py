"""Where the MLflow surface lives: one tracking URI per workspace."""

from __future__ import annotations

#: Everything under this path answers in MLflow's shape, errors included.
MLFLOW_ROOT = "/mlflow/"
#: The tracking URI's path: the client appends ``/api/2.0/mlflow/<method>`` to it.
TRACKING_PATH = "/mlflow/workspaces/{workspace}"
API_PREFIX = TRACKING_PATH + "/api/2.0/mlflow"


def tracking_uri(server_url: str, workspace: str) -> str:
    """The URI to give ``mlflow.set_tracking_uri`` (or MLFLOW_TRACKING_URI) for a workspace."""
    return server_url.rstrip("/") + TRACKING_PATH.format(workspace=workspace)
