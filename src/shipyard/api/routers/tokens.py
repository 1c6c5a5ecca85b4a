"""/api/v1/tokens: a caller's own tokens (an admin may name another user)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.paging import PageParams
from shipyard.domain import actions
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.users import TokenCreate, TokenCreated, TokenRead

router = APIRouter(prefix="/api/v1/tokens", route_class=GuardedRoute, tags=["tokens"])


@router.post("", status_code=201)
def create_token(
    body: TokenCreate,
    principal: Principal = require(actions.SELF),
    services: Services = Depends(get_services),
) -> TokenCreated:
    return services.tokens.create(principal, body)


@router.get("")
def list_tokens(
    user: str | None = Query(None, description="Whose tokens (admins only); default: yours."),
    paging: PageParams = Depends(),
    principal: Principal = require(actions.SELF),
    services: Services = Depends(get_services),
) -> Page[TokenRead]:
    return services.tokens.list(
        principal, user, page_token=paging.page_token, max_results=paging.max_results
    )


@router.delete("/{token_id}")
def revoke_token(
    token_id: str,
    principal: Principal = require(actions.SELF),
    services: Services = Depends(get_services),
) -> TokenRead:
    return services.tokens.revoke(principal, token_id)
