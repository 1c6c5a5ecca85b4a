"""/api/v1/workspaces/{workspace}/experiments"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.schemas.common import Page
from shipyard.schemas.tracking import ExperimentCreate, ExperimentRead, ExperimentUpdate

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/experiments",
    route_class=GuardedRoute,
    tags=["experiments"],
)


@router.post("", status_code=201, dependencies=[require(actions.JOBS_WRITE)])
def create_experiment(
    workspace: str, body: ExperimentCreate, services: Services = Depends(get_services)
) -> ExperimentRead:
    return services.experiments.create(workspace, body)


@router.get("", dependencies=[require(actions.JOBS_READ)])
def list_experiments(
    workspace: str,
    deleted: bool = Query(False, description="List deleted experiments instead."),
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[ExperimentRead]:
    return services.experiments.list(
        workspace, deleted=deleted, page_token=paging.page_token, max_results=paging.max_results
    )


@router.get("/{experiment}", dependencies=[require(actions.JOBS_READ)])
def get_experiment(
    workspace: str, experiment: str, services: Services = Depends(get_services)
) -> ExperimentRead:
    return services.experiments.get(workspace, experiment)


@router.patch("/{experiment}", dependencies=[require(actions.JOBS_WRITE)])
def update_experiment(
    workspace: str,
    experiment: str,
    body: ExperimentUpdate,
    services: Services = Depends(get_services),
) -> ExperimentRead:
    return services.experiments.update(workspace, experiment, body)


@router.delete("/{experiment}", status_code=204, dependencies=[require(actions.JOBS_DELETE)])
def delete_experiment(
    workspace: str, experiment: str, services: Services = Depends(get_services)
) -> Response:
    services.experiments.set_stage(workspace, experiment, "deleted")
    return Response(status_code=204)


@router.post("/{experiment}/restore", dependencies=[require(actions.JOBS_WRITE)])
def restore_experiment(
    workspace: str, experiment: str, services: Services = Depends(get_services)
) -> ExperimentRead:
    return services.experiments.set_stage(workspace, experiment, "active")
