"""/api/v1/registries/{registry}/components: command components shared by every workspace.

The same routes as a workspace's components, checked at the registry (``registries/assets/*``);
creating a version takes ``code_workspace``, the workspace its code snapshot was uploaded
to, and a registry's components can be deleted (a registry is deleted only when empty).
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
    ComponentVersionRead,
    ComponentVersionUpdate,
    RegistryComponentVersionCreate,
)

router = APIRouter(
    prefix="/api/v1/registries/{registry}/components",
    route_class=GuardedRoute,
    tags=["components"],
)
READ = actions.REGISTRY_ASSETS_READ
WRITE = actions.REGISTRY_ASSETS_WRITE


@router.get("", dependencies=[require(READ)])
def list_registry_components(
    registry: str,
    include_archived: bool = Query(False, description="Archived components too."),
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[ComponentRead]:
    return services.registry_components.list_assets(
        registry,
        include_archived=include_archived,
        page_token=paging.page_token,
        max_results=paging.max_results,
    )


@router.post("/{name}/versions", status_code=201)
def create_registry_component_version(
    registry: str,
    name: str,
    body: RegistryComponentVersionCreate,
    principal: Principal = require(WRITE),
    services: Services = Depends(get_services),
) -> ComponentVersionRead:
    return services.registry_components.create(principal, registry, name, body)


@router.get("/{name}/versions", dependencies=[require(READ)])
def list_registry_component_versions(
    registry: str,
    name: str,
    include_archived: bool = Query(False, description="Archived versions too."),
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[ComponentVersionRead]:
    return services.registry_components.list_versions(
        registry,
        name,
        include_archived=include_archived,
        page_token=paging.page_token,
        max_results=paging.max_results,
    )


@router.get("/{name}/versions/{version}", dependencies=[require(READ)])
def get_registry_component_version(
    registry: str, name: str, version: str, services: Services = Depends(get_services)
) -> ComponentVersionRead:
    return services.registry_components.get(registry, name, version)


@router.patch("/{name}/versions/{version}", dependencies=[require(WRITE)])
def update_registry_component_version(
    registry: str,
    name: str,
    version: str,
    body: ComponentVersionUpdate,
    services: Services = Depends(get_services),
) -> ComponentVersionRead:
    return services.registry_components.update(registry, name, version, body)


@router.post("/{name}/versions/{version}/archive", status_code=204, dependencies=[require(WRITE)])
def archive_registry_component_version(
    registry: str, name: str, version: str, services: Services = Depends(get_services)
) -> Response:
    services.registry_components.set_archived(registry, name, version, True)
    return Response(status_code=204)


@router.post("/{name}/versions/{version}/restore", status_code=204, dependencies=[require(WRITE)])
def restore_registry_component_version(
    registry: str, name: str, version: str, services: Services = Depends(get_services)
) -> Response:
    services.registry_components.set_archived(registry, name, version, False)
    return Response(status_code=204)


@router.post("/{name}/archive", status_code=204, dependencies=[require(WRITE)])
def archive_registry_component(
    registry: str, name: str, services: Services = Depends(get_services)
) -> Response:
    services.registry_components.set_archived(registry, name, None, True)
    return Response(status_code=204)


@router.post("/{name}/restore", status_code=204, dependencies=[require(WRITE)])
def restore_registry_component(
    registry: str, name: str, services: Services = Depends(get_services)
) -> Response:
    services.registry_components.set_archived(registry, name, None, False)
    return Response(status_code=204)


@router.delete(
    "/{name}/versions/{version}",
    status_code=204,
    dependencies=[require(actions.REGISTRY_ASSETS_DELETE)],
)
def delete_registry_component_version(
    registry: str, name: str, version: str, services: Services = Depends(get_services)
) -> Response:
    services.registry_components.delete(registry, name, version)
    return Response(status_code=204)


@router.delete("/{name}", status_code=204, dependencies=[require(actions.REGISTRY_ASSETS_DELETE)])
def delete_registry_component(
    registry: str, name: str, services: Services = Depends(get_services)
) -> Response:
    services.registry_components.delete(registry, name, None)
    return Response(status_code=204)
