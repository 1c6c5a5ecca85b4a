"""/api/v1/registries: containers for assets shared across workspaces.

Creating one is checked at global scope (the registry does not exist yet); every route with
``{registry}`` in its path is checked at that registry, so the routes later issues add under
``/api/v1/registries/{registry}/...`` are authorized with no code of their own.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.registries import RegistryCreate, RegistryRead, RegistryUpdate

router = APIRouter(prefix="/api/v1/registries", route_class=GuardedRoute, tags=["registries"])


@router.post("", status_code=201)
def create_registry(
    body: RegistryCreate,
    principal: Principal = require(actions.REGISTRIES_WRITE),
    services: Services = Depends(get_services),
) -> RegistryRead:
    """Create a registry; its creator becomes its Owner."""
    return services.registries.create(principal.id, body)


@router.get("")
def list_registries(
    paging: PageParams = Depends(),
    principal: Principal = require(actions.REGISTRIES_READ, listing=True),
    services: Services = Depends(get_services),
) -> Page[RegistryRead]:
    """The registries the caller may read, by name."""
    return services.registries.list(
        ids=services.authorizer.readable_registry_ids(principal),
        page_token=paging.page_token,
        max_results=paging.max_results,
    )


@router.get("/{registry}", dependencies=[require(actions.REGISTRIES_READ)])
def get_registry(registry: str, services: Services = Depends(get_services)) -> RegistryRead:
    return services.registries.get(registry)


@router.patch("/{registry}", dependencies=[require(actions.REGISTRIES_WRITE)])
def update_registry(
    registry: str, body: RegistryUpdate, services: Services = Depends(get_services)
) -> RegistryRead:
    return services.registries.update(registry, body)


@router.delete("/{registry}", status_code=204, dependencies=[require(actions.REGISTRIES_DELETE)])
def delete_registry(registry: str, services: Services = Depends(get_services)) -> Response:
    """Delete a registry and the role assignments made at it."""
    services.registries.delete(registry)
    return Response(status_code=204)
