"""/api/v1/workspaces/{workspace}/runs: interactive runs and what they log."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.tracking import (
    LogBatch,
    MetricHistory,
    RunCreate,
    RunRead,
    RunSearch,
    RunUpdate,
)

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/runs", route_class=GuardedRoute, tags=["runs"]
)


@router.post("", status_code=201)
def create_run(
    workspace: str,
    body: RunCreate,
    principal: Principal = require(actions.JOBS_WRITE),
    services: Services = Depends(get_services),
) -> RunRead:
    return services.runs.create(principal, workspace, body)


@router.get("", dependencies=[require(actions.JOBS_READ)])
def list_runs(
    workspace: str,
    experiment: str | None = Query(None, description="Only this experiment's runs."),
    parent_run_id: str | None = Query(None, description="Only this run's children."),
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[RunRead]:
    return services.runs.list(
        workspace,
        experiment=experiment,
        parent_run_id=parent_run_id,
        page_token=paging.page_token,
        max_results=paging.max_results,
    )


@router.post("/search", dependencies=[require(actions.JOBS_READ)])
def search_runs(
    workspace: str, body: RunSearch, services: Services = Depends(get_services)
) -> Page[RunRead]:
    """Search with MLflow's filter grammar, plus OR, parentheses and ordering by metrics,
    params and tags."""
    return services.runs.search(
        workspace,
        experiments=body.experiments,
        filter=body.filter,
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
        include_deleted=body.include_deleted,
    )


@router.get("/{run_id}", dependencies=[require(actions.JOBS_READ)])
def get_run(workspace: str, run_id: str, services: Services = Depends(get_services)) -> RunRead:
    return services.runs.get(workspace, run_id)


@router.patch("/{run_id}", dependencies=[require(actions.JOBS_WRITE)])
def update_run(
    workspace: str, run_id: str, body: RunUpdate, services: Services = Depends(get_services)
) -> RunRead:
    return services.runs.update(workspace, run_id, body)


@router.delete("/{run_id}", status_code=204, dependencies=[require(actions.JOBS_DELETE)])
def delete_run(workspace: str, run_id: str, services: Services = Depends(get_services)) -> Response:
    services.runs.set_stage(workspace, run_id, "deleted")
    return Response(status_code=204)


@router.post("/{run_id}/restore", status_code=204, dependencies=[require(actions.JOBS_WRITE)])
def restore_run(
    workspace: str, run_id: str, services: Services = Depends(get_services)
) -> Response:
    services.runs.set_stage(workspace, run_id, "active")
    return Response(status_code=204)


@router.post(
    "/{run_id}/log-batch",
    status_code=204,
    dependencies=[require(actions.JOBS_WRITE, telemetry=True)],
)
def log_batch(
    workspace: str, run_id: str, body: LogBatch, services: Services = Depends(get_services)
) -> Response:
    """Up to 1,000 metric points, 100 params and 100 tags in one call."""
    services.runs.log_batch(workspace, run_id, body)
    return Response(status_code=204)


@router.delete(
    "/{run_id}/tags/{key:path}", status_code=204, dependencies=[require(actions.JOBS_WRITE)]
)
def delete_run_tag(
    workspace: str, run_id: str, key: str, services: Services = Depends(get_services)
) -> Response:
    services.runs.delete_tag(workspace, run_id, key)
    return Response(status_code=204)


@router.get("/{run_id}/metrics/{key:path}", dependencies=[require(actions.JOBS_READ)])
def get_metric_history(
    workspace: str,
    run_id: str,
    key: str,
    max_points: int | None = Query(
        None, ge=3, le=100_000, description="Thin the history for a chart, keeping its shape."
    ),
    services: Services = Depends(get_services),
) -> MetricHistory:
    return services.runs.metric_history(workspace, run_id, key, max_points)
