"""Role assignments: who holds which role where, with no way to grant more than you hold."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.actions import Scope
from shipyard.domain.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from shipyard.domain.principals import Principal
from shipyard.domain.roles import first_not_held
from shipyard.schemas.roles import RoleAssignmentCreate, RoleAssignmentRead
from shipyard.services.authz import Authorizer, registry_not_found
from shipyard.services.roles import require_role
from shipyard.store import groups as group_store
from shipyard.store import registries as registry_store
from shipyard.store import roles as store
from shipyard.store import users as user_store
from shipyard.store import workspaces as workspace_store
from shipyard.store.database import Database
from shipyard.store.roles import RoleAssignmentRow


class RoleAssignmentService:
    def __init__(self, db: Database, authorizer: Authorizer) -> None:
        self.db = db
        self.authorizer = authorizer

    def create(
        self, principal: Principal, scope: Scope, body: RoleAssignmentCreate
    ) -> RoleAssignmentRead:
        held = self.authorizer.permissions(principal, scope)
        try:
            with self.db.write() as session:
                role = require_role(session, body.role)
                if scope.kind not in role.assignable_scopes:
                    raise InvalidInputError(
                        f"role {role.name!r} can only be assigned at: "
                        + ", ".join(role.assignable_scopes),
                        code="scope_not_assignable",
                        field="role",
                    )
                # No escalation: every action the role grants must be one the granter holds.
                missing = first_not_held(held, tuple(role.actions), tuple(role.not_actions))
                if missing is not None:
                    raise ForbiddenError(
                        f"you cannot grant {role.name!r} at {scope.path}: it allows "
                        f"{missing}, which you do not hold there",
                        code="escalation",
                        field="role",
                    )
                kind, name = body.principal
                principal_id = _principal_id(session, kind, name)
                scope_type, scope_id = scope_key(session, scope)
                if store.list_assignments(
                    session,
                    scope_type=scope_type,
                    scope_id=scope_id,
                    filters={"principal_id": principal_id, "role_id": role.id},
                ):
                    raise _exists(role.name, name)
                row = RoleAssignmentRow(
                    principal_id=principal_id,
                    principal_type=kind,
                    role_id=role.id,
                    scope_type=scope_type,
                    scope_id=scope_id,
                    created_by=principal.id,
                )
                session.add(row)
                session.flush()
                return assignment_read(session, row, scope)
        except IntegrityError as exc:
            raise _exists(body.role, body.principal[1]) from exc

    def list(self, scope: Scope) -> list[RoleAssignmentRead]:
        with self.db.read() as session:
            scope_type, scope_id = scope_key(session, scope)
            rows = store.list_assignments(session, scope_type=scope_type, scope_id=scope_id)
            return [assignment_read(session, row, scope) for row in rows]

    def delete(self, scope: Scope, assignment_id: str) -> None:
        with self.db.write() as session:
            scope_type, scope_id = scope_key(session, scope)
            row = session.get(RoleAssignmentRow, assignment_id)
            if row is None or (row.scope_type, row.scope_id) != (scope_type, scope_id):
                raise NotFoundError(
                    f"role assignment {assignment_id!r} does not exist at {scope.path}",
                    code="role_assignment_not_found",
                    field="id",
                )
            session.delete(row)


def assign(
    session: Session,
    *,
    role: str,
    principal_id: str,
    scope_type: str,
    scope_id: str,
    principal_type: str = "user",
) -> None:
    """Record an assignment made by the system (a workspace's or a registry's creator becomes
    its Owner)."""
    session.add(
        RoleAssignmentRow(
            principal_id=principal_id,
            principal_type=principal_type,
            role_id=require_role(session, role).id,
            scope_type=scope_type,
            scope_id=scope_id,
            created_by=principal_id,
        )
    )


def scope_key(session: Session, scope: Scope) -> tuple[str, str]:
    if scope.kind == "workspace":
        row = workspace_store.get_workspace(session, scope.name or "")
        if row is None:
            raise NotFoundError(
                f"workspace {scope.name!r} does not exist",
                code="workspace_not_found",
                field="workspace",
            )
        return "workspace", row.id
    if scope.kind == "registry":
        registry_id = registry_store.get_registry_id(session, scope.name or "")
        if registry_id is None:
            raise registry_not_found(scope.name or "")
        return "registry", registry_id
    return scope.kind, scope.name or ""


def assignment_read(session: Session, row: RoleAssignmentRow, scope: Scope) -> RoleAssignmentRead:
    return RoleAssignmentRead(
        id=row.id,
        role=row.role.name,
        principal_type=row.principal_type,
        principal_name=_principal_name(session, row),
        scope=scope.path,
        workspace=scope.name if scope.kind == "workspace" else None,
        registry=scope.name if scope.kind == "registry" else None,
        created_at=row.created_at,
    )


def _principal_name(session: Session, row: RoleAssignmentRow) -> str:
    if row.principal_type == "group":
        group = session.get(group_store.GroupRow, row.principal_id)
        return group.name if group else "(deleted)"
    user = user_store.get_user(session, row.principal_id)
    return user.name if user else "(deleted)"


def _principal_id(session: Session, kind: str, name: str) -> str:
    if kind == "group":
        group = group_store.get_group(session, name)
        if group is None:
            raise NotFoundError(
                f"group {name!r} does not exist", code="group_not_found", field="group"
            )
        return group.id
    user = user_store.get_user_by_name(session, name)
    wanted = "service_principal" if kind == "service_principal" else "user"
    if user is None or user.kind != wanted:
        label = kind.replace("_", " ")
        raise NotFoundError(
            f"{label} {name!r} does not exist", code=f"{kind}_not_found", field=kind
        )
    return user.id


def _exists(role: str, name: str) -> ConflictError:
    return ConflictError(
        f"{name!r} already holds {role!r} here", code="role_assignment_exists", field="role"
    )
