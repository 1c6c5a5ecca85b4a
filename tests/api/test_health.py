from __future__ import annotations

import re

import httpx
from fastapi.routing import APIRoute

from shipyard.api.app import create_app
from shipyard.api.authz import iter_routes
from tests.conftest import RunningServer


def test_health_and_ready_need_no_token(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/ready").json() == {"status": "ready"}


def test_openapi_lists_every_route_with_schemas(server: RunningServer) -> None:
    document = httpx.get(f"{server.url}/openapi.json").json()
    paths = document["paths"]
    served = {
        # OpenAPI writes a path converter ({key:path}) as a plain parameter ({key}).
        (re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path), method.lower())
        for route in iter_routes(create_app(server.settings, server.db).routes)
        if isinstance(route, APIRoute) and route.path != "/openapi.json"
        for method in route.methods
    }
    described = {(path, method) for path, ops in paths.items() for method in ops}
    assert served == described
    for path, ops in paths.items():
        for method, op in ops.items():
            assert (
                "200" in op["responses"] or "201" in op["responses"] or "204" in op["responses"]
            ), (method, path)
    assert set(paths) >= {
        "/health",
        "/ready",
        "/api/v1/workspaces",
        "/api/v1/workspaces/{workspace}",
        "/api/v1/workspaces/{workspace}/recover",
        "/api/v1/users",
        "/api/v1/users/me",
        "/api/v1/users/{user}",
        "/api/v1/tokens",
        "/api/v1/tokens/{token_id}",
    }
    create = paths["/api/v1/workspaces"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "WorkspaceCreate"
    )
    assert "WorkspaceRead" in document["components"]["schemas"]
    assert "HTTPBearer" in document["components"]["securitySchemes"]
