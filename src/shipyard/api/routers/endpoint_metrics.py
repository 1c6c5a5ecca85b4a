""".../onlineEndpoints/{endpoint}/metrics and .../deployments/{name}/metrics: the time series
(per minute) of an endpoint's deployments, with a summary of the range (docs/endpoints.md,
"Monitoring"). Reading them is reading the endpoint or the deployment."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.schemas.endpoint_metrics import DeploymentMetricsRead, EndpointMetricsRead

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/onlineEndpoints",
    route_class=GuardedRoute,
    tags=["online endpoints"],
)

_SINCE = Query(None, description="Minutes at or after this time (default: an hour before until).")
_UNTIL = Query(None, description="Minutes before this time (default: now). UTC if no zone.")


@router.get("/{endpoint}/metrics", dependencies=[require(actions.ONLINE_ENDPOINTS_READ)])
def get_online_endpoint_metrics(
    workspace: str,
    endpoint: str,
    since: datetime | None = _SINCE,
    until: datetime | None = _UNTIL,
    services: Services = Depends(get_services),
) -> EndpointMetricsRead:
    """Every deployment's per-minute figures and their summary over the range."""
    return services.endpoint_metrics.endpoint_series(workspace, endpoint, since, until)


@router.get(
    "/{endpoint}/deployments/{name}/metrics",
    dependencies=[require(actions.ONLINE_DEPLOYMENTS_READ)],
)
def get_online_deployment_metrics(
    workspace: str,
    endpoint: str,
    name: str,
    since: datetime | None = _SINCE,
    until: datetime | None = _UNTIL,
    services: Services = Depends(get_services),
) -> DeploymentMetricsRead:
    return services.endpoint_metrics.deployment_series(workspace, endpoint, name, since, until)
