"""Helpers for the access-control tests: a server where new users hold no role, and a small
HTTP toolkit to create principals, objects and role assignments as the admin.

The access tests need users that hold exactly the roles a test gives them, so their server
runs with ``new_user_roles=[]`` (by default every new user is a Workspace Creator).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, start_server, unique


@dataclass(frozen=True)
class Actor:
    """A user or service principal with one bearer token."""

    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Api:
    """Real HTTP calls against a running server; the admin does the set-up."""

    server: RunningServer
    http: httpx.Client

    @property
    def admin(self) -> dict[str, str]:
        return self.server.auth

    def call(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> httpx.Response:
        self.http.cookies.clear()  # a login must not turn later calls into session calls
        all_headers = dict(headers or {})
        if request_id is not None:
            all_headers["X-Request-ID"] = request_id
        return self.http.request(
            method,
            self.server.url + path,
            headers=all_headers,
            json=json,
            content=content,
            params=params,
        )

    def as_admin(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """An admin call that must succeed (set-up, not the behaviour under test)."""
        response = self.call(method, path, self.admin, json=json, params=params, content=content)
        assert response.status_code < 300, (method, path, response.text)
        return response

    # principals -------------------------------------------------------------------------

    def user(self, prefix: str = "user") -> Actor:
        name = unique(prefix)
        self.as_admin("POST", "/api/v1/users", json={"name": name})
        return Actor(name, self.token_for(name))

    def token_for(self, name: str) -> str:
        body = {"name": unique("token"), "user": name}
        return str(self.as_admin("POST", "/api/v1/tokens", json=body).json()["token"])

    def token_id_for(self, name: str) -> str:
        body = {"name": unique("token"), "user": name}
        return str(self.as_admin("POST", "/api/v1/tokens", json=body).json()["id"])

    def service_principal(self) -> Actor:
        name = unique("sp")
        self.as_admin("POST", "/api/v1/service-principals", json={"name": name})
        return Actor(name, self.token_for(name))

    # objects ----------------------------------------------------------------------------

    def workspace(self) -> str:
        name = unique("ws")
        self.as_admin("POST", "/api/v1/workspaces", json={"name": name})
        return name

    def registry(self) -> str:
        name = unique("reg")
        self.as_admin("POST", "/api/v1/registries", json={"name": name})
        return name

    def group(self, *members: str, owners: tuple[str, ...] = ()) -> str:
        name = unique("grp")
        self.as_admin("POST", "/api/v1/groups", json={"name": name})
        for member in members:
            self.as_admin("POST", f"/api/v1/groups/{name}/members", json={"name": member})
        for owner in owners:
            body = {"name": owner, "relation": "owner"}
            self.as_admin("POST", f"/api/v1/groups/{name}/members", json=body)
        return name

    def role(self, actions: list[str], not_actions: list[str] | None = None) -> str:
        name = f"Custom {uuid.uuid4().hex[:8]}"
        body = {"name": name, "actions": actions, "not_actions": not_actions or []}
        self.as_admin("POST", "/api/v1/roles", json=body)
        return name

    def assign(
        self,
        role: str,
        *,
        workspace: str | None = None,
        user: str | None = None,
        group: str | None = None,
        service_principal: str | None = None,
        registry: str | None = None,
    ) -> str:
        """Assign ``role`` at ``workspace`` or ``registry`` (global when neither); returns the
        assignment id."""
        body: dict[str, str] = {"role": role}
        for kind, value in (
            ("user", user),
            ("group", group),
            ("service_principal", service_principal),
        ):
            if value is not None:
                body[kind] = value
        path = assignments_path(workspace, registry)
        return str(self.as_admin("POST", path, json=body).json()["id"])

    def user_with(
        self, role: str, *, workspace: str | None = None, registry: str | None = None
    ) -> Actor:
        actor = self.user(role.lower().replace(" ", "-"))
        self.assign(role, workspace=workspace, registry=registry, user=actor.name)
        return actor

    # audit ------------------------------------------------------------------------------

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        params = {"max_results": self.server.settings.max_page_size, **filters}
        response = self.call("GET", "/api/v1/audit", self.admin, params=params)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def events(self, request_id: str, *, wait: bool = True, **filters: Any) -> list[dict[str, Any]]:
        """The audit events of one request. Should the event be written only after the
        response is sent, wait (boundedly) for the first one to appear before counting;
        ``wait=False`` after ``settle`` to look for events that should not exist."""
        deadline = time.monotonic() + (10 if wait else 0)
        while True:
            found = [e for e in self.audit(**filters) if e["request_id"] == request_id]
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.02)

    def settle(self) -> None:
        """Make sure every request answered so far has had its audit event written: send a
        recorded request (a denied one) and wait for its event."""
        marker = f"settle-{uuid.uuid4().hex}"
        response = self.call(
            "GET", "/api/v1/users/me", {"Authorization": "Bearer shp_settle"}, request_id=marker
        )
        assert response.status_code == 401, response.text
        assert self.events(marker, outcome="denied"), "the marker request left no audit event"


def assignments_path(workspace: str | None, registry: str | None = None) -> str:
    if registry is not None:
        return f"/api/v1/registries/{registry}/role-assignments"
    if workspace is None:
        return "/api/v1/role-assignments"
    return f"/api/v1/workspaces/{workspace}/role-assignments"


def problem_code(response: httpx.Response) -> str | None:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    code = response.json().get("code")
    return str(code) if code is not None else None


@pytest.fixture(scope="module")
def rbac_server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    """One real server per module whose new users hold no role at all."""
    data = tmp_path_factory.mktemp("data")
    # Jobs submitted here only need to exist: they wait in the queue, nothing runs them.
    with start_server(data, module_database_url, new_user_roles=[], jobs_enabled=False) as running:
        yield running


@pytest.fixture(scope="module")
def api(rbac_server: RunningServer) -> Iterator[Api]:
    with httpx.Client(timeout=30) as http:
        yield Api(rbac_server, http)
