"""/api/v1/workspaces"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.workspaces import WorkspaceCreate, WorkspaceRead, WorkspaceUpdate

router = APIRouter(prefix="/api/v1/workspaces", route_class=GuardedRoute, tags=["workspaces"])

MLFLOW_PATH = "mlflow/workspaces/{name}"


class Linker:
    """Fills in the URLs a workspace is reached at, from the server's public URL (a setting,
    for servers behind a proxy) or else from the request."""

    def __init__(self, request: Request, services: Services = Depends(get_services)) -> None:
        self.base = (services.settings.public_url or str(request.base_url)).rstrip("/") + "/"

    def __call__(self, workspace: WorkspaceRead) -> WorkspaceRead:
        uri = self.base + MLFLOW_PATH.format(name=workspace.name)
        return workspace.model_copy(update={"mlflow_tracking_uri": uri})


@router.post("", status_code=201)
def create_workspace(
    body: WorkspaceCreate,
    principal: Principal = require(actions.WORKSPACES_CREATE),
    services: Services = Depends(get_services),
    link: Linker = Depends(),
) -> WorkspaceRead:
    return link(services.workspaces.create(principal.id, body))


@router.get("")
def list_workspaces(
    paging: PageParams = Depends(),
    deleted: bool = Query(False, description="List soft-deleted workspaces instead."),
    principal: Principal = require(actions.WORKSPACES_READ, listing=True),
    services: Services = Depends(get_services),
    link: Linker = Depends(),
) -> Page[WorkspaceRead]:
    page = services.workspaces.list(
        deleted=deleted,
        ids=services.authorizer.readable_workspace_ids(principal),
        page_token=paging.page_token,
        max_results=paging.max_results,
    )
    return page.model_copy(update={"items": [link(w) for w in page.items]})


@router.get("/{workspace}", dependencies=[require(actions.WORKSPACES_READ)])
def get_workspace(
    workspace: str, services: Services = Depends(get_services), link: Linker = Depends()
) -> WorkspaceRead:
    return link(services.workspaces.get(workspace))


@router.patch("/{workspace}", dependencies=[require(actions.WORKSPACES_WRITE)])
def update_workspace(
    workspace: str,
    body: WorkspaceUpdate,
    services: Services = Depends(get_services),
    link: Linker = Depends(),
) -> WorkspaceRead:
    return link(services.workspaces.update(workspace, body))


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
def recover_workspace(
    workspace: str, services: Services = Depends(get_services), link: Linker = Depends()
) -> WorkspaceRead:
    return link(services.workspaces.recover(workspace))
