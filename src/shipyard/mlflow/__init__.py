"""Every workspace is an MLflow tracking server: MLflow's REST protocol mapped onto services.

The tracking URI of a workspace is ``{server}/mlflow/workspaces/{workspace}``; the ``mlflow``
client appends ``/api/2.0/mlflow/...`` to it. The routes live under that prefix, so the
``{workspace}`` in their path is the scope every route is authorized at, like any workspace
route. Errors under ``/mlflow/`` leave in MLflow's shape (see ``errors``).
"""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.mlflow.artifacts import multipart as _multipart
from shipyard.mlflow.artifacts import proxy as _artifact_proxy
from shipyard.mlflow.artifacts import tracking as _artifact_list
from shipyard.mlflow.errors import install
from shipyard.mlflow.experiments import router as _experiments
from shipyard.mlflow.hot_routes import HotRoutes
from shipyard.mlflow.inputs import router as _inputs
from shipyard.mlflow.logged_models import outputs as _run_outputs
from shipyard.mlflow.logged_models import router as _logged_models
from shipyard.mlflow.metrics import router as _metrics
from shipyard.mlflow.model_versions import router as _model_versions
from shipyard.mlflow.paths import tracking_uri
from shipyard.mlflow.registered_models import router as _registered_models
from shipyard.mlflow.runs import router as _runs
from shipyard.mlflow.search import router as _search
from shipyard.mlflow.server_info import router as _server_info

router = APIRouter()
for _part in (
    _experiments,
    _runs,
    _search,
    _metrics,
    _artifact_list,
    _artifact_proxy,
    _multipart,
    _server_info,
    _registered_models,
    _model_versions,
    _logged_models,
    _run_outputs,
    _inputs,
):
    router.include_router(_part)

__all__ = ["HotRoutes", "install", "router", "tracking_uri"]
