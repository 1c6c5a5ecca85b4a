"""/api/v1/workspaces/{workspace}/datastores: a workspace's connections to storage.

A datastore's keys are read with ``POST /{name}/list-secrets`` (Azure's ``listSecrets``
action), a POST for the reasons the key vault's reveal is one: no cache keeps the answer,
no link preview fetches it, and a Studio session must send its CSRF token. Its action ends
in ``/action``, which the audit log records even though other reads are left out.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.datastores import (
    DatastoreCreate,
    DatastoreRead,
    DatastoreSecretsRead,
    DatastoreUpdate,
)

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/datastores",
    route_class=GuardedRoute,
    tags=["datastores"],
)

_SKIP = Query(
    False,
    description="Do not list the storage to check that it answers and the credentials work "
    "(Azure's skipValidation).",
)


@router.post("", status_code=201)
def create_datastore(
    workspace: str,
    body: DatastoreCreate,
    skip_validation: bool = _SKIP,
    principal: Principal = require(actions.DATASTORES_WRITE),
    services: Services = Depends(get_services),
) -> DatastoreRead:
    return services.datastores.create(workspace, body, principal, validate=not skip_validation)


@router.get("", dependencies=[require(actions.DATASTORES_READ)])
def list_datastores(
    workspace: str, paging: PageParams = Depends(), services: Services = Depends(get_services)
) -> Page[DatastoreRead]:
    return services.datastores.list(
        workspace, page_token=paging.page_token, max_results=paging.max_results
    )


@router.get("/{name}", dependencies=[require(actions.DATASTORES_READ)])
def get_datastore(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> DatastoreRead:
    return services.datastores.get(workspace, name)


@router.patch("/{name}")
def update_datastore(
    workspace: str,
    name: str,
    body: DatastoreUpdate,
    skip_validation: bool = _SKIP,
    principal: Principal = require(actions.DATASTORES_WRITE),
    services: Services = Depends(get_services),
) -> DatastoreRead:
    return services.datastores.update(
        workspace, name, body, principal, validate=not skip_validation
    )


@router.delete("/{name}", status_code=204, dependencies=[require(actions.DATASTORES_DELETE)])
def delete_datastore(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> Response:
    services.datastores.delete(workspace, name)
    return Response(status_code=204)


@router.post("/{name}/set-default")
def set_default_datastore(
    workspace: str,
    name: str,
    principal: Principal = require(actions.DATASTORES_WRITE),
    services: Services = Depends(get_services),
) -> DatastoreRead:
    return services.datastores.set_default(workspace, name, principal.id)


@router.post("/{name}/list-secrets", dependencies=[require(actions.DATASTORES_LIST_SECRETS)])
def list_datastore_secrets(
    workspace: str, name: str, response: Response, services: Services = Depends(get_services)
) -> DatastoreSecretsRead:
    found = services.datastores.list_secrets(workspace, name)
    response.headers["Cache-Control"] = "no-store"
    return found
