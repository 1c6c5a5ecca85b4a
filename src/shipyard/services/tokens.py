"""Personal access tokens and the authentication of every request.

A token is ``shp_`` followed by 43 URL-safe characters (256 random bits). Only its sha256 is
stored; the token itself appears once, in the response that creates it. Revoking, expiry and
disabling the user take effect on the very next request: every request looks its token up.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy.orm import Session

from shipyard.domain import actions
from shipyard.domain.errors import ForbiddenError, InvalidInputError, NotFoundError
from shipyard.domain.errors import UnauthenticatedError as Unauthenticated
from shipyard.domain.paging import decode_page_token
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.users import TokenCreate, TokenCreated, TokenRead
from shipyard.services.authz import Authorizer
from shipyard.services.paging import split_page
from shipyard.store import tokens as store
from shipyard.store import users as user_store
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.tokens import TokenRow
from shipyard.store.users import UserRow

TOKEN_PREFIX = "shp_"  # noqa: S105  (a marker that makes leaked tokens easy to scan for)
_SHOWN_PREFIX = 12  # "shp_" + 8 characters: enough to tell tokens apart in a list


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def add_token(session: Session, user: UserRow, name: str, raw: str, ttl: timedelta) -> TokenRow:
    row = TokenRow(
        user_id=user.id,
        name=name,
        token_hash=hash_token(raw),
        prefix=raw[:_SHOWN_PREFIX],
        expires_at=utcnow() + ttl,
    )
    session.add(row)
    session.flush()
    return row


def token_read(row: TokenRow, user_name: str) -> TokenRead:
    return TokenRead(
        id=row.id,
        name=row.name,
        user=user_name,
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class TokenService:
    def __init__(
        self,
        db: Database,
        authorizer: Authorizer,
        *,
        default_ttl_days: int,
        max_ttl_days: int,
    ) -> None:
        self.db = db
        self.authorizer = authorizer
        self.default_ttl_days = default_ttl_days
        self.max_ttl_days = max_ttl_days

    def authenticate(self, raw: str | None) -> Principal:
        if not raw:
            raise Unauthenticated(
                "this request needs a bearer token (Authorization: Bearer <token>)",
                code="missing_token",
            )
        with self.db.connect() as conn:
            found = store.credential(conn, hash_token(raw))
        if found is None:
            raise Unauthenticated("the token is not valid", code="invalid_token")
        if found.revoked_at is not None:
            raise Unauthenticated("the token has been revoked", code="revoked_token")
        if found.expires_at <= utcnow():
            raise Unauthenticated("the token has expired", code="expired_token")
        if found.disabled:
            raise Unauthenticated("the token's user is disabled", code="disabled_user")
        return Principal(
            id=found.user_id,
            name=found.user_name,
            is_admin=found.is_admin,
            token_id=found.token_id,
            authz_version=found.authz_version,
            workspace_id=found.workspace_id,
        )

    def create(self, principal: Principal, body: TokenCreate) -> TokenCreated:
        days = body.expires_in_days or self.default_ttl_days
        if days > self.max_ttl_days:
            raise InvalidInputError(
                f"a token may live at most {self.max_ttl_days} days",
                code="token_lifetime_too_long",
                field="expires_in_days",
            )
        raw = new_token()
        with self.db.write() as session:
            user = self._target_user(session, principal, body.user)
            row = add_token(session, user, body.name, raw, timedelta(days=days))
            return TokenCreated(**token_read(row, user.name).model_dump(), token=raw)

    def list(
        self,
        principal: Principal,
        user_name: str | None,
        *,
        page_token: str | None,
        max_results: int,
    ) -> Page[TokenRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            user = self._target_user(session, principal, user_name)
            rows = store.list_tokens(session, user.id, after=after, limit=max_results + 1)
            page, token = split_page(rows, max_results, lambda r: r.id)
            items = [token_read(r, user.name) for r in page]
            return Page[TokenRead](items=items, next_page_token=token)

    def revoke(self, principal: Principal, token_id: str) -> TokenRead:
        with self.db.write() as session:
            row = store.get_token(session, token_id)
            owner = user_store.get_user(session, row.user_id) if row is not None else None
            if row is None or owner is None or not self._may_manage(principal, owner):
                # Someone else's token is reported as missing: its id is not theirs to learn.
                raise NotFoundError(
                    f"token {token_id!r} does not exist", code="token_not_found", field="id"
                )
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return token_read(row, owner.name)

    def _target_user(self, session: Session, principal: Principal, name: str | None) -> UserRow:
        user = (
            user_store.get_user(session, principal.id)
            if name is None
            else (user_store.get_user_by_name(session, name))
        )
        if user is None:
            raise NotFoundError(
                f"user {name!r} does not exist", code="user_not_found", field="user"
            )
        if not self._may_manage(principal, user):
            raise ForbiddenError(
                f"you may not manage the tokens of {user.name!r}", code="forbidden", field="user"
            )
        return user

    def _may_manage(self, principal: Principal, owner: UserRow) -> bool:
        """Your own tokens; another user's with users/write, a service principal's with
        servicePrincipals/write (both at global scope), and only if you hold all it holds."""
        if owner.id == principal.id:
            return True
        needed = actions.USERS_WRITE if owner.kind == "user" else actions.SERVICE_PRINCIPALS_WRITE
        # A token acts as its owner: minting one for a stronger principal is an escalation.
        return self.authorizer.permissions(principal, actions.GLOBAL).allows(
            needed
        ) and self.authorizer.dominates(principal, owner.id)
