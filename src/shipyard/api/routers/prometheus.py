"""/metrics: the server's Prometheus metrics (services/endpoint_prometheus.py).

The figures span every workspace, so reading them is reading every workspace's online
endpoints: the route asks for ``workspaces/onlineEndpoints/read`` at global scope (an admin,
or a service principal given a role with that action globally, whose token the scraper sends
as its bearer token). Anonymous callers get 401, like every other route but health.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.services.endpoint_prometheus import prometheus_registry, render

router = APIRouter(route_class=GuardedRoute, tags=["monitoring"])


@router.get(
    "/metrics",
    dependencies=[require(actions.ONLINE_ENDPOINTS_READ)],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def prometheus_metrics(request: Request, services: Services = Depends(get_services)) -> Response:
    """Requests by status code, latency histogram, instance restarts and ready instances,
    per online deployment (Prometheus text format, or OpenMetrics when asked for)."""
    registry = prometheus_registry(services.scoring_stats, services.deployment_runtime)
    body, content_type = render(registry, request.headers.get("accept"))
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
