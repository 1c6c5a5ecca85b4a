"""/api/v1/workspaces/{workspace}/secrets: the workspace's key vault.

A value is read with ``POST /{name}/reveal`` rather than a GET: a GET response may be kept by
a proxy or a browser cache, fetched ahead by a link preview, or made by the Studio's session
cookie without the CSRF token every cookie-authenticated POST must carry. Its action,
``workspaces/secrets/read``, ends in ``secrets/read``, which the audit log records even though
other reads are left out (services.audit.SENSITIVE_SUFFIXES).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.secrets import SecretRead, SecretSet, SecretValueRead

SECRETS_METADATA_READ = "workspaces/secrets/metadata/read"
SECRETS_READ = "workspaces/secrets/read"
SECRETS_WRITE = "workspaces/secrets/write"
SECRETS_DELETE = "workspaces/secrets/delete"

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/secrets", route_class=GuardedRoute, tags=["secrets"]
)


@router.get("", dependencies=[require(SECRETS_METADATA_READ)])
def list_secrets(
    workspace: str, paging: PageParams = Depends(), services: Services = Depends(get_services)
) -> Page[SecretRead]:
    return services.secrets.list(
        workspace, page_token=paging.page_token, max_results=paging.max_results
    )


@router.put(
    "/{name}",
    responses={201: {"model": SecretRead, "description": "Created (200: replaced)"}},
)
def set_secret(
    workspace: str,
    name: str,
    body: SecretSet,
    response: Response,
    principal: Principal = require(SECRETS_WRITE),
    services: Services = Depends(get_services),
) -> SecretRead:
    secret, created = services.secrets.set(workspace, name, body.value, principal.id)
    response.status_code = 201 if created else 200
    return secret


@router.get("/{name}", dependencies=[require(SECRETS_METADATA_READ)])
def get_secret(workspace: str, name: str, services: Services = Depends(get_services)) -> SecretRead:
    return services.secrets.get(workspace, name)


@router.post("/{name}/reveal", dependencies=[require(SECRETS_READ)])
def reveal_secret(
    workspace: str, name: str, response: Response, services: Services = Depends(get_services)
) -> SecretValueRead:
    revealed = services.secrets.reveal(workspace, name)
    response.headers["Cache-Control"] = "no-store"
    return revealed


@router.delete("/{name}", status_code=204, dependencies=[require(SECRETS_DELETE)])
def delete_secret(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> Response:
    services.secrets.delete(workspace, name)
    return Response(status_code=204)
