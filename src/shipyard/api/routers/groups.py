"""/api/v1/groups: managed by admins and by each group's owners (scope: the group)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Response

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.groups import GroupCreate, GroupMemberAdd, GroupRead

router = APIRouter(prefix="/api/v1/groups", route_class=GuardedRoute, tags=["groups"])


@router.post("", status_code=201)
def create_group(
    body: GroupCreate,
    principal: Principal = require(actions.GROUPS_WRITE),
    services: Services = Depends(get_services),
) -> GroupRead:
    return services.groups.create(principal.id, body)


@router.get("", dependencies=[require(actions.GROUPS_READ)])
def list_groups(
    paging: PageParams = Depends(), services: Services = Depends(get_services)
) -> Page[GroupRead]:
    return services.groups.list(page_token=paging.page_token, max_results=paging.max_results)


@router.get("/{group}", dependencies=[require(actions.GROUPS_READ)])
def get_group(group: str, services: Services = Depends(get_services)) -> GroupRead:
    return services.groups.get(group)


@router.post("/{group}/members")
def add_group_member(
    group: str,
    body: GroupMemberAdd,
    principal: Principal = require(actions.GROUPS_WRITE),
    services: Services = Depends(get_services),
) -> GroupRead:
    return services.groups.add(principal, group, body)


@router.delete("/{group}/members/{member}", dependencies=[require(actions.GROUPS_WRITE)])
def remove_group_member(
    group: str,
    member: str,
    relation: Literal["member", "owner"] = Query("member"),
    services: Services = Depends(get_services),
) -> GroupRead:
    return services.groups.remove(group, member, relation)


@router.delete("/{group}", status_code=204, dependencies=[require(actions.GROUPS_DELETE)])
def delete_group(group: str, services: Services = Depends(get_services)) -> Response:
    services.groups.delete(group)
    return Response(status_code=204)
