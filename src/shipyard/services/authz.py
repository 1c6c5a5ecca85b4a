"""Who may do what: role-based access behind the API's single authorization dependency.

Every route declares one action; the dependency authenticates the caller and asks the
authorizer whether the caller may perform it at the route's scope. A principal's permissions
at a scope are the union, over its own assignments and its groups' assignments at that scope
or above (global ⊃ workspace, global ⊃ registry), of each role's actions minus that role's
not_actions. Admins are Owners at global scope. A caller who can see nothing of a workspace or
a registry gets 404 for it, never 403, so existence does not leak.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.domain import actions
from shipyard.domain.actions import Scope
from shipyard.domain.errors import ForbiddenError, NotFoundError
from shipyard.domain.principals import Principal
from shipyard.domain.roles import Permissions, first_not_held, permits
from shipyard.store import authz_state
from shipyard.store import registries as registry_store
from shipyard.store import roles as role_store
from shipyard.store import workspaces as workspace_store
from shipyard.store.database import Database
from shipyard.store.groups import GroupMemberRow, get_group
from shipyard.store.users import UserRow

ALL = Permissions(((("*",), ()),))


class Authorizer(Protocol):
    def authorize(self, principal: Principal, action: str, scope: Scope) -> None:
        """Return if allowed; raise ForbiddenError, or NotFoundError for what the caller
        may not even see."""

    def permissions(self, principal: Principal, scope: Scope) -> Permissions:
        """Everything the principal may do at the scope."""

    def readable_workspace_ids(self, principal: Principal) -> set[str] | None:
        """Ids of the workspaces the principal may read; None means every workspace."""

    def readable_registry_ids(self, principal: Principal) -> set[str] | None:
        """Ids of the registries the principal may read; None means every registry."""

    def permissions_at(self, principal: Principal, scope_type: str, scope_id: str) -> Permissions:
        """Like ``permissions``, for a scope as stored in an assignment (a workspace or a
        registry by id)."""

    def dominates(self, actor: Principal, target_id: str) -> bool:
        """Whether ``actor`` holds everything ``target`` holds, everywhere: the condition for
        acting as them (minting their tokens, setting their password, disabling them)."""


def group_ids(session: Session, principal_id: str) -> list[str]:
    query = select(GroupMemberRow.group_id).where(
        GroupMemberRow.principal_id == principal_id, GroupMemberRow.relation == "member"
    )
    return list(session.scalars(query))


@dataclass
class _Snapshot:
    """What the authorizer loaded while the authorization counter stood at ``version``."""

    version: int
    workspace_ids: dict[str, str | None] = field(default_factory=dict)
    # Safe to cache like workspace ids: creating a registry also assigns its creator Owner,
    # which moves the counter; a registry deleted without moving it is refused by its
    # service all the same (its id leads nowhere).
    registry_ids: dict[str, str | None] = field(default_factory=dict)
    grants: dict[tuple[str, str, str], Permissions] = field(default_factory=dict)


_MAX_CACHED = 50_000


class RoleBasedAuthorizer:
    """Evaluates roles, caching workspace ids and each principal's grants per scope for as
    long as the authorization counter (read with every credential) does not move, so the
    common check costs dictionary lookups rather than queries."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._snapshot = _Snapshot(version=-1)
        self._lock = threading.Lock()

    def authorize(self, principal: Principal, action: str, scope: Scope) -> None:
        if action == actions.SELF:
            if principal.workspace_id is not None:  # a job's token mints nothing, logs in nowhere
                raise ForbiddenError(
                    "a job's token acts in its job's workspace only", code="forbidden"
                )
            return
        snapshot = self._current(principal)
        scope_type, scope_id = self._scope_key(snapshot, scope)
        _check_confined(principal, scope, scope_type, scope_id)
        if principal.is_admin:
            return
        granted = self._grants(snapshot, principal, scope_type, scope_id)
        if granted.allows(action):
            return
        if scope.kind == "group" and self._owns_group(principal, scope):
            return
        if scope.kind == "workspace" and not granted.allows(actions.WORKSPACES_READ):
            raise _workspace_not_found(scope.name or "", concealed=True)
        if scope.kind == "registry" and not granted.allows(actions.REGISTRIES_READ):
            raise registry_not_found(scope.name or "", concealed=True)
        raise ForbiddenError(
            f"{principal.name} may not perform {action} at {scope.path}", code="forbidden"
        )

    def permissions(self, principal: Principal, scope: Scope) -> Permissions:
        snapshot = self._current(principal)
        scope_type, scope_id = self._scope_key(snapshot, scope)
        if principal.workspace_id is not None and scope_id != principal.workspace_id:
            return Permissions(())
        if principal.is_admin:
            return ALL
        return self._grants(snapshot, principal, scope_type, scope_id)

    def permissions_at(self, principal: Principal, scope_type: str, scope_id: str) -> Permissions:
        if principal.workspace_id is not None and scope_id != principal.workspace_id:
            return Permissions(())
        if principal.is_admin:
            return ALL
        return self._grants(self._current(principal), principal, scope_type, scope_id)

    def dominates(self, actor: Principal, target_id: str) -> bool:
        if actor.is_admin or actor.id == target_id:
            return True
        with self.db.read() as session:
            target = session.get(UserRow, target_id)
            if target is None or target.is_admin:
                return False  # only an admin may act as an admin
            ids = [target_id, *group_ids(session, target_id)]
            held_by_target = [
                (row.scope_type, row.scope_id, tuple(row.role.actions), tuple(row.role.not_actions))
                for row in role_store.assignments_of_any(session, ids)
            ]
        for scope_type, scope_id, acts, nots in held_by_target:
            mine = self.permissions_at(actor, scope_type, scope_id)
            if first_not_held(mine, acts, nots) is not None:
                return False
        return True

    def readable_workspace_ids(self, principal: Principal) -> set[str] | None:
        if principal.workspace_id is not None:
            return {principal.workspace_id}
        return self._readable_ids(principal, "workspace", actions.WORKSPACES_READ)

    def readable_registry_ids(self, principal: Principal) -> set[str] | None:
        if principal.workspace_id is not None:
            return set()  # a job's token acts in its workspace only
        return self._readable_ids(principal, "registry", actions.REGISTRIES_READ)

    def _readable_ids(self, principal: Principal, scope_type: str, read: str) -> set[str] | None:
        """Ids of the scopes of ``scope_type`` where the principal may ``read``; None: all."""
        if principal.is_admin:
            return None
        with self.db.read() as session:
            ids = [principal.id, *group_ids(session, principal.id)]
            if self._permissions_for(session, ids, [("global", "")]).allows(read):
                return None
            return {
                scope_id
                for acts, nots, scope_id in role_store.grants_by_scope(session, ids, scope_type)
                if permits(tuple(acts), tuple(nots), read)
            }

    def _current(self, principal: Principal) -> _Snapshot:
        version = principal.authz_version
        if version is None:
            with self.db.read() as session:
                version = authz_state.current_version(session)
        snapshot = self._snapshot
        if snapshot.version != version or len(snapshot.grants) > _MAX_CACHED:
            with self._lock:
                if self._snapshot.version != version or len(self._snapshot.grants) > _MAX_CACHED:
                    self._snapshot = _Snapshot(version=version)
                snapshot = self._snapshot
        return snapshot

    def _scope_key(self, snapshot: _Snapshot, scope: Scope) -> tuple[str, str]:
        """The scope as assignments store it. A group's scope inherits only global grants."""
        if scope.kind == "registry":
            return "registry", self._registry_id(snapshot, scope.name or "")
        if scope.kind != "workspace":
            return "global", ""
        name = scope.name or ""
        if name not in snapshot.workspace_ids:
            with self.db.read() as session:
                snapshot.workspace_ids[name] = workspace_store.get_workspace_id(session, name)
        workspace_id = snapshot.workspace_ids[name]
        if workspace_id is None:
            raise _workspace_not_found(name)
        return "workspace", workspace_id

    def _registry_id(self, snapshot: _Snapshot, name: str) -> str:
        if name not in snapshot.registry_ids:
            with self.db.read() as session:
                snapshot.registry_ids[name] = registry_store.get_registry_id(session, name)
        registry_id = snapshot.registry_ids[name]
        if registry_id is None:
            raise registry_not_found(name)
        return registry_id

    def _grants(
        self, snapshot: _Snapshot, principal: Principal, scope_type: str, scope_id: str
    ) -> Permissions:
        key = (principal.id, scope_type, scope_id)
        cached = snapshot.grants.get(key)
        if cached is None:
            scopes = [("global", "")]
            if scope_type != "global":
                scopes.append((scope_type, scope_id))
            with self.db.read() as session:
                ids = [principal.id, *group_ids(session, principal.id)]
                cached = self._permissions_for(session, ids, scopes)
            snapshot.grants[key] = cached
        return cached

    @staticmethod
    def _permissions_for(
        session: Session, principal_ids: list[str], scopes: list[tuple[str, str]]
    ) -> Permissions:
        grants = role_store.grants_for(session, principal_ids, scopes)
        return Permissions(tuple((tuple(a), tuple(n)) for a, n, _, _ in grants))

    def _owns_group(self, principal: Principal, scope: Scope) -> bool:
        with self.db.read() as session:
            group = get_group(session, scope.name or "")
            if group is None:
                return False
            return session.get(GroupMemberRow, (group.id, principal.id, "owner")) is not None


