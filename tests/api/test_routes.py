"""The route table: every route declares its action, and refuses callers without a token."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from shipyard.api.app import create_app
from shipyard.api.authz import declared_action, iter_routes
from shipyard.domain import actions
from tests.conftest import RunningServer, start_server


def _routes(server: RunningServer) -> list[BaseRoute]:
    return list(iter_routes(create_app(server.settings, server.db).routes))


def test_every_route_declares_an_action(server: RunningServer) -> None:
    routes = _routes(server)
    assert routes, "the app has no routes"
    undeclared = [
        getattr(r, "path", repr(r))
        for r in routes
        if not isinstance(r, APIRoute) or declared_action(r) is None
    ]
    assert undeclared == []


def test_every_non_public_route_answers_401_without_a_token(server: RunningServer) -> None:
    checked = 0
    for route in _routes(server):
        assert isinstance(route, APIRoute)
        if declared_action(route) == actions.PUBLIC:
            continue
        path = re.sub(r"\{[^}]+\}", "x-1", route.path)
        for method in route.methods:
            response = httpx.request(method, server.url + path, json={})
            assert response.status_code == 401, (method, route.path, response.text)
            if route.path.startswith("/mlflow/"):  # MLflow's error shape (shipyard.mlflow)
                assert response.headers["content-type"] == "application/json"
                assert response.json()["error_code"] == "UNAUTHENTICATED"
            else:
                assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "missing_token"
            checked += 1
    assert checked >= 12


def test_a_route_without_an_action_is_refused(tmp_path: Path, database_url: str) -> None:
    server = start_server(tmp_path, database_url)

    @server.app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {"leaked": "yes"}

    routes = iter_routes(server.app.routes)
    route = next(r for r in routes if getattr(r, "path", "") == "/api/v1/forgotten")
    assert isinstance(route, APIRoute)
    assert declared_action(route) is None
    with server as running:
        response = httpx.get(f"{running.url}/api/v1/forgotten", headers=running.auth)
    assert response.status_code == 403
    assert response.json()["code"] == "action_not_declared"
