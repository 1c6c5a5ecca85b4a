"""Studio login: password → session cookie, with CSRF tokens, rate limits and lockout.

The session token (the cookie) and the CSRF token are random; only their sha256 hashes are
stored. A request authenticated by cookie must repeat the CSRF token in a header for every
change, so another site cannot make the browser act for the user.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from shipyard.domain.errors import ShipyardError, UnauthenticatedError
from shipyard.domain.principals import Principal
from shipyard.schemas.users import LoginRequest, SessionRead
from shipyard.services.passwords import Passwords
from shipyard.services.rate_limit import SlidingWindowLimiter
from shipyard.services.tokens import hash_token
from shipyard.services.users import user_read
from shipyard.store import sessions as store
from shipyard.store import users as user_store
from shipyard.store.authz_state import current_version
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.sessions import SessionRow
from shipyard.store.users import UserRow

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class TooManyAttemptsError(ShipyardError):
    default_code = "too_many_attempts"
    status = 429


@dataclass(frozen=True)
class LoginPolicy:
    session_ttl: timedelta
    max_failures: int
    lockout: timedelta


@dataclass(frozen=True)
class NewSession:
    token: str
    read: SessionRead


class SessionService:
    def __init__(
        self,
        db: Database,
        passwords: Passwords,
        policy: LoginPolicy,
        limiter: SlidingWindowLimiter,
    ) -> None:
        self.db = db
        self.passwords = passwords
        self.policy = policy
        self.limiter = limiter

    def login(self, body: LoginRequest, client: str) -> NewSession:
        if not self.limiter.allow(client):
            raise TooManyAttemptsError("too many login attempts from this address; wait a minute")
        refused = UnauthenticatedError("wrong name or password", code="login_failed")
        with self.db.write() as session:
            user = user_store.get_user_by_name(session, body.name)
            now = utcnow()
            if user is not None and user.locked_until is not None and user.locked_until > now:
                raise UnauthenticatedError(
                    "this account is locked after repeated failed logins; try again later",
                    code="account_locked",
                )
            valid = self.passwords.verify(
                user.password_hash if user else None, body.password.get_secret_value()
            )
            if user is None or user.disabled or user.kind != "user":
                raise refused
            if valid:
                user.failed_logins = 0
                user.locked_until = None
                return self._open(session, user)
            # Counted in this transaction, which commits: the error is raised after it.
            user.failed_logins += 1
            if user.failed_logins >= self.policy.max_failures:
                user.locked_until = now + self.policy.lockout
                user.failed_logins = 0
        raise refused

    def _open(self, session: Session, user: UserRow) -> NewSession:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        row = SessionRow(
            user_id=user.id,
            token_hash=hash_token(token),
            csrf_hash=hash_token(csrf),
            expires_at=utcnow() + self.policy.session_ttl,
        )
        session.add(row)
        session.flush()
        read = SessionRead(user=user_read(user), csrf_token=csrf, expires_at=row.expires_at)
        return NewSession(token=token, read=read)

    def authenticate(self, token: str, method: str, csrf: str | None) -> Principal:
        with self.db.read() as session:
            row = store.get_session_by_hash(session, hash_token(token))
            if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
                raise UnauthenticatedError(
                    "the session has ended; log in again", code="session_expired"
                )
            if method not in SAFE_METHODS and not (
                csrf and hmac.compare_digest(hash_token(csrf), row.csrf_hash)
            ):
                raise UnauthenticatedError(
                    "a change made with a session cookie needs the X-CSRF-Token header",
                    code="csrf_failed",
                )
            user = user_store.get_user(session, row.user_id)
            if user is None or user.disabled:
                raise UnauthenticatedError("the user is disabled", code="disabled_user")
            return Principal(
                id=user.id,
                name=user.name,
                is_admin=user.is_admin,
                authz_version=current_version(session),
            )

    def logout(self, token: str) -> None:
        with self.db.write() as session:
            row = store.get_session_by_hash(session, hash_token(token))
            if row is not None and row.revoked_at is None:
                row.revoked_at = utcnow()
