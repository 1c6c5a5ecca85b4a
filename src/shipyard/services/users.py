"""Users: created and disabled by admins; disabling takes effect on the next request."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.errors import ConflictError, ForbiddenError, NotFoundError
from shipyard.domain.paging import decode_page_token
from shipyard.domain.principals import Principal
from shipyard.domain.roles import first_not_held
from shipyard.schemas.common import Page
from shipyard.schemas.users import PasswordChange, UserCreate, UserRead, UserUpdate
from shipyard.services.authz import Authorizer
from shipyard.services.paging import split_page
from shipyard.services.passwords import Passwords
from shipyard.services.role_assignments import assign
from shipyard.services.roles import require_role
from shipyard.store import users as store
from shipyard.store.database import Database
from shipyard.store.users import UserRow


def user_read(row: UserRow) -> UserRead:
    return UserRead(
        id=row.id,
        name=row.name,
        display_name=row.display_name,
        email=row.email,
        is_admin=row.is_admin,
        disabled=row.disabled,
        has_password=row.password_hash is not None,
        created_at=row.created_at,
    )


class UserService:
    def __init__(
        self,
        db: Database,
        passwords: Passwords,
        authorizer: Authorizer,
        *,
        new_user_roles: list[str],
    ) -> None:
        self.db = db
        self.passwords = passwords
        self.authorizer = authorizer
        self.new_user_roles = new_user_roles

    def create(self, actor: Principal, body: UserCreate) -> UserRead:
        if body.is_admin and not actor.is_admin:
            raise ForbiddenError(
                "only an admin may create an admin", code="escalation", field="is_admin"
            )
        try:
            with self.db.read() as session:
                self._check_may_grant_new_user_roles(session, actor)
            with self.db.write() as session:
                if store.get_user_by_name(session, body.name) is not None:
                    raise _duplicate(body.name)
                row = UserRow(**body.model_dump(exclude={"password"}))
                if body.password is not None:
                    row.password_hash = self.passwords.hash(body.password.get_secret_value())
                session.add(row)
                session.flush()
                for role in self.new_user_roles:  # e.g. Workspace Creator: self-serve
                    assign(
                        session, role=role, principal_id=row.id, scope_type="global", scope_id=""
                    )
                return user_read(row)
        except IntegrityError as exc:  # a concurrent create of the same name won the race
            raise _duplicate(body.name) from exc

    def _check_may_grant_new_user_roles(self, session: Session, actor: Principal) -> None:
        """A new user gets ``new_user_roles``; whoever creates them (and may know their
        password) must hold all of that, or creating users would be a way to escalate."""
        held = self.authorizer.permissions_at(actor, "global", "")
        for name in self.new_user_roles:
            role = require_role(session, name)
            missing = first_not_held(held, tuple(role.actions), tuple(role.not_actions))
            if missing is not None:
                raise ForbiddenError(
                    f"new users get {name!r}, which allows {missing}; you do not hold that, "
                    "so you cannot create users",
                    code="escalation",
                    field="name",
                )

    def change_own_password(self, principal: Principal, body: PasswordChange) -> UserRead:
        with self.db.write() as session:
            row = _require(session, principal.name)
            current = body.current_password.get_secret_value() if body.current_password else ""
            if row.password_hash is not None and not self.passwords.verify(
                row.password_hash, current
            ):
                raise ForbiddenError(
                    "the current password is not right",
                    code="wrong_password",
                    field="current_password",
                )
            row.password_hash = self.passwords.hash(
                body.new_password.get_secret_value(), field="new_password"
            )
            row.failed_logins, row.locked_until = 0, None
            session.flush()
            return user_read(row)

    def get(self, name: str) -> UserRead:
        with self.db.read() as session:
            return user_read(_require(session, name))

    def list(self, *, page_token: str | None, max_results: int) -> Page[UserRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            rows = store.list_users(session, after=after, limit=max_results + 1)
            page, token = split_page(rows, max_results, lambda r: r.name)
            return Page[UserRead](items=[user_read(r) for r in page], next_page_token=token)

    def update(self, actor: Principal, name: str, body: UserUpdate) -> UserRead:
        with self.db.read() as session:
            target_id = _require(session, name).id
        # Setting someone's password or disabling them is acting on them: only for those who
        # hold everything they hold (an admin, for an admin).
        if not self.authorizer.dominates(actor, target_id):
            raise ForbiddenError(
                f"{name!r} holds permissions you do not; you cannot change them",
                code="escalation",
                field="name",
            )
        with self.db.write() as session:
            row = _require(session, name)
            if body.disabled and row.is_admin and not row.disabled:
                _refuse_if_last_admin(session, row)
            for field in body.model_fields_set - {"password"}:
                value = getattr(body, field)
                if field == "disabled" and value is None:
                    continue  # the flag has no "unset"; null means "leave as it is"
                setattr(row, field, value)
            if body.password is not None:
                row.password_hash = self.passwords.hash(body.password.get_secret_value())
                row.failed_logins, row.locked_until = 0, None
            session.flush()
            return user_read(row)


def _require(session: Session, name: str) -> UserRow:
    row = store.get_user_by_name(session, name)
    if row is None:
        raise NotFoundError(f"user {name!r} does not exist", code="user_not_found", field="name")
    return row


def _refuse_if_last_admin(session: Session, row: UserRow) -> None:
    if store.count_enabled_admins(session) <= 1:
        raise ConflictError(
            f"{row.name!r} is the last enabled admin; disabling it would lock everyone out",
            code="last_admin",
            field="disabled",
        )


def _duplicate(name: str) -> ConflictError:
    return ConflictError(f"user {name!r} already exists", code="user_exists", field="name")
