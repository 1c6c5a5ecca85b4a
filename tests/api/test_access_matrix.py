"""The access matrix: every route the app serves by every built-in role, over real HTTP.

For each case a fresh principal holds only the role under test: at a fresh workspace for a
workspace route (``{workspace}`` in the path), at global scope otherwise (a group route's
scope is the group, which only global assignments reach). The roles that can only be held
at global scope (Registry User, Workspace Creator) are tested with their global assignment
everywhere. Every path parameter names a real object the admin made for the case, so a
destructive route acts on a throwaway object and the matrix goes on.

The expectations are written by hand from the issue's role definitions below; they do not
use the server's own matching (``permits``), so this test checks it. A route whose method
and path are not in ``ROUTES``, or whose action has no expectation, fails: a route added
later must be classified here.

A response counts as *denied* when it is 403 with code ``forbidden`` or ``escalation``, or,
on a workspace route, 404 with code ``workspace_not_found`` (the workspace exists, so that
404 hides it). Denials on a workspace route must be 404 exactly when the role cannot read the
workspace, else 403. A response counts as *allowed* otherwise; the test asks more of it: with
real objects and sensible bodies an allowed call must succeed (2xx), which shows that the
recipe really exercised the route.

Each case also reads the audit log: a change or a denial leaves exactly one event (outcome
``denied`` for a denial), a successful read leaves none.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from shipyard.api.app import create_app
from shipyard.api.authz import iter_routes, requirement
from shipyard.domain.actions import PUBLIC, SELF
from shipyard.domain.roles import BUILTIN_ROLES
from shipyard.settings import Settings
from shipyard.store.database import Database
from tests.api.conftest import Actor, Api, problem_code
from tests.conftest import unique

# ----------------------------------------------------------------------------------------
# Expectations, by hand, from the role definitions
# ----------------------------------------------------------------------------------------

# Actions today's routes declare (roles/read only on routes every principal may call).
ROUTE_ACTIONS = frozenset(
    {
        "workspaces/create",
        "workspaces/read",
        "workspaces/write",
        "workspaces/delete",
        "workspaces/roleAssignments/read",
        "workspaces/roleAssignments/write",
        "workspaces/roleAssignments/delete",
        "workspaces/audit/read",
        "users/read",
        "users/write",
        "servicePrincipals/read",
        "servicePrincipals/write",
        "servicePrincipals/delete",
        "groups/read",
        "groups/write",
        "groups/delete",
        "roles/read",
        "roles/write",
        "roles/delete",
        "roleAssignments/read",
        "roleAssignments/write",
        "roleAssignments/delete",
        "audit/read",
        # experiments and runs (tracking)
        "workspaces/jobs/read",
        "workspaces/jobs/write",
        "workspaces/jobs/delete",
    }
)

# Actions of resources that have no routes yet (compute, secrets, models...). They are
# classified now so the role definitions can be checked against the issue today
# (``test_role_definitions_agree_with_the_spec``) and so their routes, once added, are
# already covered by the matrix.
FUTURE_ACTIONS = frozenset(
    {
        "workspaces/models/read",
        "workspaces/models/write",
        "workspaces/models/delete",
        "workspaces/environments/write",
        "workspaces/onlineEndpoints/write",
        "workspaces/onlineEndpoints/deployments/write",
        "workspaces/batchEndpoints/write",
        "workspaces/batchEndpoints/deployments/delete",
        "workspaces/schedules/write",
        "workspaces/computes/read",
        "workspaces/computes/write",
        "workspaces/computes/delete",
        "workspaces/datastores/read",
        "workspaces/datastores/listSecrets/action",
        "workspaces/secrets/metadata/read",
        "workspaces/secrets/read",
        "registries/read",
        "registries/write",
        "registries/assets/read",
        "registries/assets/write",
    }
)

CLASSIFIED = ROUTE_ACTIONS | FUTURE_ACTIONS

_ROLE_ASSIGNMENT_CHANGES = frozenset(
    {
        "roleAssignments/write",
        "roleAssignments/delete",
        "workspaces/roleAssignments/write",
        "workspaces/roleAssignments/delete",
    }
)
# Contributor: "everything except role assignments". Role definitions (roles/write|delete)
# belong to role assignments as Azure's Microsoft.Authorization/*/write does. Identities are
# left out as well: users/write may create an admin and mint a token for any user, and
# servicePrincipals/write mints tokens for service principals, so either would hand a
# Contributor every role anyone holds, including the role assignments it must not have.
_CONTRIBUTOR_DENIED = _ROLE_ASSIGNMENT_CHANGES | {
    "roles/write",
    "roles/delete",
    "users/write",
    "servicePrincipals/write",
    "servicePrincipals/delete",
}
# Reader: "read everything except secret values and datastore credentials".
_READS = frozenset(
    {
        "workspaces/read",
        "workspaces/roleAssignments/read",
        "workspaces/audit/read",
        "users/read",
        "servicePrincipals/read",
        "groups/read",
        "roles/read",
        "roleAssignments/read",
        "audit/read",
        "workspaces/jobs/read",
        "workspaces/models/read",
        "workspaces/computes/read",
        "workspaces/datastores/read",
        "workspaces/secrets/metadata/read",
        "registries/read",
        "registries/assets/read",
    }
)
# Changes to models, environments, online and batch endpoints and deployments, schedules.
_ML_ENGINEERING = frozenset(
    {
        "workspaces/models/write",
        "workspaces/models/delete",
        "workspaces/environments/write",
        "workspaces/onlineEndpoints/write",
        "workspaces/onlineEndpoints/deployments/write",
        "workspaces/batchEndpoints/write",
        "workspaces/batchEndpoints/deployments/delete",
        "workspaces/schedules/write",
    }
)

# role -> the classified actions it allows; every other classified action it denies.
ALLOWED: dict[str, frozenset[str]] = {
    "Owner": CLASSIFIED,
    "Contributor": CLASSIFIED - _CONTRIBUTOR_DENIED,
    "Reader": _READS,
    # Everything inside a workspace except deleting or changing the workspace itself,
    # creating or deleting compute, reading secret values (datastore credentials are secret
    # values too) and role assignments. Creating a workspace is not inside one.
    "Data Scientist": frozenset(
        {
            "workspaces/read",
            "workspaces/roleAssignments/read",
            "workspaces/audit/read",
            "workspaces/jobs/read",
            "workspaces/jobs/write",
            "workspaces/jobs/delete",
            "workspaces/models/read",
            "workspaces/computes/read",
            "workspaces/datastores/read",
            "workspaces/secrets/metadata/read",
        }
        | _ML_ENGINEERING
    ),
    "ML Engineer": _READS | _ML_ENGINEERING,
    # Compute targets only, plus seeing the workspace they belong to (without it every route
    # of the workspace, compute included, would answer 404).
    "Compute Operator": frozenset(
        {
            "workspaces/read",
            "workspaces/computes/read",
            "workspaces/computes/write",
            "workspaces/computes/delete",
        }
    ),
    # Registry assets (and seeing registries), not creating or deleting registries.
    "Registry User": frozenset(
        {"registries/read", "registries/assets/read", "registries/assets/write"}
    ),
    # Global only: may create workspaces.
    "Workspace Creator": frozenset({"workspaces/create"}),
}

# Roles that cannot be held at a workspace: tested with their global assignment everywhere.
AT_GLOBAL_ONLY = frozenset({"Registry User", "Workspace Creator"})

ROLE_NAMES = tuple(role.name for role in BUILTIN_ROLES)


def expected_allowed(role: str, action: str) -> bool:
    assert role in ALLOWED, f"built-in role {role!r} has no hand-written expectations in ALLOWED"
    assert action in CLASSIFIED, (
        f"action {action!r} has no hand-written expectation: add it to ROUTE_ACTIONS and "
        "decide, for every role in ALLOWED, whether the issue allows it"
    )
    return action in ALLOWED[role]


def wildcard_match(pattern: str, action: str) -> bool:
    """Azure's role pattern rule, written independently of the server: ``*`` matches any
    run of characters (slashes included), case is ignored."""
    pattern, action = pattern.lower(), action.lower()
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern == action
    if not action.startswith(parts[0]) or not action.endswith(parts[-1]):
        return False
    position, end = len(parts[0]), len(action) - len(parts[-1])
    if position > end:
        return False
    for part in parts[1:-1]:
        found = action.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


def definition_allows(definition: dict[str, Any], action: str) -> bool:
    """A role definition as served by GET /api/v1/roles/{name}, evaluated by hand."""
    return any(wildcard_match(p, action) for p in definition["actions"]) and not any(
        wildcard_match(p, action) for p in definition["not_actions"]
    )


# ----------------------------------------------------------------------------------------
# How to call each route: the action it must declare and a request with real objects
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    content: bytes | None = None  # a raw body (file uploads)


# (api, the principal under test, the case's workspace or None) -> the request to send
Maker = Callable[[Api, Actor, str | None], Call]


@dataclass(frozen=True)
class Recipe:
    action: str
    listing: bool = False  # the route only authenticates; its service filters what it shows
    telemetry: bool = False  # a run's logging: left out of the audit log unless refused
    make: Maker | None = None

    @property
    def everyone(self) -> bool:
        """SELF and listing routes: allowed for every signed-in principal."""
        return self.action == SELF or self.listing


def _ws(workspace: str | None) -> str:
    assert workspace is not None
    return workspace


def _user_name(api: Api) -> str:
    name = unique("victim")
    api.as_admin("POST", "/api/v1/users", json={"name": name})
    return name


def _sp_name(api: Api) -> str:
    name = unique("sp")
    api.as_admin("POST", "/api/v1/service-principals", json={"name": name})
    return name


def _recover(api: Api, _: Actor, workspace: str | None) -> Call:
    api.as_admin("DELETE", f"/api/v1/workspaces/{_ws(workspace)}")  # soft delete
    return Call(f"/api/v1/workspaces/{workspace}/recover")


def _remove_member(api: Api, _: Actor, __: str | None) -> Call:
    member = _user_name(api)
    group = api.group(member)
    return Call(f"/api/v1/groups/{group}/members/{member}")


def _delete_workspace_assignment(api: Api, _: Actor, workspace: str | None) -> Call:
    assignment = api.assign("Reader", workspace=_ws(workspace), user=_user_name(api))
    return Call(f"/api/v1/workspaces/{workspace}/role-assignments/{assignment}")


def _delete_global_assignment(api: Api, _: Actor, __: str | None) -> Call:
    assignment = api.assign("Reader", user=_user_name(api))
    return Call(f"/api/v1/role-assignments/{assignment}")


def _admin_run(api: Api, workspace: str | None) -> str:
    """A real run in the workspace, made by the admin."""
    response = api.as_admin("POST", f"/api/v1/workspaces/{_ws(workspace)}/runs", json={})
    return str(response.json()["id"])


def _admin_experiment(api: Api, workspace: str | None) -> str:
    name = unique("exp")
    api.as_admin("POST", f"/api/v1/workspaces/{_ws(workspace)}/experiments", json={"name": name})
    return name


def _run_call(suffix: str = "", body: Any = None) -> Maker:
    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        run = _admin_run(api, workspace)
        return Call(f"/api/v1/workspaces/{workspace}/runs/{run}{suffix}", body)

    return make


def _experiment_call(suffix: str = "", body: Any = None) -> Maker:
    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        name = _admin_experiment(api, workspace)
        return Call(f"/api/v1/workspaces/{workspace}/experiments/{name}{suffix}", body)

    return make


MLFLOW = "/mlflow/workspaces/{workspace}/api/2.0/mlflow"


def _mlflow_path(workspace: str | None, method: str) -> str:
    return MLFLOW.format(workspace=_ws(workspace)) + "/" + method


def _mlflow_call(method: str, body: Callable[[], dict[str, Any]], *, get: bool = False) -> Maker:
    """An MLflow method with ``body()`` (as query parameters for a GET)."""

    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        path = _mlflow_path(workspace, method)
        return Call(path, params=body()) if get else Call(path, body())

    return make


def _mlflow_experiment_call(method: str, body: dict[str, Any], *, get: bool = False) -> Maker:
    """An MLflow method about a real experiment (tagged k=v), named by its id (and, for a
    GET, its name too)."""

    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        name = unique("exp")
        made = api.as_admin(
            "POST",
            f"/api/v1/workspaces/{_ws(workspace)}/experiments",
            json={"name": name, "tags": {"k": "v"}},
        )
        values = {"experiment_id": made.json()["id"], **body}
        path = _mlflow_path(workspace, method)
        return Call(path, params={**values, "experiment_name": name}) if get else Call(path, values)

    return make


def _mlflow_run_call(method: str, body: dict[str, Any], *, get: bool = False) -> Maker:
    """An MLflow method about a real run, named by its ``run_id``."""

    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        values = {"run_id": _admin_run(api, workspace), **body}
        path = _mlflow_path(workspace, method)
        return Call(path, params=values) if get else Call(path, values)

    return make


def _tagged_run(api: Api, workspace: str | None) -> str:
    response = api.as_admin(
        "POST", f"/api/v1/workspaces/{_ws(workspace)}/runs", json={"tags": {"doomed": "yes"}}
    )
    return str(response.json()["id"])


def _delete_run_tag(api: Api, _: Actor, workspace: str | None) -> Call:
    return Call(f"/api/v1/workspaces/{workspace}/runs/{_tagged_run(api, workspace)}/tags/doomed")


def _run_with_artifact(api: Api, workspace: str | None) -> str:
    """A run of the admin's holding ``a.txt``: the object artifact routes act on."""
    run = _admin_run(api, workspace)
    path = f"/api/v1/workspaces/{_ws(workspace)}/runs/{run}/artifacts/a.txt"
    api.as_admin("PUT", path, content=b"artifact")
    return run


