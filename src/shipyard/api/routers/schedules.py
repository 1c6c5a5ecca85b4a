"""/api/v1/workspaces/{workspace}/schedules: triggers that submit a job on a cadence.

Enabling and disabling are POSTs on the schedule (``/enable``, ``/disable``), as ``az ml
schedule enable|disable``; its fires (the jobs it submitted, or why it could not) are under
``/{name}/fires``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.schedules import ScheduleCreate, ScheduleFireRead, ScheduleRead

router = APIRouter(
    prefix="/api/v1/workspaces/{workspace}/schedules",
    route_class=GuardedRoute,
    tags=["schedules"],
)


@router.post("", status_code=201)
def create_schedule(
    workspace: str,
    body: ScheduleCreate,
    principal: Principal = require(actions.SCHEDULES_WRITE),
    services: Services = Depends(get_services),
) -> ScheduleRead:
    """Its jobs are submitted as the caller, with the caller's permissions at each fire."""
    return services.schedules.create(principal, workspace, body)


@router.get("", dependencies=[require(actions.SCHEDULES_READ)])
def list_schedules(
    workspace: str, paging: PageParams = Depends(), services: Services = Depends(get_services)
) -> Page[ScheduleRead]:
    return services.schedules.list(
        workspace, page_token=paging.page_token, max_results=paging.max_results
    )


@router.get("/{name}", dependencies=[require(actions.SCHEDULES_READ)])
def get_schedule(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> ScheduleRead:
    """With its next five fire times (``upcoming_fire_times``)."""
    return services.schedules.get(workspace, name)


@router.post("/{name}/enable", dependencies=[require(actions.SCHEDULES_WRITE)])
def enable_schedule(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> ScheduleRead:
    return services.schedules.set_enabled(workspace, name, True)


@router.post("/{name}/disable", dependencies=[require(actions.SCHEDULES_WRITE)])
def disable_schedule(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> ScheduleRead:
    return services.schedules.set_enabled(workspace, name, False)


@router.delete("/{name}", status_code=204, dependencies=[require(actions.SCHEDULES_DELETE)])
def delete_schedule(
    workspace: str, name: str, services: Services = Depends(get_services)
) -> Response:
    """The jobs it submitted stay."""
    services.schedules.delete(workspace, name)
    return Response(status_code=204)


@router.get("/{name}/fires", dependencies=[require(actions.SCHEDULES_READ)])
def list_schedule_fires(
    workspace: str,
    name: str,
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[ScheduleFireRead]:
    """Most recent first."""
    return services.schedules.fires(
        workspace, name, page_token=paging.page_token, max_results=paging.max_results
    )
