"""The one authorization dependency every route declares, and the guard that enforces it.

A route declares its action with ``Depends(require(action))``. The dependency authenticates
the bearer token and asks the authorizer whether the caller may perform the action at the
route's scope (the ``{workspace}`` in its path, else the server). A route that declares no
action is refused by ``GuardedRoute`` before it runs, so forgetting one fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import BaseRoute

from shipyard.api.deps import Services, get_services
from shipyard.api.problems import problem_response
from shipyard.domain import actions
from shipyard.domain.actions import Scope
from shipyard.domain.principals import Principal

_bearer = HTTPBearer(auto_error=False, description="A Shipyard personal access token.")

ANONYMOUS = Principal(id="", name="anonymous", is_admin=False)


class RequireAction:
    """``Depends(RequireAction(action))``: the caller, once allowed to perform ``action``."""

    def __init__(self, action: str) -> None:
        self.action = action

    def __call__(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
        services: Services = Depends(get_services),
    ) -> Principal:
        if self.action == actions.PUBLIC:
            return ANONYMOUS
        principal = services.tokens.authenticate(credentials.credentials if credentials else None)
        scope = Scope(workspace=request.path_params.get("workspace"))
        services.authorizer.authorize(principal, self.action, scope)
        request.state.principal = principal
        return principal


def require(action: str) -> Any:
    """The dependency for a route that performs ``action``."""
    return Depends(RequireAction(action))


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


def declared_action(route: APIRoute) -> str | None:
    return _find_action(route.dependant)


def _find_action(dependant: Dependant) -> str | None:
    if isinstance(dependant.call, RequireAction):
        return dependant.call.action
    for sub in dependant.dependencies:
        found = _find_action(sub)
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
