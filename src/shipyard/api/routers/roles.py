"""/api/v1/roles: built-in and custom role definitions."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.schemas.roles import RoleCreate, RoleRead

router = APIRouter(prefix="/api/v1/roles", route_class=GuardedRoute, tags=["roles"])


@router.get("", dependencies=[require(actions.ROLES_READ, listing=True)])
def list_roles(services: Services = Depends(get_services)) -> list[RoleRead]:
    """Role definitions are not secret: every signed-in principal may read them."""
    return services.roles.list()


@router.get("/{name}", dependencies=[require(actions.ROLES_READ, listing=True)])
def get_role(name: str, services: Services = Depends(get_services)) -> RoleRead:
    return services.roles.get(name)


@router.post("", status_code=201, dependencies=[require(actions.ROLES_WRITE)])
def create_role(body: RoleCreate, services: Services = Depends(get_services)) -> RoleRead:
    return services.roles.create(body)


@router.delete("/{name}", status_code=204, dependencies=[require(actions.ROLES_DELETE)])
def delete_role(name: str, services: Services = Depends(get_services)) -> Response:
    services.roles.delete(name)
    return Response(status_code=204)
