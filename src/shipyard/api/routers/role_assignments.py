"""Role assignments live under their scope: /api/v1/role-assignments (global),
/api/v1/workspaces/{workspace}/role-assignments and
/api/v1/registries/{registry}/role-assignments, so the generic path scope authorizes them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.domain.actions import GLOBAL, registry_scope, workspace_scope
from shipyard.domain.principals import Principal
from shipyard.schemas.roles import RoleAssignmentCreate, RoleAssignmentRead

router = APIRouter(route_class=GuardedRoute, tags=["role assignments"])

GLOBAL_PATH = "/api/v1/role-assignments"
WORKSPACE_PATH = "/api/v1/workspaces/{workspace}/role-assignments"
REGISTRY_PATH = "/api/v1/registries/{registry}/role-assignments"


@router.post(GLOBAL_PATH, status_code=201)
def create_global_role_assignment(
    body: RoleAssignmentCreate,
    principal: Principal = require(actions.ROLE_ASSIGNMENTS_WRITE),
    services: Services = Depends(get_services),
) -> RoleAssignmentRead:
    return services.role_assignments.create(principal, GLOBAL, body)


@router.get(GLOBAL_PATH, dependencies=[require(actions.ROLE_ASSIGNMENTS_READ)])
def list_global_role_assignments(
    services: Services = Depends(get_services),
) -> list[RoleAssignmentRead]:
    return services.role_assignments.list(GLOBAL)


@router.delete(
    GLOBAL_PATH + "/{assignment_id}",
    status_code=204,
    dependencies=[require(actions.ROLE_ASSIGNMENTS_DELETE)],
)
def delete_global_role_assignment(
    assignment_id: str, services: Services = Depends(get_services)
) -> Response:
    services.role_assignments.delete(GLOBAL, assignment_id)
    return Response(status_code=204)


@router.post(WORKSPACE_PATH, status_code=201)
def create_workspace_role_assignment(
    workspace: str,
    body: RoleAssignmentCreate,
    principal: Principal = require(actions.WORKSPACE_ROLE_ASSIGNMENTS_WRITE),
    services: Services = Depends(get_services),
) -> RoleAssignmentRead:
    return services.role_assignments.create(principal, workspace_scope(workspace), body)


@router.get(WORKSPACE_PATH, dependencies=[require(actions.WORKSPACE_ROLE_ASSIGNMENTS_READ)])
def list_workspace_role_assignments(
    workspace: str, services: Services = Depends(get_services)
) -> list[RoleAssignmentRead]:
    return services.role_assignments.list(workspace_scope(workspace))


@router.delete(
    WORKSPACE_PATH + "/{assignment_id}",
    status_code=204,
    dependencies=[require(actions.WORKSPACE_ROLE_ASSIGNMENTS_DELETE)],
)
def delete_workspace_role_assignment(
    workspace: str, assignment_id: str, services: Services = Depends(get_services)
) -> Response:
    services.role_assignments.delete(workspace_scope(workspace), assignment_id)
    return Response(status_code=204)


@router.post(REGISTRY_PATH, status_code=201)
def create_registry_role_assignment(
    registry: str,
    body: RoleAssignmentCreate,
    principal: Principal = require(actions.REGISTRY_ROLE_ASSIGNMENTS_WRITE),
    services: Services = Depends(get_services),
) -> RoleAssignmentRead:
    return services.role_assignments.create(principal, registry_scope(registry), body)


@router.get(REGISTRY_PATH, dependencies=[require(actions.REGISTRY_ROLE_ASSIGNMENTS_READ)])
def list_registry_role_assignments(
    registry: str, services: Services = Depends(get_services)
) -> list[RoleAssignmentRead]:
    return services.role_assignments.list(registry_scope(registry))


@router.delete(
    REGISTRY_PATH + "/{assignment_id}",
    status_code=204,
    dependencies=[require(actions.REGISTRY_ROLE_ASSIGNMENTS_DELETE)],
)
def delete_registry_role_assignment(
    registry: str, assignment_id: str, services: Services = Depends(get_services)
) -> Response:
    services.role_assignments.delete(registry_scope(registry), assignment_id)
    return Response(status_code=204)
