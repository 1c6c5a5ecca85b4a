"""Every error leaves the API as ``application/problem+json`` with a stable code."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.api.logging import request_id_var
from shipyard.domain.errors import ShipyardError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem_response(
    status: int, code: str, detail: str, field: str | None = None, headers: Any = None
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
        "field": field,
        "request_id": request_id_var.get(),
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str | None:
    # FastAPI prefixes the location with where it came from: body, query, path, header.
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in {"body", "query", "path"} else []
    return ".".join(parts) or None


def validation_problem(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first: dict[str, Any] = dict(errors[0]) if errors else {"loc": (), "msg": "invalid request"}
    kind = first.get("type", "")
    loc = tuple(first.get("loc", ()))
    if kind == "json_invalid":
        position = loc[1] if len(loc) > 1 else "?"
        reason = (first.get("ctx") or {}).get("error", "not valid JSON")
        return problem_response(
            400, "malformed_json", f"the body is not valid JSON at character {position}: {reason}"
        )
    field = _field_path(loc)
    if kind == "extra_forbidden":
        return problem_response(400, "unknown_field", f"unknown field {field!r}", field)
    if kind == "missing":
        return problem_response(400, "missing_field", f"field {field!r} is required", field)
    message = str(first.get("msg", "")).removeprefix("Value error, ")
    if field is None:
        return problem_response(400, "invalid_body", f"the request is not valid: {message}")
    return problem_response(400, "invalid_field", f"{field}: {message}", field)


def http_problem(exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "route_not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.status_code, "http"
    )
    return problem_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ShipyardError)
    async def _shipyard(_: Request, exc: ShipyardError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(exc.status, exc.code, exc.detail, exc.field, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_problem(exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem_response(500, "internal", "an unexpected error occurred; see server logs")
