"""/api/v1/workspaces/{workspace}/computes: where a workspace's jobs run.

``local`` is listed first and cannot be created or deleted; the others are Ray clusters by
address (Azure's ``amlcompute`` YAML is accepted and mapped onto one). A create asks the
cluster for its version first; ``?skip_validation=true`` leaves that out (Azure's
``skipValidation``), for a cluster that is not up yet.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.computes import ComputeCreate, ComputeRead

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/computes",
    route_class=GuardedRoute,
    tags=["computes"],
)

_SKIP = Query(
    False,
    description="Do not ask the Ray cluster for its version first (Azure's skipValidation).",
)


@router.post("", status_code=201)
def create_compute(
    workspace: str,
    body: ComputeCreate,
    skip_validation: bool = _SKIP,
    principal: Principal = require(actions.COMPUTES_WRITE),
    services: Services = Depends(get_services),
) -> ComputeRead:
    return services.computes.create(workspace, body, principal, validate=not skip_validation)


@router.get("", dependencies=[require(actions.COMPUTES_READ)])
def list_computes(
    workspace: str, paging: PageParams = Depends(), services: Services = Depends(get_services)
) -> Page[ComputeRead]:
    return services.computes.list(
        workspace, page_token=paging.page_token, max_results=paging.max_results
    )


@router.get("/{name}", dependencies=[require(actions.COMPUTES_READ)])
def get_compute(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> ComputeRead:
    return services.computes.get(workspace, name)


@router.delete("/{name}", status_code=204, dependencies=[require(actions.COMPUTES_DELETE)])
def delete_compute(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> Response:
    services.computes.delete(workspace, name)
    return Response(status_code=204)
