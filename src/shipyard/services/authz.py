"""Who may do what: the policy behind the API's single authorization dependency.

Every route declares one action; the dependency authenticates the caller and asks the
authorizer. This issue's policy is deliberately simple (admins may do everything; a user may
create workspaces and do everything in the workspaces they created). Role-based access plugs
in here as another ``Authorizer`` without touching any route.
"""

from __future__ import annotations

from typing import Protocol

from shipyard.domain import actions
from shipyard.domain.actions import Scope
from shipyard.domain.errors import ForbiddenError, NotFoundError
from shipyard.domain.principals import Principal
from shipyard.store import workspaces as workspace_store
from shipyard.store.database import Database


class Authorizer(Protocol):
    def authorize(self, principal: Principal, action: str, scope: Scope) -> None:
        """Return if allowed; raise ForbiddenError (or NotFoundError for a missing scope)."""

    def workspace_creator_filter(self, principal: Principal) -> str | None:
        """The creator id a workspace listing is limited to, or None for every workspace."""


# Actions any signed-in user may take at the server scope.
_USER_GLOBAL = {
    actions.SELF,
    actions.TOKENS_READ,
    actions.TOKENS_WRITE,
    actions.WORKSPACES_READ,  # listing; the list is filtered to what the caller may see
    actions.WORKSPACES_WRITE,  # creating a workspace
}


class CreatorPolicy:
    def __init__(self, db: Database) -> None:
        self.db = db

    def authorize(self, principal: Principal, action: str, scope: Scope) -> None:
        if scope.workspace is not None:
            creator = self._workspace_creator(scope.workspace)
            if principal.is_admin or creator == principal.id:
                return
            raise _forbidden(principal, action, scope)
        if principal.is_admin or action in _USER_GLOBAL:
            return
        raise _forbidden(principal, action, scope)

    def workspace_creator_filter(self, principal: Principal) -> str | None:
        return None if principal.is_admin else principal.id

    def _workspace_creator(self, name: str) -> str:
        with self.db.read() as session:
            row = workspace_store.get_workspace(session, name)
            if row is None:
                raise NotFoundError(
                    f"workspace {name!r} does not exist",
                    code="workspace_not_found",
                    field="workspace",
                )
            return row.created_by


def _forbidden(principal: Principal, action: str, scope: Scope) -> ForbiddenError:
    return ForbiddenError(
        f"{principal.name} may not perform {action} at {scope.path}", code="forbidden"
    )
