"""/api/v1/audit (everything; admins) and /api/v1/workspaces/{workspace}/audit. Read-only:
no route changes or deletes an audit event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.schemas.audit import AuditEventRead
from shipyard.schemas.common import Page
from shipyard.services.audit import AuditFilter

router = APIRouter(route_class=GuardedRoute, tags=["audit"])


def audit_filter(
    since: datetime | None = Query(None, description="Events at or after this time."),
    until: datetime | None = Query(None, description="Events before this time."),
    principal: str | None = Query(None, description="Events of this user or service principal."),
    action: str | None = Query(None, description="Events of this action."),
    outcome: Literal["succeeded", "failed", "denied"] | None = Query(None),
) -> AuditFilter:
    return AuditFilter(
        since=_utc(since), until=_utc(until), principal=principal, action=action, outcome=outcome
    )


def _utc(moment: datetime | None) -> datetime | None:
    """A time given without a zone is read as UTC, the zone every event is stored in."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@router.get("/api/v1/audit", dependencies=[require(actions.AUDIT_READ)])
def list_audit_events(
    filters: AuditFilter = Depends(audit_filter),
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[AuditEventRead]:
    return services.audit.list(
        workspace=None,
        filters=filters,
        page_token=paging.page_token,
        max_results=paging.max_results,
    )


@router.get(
    "/api/v1/workspaces/{workspace}/audit", dependencies=[require(actions.WORKSPACE_AUDIT_READ)]
)
def list_workspace_audit_events(
    workspace: str,
    filters: AuditFilter = Depends(audit_filter),
    paging: PageParams = Depends(),
    services: Services = Depends(get_services),
) -> Page[AuditEventRead]:
    return services.audit.list(
        workspace=workspace,
        filters=filters,
        page_token=paging.page_token,
        max_results=paging.max_results,
    )
