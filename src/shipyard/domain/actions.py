"""The action vocabulary every route declares, modelled on Azure ML's RBAC actions.

A route names the one action it performs; the authorizer decides whether the caller may
perform it at the route's scope. Actions read ``<resource path>/<verb>``; roles match them
with ``*`` wildcards. Later resources add their actions to ``CATALOG`` so that the
no-escalation check and the role matrix test know them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Routes anyone may call, authenticated or not (health, readiness, the API description).
PUBLIC = "public"
# Routes any authenticated principal may call about itself (who am I, my own tokens).
SELF = "self"

WORKSPACES_CREATE = "workspaces/create"  # at global scope: self-serve workspace creation
WORKSPACES_READ = "workspaces/read"
WORKSPACES_WRITE = "workspaces/write"
WORKSPACES_DELETE = "workspaces/delete"
WORKSPACE_ROLE_ASSIGNMENTS_READ = "workspaces/roleAssignments/read"
WORKSPACE_ROLE_ASSIGNMENTS_WRITE = "workspaces/roleAssignments/write"
WORKSPACE_ROLE_ASSIGNMENTS_DELETE = "workspaces/roleAssignments/delete"
WORKSPACE_AUDIT_READ = "workspaces/audit/read"
# Runs are jobs, and experiments group them: both go by the jobs actions, as in Azure ML.
JOBS_READ = "workspaces/jobs/read"
JOBS_WRITE = "workspaces/jobs/write"
JOBS_DELETE = "workspaces/jobs/delete"
MODELS_READ = "workspaces/models/read"
MODELS_WRITE = "workspaces/models/write"
MODELS_DELETE = "workspaces/models/delete"
DATASTORES_READ = "workspaces/datastores/read"
DATASTORES_WRITE = "workspaces/datastores/write"
DATASTORES_DELETE = "workspaces/datastores/delete"
# Reading a datastore's keys: a secret value, refused by every built-in role but Owner and
# Contributor, and audited like every action ending in /action.
DATASTORES_LIST_SECRETS = "workspaces/datastores/listSecrets/action"
DATA_READ = "workspaces/data/read"
DATA_WRITE = "workspaces/data/write"
DATA_DELETE = "workspaces/data/delete"
ENVIRONMENTS_READ = "workspaces/environments/read"
ENVIRONMENTS_WRITE = "workspaces/environments/write"  # also: building a version
ENVIRONMENTS_DELETE = "workspaces/environments/delete"
COMPONENTS_READ = "workspaces/components/read"
COMPONENTS_WRITE = "workspaces/components/write"  # also: archiving and restoring
COMPONENTS_DELETE = "workspaces/components/delete"
SCHEDULES_READ = "workspaces/schedules/read"
SCHEDULES_WRITE = "workspaces/schedules/write"  # also: enabling and disabling
SCHEDULES_DELETE = "workspaces/schedules/delete"
COMPUTES_READ = "workspaces/computes/read"
COMPUTES_WRITE = "workspaces/computes/write"
COMPUTES_DELETE = "workspaces/computes/delete"
# Reading a secret's value; a job that injects secrets needs its submitter to hold it.
SECRETS_READ = "workspaces/secrets/read"

USERS_READ = "users/read"
USERS_WRITE = "users/write"
SERVICE_PRINCIPALS_READ = "servicePrincipals/read"
SERVICE_PRINCIPALS_WRITE = "servicePrincipals/write"
SERVICE_PRINCIPALS_DELETE = "servicePrincipals/delete"
GROUPS_READ = "groups/read"
GROUPS_WRITE = "groups/write"
GROUPS_DELETE = "groups/delete"
ROLES_READ = "roles/read"
ROLES_WRITE = "roles/write"
ROLES_DELETE = "roles/delete"
ROLE_ASSIGNMENTS_READ = "roleAssignments/read"
ROLE_ASSIGNMENTS_WRITE = "roleAssignments/write"
ROLE_ASSIGNMENTS_DELETE = "roleAssignments/delete"
AUDIT_READ = "audit/read"
# Online endpoints (Azure's names). Reading keys and minting tokens end in /action: audited,
# and outside every role that grants only */read.
ONLINE_ENDPOINTS_READ = "workspaces/onlineEndpoints/read"
ONLINE_ENDPOINTS_WRITE = "workspaces/onlineEndpoints/write"
ONLINE_ENDPOINTS_DELETE = "workspaces/onlineEndpoints/delete"
ONLINE_ENDPOINTS_LIST_KEYS = "workspaces/onlineEndpoints/listKeys/action"
ONLINE_ENDPOINTS_REGENERATE_KEYS = "workspaces/onlineEndpoints/regenerateKeys/action"
ONLINE_ENDPOINTS_TOKEN = "workspaces/onlineEndpoints/token/action"  # noqa: S105  (an action)
ONLINE_ENDPOINTS_SCORE = "workspaces/onlineEndpoints/score/action"
ONLINE_DEPLOYMENTS_READ = "workspaces/onlineEndpoints/deployments/read"
ONLINE_DEPLOYMENTS_WRITE = "workspaces/onlineEndpoints/deployments/write"
ONLINE_DEPLOYMENTS_DELETE = "workspaces/onlineEndpoints/deployments/delete"
# Batch endpoints (Azure's names). Invoking one starts a scoring job, which is Azure's
# deployments/jobs/write: the endpoint's people (ML Engineer) may run what they deployed
# without holding jobs/write, which would let them run any command.
BATCH_ENDPOINTS_READ = "workspaces/batchEndpoints/read"
BATCH_ENDPOINTS_WRITE = "workspaces/batchEndpoints/write"
BATCH_ENDPOINTS_DELETE = "workspaces/batchEndpoints/delete"
BATCH_DEPLOYMENTS_READ = "workspaces/batchEndpoints/deployments/read"
BATCH_DEPLOYMENTS_WRITE = "workspaces/batchEndpoints/deployments/write"
BATCH_DEPLOYMENTS_DELETE = "workspaces/batchEndpoints/deployments/delete"
BATCH_ENDPOINTS_INVOKE = "workspaces/batchEndpoints/deployments/jobs/write"
# Registries: creating one is registries/write at global scope (the registry does not exist
# yet); reading, changing and deleting it are checked at the registry's own scope.
REGISTRIES_READ = "registries/read"
REGISTRIES_WRITE = "registries/write"
REGISTRIES_DELETE = "registries/delete"
REGISTRY_ROLE_ASSIGNMENTS_READ = "registries/roleAssignments/read"
REGISTRY_ROLE_ASSIGNMENTS_WRITE = "registries/roleAssignments/write"
REGISTRY_ROLE_ASSIGNMENTS_DELETE = "registries/roleAssignments/delete"
# Assets in a registry (components today): reading one also lets a pipeline of any workspace
# the caller works in use it.
REGISTRY_ASSETS_READ = "registries/assets/read"
REGISTRY_ASSETS_WRITE = "registries/assets/write"  # also: archiving and restoring
REGISTRY_ASSETS_DELETE = "registries/assets/delete"

_CRUD = ("read", "write", "delete")
_WORKSPACE_RESOURCES = (
    "jobs",
    "data",
    "models",
    "environments",
    "components",
    "computes",
    "datastores",
    "onlineEndpoints",
    "onlineEndpoints/deployments",
    "batchEndpoints",
    "batchEndpoints/deployments",
    "schedules",
    "roleAssignments",
)

# Every action Shipyard knows, today's routes and the resources later issues add. A role that
# grants an action outside this list grants nothing anyone can use.
CATALOG: tuple[str, ...] = (
    WORKSPACES_CREATE,
    WORKSPACES_READ,
    WORKSPACES_WRITE,
    WORKSPACES_DELETE,
    *(f"workspaces/{r}/{verb}" for r in _WORKSPACE_RESOURCES for verb in _CRUD),
    "workspaces/onlineEndpoints/score/action",
    "workspaces/onlineEndpoints/listKeys/action",
    "workspaces/onlineEndpoints/regenerateKeys/action",
    "workspaces/onlineEndpoints/token/action",
    BATCH_ENDPOINTS_INVOKE,
    "workspaces/datastores/listSecrets/action",
    "workspaces/secrets/metadata/read",  # names and dates, never values
    "workspaces/secrets/read",  # secret values
    "workspaces/secrets/write",
    "workspaces/secrets/delete",
    WORKSPACE_AUDIT_READ,
    USERS_READ,
    USERS_WRITE,
    SERVICE_PRINCIPALS_READ,
    SERVICE_PRINCIPALS_WRITE,
    SERVICE_PRINCIPALS_DELETE,
    GROUPS_READ,
    GROUPS_WRITE,
    GROUPS_DELETE,
    ROLES_READ,
    ROLES_WRITE,
    ROLES_DELETE,
    ROLE_ASSIGNMENTS_READ,
    ROLE_ASSIGNMENTS_WRITE,
    ROLE_ASSIGNMENTS_DELETE,
    AUDIT_READ,
    REGISTRIES_READ,
    REGISTRIES_WRITE,
    REGISTRIES_DELETE,
    *(f"registries/assets/{verb}" for verb in _CRUD),
    *(f"registries/roleAssignments/{verb}" for verb in _CRUD),
)

ScopeKind = Literal["global", "workspace", "registry", "group"]


@dataclass(frozen=True)
class Scope:
    """Where an action applies: the whole server, one workspace, one registry or one group."""

    kind: ScopeKind = "global"
    name: str | None = None

    @property
    def path(self) -> str:
        return "/" if self.kind == "global" else f"/{_PLURALS[self.kind]}/{self.name}"


_PLURALS = {"workspace": "workspaces", "registry": "registries", "group": "groups"}


GLOBAL = Scope()


def workspace_scope(name: str) -> Scope:
    return Scope("workspace", name)


def registry_scope(name: str) -> Scope:
    return Scope("registry", name)
