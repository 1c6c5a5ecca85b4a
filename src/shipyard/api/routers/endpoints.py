"""/api/v1/workspaces/{workspace}/onlineEndpoints: scoring URLs, their deployments and
credentials.

Paths and actions follow Azure's REST API (``onlineEndpoints``, ``listKeys``,
``regenerateKeys``, ``token``), so the gateway's scoring route sits beside them
(``.../onlineEndpoints/{name}/score``). Keys and tokens are POSTs for the reasons the key
vault's reveal is one: no cache keeps the answer, no link preview fetches it, a Studio session
must send its CSRF token; their actions end in ``/action``, which the audit log records.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.endpoints import (
    DeploymentLogsRead,
    EndpointKeysRead,
    EndpointTokenRead,
    OnlineDeploymentCreate,
    OnlineDeploymentRead,
    OnlineDeploymentUpdate,
    OnlineEndpointCreate,
    OnlineEndpointRead,
    OnlineEndpointUpdate,
    RegenerateKeysBody,
)
from shipyard.services.online_deployments import DEFAULT_LOG_LINES

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/onlineEndpoints",
    route_class=GuardedRoute,
    tags=["online endpoints"],
)

_NO_STORE = {"Cache-Control": "no-store"}


@router.post("", status_code=201)
def create_online_endpoint(
    workspace: str,
    body: OnlineEndpointCreate,
    principal: Principal = require(actions.ONLINE_ENDPOINTS_WRITE),
    services: Services = Depends(get_services),
) -> OnlineEndpointRead:
    """With auth_mode key, its two keys are made now (shown by ``listKeys``)."""
    return services.online_endpoints.create(principal, workspace, body)


@router.get("", dependencies=[require(actions.ONLINE_ENDPOINTS_READ)])
def list_online_endpoints(
    workspace: str, paging: PageParams = Depends(), services: Services = Depends(get_services)
) -> Page[OnlineEndpointRead]:
    return services.online_endpoints.list(
        workspace, page_token=paging.page_token, max_results=paging.max_results
    )


@router.get("/{name}", dependencies=[require(actions.ONLINE_ENDPOINTS_READ)])
def get_online_endpoint(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> OnlineEndpointRead:
    return services.online_endpoints.get(workspace, name)


@router.patch("/{name}")
def update_online_endpoint(
    workspace: str,
    name: str,
    body: OnlineEndpointUpdate,
    principal: Principal = require(actions.ONLINE_ENDPOINTS_WRITE),
    services: Services = Depends(get_services),
) -> OnlineEndpointRead:
    """Only the fields given change; traffic is checked against the deployments now."""
    return services.online_endpoints.update(principal, workspace, name, body)


@router.delete("/{name}", status_code=204, dependencies=[require(actions.ONLINE_ENDPOINTS_DELETE)])
def delete_online_endpoint(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> Response:
    """With its deployments and keys."""
    services.online_endpoints.delete(workspace, name)
    return Response(status_code=204)


@router.post("/{name}/listKeys", dependencies=[require(actions.ONLINE_ENDPOINTS_LIST_KEYS)])
def list_online_endpoint_keys(
    workspace: str, name: str, response: Response, services: Services = Depends(get_services)
) -> EndpointKeysRead:
    found = services.online_endpoints.list_keys(workspace, name)
    response.headers.update(_NO_STORE)
    return found


@router.post("/{name}/regenerateKeys", status_code=204)
def regenerate_online_endpoint_keys(
    workspace: str,
    name: str,
    body: RegenerateKeysBody,
    principal: Principal = require(actions.ONLINE_ENDPOINTS_REGENERATE_KEYS),
    services: Services = Depends(get_services),
) -> Response:
    """A new primary or secondary key; the old one stops working at once."""
    services.online_endpoints.regenerate_keys(principal, workspace, name, body.key_type)
    return Response(status_code=204)


@router.post("/{name}/token")
def get_online_endpoint_token(
    workspace: str,
    name: str,
    response: Response,
    principal: Principal = require(actions.ONLINE_ENDPOINTS_TOKEN),
    services: Services = Depends(get_services),
) -> EndpointTokenRead:
    """A short-lived token for an aml_token endpoint (an hour)."""
    found = services.online_endpoints.token(principal, workspace, name)
    response.headers.update(_NO_STORE)
    return found


# -- deployments ---------------------------------------------------------------------------------


@router.post("/{endpoint}/deployments", status_code=201)
def create_online_deployment(
    workspace: str,
    endpoint: str,
    body: OnlineDeploymentCreate,
    all_traffic: bool = Query(False, description="Send it 100% of the endpoint's traffic."),
    principal: Principal = require(actions.ONLINE_DEPLOYMENTS_WRITE),
    services: Services = Depends(get_services),
) -> OnlineDeploymentRead:
    if all_traffic:
        # Changing the split is a change of the endpoint.
        services.authorizer.authorize(
            principal, actions.ONLINE_ENDPOINTS_WRITE, actions.workspace_scope(workspace)
        )
    return services.online_deployments.create(
        principal, workspace, endpoint, body, all_traffic=all_traffic
    )


@router.get("/{endpoint}/deployments", dependencies=[require(actions.ONLINE_DEPLOYMENTS_READ)])
def list_online_deployments(
    workspace: str,
    endpoint: str,
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[OnlineDeploymentRead]:
    return services.online_deployments.list(
        workspace, endpoint, page_token=paging.page_token, max_results=paging.max_results
    )


@router.get(
    "/{endpoint}/deployments/{name}", dependencies=[require(actions.ONLINE_DEPLOYMENTS_READ)]
)
def get_online_deployment(
    workspace: str, endpoint: str, name: str, services: Services = Depends(get_services)
) -> OnlineDeploymentRead:
    return services.online_deployments.get(workspace, endpoint, name)


@router.patch("/{endpoint}/deployments/{name}")
def update_online_deployment(
    workspace: str,
    endpoint: str,
    name: str,
    body: OnlineDeploymentUpdate,
    principal: Principal = require(actions.ONLINE_DEPLOYMENTS_WRITE),
    services: Services = Depends(get_services),
) -> OnlineDeploymentRead:
    """The fields given replace the deployment's; instances are replaced one at a time."""
    return services.online_deployments.update(principal, workspace, endpoint, name, body)


@router.delete(
    "/{endpoint}/deployments/{name}",
    status_code=204,
    dependencies=[require(actions.ONLINE_DEPLOYMENTS_DELETE)],
)
def delete_online_deployment(
    workspace: str, endpoint: str, name: str, services: Services = Depends(get_services)
) -> Response:
    """Refused while it takes live or mirrored traffic."""
    services.online_deployments.delete(workspace, endpoint, name)
    return Response(status_code=204)


@router.get(
    "/{endpoint}/deployments/{name}/logs",
    dependencies=[require(actions.ONLINE_DEPLOYMENTS_READ)],
)
def get_online_deployment_logs(
    workspace: str,
    endpoint: str,
    name: str,
    lines: int = Query(DEFAULT_LOG_LINES, description="The last lines to return."),
    services: Services = Depends(get_services),
) -> DeploymentLogsRead:
    return services.online_deployments.logs(workspace, endpoint, name, lines=lines)
