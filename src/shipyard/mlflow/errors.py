"""Errors under ``/mlflow/`` in MLflow's shape: ``{"error_code": ..., "message": ...}``.

The app's own handlers (``api.problems``, ``api.authz.install_body_error_guard``) still decide
everything (authentication before body errors, audit, logging of unexpected errors); for a
request under ``/mlflow/`` their problem document is then re-spelt the way the ``mlflow``
client reads it: its ``RestException`` takes ``error_code`` and ``message``. Shipyard's stable
``code`` rides along (the client ignores unknown fields), so ``workspace_not_found`` and
``run_not_found`` stay distinguishable although both are ``RESOURCE_DOES_NOT_EXIST``.

Statuses follow MLflow's table for each error code, with one exception: a conflict keeps 409
rather than an MLflow code whose status (429, 500) the client would retry.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.api.problems import PROBLEM_JSON
from shipyard.domain.errors import ShipyardError
from shipyard.mlflow.paths import MLFLOW_ROOT

Handler = Callable[[Request, Any], Response | Awaitable[Response]]

# Shipyard status -> (MLflow error code, status the MLflow surface answers with)
_BY_STATUS: dict[int, tuple[str, int]] = {
    400: ("INVALID_PARAMETER_VALUE", 400),
    401: ("UNAUTHENTICATED", 401),
    403: ("PERMISSION_DENIED", 403),
    404: ("RESOURCE_DOES_NOT_EXIST", 404),
    405: ("ENDPOINT_NOT_FOUND", 405),
    409: ("RESOURCE_CONFLICT", 409),
    410: ("RESOURCE_DOES_NOT_EXIST", 404),
    413: ("INVALID_PARAMETER_VALUE", 413),
    416: ("INVALID_PARAMETER_VALUE", 416),
    429: ("REQUEST_LIMIT_EXCEEDED", 429),
    503: ("TEMPORARILY_UNAVAILABLE", 503),
    507: ("TEMPORARILY_UNAVAILABLE", 507),  # storage full: MLflow has no closer code
}
# Shipyard codes whose MLflow counterpart is not the one their status suggests.
_BY_CODE: dict[str, tuple[str, int]] = {
    "experiment_exists": ("RESOURCE_ALREADY_EXISTS", 400),
    "model_exists": ("RESOURCE_ALREADY_EXISTS", 400),  # register_model relies on this code
    "run_deleted": ("INVALID_PARAMETER_VALUE", 400),  # MLflow: "must be in 'active' state"
    "experiment_deleted": ("INVALID_PARAMETER_VALUE", 400),
    "route_not_found": ("ENDPOINT_NOT_FOUND", 404),
}
_INTERNAL = ("INTERNAL_ERROR", 500)


def mlflow_error(status: int, code: str) -> tuple[str, int]:
    """The MLflow error code and HTTP status for a Shipyard error."""
    return _BY_CODE.get(code) or _BY_STATUS.get(status) or _INTERNAL


def error_response(
    status: int, code: str, message: str, request_id: str | None = None, headers: Any = None
) -> JSONResponse:
    error_code, http_status = mlflow_error(status, code)
    body = {"error_code": error_code, "message": message, "code": code, "request_id": request_id}
    return JSONResponse(body, status_code=http_status, headers=headers)


def under_mlflow(request: Request) -> bool:
    return request.url.path.startswith(MLFLOW_ROOT)


def _respell(response: Response) -> Response:
    """A problem+json response as the same error in MLflow's shape."""
    if response.media_type != PROBLEM_JSON:
        return response
    problem = json.loads(bytes(response.body))
    authenticate = response.headers.get("www-authenticate")
    return error_response(
        int(problem["status"]),
        str(problem["code"]),
        str(problem["detail"]),
        problem.get("request_id"),
        {"WWW-Authenticate": authenticate} if authenticate else None,
    )


def _translating(inner: Handler) -> Handler:
    async def handle(request: Request, exc: Any) -> Response:
        response = inner(request, exc)
        if inspect.isawaitable(response):
            response = await response
        return _respell(response) if under_mlflow(request) else response

    return handle


def install(app: FastAPI) -> None:
    """Wrap the app's error handlers (install after ``problems.install`` and the body guard)."""
    for kind in (ShipyardError, RequestValidationError, StarletteHTTPException, Exception):
        inner = app.exception_handlers.get(kind)
        if inner is None:
            raise RuntimeError(f"install the app's own {kind.__name__} handler first")
        app.add_exception_handler(kind, _translating(inner))