def _artifact_call(suffix: str = "", *, content: bytes | None = None) -> Maker:
    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        run = _run_with_artifact(api, workspace)
        return Call(f"/api/v1/workspaces/{workspace}/runs/{run}/artifacts{suffix}", content=content)

    return make


MLFLOW_ARTIFACTS = "/mlflow/workspaces/{workspace}/api/2.0/mlflow-artifacts/artifacts"


def _proxy_call(
    file: str | None = "a.txt", *, content: bytes | None = None, listing: bool = False
) -> Maker:
    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        run = _run_with_artifact(api, workspace)
        root = MLFLOW_ARTIFACTS.format(workspace=_ws(workspace))
        if listing:
            return Call(root, params={"path": f"runs/{run}/artifacts"})
        return Call(f"{root}/runs/{run}/artifacts/{file}", content=content)

    return make


def _mlflow_delete_tag(api: Api, _: Actor, workspace: str | None) -> Call:
    body = {"run_id": _tagged_run(api, workspace), "key": "doomed"}
    return Call(_mlflow_path(workspace, "runs/delete-tag"), body)


ROUTES: dict[tuple[str, str], Recipe] = {
    # public: no token needed; not part of the matrix
    ("GET", "/health"): Recipe(PUBLIC),
    ("GET", "/ready"): Recipe(PUBLIC),
    ("GET", "/openapi.json"): Recipe(PUBLIC),
    ("POST", "/api/v1/sessions"): Recipe(PUBLIC),  # Studio login: the password is the proof
    # sessions: the caller's own (a bearer caller has no session to end)
    ("GET", "/api/v1/sessions/current"): Recipe(
        SELF, make=lambda api, a, w: Call("/api/v1/sessions/current")
    ),
    ("DELETE", "/api/v1/sessions/current"): Recipe(
        SELF, make=lambda api, a, w: Call("/api/v1/sessions/current")
    ),
    # users
    ("GET", "/api/v1/users/me"): Recipe(SELF, make=lambda api, a, w: Call("/api/v1/users/me")),
    # A caller without a password yet may set one without a current password.
    ("POST", "/api/v1/users/me/password"): Recipe(
        SELF,
        make=lambda api, a, w: Call(
            "/api/v1/users/me/password", {"new_password": "a long new passphrase"}
        ),
    ),
    ("POST", "/api/v1/users"): Recipe(
        "users/write", make=lambda api, a, w: Call("/api/v1/users", {"name": unique("new")})
    ),
    ("GET", "/api/v1/users"): Recipe("users/read", make=lambda api, a, w: Call("/api/v1/users")),
    ("GET", "/api/v1/users/{user}"): Recipe(
        "users/read", make=lambda api, a, w: Call(f"/api/v1/users/{_user_name(api)}")
    ),
    ("PATCH", "/api/v1/users/{user}"): Recipe(
        "users/write",
        make=lambda api, a, w: Call(f"/api/v1/users/{_user_name(api)}", {"display_name": "R"}),
    ),
    # tokens: the caller's own
    ("POST", "/api/v1/tokens"): Recipe(
        SELF, make=lambda api, a, w: Call("/api/v1/tokens", {"name": "mine"})
    ),
    ("GET", "/api/v1/tokens"): Recipe(SELF, make=lambda api, a, w: Call("/api/v1/tokens")),
    ("DELETE", "/api/v1/tokens/{token_id}"): Recipe(
        SELF, make=lambda api, a, w: Call(f"/api/v1/tokens/{api.token_id_for(a.name)}")
    ),
    # workspaces
    ("POST", "/api/v1/workspaces"): Recipe(
        "workspaces/create",
        make=lambda api, a, w: Call("/api/v1/workspaces", {"name": unique("made")}),
    ),
    ("GET", "/api/v1/workspaces"): Recipe(
        "workspaces/read", listing=True, make=lambda api, a, w: Call("/api/v1/workspaces")
    ),
    ("GET", "/api/v1/workspaces/{workspace}"): Recipe(
        "workspaces/read", make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}")
    ),
    ("PATCH", "/api/v1/workspaces/{workspace}"): Recipe(
        "workspaces/write",
        make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}", {"description": "changed"}),
    ),
    ("DELETE", "/api/v1/workspaces/{workspace}"): Recipe(
        "workspaces/delete", make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}")
    ),
    ("POST", "/api/v1/workspaces/{workspace}/recover"): Recipe("workspaces/write", make=_recover),
    # groups (scope: the group)
    ("POST", "/api/v1/groups"): Recipe(
        "groups/write", make=lambda api, a, w: Call("/api/v1/groups", {"name": unique("grp")})
    ),
    ("GET", "/api/v1/groups"): Recipe("groups/read", make=lambda api, a, w: Call("/api/v1/groups")),
    ("GET", "/api/v1/groups/{group}"): Recipe(
        "groups/read", make=lambda api, a, w: Call(f"/api/v1/groups/{api.group()}")
    ),
    ("POST", "/api/v1/groups/{group}/members"): Recipe(
        "groups/write",
        make=lambda api, a, w: Call(
            f"/api/v1/groups/{api.group()}/members", {"name": _user_name(api)}
        ),
    ),
    ("DELETE", "/api/v1/groups/{group}/members/{member}"): Recipe(
        "groups/write", make=_remove_member
    ),
    ("DELETE", "/api/v1/groups/{group}"): Recipe(
        "groups/delete", make=lambda api, a, w: Call(f"/api/v1/groups/{api.group()}")
    ),
    # service principals
    ("POST", "/api/v1/service-principals"): Recipe(
        "servicePrincipals/write",
        make=lambda api, a, w: Call("/api/v1/service-principals", {"name": unique("sp")}),
    ),
    ("GET", "/api/v1/service-principals"): Recipe(
        "servicePrincipals/read", make=lambda api, a, w: Call("/api/v1/service-principals")
    ),
    ("GET", "/api/v1/service-principals/{name}"): Recipe(
        "servicePrincipals/read",
        make=lambda api, a, w: Call(f"/api/v1/service-principals/{_sp_name(api)}"),
    ),
    ("DELETE", "/api/v1/service-principals/{name}"): Recipe(
        "servicePrincipals/delete",
        make=lambda api, a, w: Call(f"/api/v1/service-principals/{_sp_name(api)}"),
    ),
    # roles: definitions are readable by every signed-in principal
    ("GET", "/api/v1/roles"): Recipe(
        "roles/read", listing=True, make=lambda api, a, w: Call("/api/v1/roles")
    ),
    ("GET", "/api/v1/roles/{name}"): Recipe(
        "roles/read", listing=True, make=lambda api, a, w: Call("/api/v1/roles/Reader")
    ),
    ("POST", "/api/v1/roles"): Recipe(
        "roles/write",
        make=lambda api, a, w: Call(
            "/api/v1/roles", {"name": unique("Role"), "actions": ["workspaces/read"]}
        ),
    ),
    ("DELETE", "/api/v1/roles/{name}"): Recipe(
        "roles/delete",
        make=lambda api, a, w: Call(f"/api/v1/roles/{api.role(['workspaces/read'])}"),
    ),
    # role assignments
    ("POST", "/api/v1/role-assignments"): Recipe(
        "roleAssignments/write",
        make=lambda api, a, w: Call(
            "/api/v1/role-assignments", {"role": "Reader", "user": _user_name(api)}
        ),
    ),
    ("GET", "/api/v1/role-assignments"): Recipe(
        "roleAssignments/read", make=lambda api, a, w: Call("/api/v1/role-assignments")
    ),
    ("DELETE", "/api/v1/role-assignments/{assignment_id}"): Recipe(
        "roleAssignments/delete", make=_delete_global_assignment
    ),
    ("POST", "/api/v1/workspaces/{workspace}/role-assignments"): Recipe(
        "workspaces/roleAssignments/write",
        make=lambda api, a, w: Call(
            f"/api/v1/workspaces/{w}/role-assignments",
            {"role": "Reader", "user": _user_name(api)},
        ),
    ),
    ("GET", "/api/v1/workspaces/{workspace}/role-assignments"): Recipe(
        "workspaces/roleAssignments/read",
        make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/role-assignments"),
    ),
    ("DELETE", "/api/v1/workspaces/{workspace}/role-assignments/{assignment_id}"): Recipe(
        "workspaces/roleAssignments/delete", make=_delete_workspace_assignment
    ),
    # tracking: experiments and runs go by the jobs actions
    ("POST", "/api/v1/workspaces/{workspace}/experiments"): Recipe(
        "workspaces/jobs/write",
        make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/experiments", {"name": unique("exp")}),
    ),
    ("GET", "/api/v1/workspaces/{workspace}/experiments"): Recipe(
        "workspaces/jobs/read",
        make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/experiments"),
    ),
    ("GET", "/api/v1/workspaces/{workspace}/experiments/{experiment}"): Recipe(
        "workspaces/jobs/read", make=_experiment_call()
    ),
    ("PATCH", "/api/v1/workspaces/{workspace}/experiments/{experiment}"): Recipe(
        "workspaces/jobs/write", make=_experiment_call(body={"tags": {"k": "v"}})
    ),
    ("DELETE", "/api/v1/workspaces/{workspace}/experiments/{experiment}"): Recipe(
        "workspaces/jobs/delete", make=_experiment_call()
    ),
    ("POST", "/api/v1/workspaces/{workspace}/experiments/{experiment}/restore"): Recipe(
        "workspaces/jobs/write", make=_experiment_call("/restore")
    ),
    ("POST", "/api/v1/workspaces/{workspace}/runs"): Recipe(
        "workspaces/jobs/write",
        make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/runs", {"experiment": "matrix"}),
    ),
    ("POST", "/api/v1/workspaces/{workspace}/runs/search"): Recipe(
        "workspaces/jobs/read",
        make=lambda api, a, w: Call(
            f"/api/v1/workspaces/{w}/runs/search", {"filter": "metrics.m > 0"}
        ),
    ),
    ("GET", "/api/v1/workspaces/{workspace}/runs"): Recipe(
        "workspaces/jobs/read", make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/runs")
    ),
    ("GET", "/api/v1/workspaces/{workspace}/runs/{run_id}"): Recipe(
        "workspaces/jobs/read", make=_run_call()
    ),
    ("PATCH", "/api/v1/workspaces/{workspace}/runs/{run_id}"): Recipe(
        "workspaces/jobs/write", make=_run_call(body={"name": "renamed"})
    ),
    ("DELETE", "/api/v1/workspaces/{workspace}/runs/{run_id}"): Recipe(
        "workspaces/jobs/delete", make=_run_call()
    ),
    ("POST", "/api/v1/workspaces/{workspace}/runs/{run_id}/restore"): Recipe(
        "workspaces/jobs/write", make=_run_call("/restore")
    ),
    ("POST", "/api/v1/workspaces/{workspace}/runs/{run_id}/log-batch"): Recipe(
        "workspaces/jobs/write",
        telemetry=True,
        make=_run_call("/log-batch", {"metrics": [{"key": "m", "value": 1.0}]}),
    ),
    ("GET", "/api/v1/workspaces/{workspace}/runs/{run_id}/metrics/{key:path}"): Recipe(
        "workspaces/jobs/read", make=_run_call("/metrics/m")
    ),
    # run artifacts (uploads are the run's logging, like metrics)
    ("GET", "/api/v1/workspaces/{workspace}/runs/{run_id}/artifacts"): Recipe(
        "workspaces/jobs/read", make=_artifact_call()
    ),
    ("PUT", "/api/v1/workspaces/{workspace}/runs/{run_id}/artifacts/{path:path}"): Recipe(
        "workspaces/jobs/write", telemetry=True, make=_artifact_call("/b.txt", content=b"b")
    ),
    ("GET", "/api/v1/workspaces/{workspace}/runs/{run_id}/artifacts/{path:path}"): Recipe(
        "workspaces/jobs/read", make=_artifact_call("/a.txt")
    ),
    ("DELETE", "/api/v1/workspaces/{workspace}/runs/{run_id}/artifacts/{path:path}"): Recipe(
        "workspaces/jobs/write", make=_artifact_call("/a.txt")
    ),
    ("GET", "/mlflow/workspaces/{workspace}/api/3.0/mlflow/server-info"): Recipe(
        PUBLIC,
        make=lambda api, a, w: Call(f"/mlflow/workspaces/{_ws(w)}/api/3.0/mlflow/server-info"),
    ),
    ("GET", MLFLOW_ARTIFACTS): Recipe("workspaces/jobs/read", make=_proxy_call(listing=True)),
    ("PUT", MLFLOW_ARTIFACTS + "/{path:path}"): Recipe(
        "workspaces/jobs/write", telemetry=True, make=_proxy_call("b.txt", content=b"b")
    ),
    ("GET", MLFLOW_ARTIFACTS + "/{path:path}"): Recipe("workspaces/jobs/read", make=_proxy_call()),
    ("DELETE", MLFLOW_ARTIFACTS + "/{path:path}"): Recipe(
        "workspaces/jobs/write", make=_proxy_call()
    ),
    ("GET", f"{MLFLOW}/artifacts/list"): Recipe(
        "workspaces/jobs/read", make=_mlflow_run_call("artifacts/list", {}, get=True)
    ),
    # MLflow's REST surface (each workspace is a tracking server): the jobs actions too
    ("POST", f"{MLFLOW}/experiments/create"): Recipe(
        "workspaces/jobs/write",
        make=_mlflow_call("experiments/create", lambda: {"name": unique("exp")}),
    ),
    ("GET", f"{MLFLOW}/experiments/get"): Recipe(
        "workspaces/jobs/read", make=_mlflow_experiment_call("experiments/get", {}, get=True)
    ),
    ("GET", f"{MLFLOW}/experiments/get-by-name"): Recipe(
        "workspaces/jobs/read",
        make=_mlflow_experiment_call("experiments/get-by-name", {}, get=True),
    ),
    ("POST", f"{MLFLOW}/experiments/search"): Recipe(
        "workspaces/jobs/read", make=_mlflow_call("experiments/search", lambda: {"max_results": 5})
    ),
    ("GET", f"{MLFLOW}/experiments/search"): Recipe(
        "workspaces/jobs/read",
        make=_mlflow_call("experiments/search", lambda: {"max_results": 5}, get=True),
    ),
    ("POST", f"{MLFLOW}/experiments/update"): Recipe(
        "workspaces/jobs/write",
        make=_mlflow_experiment_call("experiments/update", {"new_name": unique("renamed")}),
    ),
    ("POST", f"{MLFLOW}/experiments/delete"): Recipe(
        "workspaces/jobs/delete", make=_mlflow_experiment_call("experiments/delete", {})
    ),
    ("POST", f"{MLFLOW}/experiments/restore"): Recipe(
        "workspaces/jobs/write", make=_mlflow_experiment_call("experiments/restore", {})
    ),
    ("POST", f"{MLFLOW}/experiments/set-experiment-tag"): Recipe(
        "workspaces/jobs/write",
        make=_mlflow_experiment_call("experiments/set-experiment-tag", {"key": "a", "value": "b"}),
    ),
    ("POST", f"{MLFLOW}/experiments/delete-experiment-tag"): Recipe(
        "workspaces/jobs/write",
        make=_mlflow_experiment_call("experiments/delete-experiment-tag", {"key": "k"}),
    ),
    ("POST", f"{MLFLOW}/runs/create"): Recipe(
        "workspaces/jobs/write", make=_mlflow_call("runs/create", lambda: {"experiment_id": "0"})
    ),
    ("GET", f"{MLFLOW}/runs/get"): Recipe(
        "workspaces/jobs/read", make=_mlflow_run_call("runs/get", {}, get=True)
    ),
    ("POST", f"{MLFLOW}/runs/update"): Recipe(
        "workspaces/jobs/write", make=_mlflow_run_call("runs/update", {"status": "FINISHED"})
    ),
    ("POST", f"{MLFLOW}/runs/delete"): Recipe(
        "workspaces/jobs/delete", make=_mlflow_run_call("runs/delete", {})
    ),
    ("POST", f"{MLFLOW}/runs/restore"): Recipe(
        "workspaces/jobs/write", make=_mlflow_run_call("runs/restore", {})
    ),
    ("POST", f"{MLFLOW}/runs/log-metric"): Recipe(
        "workspaces/jobs/write",
        telemetry=True,
        make=_mlflow_run_call("runs/log-metric", {"key": "m", "value": 1.0, "timestamp": 1}),
    ),
    ("POST", f"{MLFLOW}/runs/log-parameter"): Recipe(
        "workspaces/jobs/write",
        telemetry=True,
        make=_mlflow_run_call("runs/log-parameter", {"key": "p", "value": "v"}),
    ),
    ("POST", f"{MLFLOW}/runs/set-tag"): Recipe(
        "workspaces/jobs/write",
        telemetry=True,
        make=_mlflow_run_call("runs/set-tag", {"key": "t", "value": "v"}),
    ),
    ("POST", f"{MLFLOW}/runs/delete-tag"): Recipe("workspaces/jobs/write", make=_mlflow_delete_tag),
    ("DELETE", "/api/v1/workspaces/{workspace}/runs/{run_id}/tags/{key:path}"): Recipe(
        "workspaces/jobs/write", make=_delete_run_tag
    ),
    ("POST", f"{MLFLOW}/runs/log-batch"): Recipe(
        "workspaces/jobs/write",
        telemetry=True,
        make=_mlflow_run_call(
            "runs/log-batch", {"metrics": [{"key": "m", "value": 1.0, "timestamp": 1}]}
        ),
    ),
    ("POST", f"{MLFLOW}/runs/search"): Recipe(
        "workspaces/jobs/read",
        make=_mlflow_call("runs/search", lambda: {"experiment_ids": ["0"], "max_results": 5}),
    ),
    ("GET", f"{MLFLOW}/metrics/get-history"): Recipe(
        "workspaces/jobs/read",
        make=_mlflow_run_call("metrics/get-history", {"metric_key": "m"}, get=True),
    ),
    # audit
    ("GET", "/api/v1/audit"): Recipe("audit/read", make=lambda api, a, w: Call("/api/v1/audit")),
    ("GET", "/api/v1/workspaces/{workspace}/audit"): Recipe(
        "workspaces/audit/read", make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/audit")
    ),
}


