"""The one authorization dependency every route declares, and the guard that enforces it.

A route declares its action with ``require(action)``. The dependency authenticates the bearer
token and asks the authorizer whether the caller may perform the action at the route's scope:
the ``{workspace}``, ``{registry}`` or ``{group}`` in its path, else the server. A listing route
(``require(action, listing=True)``) only authenticates: its service filters the list to what
the caller may read. A route that declares no action is refused by ``GuardedRoute`` before it
runs, so forgetting one fails closed. The dependency also starts the request's audit entry.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from shipyard.api.deps import Services, get_services
from shipyard.api.logging import request_id_var
from shipyard.api.problems import http_problem, problem_response, validation_problem
from shipyard.domain import actions
from shipyard.domain.actions import Scope
from shipyard.domain.errors import ForbiddenError, ShipyardError, UnauthenticatedError
from shipyard.domain.principals import Principal
from shipyard.services.audit import AuditEntry
from shipyard.services.authz import ConcealedError

_bearer = HTTPBearer(auto_error=False, description="A Shipyard personal access token.")

ANONYMOUS = Principal(id="", name="anonymous", is_admin=False)


def route_scope(path_params: dict[str, Any]) -> Scope:
    """The scope a route acts on, from its path: a workspace, a registry, a group, or the
    server."""
    if "workspace" in path_params:
        return Scope("workspace", str(path_params["workspace"]))
    if "registry" in path_params:
        return Scope("registry", str(path_params["registry"]))
    if "group" in path_params:
        return Scope("group", str(path_params["group"]))
    return actions.GLOBAL


SESSION_COOKIE = "shipyard_session"
CSRF_COOKIE = "shipyard_csrf"
CSRF_HEADER = "x-csrf-token"


def basic_auth_token(authorization: str | None) -> str | None:
    """The password of ``Authorization: Basic base64(user:password)``, which is a token.

    Clients that only speak Basic auth (MLflow's MLFLOW_TRACKING_USERNAME/PASSWORD) send
    a personal access token as the password; the user name is not checked (the token names
    its principal). Anything else, malformed included, is no Basic credential (None)."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon and password else None


def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None, services: Services
) -> Principal:
    """A bearer token (SDK, CLI, automation) or a token as a Basic password, else the
    Studio's session cookie."""
    token = (
        credentials.credentials
        if credentials
        else basic_auth_token(request.headers.get("authorization"))
    )
    cookie = request.cookies.get(SESSION_COOKIE)
    if token is None and cookie:
        return services.sessions.authenticate(
            cookie, request.method, request.headers.get(CSRF_HEADER)
        )
    return services.tokens.authenticate(token)


class RequireAction:
    """``Depends(RequireAction(action))``: the caller, once allowed to perform ``action``."""

    def __init__(self, action: str, *, listing: bool = False, telemetry: bool = False) -> None:
        self.action = action
        self.listing = listing
        self.telemetry = telemetry

    def __call__(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
        services: Services = Depends(get_services),
    ) -> Principal:
        if self.action == actions.PUBLIC:
            return ANONYMOUS
        entry = AuditEntry(
            action=self.action,
            method=request.method,
            resource=request.url.path,
            status=0,
            denied=False,
            workspace=request.path_params.get("workspace"),
            client_address=request.client.host if request.client else None,
            request_id=request_id_var.get(),
            telemetry=self.telemetry,
        )
        request.state.audit = entry
        try:
            principal = authenticate(request, credentials, services)
            entry.principal_id, entry.principal_name = principal.id, principal.name
            if not self.listing:
                services.authorizer.authorize(
                    principal, self.action, route_scope(request.path_params)
                )
        except (UnauthenticatedError, ForbiddenError, ConcealedError):
            entry.denied = True
            raise
        request.state.principal = principal
        return principal


def require(action: str, *, listing: bool = False, telemetry: bool = False) -> Any:
    """The dependency for a route that performs ``action``. ``listing``: only authenticate
    (the service filters); ``telemetry``: a run's logging, left out of the audit log unless
    it is refused."""
    return Depends(RequireAction(action, listing=listing, telemetry=telemetry))


def iter_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route an app serves, with included routers opened up.

    FastAPI >= 0.16x keeps an included router as one lazy entry (holding ``original_router``)
    instead of copying its routes into the app; older versions copy them.
    """
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from iter_routes(included.routes)
        else:
            yield route


def requirement(route: APIRoute) -> RequireAction | None:
    return _find(route.dependant)


def declared_action(route: APIRoute) -> str | None:
    found = requirement(route)
    return found.action if found else None


def _find(dependant: Dependant) -> RequireAction | None:
    if isinstance(dependant.call, RequireAction):
        return dependant.call
    for sub in dependant.dependencies:
        found = _find(sub)
        if found is not None:
            return found
    return None


class GuardedRoute(APIRoute):
    """Refuses every request to a route that declares no action (fails closed)."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()
        if declared_action(self) is not None:
            return handler

        async def refuse(_: Request) -> Any:
            return problem_response(
                403, "action_not_declared", f"route {self.path} declares no action; refused"
            )

        return refuse


async def authenticate_first(request: Request, problem: Response) -> Response:
    """Answer a body error only to a caller the route would have let in.

    FastAPI reads and validates the body before it runs dependencies, so a malformed or
    oversized body would be answered before the caller is authenticated: an anonymous client
    would learn how the body is checked, and the attempt would leave no audit event. This runs
    the route's own requirement first (which also starts the audit entry)."""
    route = request.scope.get("route")
    needed = requirement(route) if isinstance(route, APIRoute) else None
    if needed is None or needed.action == actions.PUBLIC:
        return problem
    credentials = await _bearer(request)
    try:
        await run_in_threadpool(needed, request, credentials, await get_services(request))
    except ShipyardError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(exc.status, exc.code, exc.detail, exc.field, headers)
    return problem


def install_body_error_guard(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return await authenticate_first(request, validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        problem = http_problem(exc)
        if exc.status_code == 413:
            return await authenticate_first(request, problem)
        return problem
