"""/api/v1/workspaces/{workspace}/environments: environments and their versions, and builds.

``POST /{name}/versions`` registers a version (``version`` omitted: the next number);
``GET /{name}/versions/latest`` is the newest one that is not archived. The curated
environments (``shipyard-minimal``, ``shipyard-sklearn``) are listed in every workspace and
cannot be changed. ``POST .../versions/{v}/build`` builds a version now (the request waits)
and answers its build's status, whether it was cached and the end of its log; ``GET`` the
same path reads the build's status and whole log.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.environments import (
    EnvironmentBuildRead,
    EnvironmentRead,
    EnvironmentVersionCreate,
    EnvironmentVersionRead,
    EnvironmentVersionUpdate,
)

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/environments",
    route_class=GuardedRoute,
    tags=["environments"],
)


@router.get("", dependencies=[require(actions.ENVIRONMENTS_READ)])
def list_environments(
    workspace: str,
    include_archived: bool = Query(False, description="Archived environments too."),
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[EnvironmentRead]:
    return services.environments.list_assets(
        workspace,
        include_archived=include_archived,
        page_token=paging.page_token,
        max_results=paging.max_results,
    )


@router.post("/{name}/versions", status_code=201)
def create_environment_version(
    workspace: str,
    name: str,
    body: EnvironmentVersionCreate,
    principal: Principal = require(actions.ENVIRONMENTS_WRITE),
    services: Services = Depends(get_services),
) -> EnvironmentVersionRead:
    return services.environments.create(principal, workspace, name, body)


@router.get("/{name}/versions", dependencies=[require(actions.ENVIRONMENTS_READ)])
def list_environment_versions(
    workspace: str,
    name: str,
    include_archived: bool = Query(False, description="Archived versions too."),
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[EnvironmentVersionRead]:
    return services.environments.list_versions(
        workspace,
        name,
        include_archived=include_archived,
        page_token=paging.page_token,
        max_results=paging.max_results,
    )


@router.get("/{name}/versions/{version}", dependencies=[require(actions.ENVIRONMENTS_READ)])
def get_environment_version(
    workspace: str, name: str, version: str, services: Services = Depends(get_services)
) -> EnvironmentVersionRead:
    return services.environments.get(workspace, name, version)


@router.patch("/{name}/versions/{version}", dependencies=[require(actions.ENVIRONMENTS_WRITE)])
def update_environment_version(
    workspace: str,
    name: str,
    version: str,
    body: EnvironmentVersionUpdate,
    services: Services = Depends(get_services),
) -> EnvironmentVersionRead:
    return services.environments.update(workspace, name, version, body)


@router.post(
    "/{name}/versions/{version}/archive",
    status_code=204,
    dependencies=[require(actions.ENVIRONMENTS_WRITE)],
)
def archive_environment_version(
    workspace: str, name: str, version: str, services: Services = Depends(get_services)
) -> Response:
    services.environments.set_archived(workspace, name, version, True)
    return Response(status_code=204)


@router.post(
    "/{name}/versions/{version}/restore",
    status_code=204,
    dependencies=[require(actions.ENVIRONMENTS_WRITE)],
)
def restore_environment_version(
    workspace: str, name: str, version: str, services: Services = Depends(get_services)
) -> Response:
    services.environments.set_archived(workspace, name, version, False)
    return Response(status_code=204)


@router.post("/{name}/archive", status_code=204, dependencies=[require(actions.ENVIRONMENTS_WRITE)])
def archive_environment(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> Response:
    services.environments.set_archived(workspace, name, None, True)
    return Response(status_code=204)


@router.post("/{name}/restore", status_code=204, dependencies=[require(actions.ENVIRONMENTS_WRITE)])
def restore_environment(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> Response:
    services.environments.set_archived(workspace, name, None, False)
    return Response(status_code=204)


@router.post("/{name}/versions/{version}/build", dependencies=[require(actions.ENVIRONMENTS_WRITE)])
def build_environment_version(
    workspace: str, name: str, version: str, services: Services = Depends(get_services)
) -> EnvironmentBuildRead:
    return services.environments.build(workspace, name, version)


@router.get("/{name}/versions/{version}/build", dependencies=[require(actions.ENVIRONMENTS_READ)])
def get_environment_build(
    workspace: str, name: str, version: str, services: Services = Depends(get_services)
) -> EnvironmentBuildRead:
    return services.environments.build_status(workspace, name, version)
