"""/api/v1/workspaces"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.workspaces import WorkspaceCreate, WorkspaceRead, WorkspaceUpdate

router = APIRouter(prefix="/api/v1/workspaces", route_class=GuardedRoute, tags=["workspaces"])


@router.post("", status_code=201)
def create_workspace(
    body: WorkspaceCreate,
    principal: Principal = require(actions.WORKSPACES_CREATE),
    services: Services = Depends(get_services),
) -> WorkspaceRead:
    return services.workspaces.create(principal.id, body)


@router.get("")
def list_workspaces(
    paging: PageParams = Depends(),
    deleted: bool = Query(False, description="List soft-deleted workspaces instead."),
    principal: Principal = require(actions.WORKSPACES_READ, listing=True),
    services: Services = Depends(get_services),
) -> Page[WorkspaceRead]:
    return services.workspaces.list(
        deleted=deleted,
        ids=services.authorizer.readable_workspace_ids(principal),
        page_token=paging.page_token,
        max_results=paging.max_results,
    )


@router.get("/{workspace}", dependencies=[require(actions.WORKSPACES_READ)])
def get_workspace(workspace: str, services: Services = Depends(get_services)) -> WorkspaceRead:
    return services.workspaces.get(workspace)


@router.patch("/{workspace}", dependencies=[require(actions.WORKSPACES_WRITE)])
def update_workspace(
    workspace: str, body: WorkspaceUpdate, services: Services = Depends(get_services)
) -> WorkspaceRead:
    return services.workspaces.update(workspace, body)


@router.delete("/{workspace}", status_code=204, dependencies=[require(actions.WORKSPACES_DELETE)])
def delete_workspace(
    workspace: str,
    permanently_delete: bool = Query(
        False, description="Remove the metadata and the stored files now; no recovery."
    ),
    services: Services = Depends(get_services),
) -> Response:
    services.workspaces.delete(workspace, permanently=permanently_delete)
    return Response(status_code=204)


@router.post("/{workspace}/recover", dependencies=[require(actions.WORKSPACES_WRITE)])
def recover_workspace(workspace: str, services: Services = Depends(get_services)) -> WorkspaceRead:
    return services.workspaces.recover(workspace)
