"""/api/v1/workspaces/{workspace}/batchEndpoints: endpoints that score data as jobs, their
deployments, and invoking them.

Paths follow Azure's REST API (``batchEndpoints``, ``deployments``); the endpoint's scoring URI
is ``.../batchEndpoints/{name}/jobs``: POST starts a job (Azure's body or Shipyard's, see
schemas/batch_endpoints.py), GET lists the jobs it started. Invoking is a job submission, so it
is ``jobs/write``; the endpoint must be readable too.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.batch_endpoints import (
    BatchDeploymentCreate,
    BatchDeploymentRead,
    BatchDeploymentUpdate,
    BatchEndpointCreate,
    BatchEndpointRead,
    BatchEndpointUpdate,
    BatchInvoke,
)
from shipyard.schemas.common import Page
from shipyard.schemas.jobs import JobRead

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/batchEndpoints",
    route_class=GuardedRoute,
    tags=["batch endpoints"],
)


@router.post("", status_code=201)
def create_batch_endpoint(
    workspace: str,
    body: BatchEndpointCreate,
    principal: Principal = require(actions.BATCH_ENDPOINTS_WRITE),
    services: Services = Depends(get_services),
) -> BatchEndpointRead:
    return services.batch_endpoints.create(principal, workspace, body)


@router.get("", dependencies=[require(actions.BATCH_ENDPOINTS_READ)])
def list_batch_endpoints(
    workspace: str, paging: PageParams = Depends(), services: Services = Depends(get_services)
) -> Page[BatchEndpointRead]:
    return services.batch_endpoints.list(
        workspace, page_token=paging.page_token, max_results=paging.max_results
    )


@router.get("/{name}", dependencies=[require(actions.BATCH_ENDPOINTS_READ)])
def get_batch_endpoint(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> BatchEndpointRead:
    return services.batch_endpoints.get(workspace, name)


@router.patch("/{name}")
def update_batch_endpoint(
    workspace: str,
    name: str,
    body: BatchEndpointUpdate,
    principal: Principal = require(actions.BATCH_ENDPOINTS_WRITE),
    services: Services = Depends(get_services),
) -> BatchEndpointRead:
    """Only the fields given change (``defaults.deployment_name`` must name a deployment)."""
    return services.batch_endpoints.update(principal, workspace, name, body)


@router.delete("/{name}", status_code=204, dependencies=[require(actions.BATCH_ENDPOINTS_DELETE)])
def delete_batch_endpoint(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> Response:
    """With its deployments; the jobs it started stay."""
    services.batch_endpoints.delete(workspace, name)
    return Response(status_code=204)


@router.post("/{name}/jobs", status_code=201)
def invoke_batch_endpoint(
    workspace: str,
    name: str,
    body: BatchInvoke,
    deployment: str | None = Header(
        None,
        alias="azureml-model-deployment",
        description="The deployment to run (Azure's header); the default when unset.",
    ),
    principal: Principal = require(actions.BATCH_ENDPOINTS_INVOKE),
    services: Services = Depends(get_services),
) -> JobRead:
    """Start a scoring job; follow it with the job routes (``job show``, logs, cancel)."""
    services.authorizer.authorize(
        principal, actions.BATCH_ENDPOINTS_READ, actions.workspace_scope(workspace)
    )
    return services.batch_endpoints.invoke(
        principal, workspace, name, body, deployment_name=deployment
    )


@router.get("/{name}/jobs")
def list_batch_endpoint_jobs(
    workspace: str,
    name: str,
    max_results: int = Query(100, ge=1, le=1000),
    principal: Principal = require(actions.BATCH_ENDPOINTS_READ),
    services: Services = Depends(get_services),
) -> list[JobRead]:
    """The jobs invoking the endpoint started, newest first."""
    services.authorizer.authorize(principal, actions.JOBS_READ, actions.workspace_scope(workspace))
    return services.batch_endpoints.list_jobs(workspace, name, max_results=max_results)


# -- deployments ---------------------------------------------------------------------------------


@router.post("/{endpoint}/deployments", status_code=201)
def create_batch_deployment(
    workspace: str,
    endpoint: str,
    body: BatchDeploymentCreate,
    set_default: bool = Query(False, description="Make it the endpoint's default."),
    principal: Principal = require(actions.BATCH_DEPLOYMENTS_WRITE),
    services: Services = Depends(get_services),
) -> BatchDeploymentRead:
    """The endpoint's first deployment becomes its default."""
    if set_default:
        services.authorizer.authorize(
            principal, actions.BATCH_ENDPOINTS_WRITE, actions.workspace_scope(workspace)
        )
    return services.batch_deployments.create(
        principal, workspace, endpoint, body, set_default=set_default
    )


@router.get("/{endpoint}/deployments", dependencies=[require(actions.BATCH_DEPLOYMENTS_READ)])
def list_batch_deployments(
    workspace: str,
    endpoint: str,
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[BatchDeploymentRead]:
    return services.batch_deployments.list(
        workspace, endpoint, page_token=paging.page_token, max_results=paging.max_results
    )


@router.get(
    "/{endpoint}/deployments/{name}", dependencies=[require(actions.BATCH_DEPLOYMENTS_READ)]
)
def get_batch_deployment(
    workspace: str, endpoint: str, name: str, services: Services = Depends(get_services)
) -> BatchDeploymentRead:
    return services.batch_deployments.get(workspace, endpoint, name)


@router.patch("/{endpoint}/deployments/{name}")
def update_batch_deployment(
    workspace: str,
    endpoint: str,
    name: str,
    body: BatchDeploymentUpdate,
    set_default: bool = Query(False, description="Make it the endpoint's default."),
    principal: Principal = require(actions.BATCH_DEPLOYMENTS_WRITE),
    services: Services = Depends(get_services),
) -> BatchDeploymentRead:
    """The fields given replace the deployment's; jobs already started keep what they had."""
    if set_default:
        services.authorizer.authorize(
            principal, actions.BATCH_ENDPOINTS_WRITE, actions.workspace_scope(workspace)
        )
    return services.batch_deployments.update(
        principal, workspace, endpoint, name, body, set_default=set_default
    )


@router.delete(
    "/{endpoint}/deployments/{name}",
    status_code=204,
    dependencies=[require(actions.BATCH_DEPLOYMENTS_DELETE)],
)
def delete_batch_deployment(
    workspace: str, endpoint: str, name: str, services: Services = Depends(get_services)
) -> Response:
    """Refused for the default while the endpoint has other deployments."""
    services.batch_deployments.delete(workspace, endpoint, name)
    return Response(status_code=204)
