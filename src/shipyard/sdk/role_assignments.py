"""``client.role_assignments``: who holds which role, where."""

from __future__ import annotations

from urllib.parse import quote

from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.roles import RoleAssignmentRead
from shipyard.sdk.http import HttpSession

RoleAssignment = RoleAssignmentRead
GLOBAL_PATH = "/api/v1/role-assignments"


def _path(workspace: str | None, registry: str | None = None, scope: str | None = None) -> str:
    """The collection of assignments at one scope: global, one workspace or one registry."""
    if workspace is not None and registry is not None:
        raise InvalidInputError(
            "give workspace= or registry=, not both", code="conflicting_scope", field="registry"
        )
    if scope not in (None, "global", "/"):
        if workspace is not None or registry is not None:
            raise InvalidInputError(
                f"give workspace=, registry= or scope=, not two of them (scope={scope!r})",
                code="conflicting_scope",
                field="scope",
            )
        kind, _, name = scope.strip("/").partition("/")
        if kind not in ("workspaces", "registries") or not name or "/" in name:
            raise InvalidInputError(
                f"scope {scope!r} is not one Shipyard knows: use 'global', "
                "'/workspaces/NAME' or '/registries/NAME' (or workspace=NAME, registry=NAME)",
                code="invalid_scope",
                field="scope",
            )
        if kind == "registries":
            registry = name
        else:
            workspace = name
    if registry is not None:
        return f"/api/v1/registries/{quote(registry, safe='')}/role-assignments"
    if workspace is None:
        return GLOBAL_PATH
    return f"/api/v1/workspaces/{quote(workspace, safe='')}/role-assignments"


class RoleAssignmentOperations:
    """Grant a role to a user, a group or a service principal at global scope, in one
    workspace or in one registry. A grant takes effect on the very next request; nobody can
    grant a role that allows more than they hold at that scope (``ForbiddenError`` with code
    ``escalation``).

    Example::

        a = client.role_assignments.create(role="Data Scientist", user="alice", workspace="churn")
        client.role_assignments.create(role="Reader", group="ml-team")   # global scope
        client.role_assignments.create(role="Registry User", group="ml-team", registry="shared")
        for a in client.role_assignments.list(workspace="churn"):
            print(a.role, a.principal_type, a.principal_name)
        client.role_assignments.delete(a.id, workspace="churn")
    """

    def __init__(self, http: HttpSession) -> None:
        self._http = http

    def create(
        self,
        *,
        role: str,
        user: str | None = None,
        group: str | None = None,
        service_principal: str | None = None,
        workspace: str | None = None,
        registry: str | None = None,
        scope: str = "global",
    ) -> RoleAssignment:
        """Give exactly one of ``user``, ``group``, ``service_principal``; the scope is
        ``workspace=NAME``, ``registry=NAME``, or global (the default; ``scope`` also takes a
        scope path such as ``/workspaces/churn`` or ``/registries/shared``, as assignments
        report it)."""
        path = _path(workspace, registry, scope)
        body = {"role": role}
        given = {"user": user, "group": group, "service_principal": service_principal}
        body.update({k: v for k, v in given.items() if v is not None})
        return self._http.send_model("POST", path, RoleAssignment, body)

    def list(
        self, workspace: str | None = None, *, registry: str | None = None
    ) -> list[RoleAssignment]:
        """The assignments made at one scope: a workspace's, a registry's, or the global
        ones."""
        response = self._http.request("GET", _path(workspace, registry))
        return [RoleAssignment.model_validate(item) for item in response.json()]

    def delete(
        self, assignment_id: str, *, workspace: str | None = None, registry: str | None = None
    ) -> None:
        """Remove an assignment (from the scope it was made at); the access ends at once."""
        self._http.request(
            "DELETE", f"{_path(workspace, registry)}/{quote(assignment_id, safe='')}"
        )