def _check_confined(principal: Principal, scope: Scope, scope_type: str, scope_id: str) -> None:
    """A job's token works in its job's workspace only: anything else is refused, and another
    workspace looks as if it did not exist."""
    if principal.workspace_id is None:
        return
    if scope_type == "workspace" and scope_id == principal.workspace_id:
        return
    if scope_type == "workspace":
        raise _workspace_not_found(scope.name or "", concealed=True)
    if scope_type == "registry":
        raise registry_not_found(scope.name or "", concealed=True)
    raise ForbiddenError(
        f"a job's token acts in its job's workspace only, not at {scope.path}",
        code="forbidden",
    )


class ConcealedError(NotFoundError):
    """A 404 that stands for a denial: the caller may not know the workspace exists."""


def _workspace_not_found(name: str, *, concealed: bool = False) -> NotFoundError:
    error_class = ConcealedError if concealed else NotFoundError
    return error_class(
        f"workspace {name!r} does not exist", code="workspace_not_found", field="workspace"
    )


def registry_not_found(name: str, *, concealed: bool = False) -> NotFoundError:
    """The answer for a registry that does not exist, or that the caller may not read."""
    error_class = ConcealedError if concealed else NotFoundError
    return error_class(
        f"registry {name!r} does not exist", code="registry_not_found", field="registry"
    )