# ----------------------------------------------------------------------------------------
# The app's own route table, read at collection time from a throwaway app
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedRoute:
    method: str
    path: str
    action: str | None  # None: not an APIRoute, or no declared action
    listing: bool
    telemetry: bool = False


def route_table(app: FastAPI) -> list[ServedRoute]:
    table: list[ServedRoute] = []
    for route in iter_routes(app.routes):
        if not isinstance(route, APIRoute):
            table.append(ServedRoute("?", getattr(route, "path", repr(route)), None, False))
            continue
        found = requirement(route)
        for method in sorted(route.methods):
            table.append(
                ServedRoute(
                    method,
                    route.path,
                    found.action if found else None,
                    found.listing if found else False,
                    found.telemetry if found else False,
                )
            )
    return table


def _throwaway_app_routes() -> list[ServedRoute]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            config_file=None, data_dir=Path(tmp), db_url="sqlite:///:memory:", port=0
        )
        db = Database(settings.database_url)
        try:
            return route_table(create_app(settings, db))
        finally:
            db.dispose()


SERVED = _throwaway_app_routes()
CASES = [
    pytest.param(role, route.method, route.path, id=f"{role}-{route.method} {route.path}")
    for route in SERVED
    if route.action != PUBLIC
    for role in ROLE_NAMES
]


# ----------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------


class Principals:
    """One principal per role and kind of scope, made on first use."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._at_global: dict[str, Actor] = {}
        self._for_workspaces: dict[str, Actor] = {}

    def at_global(self, role: str) -> Actor:
        if role not in self._at_global:
            self._at_global[role] = self.api.user_with(role)
        return self._at_global[role]

    def at_workspace(self, role: str, workspace: str) -> Actor:
        """The role's workspace principal, given the role at ``workspace`` (and only the
        same role at the earlier cases' workspaces)."""
        if role in AT_GLOBAL_ONLY:
            return self.at_global(role)
        if role not in self._for_workspaces:
            self._for_workspaces[role] = self.api.user(role.lower().replace(" ", "-"))
        actor = self._for_workspaces[role]
        self.api.assign(role, workspace=workspace, user=actor.name)
        return actor


@pytest.fixture(scope="module")
def principals(api: Api) -> Principals:
    return Principals(api)


def test_every_built_in_role_has_expectations() -> None:
    assert set(ALLOWED) == set(ROLE_NAMES)
    for role, allowed in ALLOWED.items():
        assert allowed <= CLASSIFIED, (role, sorted(allowed - CLASSIFIED))


def test_the_route_table_is_classified_by_hand(api: Api) -> None:
    """Every served route is in ROUTES with the action it declares, and nothing in ROUTES
    is missing from the app. A new route fails here until it is classified."""
    served = route_table(create_app(api.server.settings, api.server.db))
    assert {(r.method, r.path) for r in served} == {(r.method, r.path) for r in SERVED}
    mismatches = []
    for route in served:
        recipe = ROUTES.get((route.method, route.path))
        if recipe is None:
            mismatches.append(f"{route.method} {route.path}: not in ROUTES (classify it)")
        elif (route.action, route.listing, route.telemetry) != (
            recipe.action,
            recipe.listing,
            recipe.telemetry,
        ):
            mismatches.append(
                f"{route.method} {route.path}: declares {route.action!r} "
                f"(listing={route.listing}, telemetry={route.telemetry}), ROUTES says "
                f"{recipe.action!r} (listing={recipe.listing}, telemetry={recipe.telemetry})"
            )
        elif route.action not in (PUBLIC, SELF) and route.action not in CLASSIFIED:
            mismatches.append(f"{route.method} {route.path}: action {route.action!r} unclassified")
    missing = set(ROUTES) - {(r.method, r.path) for r in served}
    mismatches += [f"{m} {p}: in ROUTES but not served" for m, p in sorted(missing)]
    assert mismatches == []


