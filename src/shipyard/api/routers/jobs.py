"""/api/v1/workspaces/{workspace}/jobs: submitted jobs (command jobs today).

A job is also a run: its metrics, params, tags and artifacts are under ``/runs/{id}``, with
``id`` as this API shows it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.api.routers.data import asset_file_response
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.data import DataFileList
from shipyard.schemas.jobs import CommandJobCreate, JobRead, LineageGraph
from shipyard.schemas.pipelines import PipelineJobCreate
from shipyard.schemas.sweeps import SweepJobCreate
from shipyard.services import asset_files

M = TypeVar("M", bound=BaseModel)

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/jobs", route_class=GuardedRoute, tags=["jobs"]
)

LOG_OFFSET_HEADER = "X-Shipyard-Log-Offset"
JOB_STATUS_HEADER = "X-Shipyard-Job-Status"
LOG_COMPLETE_HEADER = "X-Shipyard-Log-Complete"


@router.post(
    "",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/CommandJobCreate"},
                            {"$ref": "#/components/schemas/PipelineJobCreate"},
                            {"$ref": "#/components/schemas/SweepJobCreate"},
                        ]
                    }
                }
            },
        }
    },
)
def create_job(
    workspace: str,
    body: dict[str, Any] = Body(...),
    principal: Principal = require(actions.JOBS_WRITE),
    services: Services = Depends(get_services),
) -> JobRead:
    """Submit a command, pipeline or sweep job (Azure ML's job YAML as JSON; ``type``
    chooses, ``command`` when it is absent)."""
    if body.get("type") == "pipeline":
        return services.pipelines.create(principal, workspace, _parsed(PipelineJobCreate, body))
    if body.get("type") == "sweep":
        return services.sweeps.create(principal, workspace, _parsed(SweepJobCreate, body))
    return services.jobs.create(principal, workspace, _parsed(CommandJobCreate, body))


def _parsed(model: type[M], body: dict[str, Any]) -> M:
    """The body as ``model``; its errors reported as a body's would be (field named)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from exc


@router.get("", dependencies=[require(actions.JOBS_READ)])
def list_jobs(
    workspace: str,
    parent_job_name: str | None = Query(None, description="Only this job's child jobs."),
    status: str | None = Query(None, description="Only jobs in this status."),
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[JobRead]:
    return services.jobs.list(
        workspace,
        parent_job_name=parent_job_name,
        status=status,
        page_token=paging.page_token,
        max_results=paging.max_results,
    )


@router.get("/{name}", dependencies=[require(actions.JOBS_READ)])
def get_job(workspace: str, name: str, services: Services = Depends(get_services)) -> JobRead:
    return services.jobs.get(workspace, name)


@router.post("/{name}/cancel", dependencies=[require(actions.JOBS_WRITE)])
def cancel_job(workspace: str, name: str, services: Services = Depends(get_services)) -> JobRead:
    """A queued job is canceled at once; a running one goes CancelRequested, then Canceled."""
    return services.jobs.cancel(workspace, name)


@router.post("/{name}/archive", status_code=204, dependencies=[require(actions.JOBS_WRITE)])
def archive_job(workspace: str, name: str, services: Services = Depends(get_services)) -> Response:
    """Hide the job from lists; it keeps everything and ``show`` still finds it."""
    services.jobs.set_archived(workspace, name, True)
    return Response(status_code=204)


@router.post("/{name}/restore", status_code=204, dependencies=[require(actions.JOBS_WRITE)])
def restore_job(workspace: str, name: str, services: Services = Depends(get_services)) -> Response:
    services.jobs.set_archived(workspace, name, False)
    return Response(status_code=204)


@router.get(
    "/{name}/logs",
    dependencies=[require(actions.JOBS_READ)],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def job_logs(
    workspace: str,
    name: str,
    offset: int = Query(0, ge=0, description="Byte offset to read from."),
    wait: float = Query(
        0, ge=0, le=30, description="Seconds to wait for more output when there is none yet."
    ),
    services: Services = Depends(get_services),
) -> Response:
    """The job's stdout and stderr (``user_logs/std_log.txt``) from ``offset``. The headers
    say where to continue and whether the log is complete (the job has ended)."""
    chunk = services.jobs.logs(workspace, name, offset, wait=wait)
    return Response(
        content=chunk.data,
        media_type="text/plain; charset=utf-8",
        headers={
            LOG_OFFSET_HEADER: str(chunk.next_offset),
            JOB_STATUS_HEADER: chunk.status,
            LOG_COMPLETE_HEADER: "true" if chunk.complete else "false",
        },
    )


@router.get("/{name}/outputs/{output}/files", dependencies=[require(actions.JOBS_READ)])
def list_output_files(
    workspace: str,
    name: str,
    output: str,
    path: str = Query("", max_length=4096, description="A folder (or file) in the output."),
    recursive: bool = Query(False, description="Every file below, not only direct children."),
    services: Services = Depends(get_services),
) -> DataFileList:
    """The files of an output: ``artifacts`` (the job's run artifacts) or a named output."""
    location = services.jobs.output_location(workspace, name, output)
    infos = asset_files.list_files(location, path, recursive=recursive)
    return DataFileList(items=asset_files.file_reads(infos))


@router.get("/{name}/outputs/{output}/files/{path:path}", dependencies=[require(actions.JOBS_READ)])
def download_output_file(
    workspace: str,
    name: str,
    output: str,
    path: str,
    request: Request,
    services: Services = Depends(get_services),
) -> Response:
    location = services.jobs.output_location(workspace, name, output)
    return asset_file_response(location, path, request)


@router.get("/{name}/code", dependencies=[require(actions.JOBS_READ)])
def list_code_files(
    workspace: str,
    name: str,
    path: str = Query("", max_length=4096, description="A folder (or file) in the snapshot."),
    recursive: bool = Query(False, description="Every file below, not only direct children."),
    services: Services = Depends(get_services),
) -> DataFileList:
    """The job's code snapshot, as it was submitted."""
    location = services.jobs.code_location(workspace, name)
    infos = asset_files.list_files(location, path, recursive=recursive)
    return DataFileList(items=asset_files.file_reads(infos))


@router.get("/{name}/code/{path:path}", dependencies=[require(actions.JOBS_READ)])
def download_code_file(
    workspace: str,
    name: str,
    path: str,
    request: Request,
    services: Services = Depends(get_services),
) -> Response:
    location = services.jobs.code_location(workspace, name)
    return asset_file_response(location, path, request)


@router.get("/{name}/lineage", dependencies=[require(actions.JOBS_READ)])
def job_lineage(
    workspace: str,
    name: str,
    depth: int = Query(2, ge=0, le=5, description="Hops to follow, both ways."),
    services: Services = Depends(get_services),
) -> LineageGraph:
    """What the job used and produced, and further up and down the chain."""
    return services.lineage.of_job(workspace, name, depth)


lineage_router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/lineage", route_class=GuardedRoute, tags=["jobs"]
)


@lineage_router.get("", dependencies=[require(actions.JOBS_READ)])
def asset_lineage(
    workspace: str,
    asset: str = Query(
        ...,
        max_length=600,
        description="data:<name>:<version>, model:<name>:<version>, "
        "environment:<name>:<version> or code:<digest>.",
    ),
    depth: int = Query(2, ge=0, le=5, description="Hops to follow, both ways."),
    services: Services = Depends(get_services),
) -> LineageGraph:
    """Which jobs used an asset version, and what they produced (or where it came from)."""
    return services.lineage.of_asset(workspace, asset, depth)
