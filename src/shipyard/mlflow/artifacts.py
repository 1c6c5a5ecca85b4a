"""MLflow's artifact routes: the ``mlflow-artifacts`` proxy and the tracking API's list.

A run's ``artifact_uri`` is ``mlflow-artifacts:/runs/<run_id>/artifacts``; the client resolves
it against the tracking URI to ``.../api/2.0/mlflow-artifacts/artifacts/runs/<run_id>/...``
and uploads (PUT), downloads (GET), lists (GET with ``?path=``) and deletes there. The path
names the run (or the MLflow logged model, ``models/<id>/artifacts/...``) it belongs to, which
must be in this workspace: anything else is not found. A run's files need the workspace's
``jobs`` actions (declared on the routes); a logged model's need the ``models`` actions too,
checked here once the path says it is a model.
"""

from __future__ import annotations

import posixpath

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.file_transfer import file_response, receive_upload
from shipyard.domain import actions
from shipyard.domain.actions import workspace_scope
from shipyard.domain.errors import InvalidInputError, UnauthenticatedError
from shipyard.domain.principals import Principal
from shipyard.mlflow import convert
from shipyard.mlflow.paths import API_PREFIX, TRACKING_PATH
from shipyard.mlflow.schemas import Empty
from shipyard.mlflow.schemas import Request as MlflowRequest
from shipyard.mlflow.schemas import Response as MlflowBody
from shipyard.services.artifacts import (
    MAX_PARTS,
    RUNS,
    ArtifactRoot,
    FileInfo,
    split_artifact_path,
)

proxy = APIRouter(
    prefix=TRACKING_PATH + "/api/2.0/mlflow-artifacts/artifacts",
    route_class=GuardedRoute,
    tags=["mlflow"],
)
tracking = APIRouter(prefix=API_PREFIX + "/artifacts", route_class=GuardedRoute, tags=["mlflow"])


class FileInfoOut(MlflowBody):
    path: str
    is_dir: bool
    file_size: int | None = None


class ListArtifactsResponse(MlflowBody):
    root_uri: str | None = None
    files: list[FileInfoOut] = []
    next_page_token: str | None = None


def _file(info: FileInfo, path: str) -> FileInfoOut:
    return FileInfoOut(path=path, is_dir=info.is_dir, file_size=None if info.is_dir else info.size)


def _resolve(
    services: Services,
    principal: Principal,
    workspace: str,
    path: str,
    *,
    model_action: str,
    writing: bool = False,
) -> tuple[ArtifactRoot, str]:
    """The artifact root a proxy path points into, and the rest of the path below it."""
    kind, owner, rest = split_artifact_path(path)
    if kind == RUNS:
        return services.artifacts.run_root(workspace, owner, writing=writing), rest
    services.authorizer.authorize(principal, model_action, workspace_scope(workspace))
    return services.artifacts.model_root(workspace, owner), rest


@proxy.get("", response_model_exclude_none=True)
def list_proxied(
    workspace: str,
    path: str = Query("", max_length=4096),
    principal: Principal = require(actions.JOBS_READ),
    services: Services = Depends(get_services),
) -> ListArtifactsResponse:
    """Direct children of a folder, named by their base name (as MLflow's server does)."""
    if not path:
        raise InvalidInputError(
            "list a path under runs/<run_id>/artifacts", code="invalid_path", field="path"
        )
    root, rest = _resolve(services, principal, workspace, path, model_action=actions.MODELS_READ)
    found = services.artifacts.list(root, rest)
    return ListArtifactsResponse(
        files=[_file(info, posixpath.basename(info.path)) for info in found]
    )


@proxy.put("/{path:path}")
async def upload_proxied(
    workspace: str,
    path: str,
    request: Request,
    principal: Principal = require(actions.JOBS_WRITE, telemetry=True),
    services: Services = Depends(get_services),
) -> Empty:
    root, rest = _resolve(
        services, principal, workspace, path, model_action=actions.MODELS_WRITE, writing=True
    )
    await receive_upload(request, services.artifacts.writer(root, rest))
    return Empty()


@proxy.get("/{path:path}")
def download_proxied(
    workspace: str,
    path: str,
    request: Request,
    principal: Principal = require(actions.JOBS_READ),
    services: Services = Depends(get_services),
) -> Response:
    root, rest = _resolve(services, principal, workspace, path, model_action=actions.MODELS_READ)
    info = services.artifacts.stat(root, rest)
    if info.is_dir:
        raise InvalidInputError(f"{path!r} is a folder", code="path_is_folder", field="path")
    return file_response(
        info.size,
        lambda start, end: services.artifacts.read(root, rest, start=start, end=end),
        request.headers.get("range"),
    )


@proxy.delete("/{path:path}")
def delete_proxied(
    workspace: str,
    path: str,
    principal: Principal = require(actions.JOBS_WRITE),
    services: Services = Depends(get_services),
) -> Empty:
    root, rest = _resolve(
        services, principal, workspace, path, model_action=actions.MODELS_WRITE, writing=True
    )
    services.artifacts.delete(root, rest)
    return Empty()


