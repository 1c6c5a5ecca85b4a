"""/api/v1/workspaces/{workspace}/components: command components and their versions.

``POST /{name}/versions`` registers a version from the component YAML as JSON (``code``
already a code snapshot, ``version`` omitted: the next number); the environment is pinned
then. ``GET /{name}/versions/latest`` is the newest version that is not archived. Versions
are immutable: ``PATCH`` changes only description and tags.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.components import (
    ComponentRead,
    ComponentVersionCreate,
    ComponentVersionRead,
    ComponentVersionUpdate,
)

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/components",
    route_class=GuardedRoute,
    tags=["components"],
)


@router.get("", dependencies=[require(actions.COMPONENTS_READ)])
def list_components(
    workspace: str,
    include_archived: bool = Query(False, description="Archived components too."),
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[ComponentRead]:
    return services.components.list_assets(
        workspace,
        include_archived=include_archived,
        page_token=paging.page_token,
        max_results=paging.max_results,
    )


@router.post("/{name}/versions", status_code=201)
def create_component_version(
    workspace: str,
    name: str,
    body: ComponentVersionCreate,
    principal: Principal = require(actions.COMPONENTS_WRITE),
    services: Services = Depends(get_services),
) -> ComponentVersionRead:
    return services.components.create(principal, workspace, name, body)


@router.get("/{name}/versions", dependencies=[require(actions.COMPONENTS_READ)])
def list_component_versions(
    workspace: str,
    name: str,
    include_archived: bool = Query(False, description="Archived versions too."),
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[ComponentVersionRead]:
    return services.components.list_versions(
        workspace,
        name,
        include_archived=include_archived,
        page_token=paging.page_token,
        max_results=paging.max_results,
    )


@router.get("/{name}/versions/{version}", dependencies=[require(actions.COMPONENTS_READ)])
def get_component_version(
    workspace: str, name: str, version: str, services: Services = Depends(get_services)
) -> ComponentVersionRead:
    return services.components.get(workspace, name, version)


@router.patch("/{name}/versions/{version}", dependencies=[require(actions.COMPONENTS_WRITE)])
def update_component_version(
    workspace: str,
    name: str,
    version: str,
    body: ComponentVersionUpdate,
    services: Services = Depends(get_services),
) -> ComponentVersionRead:
    return services.components.update(workspace, name, version, body)


@router.post(
    "/{name}/versions/{version}/archive",
    status_code=204,
    dependencies=[require(actions.COMPONENTS_WRITE)],
)
def archive_component_version(
    workspace: str, name: str, version: str, services: Services = Depends(get_services)
) -> Response:
    services.components.set_archived(workspace, name, version, True)
    return Response(status_code=204)


@router.post(
    "/{name}/versions/{version}/restore",
    status_code=204,
    dependencies=[require(actions.COMPONENTS_WRITE)],
)
def restore_component_version(
    workspace: str, name: str, version: str, services: Services = Depends(get_services)
) -> Response:
    services.components.set_archived(workspace, name, version, False)
    return Response(status_code=204)


@router.post("/{name}/archive", status_code=204, dependencies=[require(actions.COMPONENTS_WRITE)])
def archive_component(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> Response:
    services.components.set_archived(workspace, name, None, True)
    return Response(status_code=204)


@router.post("/{name}/restore", status_code=204, dependencies=[require(actions.COMPONENTS_WRITE)])
def restore_component(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> Response:
    services.components.set_archived(workspace, name, None, False)
    return Response(status_code=204)
