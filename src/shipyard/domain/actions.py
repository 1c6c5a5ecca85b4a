"""The action vocabulary every route declares, modelled on Azure ML's RBAC actions.

A route names the one action it performs; the authorizer decides whether the caller may
perform it at the route's scope. Later resources add their actions here, in the same
``<scope kind>/<resource>/<verb>`` shape, so roles can match them with ``*`` wildcards.
"""

from __future__ import annotations

from dataclasses import dataclass

# Routes anyone may call, authenticated or not (health, readiness, the API description).
PUBLIC = "public"
# Routes any authenticated principal may call about itself (who am I, my own tokens).
SELF = "self"

WORKSPACES_READ = "workspaces/read"
WORKSPACES_WRITE = "workspaces/write"
WORKSPACES_DELETE = "workspaces/delete"

USERS_READ = "users/read"
USERS_WRITE = "users/write"
TOKENS_READ = "tokens/read"
TOKENS_WRITE = "tokens/write"


@dataclass(frozen=True)
class Scope:
    """Where an action applies: the whole server, or one workspace."""

    workspace: str | None = None

    @property
    def path(self) -> str:
        return f"/workspaces/{self.workspace}" if self.workspace else "/"


GLOBAL = Scope()
