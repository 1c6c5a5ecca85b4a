"""Roles: lists of allowed actions minus not-allowed ones, with ``*`` wildcards.

A wildcard matches any run of characters, slashes included, and matching ignores case, as in
Azure's role definitions: ``workspaces/*/read`` matches ``workspaces/jobs/read`` and
``workspaces/onlineEndpoints/deployments/read``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from shipyard.domain.actions import CATALOG

SCOPE_KINDS = ("global", "workspace", "registry")


@lru_cache(maxsize=4096)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")), re.IGNORECASE)


def matches(pattern: str, action: str) -> bool:
    return _pattern(pattern).fullmatch(action) is not None


@dataclass(frozen=True)
class RoleDefinition:
    name: str
    description: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()
    assignable_scopes: tuple[str, ...] = SCOPE_KINDS
    builtin: bool = False

    def permits(self, action: str) -> bool:
        return permits(self.actions, self.not_actions, action)

    def granted(self) -> frozenset[str]:
        """The known actions this role allows (used to refuse escalation)."""
        return frozenset(a for a in CATALOG if self.permits(a))


@lru_cache(maxsize=65536)
def permits(actions: tuple[str, ...], not_actions: tuple[str, ...], action: str) -> bool:
    return any(matches(p, action) for p in actions) and not any(
        matches(p, action) for p in not_actions
    )


@dataclass(frozen=True)
class Permissions:
    """The union of several roles' grants (each role's actions minus its own not_actions)."""

    grants: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = field(default=())

    def allows(self, action: str) -> bool:
        return any(permits(actions, not_actions, action) for actions, not_actions in self.grants)


def first_not_held(
    held: Permissions, actions: tuple[str, ...], not_actions: tuple[str, ...]
) -> str | None:
    """The first known action a role grants that ``held`` does not: granting the role (or a
    group holding it) would be an escalation. None when nothing is missing."""
    for action in CATALOG:
        if permits(actions, not_actions, action) and not held.allows(action):
            return action
    return None


_SECRETS = ("workspaces/secrets/read", "workspaces/datastores/listSecrets/action")
_ASSIGNING = ("*roleAssignments/write", "*roleAssignments/delete")

BUILTIN_ROLES: tuple[RoleDefinition, ...] = (
    RoleDefinition(
        "Owner",
        "Everything at its scope, including role assignments.",
        ("*",),
        builtin=True,
    ),
    RoleDefinition(
        "Contributor",
        "Everything at its scope except role assignments, custom roles and identities.",
        ("*",),
        (
            *_ASSIGNING,
            "roles/write",
            "roles/delete",
            "users/write",
            "servicePrincipals/write",
            "servicePrincipals/delete",
        ),
        builtin=True,
    ),
    RoleDefinition(
        "Reader",
        "Read everything except secret values and datastore credentials.",
        ("*/read",),
        _SECRETS,
        builtin=True,
    ),
    RoleDefinition(
        "Data Scientist",
        "Everything inside a workspace except changing or deleting the workspace, creating or "
        "deleting compute, reading secret values, and role assignments.",
        ("workspaces/*",),
        (
            "workspaces/create",
            "workspaces/write",
            "workspaces/delete",
            "workspaces/computes/write",
            "workspaces/computes/delete",
            *_SECRETS,
            *_ASSIGNING,
        ),
        builtin=True,
    ),
    RoleDefinition(
        "ML Engineer",
        "Read everything; create, update and delete models, environments, online and batch "
        "endpoints with their deployments, and schedules.",
        (
            "*/read",
            "workspaces/models/*",
            "workspaces/environments/*",
            "workspaces/onlineEndpoints/*",
            "workspaces/batchEndpoints/*",
            "workspaces/schedules/*",
        ),
        _SECRETS,
        builtin=True,
    ),
    RoleDefinition(
        "Compute Operator",
        "Compute targets only (and seeing the workspace they belong to).",
        ("workspaces/read", "workspaces/computes/*"),
        builtin=True,
    ),
    RoleDefinition(
        "Registry User",
        "Read and write assets in registries; not create or delete registries.",
        ("registries/read", "registries/assets/*"),
        assignable_scopes=("global", "registry"),
        builtin=True,
    ),
    RoleDefinition(
        "Workspace Creator",
        "May create workspaces (self-serve); becomes Owner of each workspace it creates.",
        ("workspaces/create",),
        assignable_scopes=("global",),
        builtin=True,
    ),
)

OWNER = BUILTIN_ROLES[0]
