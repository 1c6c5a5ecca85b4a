"""MLflow's ``/api/3.0/mlflow/server-info``: what the client asks before big transfers.

Public, as on MLflow's server (clients read it before they authenticate); it says nothing
about the workspace. Multipart (presigned) uploads and downloads are off: the client then
streams a big file in one request, which this server takes without holding it in memory.
"""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.api.authz import GuardedRoute, require
from shipyard.domain import actions
from shipyard.mlflow.paths import TRACKING_PATH

router = APIRouter(
    prefix=TRACKING_PATH + "/api/3.0/mlflow", route_class=GuardedRoute, tags=["mlflow"]
)


@router.get("/server-info", dependencies=[require(actions.PUBLIC)])
def server_info() -> dict[str, object]:
    return {
        "store_type": "SqlStore",  # what the client expects of a database-backed server
        "workspaces_enabled": False,  # MLflow's own workspaces; ours are in the tracking URI
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
    }
