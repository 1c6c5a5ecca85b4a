"""Liveness, readiness and the API description: the routes that need no token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.api.problems import problem_response
from shipyard.domain import actions

router = APIRouter(route_class=GuardedRoute, tags=["health"])


@router.get("/health", dependencies=[require(actions.PUBLIC)])
def health() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/ready", dependencies=[require(actions.PUBLIC)], response_model=None)
def ready(services: Services = Depends(get_services)) -> dict[str, str] | JSONResponse:
    """The metadata store answers."""
    try:
        services.db.ping()
    except Exception:  # any failure to reach the store means "not ready", whatever the driver
        return problem_response(503, "store_unreachable", "the metadata store does not answer")
    return {"status": "ready"}


@router.get("/openapi.json", dependencies=[require(actions.PUBLIC)], include_in_schema=False)
def openapi(request: Request) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema
