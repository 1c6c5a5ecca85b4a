"""The access matrix: every route the app serves by every built-in role, over real HTTP.

For each case a fresh principal holds only the role under test: at a fresh workspace for a
workspace route (``{workspace}`` in the path), at a fresh registry for a registry route
(``{registry}``), at global scope otherwise (a group route's scope is the group, which only
global assignments reach). A role that cannot be held at the route's kind of scope (Registry
User and Workspace Creator at a workspace, Workspace Creator at a registry) is tested with
its global assignment. Every path parameter names a real object the admin made for the
case, so a destructive route acts on a throwaway object and the matrix goes on.

The expectations are written by hand from the issue's role definitions below; they do not
use the server's own matching (``permits``), so this test checks it. A route whose method
and path are not in ``ROUTES``, or whose action has no expectation, fails: a route added
later must be classified here.

A response counts as *denied* when it is 403 with code ``forbidden`` or ``escalation``, or,
on a workspace route, 404 with code ``workspace_not_found`` (the workspace exists, so that
404 hides it; ``registry_not_found`` on a registry route). Denials on a workspace route must
be 404 exactly when the role cannot read the workspace, else 403; the same on a registry
route with the registry. A response counts as *allowed* otherwise; the test asks more of it:
with real objects and sensible bodies an allowed call must succeed (2xx), which shows that
the recipe really exercised the route.

Each case also reads the audit log: a change or a denial leaves exactly one event (outcome
``denied`` for a denial), a successful read leaves none.
"""

from __future__ import annotations

import hashlib
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
from shipyard.domain.content import ManifestEntry, manifest_digest
from shipyard.domain.roles import BUILTIN_ROLES
from shipyard.schemas.uploads import BUNDLE_MAGIC, bundle_header
from shipyard.services.audit import SENSITIVE_SUFFIXES
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
        # data assets
        "workspaces/data/read",
        "workspaces/data/write",
        "workspaces/data/delete",
        # the model registry and MLflow's logged models
        "workspaces/models/read",
        "workspaces/models/write",
        "workspaces/models/delete",
        # the key vault
        "workspaces/secrets/metadata/read",
        "workspaces/secrets/read",
        "workspaces/secrets/write",
        "workspaces/secrets/delete",
        # datastores
        "workspaces/datastores/read",
        "workspaces/datastores/write",
        "workspaces/datastores/delete",
        "workspaces/datastores/listSecrets/action",
        # environments (building a version is a write)
        "workspaces/environments/read",
        "workspaces/environments/write",
        # components (archiving is a write)
        "workspaces/components/read",
        "workspaces/components/write",
        # compute targets
        "workspaces/computes/read",
        "workspaces/computes/write",
        "workspaces/computes/delete",
        # schedules (enabling and disabling are writes)
        "workspaces/schedules/read",
        "workspaces/schedules/write",
        "workspaces/schedules/delete",
        # online endpoints, their credentials and deployments
        "workspaces/onlineEndpoints/read",
        "workspaces/onlineEndpoints/write",
        "workspaces/onlineEndpoints/delete",
        "workspaces/onlineEndpoints/listKeys/action",
        "workspaces/onlineEndpoints/regenerateKeys/action",
        "workspaces/onlineEndpoints/token/action",
        "workspaces/onlineEndpoints/deployments/read",
        "workspaces/onlineEndpoints/deployments/write",
        "workspaces/onlineEndpoints/deployments/delete",
        # batch endpoints and their deployments (invoking one is a job submission)
        "workspaces/batchEndpoints/read",
        "workspaces/batchEndpoints/write",
        "workspaces/batchEndpoints/delete",
        "workspaces/batchEndpoints/deployments/read",
        "workspaces/batchEndpoints/deployments/write",
        "workspaces/batchEndpoints/deployments/delete",
        "workspaces/batchEndpoints/deployments/jobs/write",
        # registries and the role assignments made at one
        "registries/read",
        "registries/write",
        "registries/delete",
        "registries/roleAssignments/read",
        "registries/roleAssignments/write",
        "registries/roleAssignments/delete",
        # a registry's assets (components)
        "registries/assets/read",
        "registries/assets/write",
        "registries/assets/delete",
    }
)

