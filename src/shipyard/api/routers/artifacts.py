"""/api/v1/workspaces/{workspace}/runs/{run_id}/artifacts: a run's files.

``PUT .../artifacts/<path>`` uploads the raw request body as one file (streamed, atomic,
limited by ``max_artifact_bytes``); ``GET .../artifacts?path=&recursive=`` lists;
``GET .../artifacts/<path>`` downloads (``Range`` honoured); ``DELETE`` removes a file or a
folder. Uploads count as the run's logging (telemetry, like metrics), deletions as changes.
"""

from __future__ import annotations

import posixpath

from fastapi import APIRouter, Depends, Query, Request, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.file_transfer import file_response, receive_upload
from shipyard.domain import actions
from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.artifacts import ArtifactList, ArtifactRead, ArtifactWritten

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/runs/{run_id}/artifacts",
    route_class=GuardedRoute,
    tags=["artifacts"],
)


@router.get("", dependencies=[require(actions.JOBS_READ)])
def list_artifacts(
    workspace: str,
    run_id: str,
    path: str = Query("", max_length=4096, description="A folder (or file) under the root."),
    recursive: bool = Query(False, description="Every file below, not only direct children."),
    services: Services = Depends(get_services),
) -> ArtifactList:
    root = services.artifacts.run_root(workspace, run_id)
    found = services.artifacts.list(root, path, recursive=recursive)
    return ArtifactList(items=[ArtifactRead(**vars(info)) for info in found])


@router.put(
    "/{path:path}", status_code=201, dependencies=[require(actions.JOBS_WRITE, telemetry=True)]
)
async def upload_artifact(
    workspace: str,
    run_id: str,
    path: str,
    request: Request,
    services: Services = Depends(get_services),
) -> ArtifactWritten:
    root = services.artifacts.run_root(workspace, run_id, writing=True)
    written = await receive_upload(request, services.artifacts.writer(root, path))
    return ArtifactWritten(path=path, size=written.size, sha256=written.sha256)


@router.get("/{path:path}", dependencies=[require(actions.JOBS_READ)])
def download_artifact(
    workspace: str,
    run_id: str,
    path: str,
    request: Request,
    services: Services = Depends(get_services),
) -> Response:
    root = services.artifacts.run_root(workspace, run_id)
    info = services.artifacts.stat(root, path)
    if info.is_dir:
        raise InvalidInputError(
            f"{path!r} is a folder; list it with ?path=", code="path_is_folder", field="path"
        )
    return file_response(
        info.size,
        lambda start, end: services.artifacts.read(root, path, start=start, end=end),
        request.headers.get("range"),
        filename=posixpath.basename(info.path),
    )


@router.delete("/{path:path}", status_code=204, dependencies=[require(actions.JOBS_WRITE)])
def delete_artifact(
    workspace: str, run_id: str, path: str, services: Services = Depends(get_services)
) -> Response:
    root = services.artifacts.run_root(workspace, run_id, writing=True)
    services.artifacts.delete(root, path)
    return Response(status_code=204)
