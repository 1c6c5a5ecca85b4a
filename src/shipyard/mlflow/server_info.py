"""MLflow's ``/api/3.0/mlflow/server-info``: what the client asks before big transfers.

Public, as on MLflow's server (clients read it before they authenticate); it says nothing
about the workspace. Multipart uploads are on (see ``artifacts``: parts go up in parallel to
part URLs of this server); multipart downloads are off, so a download is one streamed
request (ranged requests work for a client that wants them).
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
        "multipart_uploads_enabled": True,
        "multipart_downloads_enabled": False,
    }
