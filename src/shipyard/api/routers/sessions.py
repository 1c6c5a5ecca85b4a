"""/api/v1/sessions: password login for the Studio (tokens stay the way for everything else).

The session travels in an HttpOnly cookie; the CSRF token comes back in the body and in a
readable cookie, and must be echoed as ``X-CSRF-Token`` on every change made with the cookie.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from shipyard.api.authz import CSRF_COOKIE, SESSION_COOKIE, GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.logging import request_id_var
from shipyard.domain import actions
from shipyard.domain.errors import ShipyardError
from shipyard.domain.principals import Principal
from shipyard.schemas.users import LoginRequest, SessionRead, UserRead
from shipyard.services.audit import AuditEntry

router = APIRouter(prefix="/api/v1/sessions", route_class=GuardedRoute, tags=["sessions"])

LOGIN_ACTION = "sessions/create"


@router.post("", status_code=201, dependencies=[require(actions.PUBLIC)])
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    services: Services = Depends(get_services),
) -> SessionRead:
    client = request.client.host if request.client else "unknown"
    # Public route, so no audit entry was started for it; logins are recorded all the same.
    entry = AuditEntry(
        action=LOGIN_ACTION,
        method="POST",
        resource=request.url.path,
        status=0,
        denied=False,
        principal_name=body.name[:63],
        client_address=client,
        request_id=request_id_var.get(),
    )
    request.state.audit = entry
    try:
        created = services.sessions.login(body, client)
    except ShipyardError:
        entry.denied = True
        raise
    entry.principal_id = created.read.user.id
    secure = request.url.scheme == "https"
    max_age = int(services.settings.session_ttl_hours * 3600)
    response.set_cookie(
        SESSION_COOKIE,
        created.token,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    response.set_cookie(
        CSRF_COOKIE,
        created.read.csrf_token,
        max_age=max_age,
        httponly=False,
        samesite="strict",
        secure=secure,
        path="/",
    )
    return created.read


@router.get("/current")
def get_current_session(
    principal: Principal = require(actions.SELF), services: Services = Depends(get_services)
) -> UserRead:
    return services.users.get(principal.name)


@router.delete("/current", status_code=204, dependencies=[require(actions.SELF)])
def logout(request: Request, services: Services = Depends(get_services)) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        services.sessions.logout(token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response
