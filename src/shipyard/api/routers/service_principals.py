"""/api/v1/service-principals (their tokens: /api/v1/tokens with ``user``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.schemas.common import Page
from shipyard.schemas.groups import ServicePrincipalCreate, ServicePrincipalRead

router = APIRouter(
    prefix="/api/v1/service-principals", route_class=GuardedRoute, tags=["service principals"]
)


@router.post("", status_code=201, dependencies=[require(actions.SERVICE_PRINCIPALS_WRITE)])
def create_service_principal(
    body: ServicePrincipalCreate, services: Services = Depends(get_services)
) -> ServicePrincipalRead:
    return services.service_principals.create(body)


@router.get("", dependencies=[require(actions.SERVICE_PRINCIPALS_READ)])
def list_service_principals(
    paging: PageParams = Depends(), services: Services = Depends(get_services)
) -> Page[ServicePrincipalRead]:
    return services.service_principals.list(
        page_token=paging.page_token, max_results=paging.max_results
    )


@router.get("/{name}", dependencies=[require(actions.SERVICE_PRINCIPALS_READ)])
def get_service_principal(
    name: str, services: Services = Depends(get_services)
) -> ServicePrincipalRead:
    return services.service_principals.get(name)


@router.delete(
    "/{name}", status_code=204, dependencies=[require(actions.SERVICE_PRINCIPALS_DELETE)]
)
def delete_service_principal(name: str, services: Services = Depends(get_services)) -> Response:
    services.service_principals.delete(name)
    return Response(status_code=204)