# Actions of resources that have no routes yet (compute, secrets, models...). They are
# classified now so the role definitions can be checked against the issue today
# (``test_role_definitions_agree_with_the_spec``) and so their routes, once added, are
# already covered by the matrix.
FUTURE_ACTIONS = frozenset(
    {
        "workspaces/onlineEndpoints/write",
        "workspaces/onlineEndpoints/deployments/write",
        "workspaces/batchEndpoints/write",
        "workspaces/batchEndpoints/deployments/delete",
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
        "registries/roleAssignments/write",
        "registries/roleAssignments/delete",
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
        "workspaces/data/read",
        "workspaces/models/read",
        "workspaces/environments/read",
        "workspaces/components/read",
        "workspaces/computes/read",
        "workspaces/datastores/read",
        "workspaces/schedules/read",
        "workspaces/secrets/metadata/read",
        "workspaces/onlineEndpoints/read",
        "workspaces/onlineEndpoints/deployments/read",
        "workspaces/batchEndpoints/read",
        "workspaces/batchEndpoints/deployments/read",
        "registries/read",
        "registries/roleAssignments/read",
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
        # Keys are the endpoint's own: Azure's Data Scientist holds */action (listKeys too).
        "workspaces/onlineEndpoints/delete",
        "workspaces/onlineEndpoints/listKeys/action",
        "workspaces/onlineEndpoints/regenerateKeys/action",
        "workspaces/onlineEndpoints/token/action",
        "workspaces/onlineEndpoints/deployments/delete",
        "workspaces/batchEndpoints/write",
        "workspaces/batchEndpoints/delete",
        "workspaces/batchEndpoints/deployments/write",
        "workspaces/batchEndpoints/deployments/delete",
        "workspaces/batchEndpoints/deployments/jobs/write",
        "workspaces/schedules/write",
        "workspaces/schedules/delete",
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
            "workspaces/data/read",
            "workspaces/data/write",
            "workspaces/data/delete",
            "workspaces/models/read",
            "workspaces/environments/read",
            "workspaces/components/read",
            "workspaces/components/write",
            "workspaces/computes/read",
            "workspaces/datastores/read",
            "workspaces/datastores/write",
            "workspaces/datastores/delete",
            "workspaces/schedules/read",
            "workspaces/secrets/metadata/read",
            "workspaces/secrets/write",
            "workspaces/onlineEndpoints/read",
            "workspaces/onlineEndpoints/deployments/read",
            "workspaces/batchEndpoints/read",
            "workspaces/batchEndpoints/deployments/read",
            "workspaces/secrets/delete",
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
    # Registry assets (and seeing registries), not creating, changing or deleting registries,
    # nor seeing or making their role assignments.
    "Registry User": frozenset(
        {"registries/read", "registries/assets/read", "registries/assets/write"}
        | {"registries/assets/delete"}  # Azure's registries/assets/*
    ),
    # Global only: may create workspaces.
    "Workspace Creator": frozenset({"workspaces/create"}),
}

# Roles that cannot be held at a workspace, or at a registry: tested with their global
# assignment on those routes.
NOT_AT_WORKSPACE = frozenset({"Registry User", "Workspace Creator"})
NOT_AT_REGISTRY = frozenset({"Workspace Creator"})

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
    headers: dict[str, str] | None = None  # sent besides the principal's own


# (api, the principal under test, the case's workspace, or its registry on a registry route,
# or None) -> the request to send
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


def _delete_registry_assignment(api: Api, _: Actor, registry: str | None) -> Call:
    assert registry is not None
    assignment = api.assign("Reader", registry=registry, user=_user_name(api))
    return Call(f"/api/v1/registries/{registry}/role-assignments/{assignment}")


def _delete_global_assignment(api: Api, _: Actor, __: str | None) -> Call:
    assignment = api.assign("Reader", user=_user_name(api))
    return Call(f"/api/v1/role-assignments/{assignment}")


def _admin_run(api: Api, workspace: str | None) -> str:
    """A real run in the workspace, made by the admin."""
    response = api.as_admin("POST", f"/api/v1/workspaces/{_ws(workspace)}/runs", json={})
    return str(response.json()["id"])


def _admin_job(api: Api, workspace: str | None, *, with_code: bool = False) -> str:
    """A submitted command job, made by the admin (it stays queued: nothing runs jobs here),
    with a code snapshot holding ``a.csv`` when asked."""
    body: dict[str, Any] = {"command": "echo ${{inputs.x}}", "inputs": {"x": 1}}
    if with_code:
        root, _ = _begun_upload(api, workspace, "code", sent=True)
        digest = api.as_admin("POST", f"{root}/commit").json()["digest"]
        body["code"] = f"sha256:{digest}"
    response = api.as_admin("POST", f"/api/v1/workspaces/{_ws(workspace)}/jobs", json=body)
    return str(response.json()["name"])


def _job_call(suffix: str = "", *, with_code: bool = False) -> Maker:
    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        job = _admin_job(api, workspace, with_code=with_code)
        return Call(f"/api/v1/workspaces/{workspace}/jobs/{job}{suffix}")

    return make


def _job_artifact_call(api: Api, _: Actor, workspace: str | None) -> Call:
    """A file of a job's ``artifacts`` output (the admin put it in the job's run)."""
    name = _admin_job(api, workspace)
    root = f"/api/v1/workspaces/{_ws(workspace)}/jobs/{name}"
    run_id = api.as_admin("GET", root).json()["id"]
    api.as_admin(
        "PUT", f"/api/v1/workspaces/{_ws(workspace)}/runs/{run_id}/artifacts/a.txt", content=b"a"
    )
    return Call(f"/api/v1/workspaces/{workspace}/jobs/{name}/outputs/artifacts/files/a.txt")


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
DATA = "/api/v1/workspaces/{workspace}/data"
MODELS = "/api/v1/workspaces/{workspace}/models"
ENVIRONMENTS = "/api/v1/workspaces/{workspace}/environments"
COMPONENTS = "/api/v1/workspaces/{workspace}/components"
REGISTRY_COMPONENTS = "/api/v1/registries/{registry}/components"
JOBS = "/api/v1/workspaces/{workspace}/jobs"
CODE = "/api/v1/workspaces/{workspace}/code"


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


MLFLOW_MPU = "/mlflow/workspaces/{workspace}/api/2.0/mlflow-artifacts/mpu"


def _started_upload(api: Api, workspace: str | None) -> tuple[str, dict[str, Any]]:
    """A multipart upload of one part the admin started in a run: (folder, create's answer)."""
    folder = f"runs/{_admin_run(api, workspace)}/artifacts"
    made = api.as_admin(
        "POST",
        MLFLOW_MPU.format(workspace=_ws(workspace)) + f"/create/{folder}",
        json={"path": "f.bin", "num_parts": 1},
    )
    return folder, made.json()


def _mpu_call(step: str) -> Maker:
    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        mpu = MLFLOW_MPU.format(workspace=_ws(workspace))
        if step == "create":
            folder = f"runs/{_admin_run(api, workspace)}/artifacts"
            return Call(f"{mpu}/create/{folder}", {"path": "f.bin", "num_parts": 1})
        folder, made = _started_upload(api, workspace)
        credential = made["credentials"][0]
        if step == "part":
            path = credential["url"].split("://", 1)[1].split("/", 1)[1]
            return Call("/" + path, content=b"p", headers=credential["headers"])
        if step == "complete":
            api.call(
                "PUT",
                "/" + credential["url"].split("://", 1)[1].split("/", 1)[1],
                credential["headers"],
                content=b"p",
            )
        return Call(f"{mpu}/{step}/{folder}", {"path": "f.bin", "upload_id": made["upload_id"]})

    return make


def _mlflow_delete_tag(api: Api, _: Actor, workspace: str | None) -> Call:
    body = {"run_id": _tagged_run(api, workspace), "key": "doomed"}
    return Call(_mlflow_path(workspace, "runs/delete-tag"), body)


def _admin_model(api: Api, workspace: str | None) -> str:
    """A registered model (tagged k=v) with version 1 (tagged k=v, aliased "champion"),
    registered from a real run by the admin."""
    name = unique("model")
    api.as_admin(
        "POST",
        _mlflow_path(workspace, "registered-models/create"),
        json={"name": name, "tags": [{"key": "k", "value": "v"}]},
    )
    source = f"runs:/{_admin_run(api, workspace)}/model"
    body = {"name": name, "source": source, "tags": [{"key": "k", "value": "v"}]}
    api.as_admin("POST", _mlflow_path(workspace, "model-versions/create"), json=body)
    alias = {"name": name, "alias": "champion", "version": "1"}
    api.as_admin("POST", _mlflow_path(workspace, "registered-models/alias"), json=alias)
    return name


def _mlflow_model_call(
    method: str, body: dict[str, Any], *, get: bool = False, version: bool = False
) -> Maker:
    """An MLflow registry method about a real registered model (and its version 1)."""

    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        values = {"name": _admin_model(api, workspace), **body}
        if version:
            values["version"] = "1"
        path = _mlflow_path(workspace, method)
        return Call(path, params=values) if get else Call(path, values)

    return make


def _admin_logged_model(api: Api, workspace: str | None) -> str:
    body = {"experiment_id": "0", "tags": [{"key": "k", "value": "v"}]}
    made = api.as_admin("POST", _mlflow_path(workspace, "logged-models"), json=body)
    return str(made.json()["model"]["info"]["model_id"])


def _logged_model_call(suffix: str = "", body: dict[str, Any] | None = None) -> Maker:
    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        model_id = _admin_logged_model(api, workspace)
        return Call(_mlflow_path(workspace, f"logged-models/{model_id}{suffix}"), body)

    return make


def _log_outputs(api: Api, _: Actor, workspace: str | None) -> Call:
    body = {
        "run_id": _admin_run(api, workspace),
        "models": [{"model_id": _admin_logged_model(api, workspace), "step": 0}],
    }
    return Call(_mlflow_path(workspace, "runs/outputs"), body)


def _secret_call(suffix: str = "") -> Maker:
    """A route about a real secret the admin set in the case's workspace."""

    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        path = f"/api/v1/workspaces/{_ws(workspace)}/secrets/{unique('secret')}"
        api.as_admin("PUT", path, json={"value": "s3cr3t"})
        return Call(path + suffix)

    return make


# An S3 datastore made without checking (skip_validation): nothing listens on port 9.
_DATASTORE = {"type": "s3", "bucket": "matrix-bucket", "endpoint_url": "http://127.0.0.1:9"}
_SKIP = {"skip_validation": "true"}


def _datastore_call(suffix: str = "", body: Any = None) -> Maker:
    """A route about a real S3 datastore (with keys in the key vault) the admin made."""

    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        base = f"/api/v1/workspaces/{_ws(workspace)}/datastores"
        name = unique("ds").replace("-", "_")
        keys = {"access_key_id": "matrix", "secret_access_key": "matrix-secret"}
        spec = {**_DATASTORE, "name": name, "credentials": keys}
        api.as_admin("POST", base, json=spec, params=_SKIP)
        return Call(f"{base}/{name}{suffix}", body)

    return make


# A Ray compute made without checking (skip_validation): nothing listens on port 9.
_COMPUTE = {"type": "ray", "address": "http://127.0.0.1:9"}


def _compute_call(api: Api, _: Actor, workspace: str | None) -> Call:
    """A route about a real Ray compute the admin made."""
    base = f"/api/v1/workspaces/{_ws(workspace)}/computes"
    name = unique("ray")
    api.as_admin("POST", base, json={**_COMPUTE, "name": name}, params=_SKIP)
    return Call(f"{base}/{name}")


def _manifest(files: dict[str, bytes]) -> tuple[str, dict[str, Any]]:
    entries = [ManifestEntry(p, hashlib.sha256(b).hexdigest(), len(b)) for p, b in files.items()]
    body = {"files": [{"path": e.path, "sha256": e.sha256, "size": e.size} for e in entries]}
    return manifest_digest(entries), body


def _begun_upload(
    api: Api, workspace: str | None, area: str, *, sent: bool = False
) -> tuple[str, str]:
    """An upload of fresh content (one file, ``a.csv``) the admin began in the data or models
    area and, with ``sent``, whose file it sent: (its root path, its content)."""
    content = f"a,b\n{unique('row')},2\n".encode()
    digest, body = _manifest({"a.csv": content})
    root = f"/api/v1/workspaces/{_ws(workspace)}/{area}/artifacts/{digest}"
    api.as_admin("PUT", root, json=body)
    if sent:
        api.as_admin("PUT", f"{root}/a.csv", content=content)
    return root, content


def _upload_call(area: str, step: str) -> Maker:
    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        if step == "manifest":
            digest, body = _manifest({f"{unique('f')}.csv": b"x"})
            return Call(f"/api/v1/workspaces/{workspace}/{area}/artifacts/{digest}", body)
        root, content = _begun_upload(api, workspace, area, sent=step == "commit")
        if step == "file":
            return Call(f"{root}/a.csv", content=content)
        if step == "bundle":
            base, digest = root.rsplit("/", 1)
            bundle = BUNDLE_MAGIC + bundle_header("a.csv", len(content)) + content
            return Call(f"{base}/bundles/{digest}", content=bundle)
        return Call(f"{root}/commit")

    return make


def _admin_data(api: Api, workspace: str | None) -> str:
    """A data asset whose version 1 is a CSV file (a.csv) the admin uploaded."""
    root, _ = _begun_upload(api, workspace, "data", sent=True)
    uri = api.as_admin("POST", f"{root}/commit").json()["uri"]
    asset = unique("data")
    body = {"path": f"{uri}/a.csv", "type": "uri_file"}
    api.as_admin("POST", f"/api/v1/workspaces/{_ws(workspace)}/data/{asset}/versions", json=body)
    return asset


def _data_call(suffix: str = "", body: Any = None) -> Maker:
    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        return Call(
            f"/api/v1/workspaces/{workspace}/data/{_admin_data(api, workspace)}{suffix}", body
        )

    return make


def _new_data_version(api: Api, _: Actor, workspace: str | None) -> Call:
    root, _ = _begun_upload(api, workspace, "data", sent=True)
    uri = api.as_admin("POST", f"{root}/commit").json()["uri"]
    body = {"path": f"{uri}/a.csv", "type": "uri_file"}
    return Call(f"/api/v1/workspaces/{workspace}/data/{unique('data')}/versions", body)


def _admin_environment(api: Api, workspace: str | None) -> str:
    """An environment whose version 1 holds no packages (building it is a bare venv)."""
    name = unique("env")
    path = f"/api/v1/workspaces/{_ws(workspace)}/environments/{name}/versions"
    api.as_admin("POST", path, json={"pip_requirements": []})
    return name


def _environment_call(suffix: str = "", body: Any = None) -> Maker:
    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        name = _admin_environment(api, workspace)
        return Call(f"/api/v1/workspaces/{workspace}/environments/{name}{suffix}", body)

    return make


_COMPONENT = {"command": "echo ${{inputs.x}}", "environment": "azureml:shipyard-minimal:1",
              "inputs": {"x": {"type": "string", "default": "hi"}}}  # fmt: skip


def _component_call(suffix: str = "", body: Any = None) -> Maker:
    """A route about a component whose version 1 the admin registered."""

    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        name = unique("comp").replace("-", "_")
        path = f"/api/v1/workspaces/{_ws(workspace)}/components/{name}"
        api.as_admin("POST", f"{path}/versions", json=_COMPONENT)
        return Call(path + suffix, body)

    return make


_SCHEDULE = {"trigger": {"type": "cron", "expression": "0 3 * * *"},
             "create_job": {"command": "true"}}  # fmt: skip


ONLINE = "/api/v1/workspaces/{workspace}/onlineEndpoints"


def _admin_endpoint(api: Api, workspace: str | None, auth_mode: str = "key") -> str:
    name = unique("ep")
    body = {"name": name, "auth_mode": auth_mode}
    api.as_admin("POST", ONLINE.format(workspace=_ws(workspace)), json=body)
    return name


def _deployment_body(api: Api, workspace: str | None, name: str) -> dict[str, Any]:
    """A deployment of a native model with a committed code snapshot (its file a.csv
    stands in for the scoring script: nothing runs it here)."""
    root, _ = _begun_upload(api, workspace, "code", sent=True)
    digest = api.as_admin("POST", f"{root}/commit").json()["digest"]
    return {
        "name": name,
        "model": f"azureml:{_admin_native_model(api, workspace)}:1",
        "code_configuration": {"code": f"sha256:{digest}", "scoring_script": "a.csv"},
        "environment": "azureml:shipyard-minimal@latest",
    }


def _endpoint_call(suffix: str = "", body: Any = None, *, auth_mode: str = "key") -> Maker:
    """A route about an online endpoint the admin made."""

    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        name = _admin_endpoint(api, workspace, auth_mode)
        return Call(f"{ONLINE.format(workspace=_ws(workspace))}/{name}{suffix}", body)

    return make


def _new_deployment(api: Api, _: Actor, workspace: str | None) -> Call:
    base = f"{ONLINE.format(workspace=_ws(workspace))}/{_admin_endpoint(api, workspace)}"
    return Call(f"{base}/deployments", _deployment_body(api, workspace, "blue"))


def _deployment_call(suffix: str = "", body: Any = None) -> Maker:
    """A route about a deployment (taking no traffic) of an endpoint the admin made."""

    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        base = f"{ONLINE.format(workspace=_ws(workspace))}/{_admin_endpoint(api, workspace)}"
        api.as_admin("POST", f"{base}/deployments", json=_deployment_body(api, workspace, "blue"))
        return Call(f"{base}/deployments/blue{suffix}", body)

    return make


BATCH = "/api/v1/workspaces/{workspace}/batchEndpoints"


def _admin_batch_endpoint(api: Api, workspace: str | None) -> str:
    """A batch endpoint the admin made, with deployment "main" (its default): the native
    model and a committed code snapshot (its file a.csv stands in for the scoring script)."""
    name = unique("be")
    base = BATCH.format(workspace=_ws(workspace))
    api.as_admin("POST", base, json={"name": name})
    body = _deployment_body(api, workspace, "main")
    api.as_admin("POST", f"{base}/{name}/deployments", json=body)
    return name


def _batch_call(suffix: str = "", body: Any = None) -> Maker:
    """A route about a batch endpoint (and its deployment "main") the admin made."""

    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        name = _admin_batch_endpoint(api, workspace)
        return Call(f"{BATCH.format(workspace=_ws(workspace))}/{name}{suffix}", body)

    return make


def _batch_invoke(api: Api, _: Actor, workspace: str | None) -> Call:
    name = _admin_batch_endpoint(api, workspace)
    root, _content = _begun_upload(api, workspace, "data", sent=True)
    uri = api.as_admin("POST", f"{root}/commit").json()["uri"]
    body = {"inputs": {"data": {"type": "uri_folder", "path": uri}}}
    return Call(f"{BATCH.format(workspace=_ws(workspace))}/{name}/jobs", body)


def _new_batch_deployment(api: Api, _: Actor, workspace: str | None) -> Call:
    base = f"{BATCH.format(workspace=_ws(workspace))}/{_admin_batch_endpoint(api, workspace)}"
    return Call(f"{base}/deployments", _deployment_body(api, workspace, "other"))


def _registry_component_call(suffix: str = "", body: Any = None) -> Maker:
    """A route about a registry's component whose version 1 the admin registered."""

    def make(api: Api, _: Actor, registry: str | None) -> Call:
        assert registry is not None
        name = unique("comp").replace("-", "_")
        path = f"/api/v1/registries/{registry}/components/{name}"
        api.as_admin("POST", f"{path}/versions", json=_COMPONENT)
        return Call(path + suffix, body)

    return make


def _schedule_call(suffix: str = "") -> Maker:
    """A route about a schedule the admin made."""

    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        base = f"/api/v1/workspaces/{_ws(workspace)}/schedules"
        name = unique("sched")
        api.as_admin("POST", base, json={**_SCHEDULE, "name": name})
        return Call(f"{base}/{name}{suffix}")

    return make


def _admin_native_model(api: Api, workspace: str | None) -> str:
    """A model whose version 1 (aliased "champion") is a folder holding a.csv, uploaded
    natively by the admin."""
    root, _ = _begun_upload(api, workspace, "models", sent=True)
    uri = api.as_admin("POST", f"{root}/commit").json()["uri"]
    model = unique("model")
    base = f"/api/v1/workspaces/{_ws(workspace)}/models/{model}"
    api.as_admin("POST", f"{base}/versions", json={"path": uri})
    api.as_admin("PUT", f"{base}/aliases/champion", json={"version": 1})
    return model


def _native_model_call(suffix: str = "", body: Any = None) -> Maker:
    def make(api: Api, _: Actor, workspace: str | None) -> Call:
        model = _admin_native_model(api, workspace)
        return Call(f"/api/v1/workspaces/{workspace}/models/{model}{suffix}", body)

    return make


def _new_model_version(api: Api, _: Actor, workspace: str | None) -> Call:
    root, _ = _begun_upload(api, workspace, "models", sent=True)
    uri = api.as_admin("POST", f"{root}/commit").json()["uri"]
    return Call(f"/api/v1/workspaces/{workspace}/models/{unique('model')}/versions", {"path": uri})


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
    # registries (creating one is checked at global scope) and their role assignments
    ("POST", "/api/v1/registries"): Recipe(
        "registries/write",
        make=lambda api, a, w: Call("/api/v1/registries", {"name": unique("reg")}),
    ),
    ("GET", "/api/v1/registries"): Recipe(
        "registries/read", listing=True, make=lambda api, a, w: Call("/api/v1/registries")
    ),
    ("GET", "/api/v1/registries/{registry}"): Recipe(
        "registries/read", make=lambda api, a, r: Call(f"/api/v1/registries/{r}")
    ),
    ("PATCH", "/api/v1/registries/{registry}"): Recipe(
        "registries/write",
        make=lambda api, a, r: Call(f"/api/v1/registries/{r}", {"description": "changed"}),
    ),
    ("DELETE", "/api/v1/registries/{registry}"): Recipe(
        "registries/delete", make=lambda api, a, r: Call(f"/api/v1/registries/{r}")
    ),
    ("POST", "/api/v1/registries/{registry}/role-assignments"): Recipe(
        "registries/roleAssignments/write",
        make=lambda api, a, r: Call(
            f"/api/v1/registries/{r}/role-assignments", {"role": "Reader", "user": _user_name(api)}
        ),
    ),
    ("GET", "/api/v1/registries/{registry}/role-assignments"): Recipe(
        "registries/roleAssignments/read",
        make=lambda api, a, r: Call(f"/api/v1/registries/{r}/role-assignments"),
    ),
    ("DELETE", "/api/v1/registries/{registry}/role-assignments/{assignment_id}"): Recipe(
        "registries/roleAssignments/delete", make=_delete_registry_assignment
    ),
    # a registry's components
    ("GET", f"{REGISTRY_COMPONENTS}"): Recipe(
        "registries/assets/read",
        make=lambda api, a, r: Call(f"/api/v1/registries/{r}/components"),
    ),
    ("POST", f"{REGISTRY_COMPONENTS}/{{name}}/versions"): Recipe(
        "registries/assets/write",
        make=lambda api, a, r: Call(
            f"/api/v1/registries/{r}/components/{unique('comp').replace('-', '_')}/versions",
            _COMPONENT,
        ),
    ),
    ("GET", f"{REGISTRY_COMPONENTS}/{{name}}/versions"): Recipe(
        "registries/assets/read", make=_registry_component_call("/versions")
    ),
    ("GET", f"{REGISTRY_COMPONENTS}/{{name}}/versions/{{version}}"): Recipe(
        "registries/assets/read", make=_registry_component_call("/versions/1")
    ),
    ("PATCH", f"{REGISTRY_COMPONENTS}/{{name}}/versions/{{version}}"): Recipe(
        "registries/assets/write",
        make=_registry_component_call("/versions/1", {"description": "changed"}),
    ),
    ("POST", f"{REGISTRY_COMPONENTS}/{{name}}/versions/{{version}}/archive"): Recipe(
        "registries/assets/write", make=_registry_component_call("/versions/1/archive")
    ),
    ("POST", f"{REGISTRY_COMPONENTS}/{{name}}/versions/{{version}}/restore"): Recipe(
        "registries/assets/write", make=_registry_component_call("/versions/1/restore")
    ),
    ("POST", f"{REGISTRY_COMPONENTS}/{{name}}/archive"): Recipe(
        "registries/assets/write", make=_registry_component_call("/archive")
    ),
    ("POST", f"{REGISTRY_COMPONENTS}/{{name}}/restore"): Recipe(
        "registries/assets/write", make=_registry_component_call("/restore")
    ),
    ("DELETE", f"{REGISTRY_COMPONENTS}/{{name}}/versions/{{version}}"): Recipe(
        "registries/assets/delete", make=_registry_component_call("/versions/1")
    ),
    ("DELETE", f"{REGISTRY_COMPONENTS}/{{name}}"): Recipe(
        "registries/assets/delete", make=_registry_component_call()
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
    ("POST", f"{MLFLOW}/runs/log-inputs"): Recipe(
        "workspaces/jobs/write",
        telemetry=True,
        make=_mlflow_run_call(
            "runs/log-inputs",
            {
                "datasets": [
                    {
                        "dataset": {
                            "name": "d",
                            "digest": "abc",
                            "source_type": "code",
                            "source": "{}",
                        },
                        "tags": [{"key": "mlflow.data.context", "value": "training"}],
                    }
                ]
            },
        ),
    ),
    ("POST", MLFLOW_MPU + "/create/{path:path}"): Recipe(
        "workspaces/jobs/write", telemetry=True, make=_mpu_call("create")
    ),
    ("PUT", MLFLOW_MPU + "/part/{upload_id}/{part_number}"): Recipe(
        PUBLIC,
        make=_mpu_call("part"),  # the upload's key is the credential
    ),
    ("POST", MLFLOW_MPU + "/complete/{path:path}"): Recipe(
        "workspaces/jobs/write", telemetry=True, make=_mpu_call("complete")
    ),
    ("POST", MLFLOW_MPU + "/abort/{path:path}"): Recipe(
        "workspaces/jobs/write", make=_mpu_call("abort")
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
    # the model registry through MLflow: the models actions
    ("POST", f"{MLFLOW}/registered-models/create"): Recipe(
        "workspaces/models/write",
        make=_mlflow_call("registered-models/create", lambda: {"name": unique("model")}),
    ),
    ("GET", f"{MLFLOW}/registered-models/get"): Recipe(
        "workspaces/models/read", make=_mlflow_model_call("registered-models/get", {}, get=True)
    ),
    ("POST", f"{MLFLOW}/registered-models/rename"): Recipe(
        "workspaces/models/write",
        make=_mlflow_model_call("registered-models/rename", {"new_name": unique("renamed")}),
    ),
    ("PATCH", f"{MLFLOW}/registered-models/update"): Recipe(
        "workspaces/models/write",
        make=_mlflow_model_call("registered-models/update", {"description": "d"}),
    ),
    ("DELETE", f"{MLFLOW}/registered-models/delete"): Recipe(
        "workspaces/models/delete", make=_mlflow_model_call("registered-models/delete", {})
    ),
    ("GET", f"{MLFLOW}/registered-models/search"): Recipe(
        "workspaces/models/read",
        make=_mlflow_call("registered-models/search", lambda: {"max_results": 5}, get=True),
    ),
    ("POST", f"{MLFLOW}/registered-models/get-latest-versions"): Recipe(
        "workspaces/models/read",
        make=_mlflow_model_call("registered-models/get-latest-versions", {}),
    ),
    ("GET", f"{MLFLOW}/registered-models/get-latest-versions"): Recipe(
        "workspaces/models/read",
        make=_mlflow_model_call("registered-models/get-latest-versions", {}, get=True),
    ),
    ("POST", f"{MLFLOW}/registered-models/set-tag"): Recipe(
        "workspaces/models/write",
        make=_mlflow_model_call("registered-models/set-tag", {"key": "a", "value": "b"}),
    ),
    ("DELETE", f"{MLFLOW}/registered-models/delete-tag"): Recipe(
        "workspaces/models/write",
        make=_mlflow_model_call("registered-models/delete-tag", {"key": "k"}),
    ),
    ("POST", f"{MLFLOW}/registered-models/alias"): Recipe(
        "workspaces/models/write",
        make=_mlflow_model_call("registered-models/alias", {"alias": "next"}, version=True),
    ),
    ("DELETE", f"{MLFLOW}/registered-models/alias"): Recipe(
        "workspaces/models/write",
        make=_mlflow_model_call("registered-models/alias", {"alias": "champion"}),
    ),
    ("GET", f"{MLFLOW}/registered-models/alias"): Recipe(
        "workspaces/models/read",
        make=_mlflow_model_call("registered-models/alias", {"alias": "champion"}, get=True),
    ),
    ("POST", f"{MLFLOW}/model-versions/create"): Recipe(
        "workspaces/models/write",
        make=lambda api, a, w: Call(
            _mlflow_path(w, "model-versions/create"),
            {"name": _admin_model(api, w), "source": f"runs:/{_admin_run(api, w)}/model"},
        ),
    ),
    ("GET", f"{MLFLOW}/model-versions/get"): Recipe(
        "workspaces/models/read",
        make=_mlflow_model_call("model-versions/get", {}, get=True, version=True),
    ),
    ("PATCH", f"{MLFLOW}/model-versions/update"): Recipe(
        "workspaces/models/write",
        make=_mlflow_model_call("model-versions/update", {"description": "d"}, version=True),
    ),
    ("DELETE", f"{MLFLOW}/model-versions/delete"): Recipe(
        "workspaces/models/delete",
        make=_mlflow_model_call("model-versions/delete", {}, version=True),
    ),
    ("GET", f"{MLFLOW}/model-versions/search"): Recipe(
        "workspaces/models/read",
        make=_mlflow_call("model-versions/search", lambda: {"max_results": 5}, get=True),
    ),
    ("GET", f"{MLFLOW}/model-versions/get-download-uri"): Recipe(
        "workspaces/models/read",
        make=_mlflow_model_call("model-versions/get-download-uri", {}, get=True, version=True),
    ),
    ("POST", f"{MLFLOW}/model-versions/transition-stage"): Recipe(
        "workspaces/models/write",
        make=_mlflow_model_call(
            "model-versions/transition-stage", {"stage": "Staging"}, version=True
        ),
    ),
    ("POST", f"{MLFLOW}/model-versions/set-tag"): Recipe(
        "workspaces/models/write",
        make=_mlflow_model_call("model-versions/set-tag", {"key": "a", "value": "b"}, version=True),
    ),
    ("DELETE", f"{MLFLOW}/model-versions/delete-tag"): Recipe(
        "workspaces/models/write",
        make=_mlflow_model_call("model-versions/delete-tag", {"key": "k"}, version=True),
    ),
    # MLflow 3's logged models: the models actions; linking one to a run writes the run
    ("POST", f"{MLFLOW}/logged-models"): Recipe(
        "workspaces/models/write",
        make=_mlflow_call("logged-models", lambda: {"experiment_id": "0"}),
    ),
    ("POST", f"{MLFLOW}/logged-models/search"): Recipe(
        "workspaces/models/read",
        make=_mlflow_call("logged-models/search", lambda: {"experiment_ids": ["0"]}),
    ),
    ("GET", f"{MLFLOW}/logged-models/{{model_id}}"): Recipe(
        "workspaces/models/read", make=_logged_model_call()
    ),
    ("PATCH", f"{MLFLOW}/logged-models/{{model_id}}"): Recipe(
        "workspaces/models/write", make=_logged_model_call(body={"status": "LOGGED_MODEL_READY"})
    ),
    ("DELETE", f"{MLFLOW}/logged-models/{{model_id}}"): Recipe(
        "workspaces/models/delete", make=_logged_model_call()
    ),
    ("PATCH", f"{MLFLOW}/logged-models/{{model_id}}/tags"): Recipe(
        "workspaces/models/write",
        make=_logged_model_call("/tags", {"tags": [{"key": "a", "value": "b"}]}),
    ),
    ("DELETE", f"{MLFLOW}/logged-models/{{model_id}}/tags/{{tag_key:path}}"): Recipe(
        "workspaces/models/write", make=_logged_model_call("/tags/k")
    ),
    ("POST", f"{MLFLOW}/logged-models/{{model_id}}/params"): Recipe(
        "workspaces/models/write",
        make=_logged_model_call("/params", {"params": [{"key": "p", "value": "v"}]}),
    ),
    ("POST", f"{MLFLOW}/runs/outputs"): Recipe("workspaces/jobs/write", make=_log_outputs),
    # the key vault (a value is read with a POST; see api/routers/secrets.py)
    ("GET", "/api/v1/workspaces/{workspace}/secrets"): Recipe(
        "workspaces/secrets/metadata/read",
        make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/secrets"),
    ),
    ("PUT", "/api/v1/workspaces/{workspace}/secrets/{name}"): Recipe(
        "workspaces/secrets/write",
        make=lambda api, a, w: Call(
            f"/api/v1/workspaces/{w}/secrets/{unique('secret')}", {"value": "s3cr3t"}
        ),
    ),
    ("GET", "/api/v1/workspaces/{workspace}/secrets/{name}"): Recipe(
        "workspaces/secrets/metadata/read", make=_secret_call()
    ),
    ("POST", "/api/v1/workspaces/{workspace}/secrets/{name}/reveal"): Recipe(
        "workspaces/secrets/read", make=_secret_call("/reveal")
    ),
    ("DELETE", "/api/v1/workspaces/{workspace}/secrets/{name}"): Recipe(
        "workspaces/secrets/delete", make=_secret_call()
    ),
    # datastores (keys are read with a POST; see api/routers/datastores.py)
    ("POST", "/api/v1/workspaces/{workspace}/datastores"): Recipe(
        "workspaces/datastores/write",
        make=lambda api, a, w: Call(
            f"/api/v1/workspaces/{w}/datastores",
            {**_DATASTORE, "name": unique("ds"), "credentials": {"anonymous": True}},
            params=_SKIP,
        ),
    ),
    ("GET", "/api/v1/workspaces/{workspace}/datastores"): Recipe(
        "workspaces/datastores/read",
        make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/datastores"),
    ),
    ("GET", "/api/v1/workspaces/{workspace}/datastores/{name}"): Recipe(
        "workspaces/datastores/read", make=_datastore_call()
    ),
    ("PATCH", "/api/v1/workspaces/{workspace}/datastores/{name}"): Recipe(
        "workspaces/datastores/write", make=_datastore_call(body={"description": "changed"})
    ),
    ("DELETE", "/api/v1/workspaces/{workspace}/datastores/{name}"): Recipe(
        "workspaces/datastores/delete", make=_datastore_call()
    ),
    ("POST", "/api/v1/workspaces/{workspace}/datastores/{name}/set-default"): Recipe(
        "workspaces/datastores/write", make=_datastore_call("/set-default")
    ),
    ("POST", "/api/v1/workspaces/{workspace}/datastores/{name}/list-secrets"): Recipe(
        "workspaces/datastores/listSecrets/action", make=_datastore_call("/list-secrets")
    ),
    # compute targets (a create that asks the cluster is tested in tests/api/test_computes.py)
    ("POST", "/api/v1/workspaces/{workspace}/computes"): Recipe(
        "workspaces/computes/write",
        make=lambda api, a, w: Call(
            f"/api/v1/workspaces/{w}/computes", {**_COMPUTE, "name": unique("ray")}, params=_SKIP
        ),
    ),
    ("GET", "/api/v1/workspaces/{workspace}/computes"): Recipe(
        "workspaces/computes/read",
        make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/computes"),
    ),
    ("GET", "/api/v1/workspaces/{workspace}/computes/{name}"): Recipe(
        "workspaces/computes/read", make=_compute_call
    ),
    ("DELETE", "/api/v1/workspaces/{workspace}/computes/{name}"): Recipe(
        "workspaces/computes/delete", make=_compute_call
    ),
    # data assets and their content-addressed uploads
    ("PUT", DATA + "/artifacts/{digest}"): Recipe(
        "workspaces/data/write", make=_upload_call("data", "manifest")
    ),
    ("PUT", DATA + "/artifacts/{digest}/{path:path}"): Recipe(
        "workspaces/data/write", telemetry=True, make=_upload_call("data", "file")
    ),
    ("PUT", DATA + "/artifacts/bundles/{digest}"): Recipe(
        "workspaces/data/write", telemetry=True, make=_upload_call("data", "bundle")
    ),
    ("POST", DATA + "/artifacts/{digest}/commit"): Recipe(
        "workspaces/data/write", make=_upload_call("data", "commit")
    ),
    ("GET", DATA): Recipe(
        "workspaces/data/read", make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/data")
    ),
    ("POST", DATA + "/{name}/versions"): Recipe("workspaces/data/write", make=_new_data_version),
    ("GET", DATA + "/{name}/versions"): Recipe(
        "workspaces/data/read", make=_data_call("/versions")
    ),
    ("GET", DATA + "/{name}/versions/{version}"): Recipe(
        "workspaces/data/read", make=_data_call("/versions/latest")
    ),
    ("PATCH", DATA + "/{name}/versions/{version}"): Recipe(
        "workspaces/data/write", make=_data_call("/versions/1", {"description": "changed"})
    ),
    ("DELETE", DATA + "/{name}/versions/{version}"): Recipe(
        "workspaces/data/delete", make=_data_call("/versions/1")
    ),
    ("POST", DATA + "/{name}/versions/{version}/archive"): Recipe(
        "workspaces/data/write", make=_data_call("/versions/1/archive")
    ),
    ("POST", DATA + "/{name}/versions/{version}/restore"): Recipe(
        "workspaces/data/write", make=_data_call("/versions/1/restore")
    ),
    ("POST", DATA + "/{name}/archive"): Recipe(
        "workspaces/data/write", make=_data_call("/archive")
    ),
    ("POST", DATA + "/{name}/restore"): Recipe(
        "workspaces/data/write", make=_data_call("/restore")
    ),
    ("GET", DATA + "/{name}/versions/{version}/files"): Recipe(
        "workspaces/data/read", make=_data_call("/versions/1/files")
    ),
    ("GET", DATA + "/{name}/versions/{version}/files/{path:path}"): Recipe(
        "workspaces/data/read", make=_data_call("/versions/1/files/a.csv")
    ),
    ("GET", DATA + "/{name}/versions/{version}/preview"): Recipe(
        "workspaces/data/read", make=_data_call("/versions/1/preview")
    ),
    # submitted jobs and their code snapshots
    ("POST", JOBS): Recipe(
        "workspaces/jobs/write",
        make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/jobs", {"command": "true"}),
    ),
    ("GET", JOBS): Recipe(
        "workspaces/jobs/read", make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/jobs")
    ),
    ("GET", JOBS + "/{name}"): Recipe("workspaces/jobs/read", make=_job_call()),
    ("GET", "/api/v1/workspaces/{workspace}/cost"): Recipe(
        "workspaces/jobs/read", make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/cost")
    ),
    ("GET", JOBS + "/{name}/lineage"): Recipe("workspaces/jobs/read", make=_job_call("/lineage")),
    ("GET", "/api/v1/workspaces/{workspace}/lineage"): Recipe(
        "workspaces/jobs/read",
        make=lambda api, a, w: Call(
            f"/api/v1/workspaces/{w}/lineage", params={"asset": "data:none:1"}
        ),
    ),
    ("POST", JOBS + "/{name}/archive"): Recipe("workspaces/jobs/write", make=_job_call("/archive")),
    ("POST", JOBS + "/{name}/restore"): Recipe("workspaces/jobs/write", make=_job_call("/restore")),
    ("POST", JOBS + "/{name}/cancel"): Recipe("workspaces/jobs/write", make=_job_call("/cancel")),
    ("GET", JOBS + "/{name}/logs"): Recipe("workspaces/jobs/read", make=_job_call("/logs")),
    ("GET", JOBS + "/{name}/outputs/{output}/files"): Recipe(
        "workspaces/jobs/read", make=_job_call("/outputs/artifacts/files")
    ),
    ("GET", JOBS + "/{name}/outputs/{output}/files/{path:path}"): Recipe(
        "workspaces/jobs/read", make=_job_artifact_call
    ),
    ("GET", JOBS + "/{name}/code"): Recipe(
        "workspaces/jobs/read", make=_job_call("/code", with_code=True)
    ),
    ("GET", JOBS + "/{name}/code/{path:path}"): Recipe(
        "workspaces/jobs/read", make=_job_call("/code/a.csv", with_code=True)
    ),
    ("PUT", CODE + "/artifacts/{digest}"): Recipe(
        "workspaces/jobs/write", make=_upload_call("code", "manifest")
    ),
    ("PUT", CODE + "/artifacts/{digest}/{path:path}"): Recipe(
        "workspaces/jobs/write", telemetry=True, make=_upload_call("code", "file")
    ),
    ("PUT", CODE + "/artifacts/bundles/{digest}"): Recipe(
        "workspaces/jobs/write", telemetry=True, make=_upload_call("code", "bundle")
    ),
    ("POST", CODE + "/artifacts/{digest}/commit"): Recipe(
        "workspaces/jobs/write", make=_upload_call("code", "commit")
    ),
    # environments and their builds
    ("GET", ENVIRONMENTS): Recipe(
        "workspaces/environments/read",
        make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/environments"),
    ),
    ("POST", ENVIRONMENTS + "/{name}/versions"): Recipe(
        "workspaces/environments/write",
        make=lambda api, a, w: Call(
            f"/api/v1/workspaces/{w}/environments/{unique('env')}/versions",
            {"pip_requirements": ["six==1.17.0"]},
        ),
    ),
    ("GET", ENVIRONMENTS + "/{name}/versions"): Recipe(
        "workspaces/environments/read", make=_environment_call("/versions")
    ),
    ("GET", ENVIRONMENTS + "/{name}/versions/{version}"): Recipe(
        "workspaces/environments/read", make=_environment_call("/versions/latest")
    ),
    ("PATCH", ENVIRONMENTS + "/{name}/versions/{version}"): Recipe(
        "workspaces/environments/write",
        make=_environment_call("/versions/1", {"description": "changed"}),
    ),
    ("POST", ENVIRONMENTS + "/{name}/versions/{version}/archive"): Recipe(
        "workspaces/environments/write", make=_environment_call("/versions/1/archive")
    ),
    ("POST", ENVIRONMENTS + "/{name}/versions/{version}/restore"): Recipe(
        "workspaces/environments/write", make=_environment_call("/versions/1/restore")
    ),
    ("POST", ENVIRONMENTS + "/{name}/archive"): Recipe(
        "workspaces/environments/write", make=_environment_call("/archive")
    ),
    ("POST", ENVIRONMENTS + "/{name}/restore"): Recipe(
        "workspaces/environments/write", make=_environment_call("/restore")
    ),
    ("POST", ENVIRONMENTS + "/{name}/versions/{version}/build"): Recipe(
        "workspaces/environments/write", make=_environment_call("/versions/1/build")
    ),
    ("GET", ENVIRONMENTS + "/{name}/versions/{version}/build"): Recipe(
        "workspaces/environments/read", make=_environment_call("/versions/1/build")
    ),
    # schedules
    ("POST", "/api/v1/workspaces/{workspace}/schedules"): Recipe(
        "workspaces/schedules/write",
        make=lambda api, a, w: Call(
            f"/api/v1/workspaces/{w}/schedules", {**_SCHEDULE, "name": unique("sched")}
        ),
    ),
    ("GET", "/api/v1/workspaces/{workspace}/schedules"): Recipe(
        "workspaces/schedules/read",
        make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/schedules"),
    ),
    ("GET", "/api/v1/workspaces/{workspace}/schedules/{name}"): Recipe(
        "workspaces/schedules/read", make=_schedule_call()
    ),
    ("POST", "/api/v1/workspaces/{workspace}/schedules/{name}/enable"): Recipe(
        "workspaces/schedules/write", make=_schedule_call("/enable")
    ),
    ("POST", "/api/v1/workspaces/{workspace}/schedules/{name}/disable"): Recipe(
        "workspaces/schedules/write", make=_schedule_call("/disable")
    ),
    ("DELETE", "/api/v1/workspaces/{workspace}/schedules/{name}"): Recipe(
        "workspaces/schedules/delete", make=_schedule_call()
    ),
    ("GET", "/api/v1/workspaces/{workspace}/schedules/{name}/fires"): Recipe(
        "workspaces/schedules/read", make=_schedule_call("/fires")
    ),
    # online endpoints and deployments
    ("POST", ONLINE): Recipe(
        "workspaces/onlineEndpoints/write",
        make=lambda api, a, w: Call(ONLINE.format(workspace=_ws(w)), {"name": unique("ep")}),
    ),
    ("GET", ONLINE): Recipe(
        "workspaces/onlineEndpoints/read",
        make=lambda api, a, w: Call(ONLINE.format(workspace=_ws(w))),
    ),
    ("GET", ONLINE + "/{name}"): Recipe("workspaces/onlineEndpoints/read", make=_endpoint_call()),
    ("PATCH", ONLINE + "/{name}"): Recipe(
        "workspaces/onlineEndpoints/write", make=_endpoint_call("", {"description": "changed"})
    ),
    ("DELETE", ONLINE + "/{name}"): Recipe(
        "workspaces/onlineEndpoints/delete", make=_endpoint_call()
    ),
    ("POST", ONLINE + "/{name}/listKeys"): Recipe(
        "workspaces/onlineEndpoints/listKeys/action", make=_endpoint_call("/listKeys")
    ),
    ("POST", ONLINE + "/{name}/regenerateKeys"): Recipe(
        "workspaces/onlineEndpoints/regenerateKeys/action",
        make=_endpoint_call("/regenerateKeys", {"keyType": "secondary"}),
    ),
    ("POST", ONLINE + "/{name}/token"): Recipe(
        "workspaces/onlineEndpoints/token/action",
        make=_endpoint_call("/token", auth_mode="aml_token"),
    ),
    ("POST", ONLINE + "/{endpoint}/deployments"): Recipe(
        "workspaces/onlineEndpoints/deployments/write", make=_new_deployment
    ),
    ("GET", ONLINE + "/{endpoint}/deployments"): Recipe(
        "workspaces/onlineEndpoints/deployments/read", make=_endpoint_call("/deployments")
    ),
    ("GET", ONLINE + "/{endpoint}/deployments/{name}"): Recipe(
        "workspaces/onlineEndpoints/deployments/read", make=_deployment_call()
    ),
    ("PATCH", ONLINE + "/{endpoint}/deployments/{name}"): Recipe(
        "workspaces/onlineEndpoints/deployments/write",
        make=_deployment_call("", {"instance_count": 2}),
    ),
    ("DELETE", ONLINE + "/{endpoint}/deployments/{name}"): Recipe(
        "workspaces/onlineEndpoints/deployments/delete", make=_deployment_call()
    ),
    ("GET", ONLINE + "/{endpoint}/deployments/{name}/logs"): Recipe(
        "workspaces/onlineEndpoints/deployments/read", make=_deployment_call("/logs")
    ),
    # batch endpoints and deployments; invoking one submits a job
    ("POST", BATCH): Recipe(
        "workspaces/batchEndpoints/write",
        make=lambda api, a, w: Call(BATCH.format(workspace=_ws(w)), {"name": unique("be")}),
    ),
    ("GET", BATCH): Recipe(
        "workspaces/batchEndpoints/read",
        make=lambda api, a, w: Call(BATCH.format(workspace=_ws(w))),
    ),
    ("GET", BATCH + "/{name}"): Recipe("workspaces/batchEndpoints/read", make=_batch_call()),
    ("PATCH", BATCH + "/{name}"): Recipe(
        "workspaces/batchEndpoints/write", make=_batch_call("", {"description": "changed"})
    ),
    ("DELETE", BATCH + "/{name}"): Recipe("workspaces/batchEndpoints/delete", make=_batch_call()),
    ("POST", BATCH + "/{name}/jobs"): Recipe(
        "workspaces/batchEndpoints/deployments/jobs/write", make=_batch_invoke
    ),
    ("GET", BATCH + "/{name}/jobs"): Recipe(
        "workspaces/batchEndpoints/read", make=_batch_call("/jobs")
    ),
    ("POST", BATCH + "/{endpoint}/deployments"): Recipe(
        "workspaces/batchEndpoints/deployments/write", make=_new_batch_deployment
    ),
    ("GET", BATCH + "/{endpoint}/deployments"): Recipe(
        "workspaces/batchEndpoints/deployments/read", make=_batch_call("/deployments")
    ),
    ("GET", BATCH + "/{endpoint}/deployments/{name}"): Recipe(
        "workspaces/batchEndpoints/deployments/read", make=_batch_call("/deployments/main")
    ),
    ("PATCH", BATCH + "/{endpoint}/deployments/{name}"): Recipe(
        "workspaces/batchEndpoints/deployments/write",
        make=_batch_call("/deployments/main", {"description": "changed"}),
    ),
    ("DELETE", BATCH + "/{endpoint}/deployments/{name}"): Recipe(
        "workspaces/batchEndpoints/deployments/delete", make=_batch_call("/deployments/main")
    ),
    # monitoring: the series of an endpoint and a deployment; /metrics spans every workspace
    ("GET", ONLINE + "/{endpoint}/metrics"): Recipe(
        "workspaces/onlineEndpoints/read", make=_endpoint_call("/metrics")
    ),
    ("GET", ONLINE + "/{endpoint}/deployments/{name}/metrics"): Recipe(
        "workspaces/onlineEndpoints/deployments/read", make=_deployment_call("/metrics")
    ),
    ("GET", "/metrics"): Recipe(
        "workspaces/onlineEndpoints/read", make=lambda api, a, w: Call("/metrics")
    ),
    # components
    ("GET", COMPONENTS): Recipe(
        "workspaces/components/read",
        make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/components"),
    ),
    ("POST", COMPONENTS + "/{name}/versions"): Recipe(
        "workspaces/components/write",
        make=lambda api, a, w: Call(
            f"/api/v1/workspaces/{w}/components/{unique('comp').replace('-', '_')}/versions",
            _COMPONENT,
        ),
    ),
    ("GET", COMPONENTS + "/{name}/versions"): Recipe(
        "workspaces/components/read", make=_component_call("/versions")
    ),
    ("GET", COMPONENTS + "/{name}/versions/{version}"): Recipe(
        "workspaces/components/read", make=_component_call("/versions/latest")
    ),
    ("PATCH", COMPONENTS + "/{name}/versions/{version}"): Recipe(
        "workspaces/components/write",
        make=_component_call("/versions/1", {"description": "changed"}),
    ),
    ("POST", COMPONENTS + "/{name}/versions/{version}/archive"): Recipe(
        "workspaces/components/write", make=_component_call("/versions/1/archive")
    ),
    ("POST", COMPONENTS + "/{name}/versions/{version}/restore"): Recipe(
        "workspaces/components/write", make=_component_call("/versions/1/restore")
    ),
    ("POST", COMPONENTS + "/{name}/archive"): Recipe(
        "workspaces/components/write", make=_component_call("/archive")
    ),
    ("POST", COMPONENTS + "/{name}/restore"): Recipe(
        "workspaces/components/write", make=_component_call("/restore")
    ),
    # the native model API (the same registry as MLflow's)
    ("PUT", MODELS + "/artifacts/{digest}"): Recipe(
        "workspaces/models/write", make=_upload_call("models", "manifest")
    ),
    ("PUT", MODELS + "/artifacts/{digest}/{path:path}"): Recipe(
        "workspaces/models/write", telemetry=True, make=_upload_call("models", "file")
    ),
    ("PUT", MODELS + "/artifacts/bundles/{digest}"): Recipe(
        "workspaces/models/write", telemetry=True, make=_upload_call("models", "bundle")
    ),
    ("POST", MODELS + "/artifacts/{digest}/commit"): Recipe(
        "workspaces/models/write", make=_upload_call("models", "commit")
    ),
    ("GET", MODELS): Recipe(
        "workspaces/models/read", make=lambda api, a, w: Call(f"/api/v1/workspaces/{w}/models")
    ),
    ("GET", MODELS + "/{name}"): Recipe("workspaces/models/read", make=_native_model_call()),
    ("PATCH", MODELS + "/{name}"): Recipe(
        "workspaces/models/write", make=_native_model_call(body={"description": "changed"})
    ),
    ("DELETE", MODELS + "/{name}"): Recipe("workspaces/models/delete", make=_native_model_call()),
    ("POST", MODELS + "/{name}/versions"): Recipe(
        "workspaces/models/write", make=_new_model_version
    ),
    ("GET", MODELS + "/{name}/versions"): Recipe(
        "workspaces/models/read", make=_native_model_call("/versions")
    ),
    ("GET", MODELS + "/{name}/versions/{version}"): Recipe(
        "workspaces/models/read", make=_native_model_call("/versions/1")
    ),
    ("PATCH", MODELS + "/{name}/versions/{version}"): Recipe(
        "workspaces/models/write", make=_native_model_call("/versions/1", {"description": "d"})
    ),
    ("DELETE", MODELS + "/{name}/versions/{version}"): Recipe(
        "workspaces/models/delete", make=_native_model_call("/versions/1")
    ),
    ("POST", MODELS + "/{name}/versions/{version}/stage"): Recipe(
        "workspaces/models/write",
        make=_native_model_call("/versions/1/stage", {"stage": "Staging"}),
    ),
    ("GET", MODELS + "/{name}/aliases/{alias}"): Recipe(
        "workspaces/models/read", make=_native_model_call("/aliases/champion")
    ),
    ("PUT", MODELS + "/{name}/aliases/{alias}"): Recipe(
        "workspaces/models/write", make=_native_model_call("/aliases/next", {"version": 1})
    ),
    ("DELETE", MODELS + "/{name}/aliases/{alias}"): Recipe(
        "workspaces/models/write", make=_native_model_call("/aliases/champion")
    ),
    ("GET", MODELS + "/{name}/versions/{version}/files"): Recipe(
        "workspaces/models/read", make=_native_model_call("/versions/1/files")
    ),
    ("GET", MODELS + "/{name}/versions/{version}/files/{path:path}"): Recipe(
        "workspaces/models/read", make=_native_model_call("/versions/1/files/a.csv")
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
        self._for_registries: dict[str, Actor] = {}

    def at_global(self, role: str) -> Actor:
        if role not in self._at_global:
            self._at_global[role] = self.api.user_with(role)
        return self._at_global[role]

    def at_workspace(self, role: str, workspace: str) -> Actor:
        """The role's workspace principal, given the role at ``workspace`` (and only the
        same role at the earlier cases' workspaces)."""
        if role in NOT_AT_WORKSPACE:
            return self.at_global(role)
        if role not in self._for_workspaces:
            self._for_workspaces[role] = self.api.user(role.lower().replace(" ", "-"))
        actor = self._for_workspaces[role]
        self.api.assign(role, workspace=workspace, user=actor.name)
        return actor

    def at_registry(self, role: str, registry: str) -> Actor:
        """The role's registry principal, given the role at ``registry`` (and only the same
        role at the earlier cases' registries)."""
        if role in NOT_AT_REGISTRY:
            return self.at_global(role)
        if role not in self._for_registries:
            self._for_registries[role] = self.api.user(role.lower().replace(" ", "-"))
        actor = self._for_registries[role]
        self.api.assign(role, registry=registry, user=actor.name)
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
    registry_route = "{registry}" in path
    # The case's workspace, or its registry: the scope of the route.
    if workspace_route:
        workspace: str | None = api.workspace()
        actor = principals.at_workspace(role, workspace)
    elif registry_route:
        workspace = api.registry()
        actor = principals.at_registry(role, workspace)
    else:
        workspace = None
        actor = principals.at_global(role)
    call = recipe.make(api, actor, workspace)
    response = api.call(
        method,
        call.path,
        {**actor.headers, **(call.headers or {})},
        json=call.json,
        params=call.params,
        content=call.content,
    )

    code = error_code(response)
    got = f"{response.status_code} {code}: {response.text[:300]}"
    what = f"{role} on {method} {call.path} ({recipe.action})"
    assert response.status_code != 401, f"{what}: the principal was not authenticated: {got}"
    assert response.status_code < 500, f"{what}: {got}"
    hiding_code = "workspace_not_found" if workspace_route else "registry_not_found"
    scoped = workspace_route or registry_route
    denied = (response.status_code == 403 and code in ("forbidden", "escalation")) or (
        scoped and response.status_code == 404 and code == hiding_code
    )
    if allowed:
        assert not denied, f"{what}: expected allowed, was denied: {got}"
        assert response.status_code < 300, f"{what}: allowed but did not succeed: {got}"
    else:
        assert denied, f"{what}: expected denied, got {got}"
    if not allowed and scoped:
        # Who can read the workspace (registry) learns they lack the action; who cannot,
        # learns nothing.
        kind = "workspace" if workspace_route else "registry"
        hidden = not expected_allowed(
            role, "workspaces/read" if workspace_route else "registries/read"
        )
        assert response.status_code == (404 if hidden else 403), f"{what}: {got}"
        if hidden:
            body = response.json()
            detail = body.get("detail", body.get("message"))
            assert detail == f"{kind} {workspace!r} does not exist", f"{what}: {got}"
    reads = recipe.action.endswith("/read") or response.request.method == "GET" or recipe.telemetry
    # A read of a secret value is recorded like a change (services/audit.py SENSITIVE_SUFFIXES).
    reads = reads and not recipe.action.endswith(SENSITIVE_SUFFIXES)
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


# ----------------------------------------------------------------------------------------
# The scoring route: served by the gateway (api/scoring_gateway.py), not a FastAPI route
# ----------------------------------------------------------------------------------------

SCORE = ONLINE + "/{name}/score"


def test_the_scoring_route_takes_the_endpoint_key_not_a_role(
    api: Api, principals: Principals
) -> None:
    """``POST <scoring_uri>`` is not in the route table (no workspace role reaches it): its
    credential is the endpoint's key or token. Every role's own token, the admin's too, is a
    401 there, and the endpoint's key gets past authentication (503 here: this server runs
    no deployments)."""
    assert ("POST", SCORE) not in {(r.method, r.path) for r in SERVED}
    workspace = api.workspace()
    name = _admin_endpoint(api, workspace)
    path = SCORE.format(workspace=workspace, name=name)
    for role in ROLE_NAMES:
        actor = principals.at_workspace(role, workspace)
        response = api.call("POST", path, actor.headers, json={"data": [1]})
        assert response.status_code == 401, f"{role}: {response.text}"
        assert problem_code(response) == "invalid_endpoint_credentials"
    assert api.call("POST", path, api.admin, json={}).status_code == 401
    keys = api.as_admin("POST", f"{ONLINE.format(workspace=workspace)}/{name}/listKeys").json()
    keyed = api.call("POST", path, {"Authorization": f"Bearer {keys['primary_key']}"}, json={})
    assert keyed.status_code == 503, keyed.text
    assert problem_code(keyed) == "no_ready_deployment"
