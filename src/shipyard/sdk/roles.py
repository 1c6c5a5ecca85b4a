"""``client.roles``: role definitions, built-in and custom."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from shipyard.schemas.roles import RoleRead
from shipyard.sdk.http import HttpSession

Role = RoleRead


def _path(name: str) -> str:
    return f"/api/v1/roles/{quote(name, safe='')}"


class RoleOperations:
    """Roles: actions allowed minus actions excluded, with ``*`` wildcards.

    Anyone signed in may read them; creating and deleting custom roles is for Owners at
    global scope (and admins).

    Example::

        for role in client.roles.list():
            print(role.name, role.builtin)
        client.roles.create(
            "Job Runner",
            actions=["workspaces/read", "workspaces/jobs/*"],
            description="Submit and watch jobs",
            assignable_scopes=["workspace"],
        )
        client.roles.delete("Job Runner")   # refused (role_in_use) while it is assigned
    """

    def __init__(self, http: HttpSession) -> None:
        self._http = http

    def list(self) -> list[Role]:
        response = self._http.request("GET", "/api/v1/roles")
        return [Role.model_validate(item) for item in response.json()]

    def get(self, name: str) -> Role:
        return self._http.get_model(_path(name), Role)

    def create(
        self,
        name: str,
        actions: Iterable[str],
        not_actions: Iterable[str] = (),
        description: str | None = None,
        assignable_scopes: Sequence[str] | None = None,
    ) -> Role:
        """Create a custom role. ``assignable_scopes``: where it may be assigned, any of
        ``global``, ``workspace``, ``registry`` (default: all three)."""
        spec: dict[str, Any] = {
            "name": name,
            "description": description,
            "actions": list(actions),
            "not_actions": list(not_actions),
        }
        if assignable_scopes is not None:
            spec["assignable_scopes"] = list(assignable_scopes)
        return self.create_from_spec(spec)

    def create_from_spec(self, spec: dict[str, Any]) -> Role:
        """Create from a mapping shaped like the role YAML (what the CLI sends)."""
        return self._http.send_model("POST", "/api/v1/roles", Role, spec)

    def delete(self, name: str) -> None:
        """Delete a custom role; built-in roles and roles still assigned are refused."""
        self._http.request("DELETE", _path(name))