def test_role_definitions_agree_with_the_spec(api: Api) -> None:
    """Each built-in role as the server serves it, evaluated with this module's own matcher,
    allows exactly the hand-written actions (the routed ones and the ones to come)."""
    mismatches = []
    for role in ROLE_NAMES:
        response = api.call("GET", f"/api/v1/roles/{role}", api.admin)
        assert response.status_code == 200, response.text
        definition = response.json()
        assert definition["builtin"] is True
        for action in sorted(CLASSIFIED):
            wanted = expected_allowed(role, action)
            if definition_allows(definition, action) != wanted:
                verdict = "allowed" if wanted else "denied"
                mismatches.append(f"{role}: {action} is {verdict} by the issue, not by the server")
    assert mismatches == []


def test_the_hand_matcher_matches_like_azure() -> None:
    assert wildcard_match("workspaces/*/read", "workspaces/onlineEndpoints/deployments/read")
    assert wildcard_match("*", "users/write")
    assert wildcard_match("*/read", "Workspaces/Read")
    assert wildcard_match("workspaces/computes/*", "workspaces/computes/delete")
    assert not wildcard_match("workspaces/computes/*", "workspaces/computes")
    assert not wildcard_match("workspaces/*/read", "workspaces/read")
    assert not wildcard_match("*/read", "workspaces/write")
    assert not wildcard_match("users/read", "users/read/more")
    assert wildcard_match("a*b*c", "abc")
    assert not wildcard_match("a*b*c", "acb")