@tracking.get("/list", dependencies=[require(actions.JOBS_READ)], response_model_exclude_none=True)
def list_run_artifacts(
    workspace: str,
    run_id: str | None = Query(None, max_length=64),
    run_uuid: str | None = Query(None, max_length=64),
    path: str = Query("", max_length=4096),
    page_token: str | None = Query(None, max_length=256),
    services: Services = Depends(get_services),
) -> ListArtifactsResponse:
    """The tracking API's listing: paths relative to the run's root, in one page."""
    run = run_id or run_uuid
    if not run:
        raise InvalidInputError("run_id is required", code="missing_field", field="run_id")
    root = services.artifacts.run_root(workspace, run)
    found = services.artifacts.list(root, path)
    return ListArtifactsResponse(
        root_uri=convert.artifact_uri(run), files=[_file(info, info.path) for info in found]
    )


# -- multipart uploads ----------------------------------------------------------------------
#
# MLflow's client uploads a big file (``MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE``, 500 MB by
# default) in parts when ``server-info`` allows it: ``create`` hands out one URL per part, the
# client PUTs the parts in parallel to those URLs with the headers given, then ``complete``
# joins them. The part URLs point back at this server; the upload's key (sent once, in the
# headers) is what lets a part in, so they need no bearer token, like presigned URLs.

multipart = APIRouter(
    prefix=TRACKING_PATH + "/api/2.0/mlflow-artifacts/mpu",
    route_class=GuardedRoute,
    tags=["mlflow"],
)
UPLOAD_KEY_HEADER = "X-Shipyard-Upload-Key"


class CreateMultipartUpload(MlflowRequest):
    path: str = Field(min_length=1, max_length=4096)  # the client's local file: its name counts
    num_parts: int = Field(ge=1, le=MAX_PARTS)


class UploadRef(MlflowRequest):
    path: str = Field(min_length=1, max_length=4096)
    upload_id: str = Field(min_length=1, max_length=64)


class UploadCredential(MlflowBody):
    url: str
    part_number: int
    headers: dict[str, str]


class CreateMultipartUploadResponse(MlflowBody):
    upload_id: str
    credentials: list[UploadCredential]


def _target(folder: str, local_file: str) -> str:
    """Where the client means the file to go: its base name inside the URL's folder."""
    name = posixpath.basename(local_file.replace("\\", "/"))
    return posixpath.join(folder, name) if folder else name


@multipart.post("/create/{path:path}", response_model_exclude_none=True)
def create_multipart_upload(
    workspace: str,
    path: str,
    body: CreateMultipartUpload,
    request: Request,
    principal: Principal = require(actions.JOBS_WRITE, telemetry=True),
    services: Services = Depends(get_services),
) -> CreateMultipartUploadResponse:
    root, rest = _resolve(
        services, principal, workspace, path, model_action=actions.MODELS_WRITE, writing=True
    )
    upload = services.artifacts.start_multipart(
        root, workspace, _target(rest, body.path), body.num_parts, principal.id
    )
    base = (services.settings.public_url or str(request.base_url)).rstrip("/")
    parts = multipart.prefix.format(workspace=workspace) + f"/part/{upload.upload_id}"
    return CreateMultipartUploadResponse(
        upload_id=upload.upload_id,
        credentials=[
            UploadCredential(
                url=f"{base}{parts}/{number}",
                part_number=number,
                headers={UPLOAD_KEY_HEADER: upload.key},
            )
            for number in range(1, upload.num_parts + 1)
        ],
    )


@multipart.put("/part/{upload_id}/{part_number}", dependencies=[require(actions.PUBLIC)])
async def upload_part(
    workspace: str,
    upload_id: str,
    part_number: int,
    request: Request,
    services: Services = Depends(get_services),
) -> Response:
    """One part; the upload's key is the credential. Answers the part's sha256 as its ETag."""
    key = request.headers.get(UPLOAD_KEY_HEADER)
    if not key:
        raise UnauthenticatedError(
            f"a part needs the {UPLOAD_KEY_HEADER} header its upload handed out",
            code="upload_key_missing",
        )
    writer = await run_in_threadpool(services.artifacts.part_writer, upload_id, key, part_number)
    written = await receive_upload(request, writer)
    return Response(status_code=200, headers={"ETag": f'"{written.sha256}"'})


@multipart.post("/complete/{path:path}")
def complete_multipart_upload(
    workspace: str,
    path: str,
    body: UploadRef,
    principal: Principal = require(actions.JOBS_WRITE, telemetry=True),
    services: Services = Depends(get_services),
) -> Empty:
    root, rest = _resolve(
        services, principal, workspace, path, model_action=actions.MODELS_WRITE, writing=True
    )
    services.artifacts.complete_multipart(root, _target(rest, body.path), body.upload_id)
    return Empty()


@multipart.post("/abort/{path:path}")
def abort_multipart_upload(
    workspace: str,
    path: str,
    body: UploadRef,
    principal: Principal = require(actions.JOBS_WRITE),
    services: Services = Depends(get_services),
) -> Empty:
    root, rest = _resolve(
        services, principal, workspace, path, model_action=actions.MODELS_WRITE, writing=True
    )
    services.artifacts.abort_multipart(root, _target(rest, body.path), body.upload_id)
    return Empty()
