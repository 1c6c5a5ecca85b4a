"""/api/v1/workspaces/{workspace}/cost: what the workspace's jobs cost."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.schemas.costs import CostGrouping, CostReport

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/cost", route_class=GuardedRoute, tags=["cost"]
)


@router.get("", dependencies=[require(actions.JOBS_READ)])
def cost_report(
    workspace: str,
    by: CostGrouping = Query("experiment", description="Group by experiment, user or compute."),
    since: datetime | None = Query(None, description="Only jobs that ended at or after this."),
    services: Services = Depends(get_services),
) -> CostReport:
    """Compute time and cost of the workspace's ended jobs, grouped."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return services.costs.report(workspace, by=by, since=since)