@pytest.mark.parametrize(("role", "method", "path"), CASES)
def test_role_on_route(api: Api, principals: Principals, role: str, method: str, path: str) -> None:
    recipe = ROUTES.get((method, path))
    assert recipe is not None, f"{method} {path} is not in ROUTES: classify it"
    assert recipe.make is not None, f"{method} {path}: ROUTES has no request for it"
    served = next(r for r in SERVED if (r.method, r.path) == (method, path))
    assert served.action == recipe.action, (served.action, recipe.action)
    allowed = recipe.everyone or expected_allowed(role, recipe.action)

    workspace_route = "{workspace}" in path
    if workspace_route:
        workspace: str | None = api.workspace()
        actor = principals.at_workspace(role, workspace)
    else:
        workspace = None
        actor = principals.at_global(role)
    call = recipe.make(api, actor, workspace)
    response = api.call(
        method,
        call.path,
        actor.headers,
        json=call.json,
        params=call.params,
        content=call.content,
    )

    code = error_code(response)
    got = f"{response.status_code} {code}: {response.text[:300]}"
    what = f"{role} on {method} {call.path} ({recipe.action})"
    assert response.status_code != 401, f"{what}: the principal was not authenticated: {got}"
    assert response.status_code < 500, f"{what}: {got}"
    denied = (response.status_code == 403 and code in ("forbidden", "escalation")) or (
        workspace_route and response.status_code == 404 and code == "workspace_not_found"
    )
    if allowed:
        assert not denied, f"{what}: expected allowed, was denied: {got}"
        assert response.status_code < 300, f"{what}: allowed but did not succeed: {got}"
    else:
        assert denied, f"{what}: expected denied, got {got}"
    if not allowed and workspace_route:
        # Who can read the workspace learns they lack the action; who cannot, learns nothing.
        hidden = not expected_allowed(role, "workspaces/read")
        assert response.status_code == (404 if hidden else 403), f"{what}: {got}"
        if hidden:
            body = response.json()
            detail = body.get("detail", body.get("message"))
            assert detail == f"workspace {workspace!r} does not exist", f"{what}: {got}"
    reads = recipe.action.endswith("/read") or response.request.method == "GET" or recipe.telemetry
    _check_audit(api, actor, response, what, denied=not allowed, reads=reads)


def error_code(response: httpx.Response) -> str | None:
    """Shipyard's code of an error: a problem's, or the one an MLflow-shaped error (any
    response under /mlflow/) carries beside MLflow's ``error_code``."""
    code = problem_code(response)
    if code is not None or response.status_code < 400:
        return code
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    body = response.json()
    found = body.get("code") if isinstance(body, dict) and "error_code" in body else None
    return str(found) if found is not None else None


def _check_audit(
    api: Api, actor: Actor, response: httpx.Response, what: str, *, denied: bool, reads: bool
) -> None:
    """A change or a denial leaves exactly one audit event; a successful read (a GET, or a
    POST whose action only reads, like a search) leaves none."""
    request_id = response.headers["x-request-id"]
    if denied or not reads:
        events = api.events(request_id, principal=actor.name)
        assert len(events) == 1, f"{what}: {len(events)} audit events, not 1: {events}"
        outcome = "denied" if denied else "succeeded"
        recorded = (events[0]["outcome"], events[0]["status"])
        assert recorded == (outcome, response.status_code), f"{what}: {events[0]}"
    else:
        api.settle()
        events = api.events(request_id, wait=False, principal=actor.name)
        assert events == [], f"{what}: a successful read left audit events: {events}"
