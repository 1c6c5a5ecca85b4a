"""Groups: managed by admins and by the group's owners; members get the group's roles."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.errors import ConflictError, ForbiddenError, NotFoundError
from shipyard.domain.paging import decode_page_token
from shipyard.domain.principals import Principal
from shipyard.domain.roles import first_not_held
from shipyard.schemas.common import Page
from shipyard.schemas.groups import GroupCreate, GroupMember, GroupMemberAdd, GroupRead
from shipyard.services.authz import Authorizer
from shipyard.services.paging import split_page
from shipyard.store import groups as store
from shipyard.store import roles as role_store
from shipyard.store import users as user_store
from shipyard.store.database import Database
from shipyard.store.groups import GroupMemberRow, GroupRow


def group_read(session: Session, row: GroupRow) -> GroupRead:
    members: list[GroupMember] = []
    owners: list[GroupMember] = []
    for relation, name, kind in store.relations(session, row.id):
        (owners if relation == "owner" else members).append(GroupMember(name=name, kind=kind))
    return GroupRead(
        id=row.id,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        members=members,
        owners=owners,
    )


class GroupService:
    def __init__(self, db: Database, authorizer: Authorizer) -> None:
        self.db = db
        self.authorizer = authorizer

    def create(self, creator_id: str, body: GroupCreate) -> GroupRead:
        try:
            with self.db.write() as session:
                if store.get_group(session, body.name) is not None:
                    raise _exists(body.name)
                row = GroupRow(name=body.name, description=body.description)
                session.add(row)
                session.flush()
                # Whoever creates a group owns it, so they can manage it without being admin.
                session.add(
                    GroupMemberRow(group_id=row.id, principal_id=creator_id, relation="owner")
                )
                session.flush()
                return group_read(session, row)
        except IntegrityError as exc:
            raise _exists(body.name) from exc

    def get(self, name: str) -> GroupRead:
        with self.db.read() as session:
            return group_read(session, _require(session, name))

    def list(self, *, page_token: str | None, max_results: int) -> Page[GroupRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            rows = store.list_groups(session, after=after, limit=max_results + 1)
            page, token = split_page(rows, max_results, lambda r: r.name)
            items = [group_read(session, r) for r in page]
            return Page[GroupRead](items=items, next_page_token=token)

    def add(self, actor: Principal, name: str, body: GroupMemberAdd) -> GroupRead:
        with self.db.write() as session:
            group = _require(session, name)
            if body.relation == "member":
                self._check_no_escalation(session, actor, group)
            principal = user_store.get_user_by_name(session, body.name)
            if principal is None:
                raise NotFoundError(
                    f"no user or service principal is named {body.name!r}",
                    code="principal_not_found",
                    field="name",
                )
            if not store.is_related(session, group.id, principal.id, body.relation):
                session.add(
                    GroupMemberRow(
                        group_id=group.id, principal_id=principal.id, relation=body.relation
                    )
                )
                session.flush()
            return group_read(session, group)

    def _check_no_escalation(self, session: Session, actor: Principal, group: GroupRow) -> None:
        """Adding a member hands them the group's roles: the one adding must hold all of
        them, at each scope, as if granting them directly."""
        for row in role_store.assignments_of(session, group.id):
            held = self.authorizer.permissions_at(actor, row.scope_type, row.scope_id)
            missing = first_not_held(held, tuple(row.role.actions), tuple(row.role.not_actions))
            if missing is not None:
                raise ForbiddenError(
                    f"members of {group.name!r} get {row.role.name!r}, which allows {missing}; "
                    "you do not hold that, so you cannot add members",
                    code="escalation",
                    field="name",
                )

    def remove(self, name: str, member: str, relation: str) -> GroupRead:
        with self.db.write() as session:
            group = _require(session, name)
            principal = user_store.get_user_by_name(session, member)
            row = (
                session.get(GroupMemberRow, (group.id, principal.id, relation))
                if principal is not None
                else None
            )
            if row is None:
                raise NotFoundError(
                    f"{member!r} is not a {relation} of group {name!r}",
                    code="member_not_found",
                    field="member",
                )
            session.delete(row)
            session.flush()
            return group_read(session, group)

    def delete(self, name: str) -> None:
        with self.db.write() as session:
            group = _require(session, name)
            role_store.delete_assignments_of(session, group.id)
            session.delete(group)


def _require(session: Session, name: str) -> GroupRow:
    row = store.get_group(session, name)
    if row is None:
        raise NotFoundError(f"group {name!r} does not exist", code="group_not_found", field="group")
    return row


def _exists(name: str) -> ConflictError:
    return ConflictError(f"group {name!r} already exists", code="group_exists", field="name")
