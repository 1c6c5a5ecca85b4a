"""Personal access tokens: stored as hashes, listed by prefix, revoked at once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, ForeignKey, String, bindparam, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.authz_state import version_query
from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow
from shipyard.store.driver import DriverStatement
from shipyard.store.users import UserRow


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    # sha256 of the whole token: tokens carry 256 random bits, so a fast hash is enough and
    # lets a request find its token by an indexed lookup.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A job's token acts for its submitter in the job's workspace only, and is revoked when
    # the job ends (``services.job_tokens``). None: the user's own token, valid everywhere.
    workspace_id: Mapped[str | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )


def get_token_by_hash(session: Session, token_hash: str) -> TokenRow | None:
    return session.scalars(select(TokenRow).where(TokenRow.token_hash == token_hash)).one_or_none()


def get_token(session: Session, token_id: str) -> TokenRow | None:
    return session.get(TokenRow, token_id)


def list_tokens(session: Session, user_id: str, *, after: str | None, limit: int) -> list[TokenRow]:
    query = select(TokenRow).where(TokenRow.user_id == user_id).order_by(TokenRow.id).limit(limit)
    if after is not None:
        query = query.where(TokenRow.id > after)
    return list(session.scalars(query))


class Credential(NamedTuple):
    """What authenticating a request needs of a token, its user and the authorization
    counter."""

    token_id: str
    revoked_at: datetime | None
    expires_at: datetime
    user_id: str
    user_name: str
    is_admin: bool
    disabled: bool
    authz_version: int
    workspace_id: str | None


def _credential_query() -> Any:
    return (
        select(
            TokenRow.id,
            TokenRow.revoked_at,
            TokenRow.expires_at,
            UserRow.id,
            UserRow.name,
            UserRow.is_admin,
            UserRow.disabled,
            version_query(),
            TokenRow.workspace_id,
        )
        .join(UserRow, UserRow.id == TokenRow.user_id)
        .where(TokenRow.token_hash == bindparam("token_hash"))
    )


# Built once: every request runs it, and a prebuilt statement skips building and cache-key
# work (it still compiles once per dialect).
_CREDENTIAL = _credential_query()
_CREDENTIAL_ON_DRIVER = DriverStatement(_CREDENTIAL)


def credential(conn: Connection, token_hash: str) -> Credential | None:
    """The token, its user and the authorization counter, in one statement on a bare
    connection (this runs on every request: on the driver's own cursor, see store/driver.py,
    which is why the two times are converted here)."""
    cursor = _CREDENTIAL_ON_DRIVER.execute(conn, {"token_hash": token_hash})
    try:
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        return None
    expires_at = _utc(row[2])
    assert expires_at is not None  # the column is NOT NULL
    return Credential(
        row[0],
        _utc(row[1]),
        expires_at,
        row[3],
        row[4],
        bool(row[5]),
        bool(row[6]),
        int(row[7] or 0),
        row[8],
    )


def _utc(value: datetime | str | None) -> datetime | None:
    """A time as the driver returns it (SQLite: ISO text without a zone; PostgreSQL: an
    aware datetime) as an aware UTC datetime, as ``UtcDateTime`` would."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
