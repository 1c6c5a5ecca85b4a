"""/api/v1/users"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.users import PasswordChange, UserCreate, UserRead, UserUpdate

router = APIRouter(prefix="/api/v1/users", route_class=GuardedRoute, tags=["users"])


@router.get("/me")
def get_me(
    principal: Principal = require(actions.SELF), services: Services = Depends(get_services)
) -> UserRead:
    return services.users.get(principal.name)


@router.post("/me/password")
def change_my_password(
    body: PasswordChange,
    principal: Principal = require(actions.SELF),
    services: Services = Depends(get_services),
) -> UserRead:
    """Change your own Studio password (the current one is needed once you have one)."""
    return services.users.change_own_password(principal, body)


@router.post("", status_code=201)
def create_user(
    body: UserCreate,
    principal: Principal = require(actions.USERS_WRITE),
    services: Services = Depends(get_services),
) -> UserRead:
    return services.users.create(principal, body)


@router.get("", dependencies=[require(actions.USERS_READ)])
def list_users(
    paging: PageParams = Depends(), services: Services = Depends(get_services)
) -> Page[UserRead]:
    return services.users.list(page_token=paging.page_token, max_results=paging.max_results)


@router.get("/{user}", dependencies=[require(actions.USERS_READ)])
def get_user(user: str, services: Services = Depends(get_services)) -> UserRead:
    return services.users.get(user)


@router.patch("/{user}")
def update_user(
    user: str,
    body: UserUpdate,
    principal: Principal = require(actions.USERS_WRITE),
    services: Services = Depends(get_services),
) -> UserRead:
    return services.users.update(principal, user, body)
