"""Personal access tokens: stored as hashes, listed by prefix, revoked at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.authz_state import version_query
from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow
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


def get_token_by_hash(session: Session, token_hash: str) -> TokenRow | None:
    return session.scalars(select(TokenRow).where(TokenRow.token_hash == token_hash)).one_or_none()


def get_token(session: Session, token_id: str) -> TokenRow | None:
    return session.get(TokenRow, token_id)


def list_tokens(session: Session, user_id: str, *, after: str | None, limit: int) -> list[TokenRow]:
    query = select(TokenRow).where(TokenRow.user_id == user_id).order_by(TokenRow.id).limit(limit)
    if after is not None:
        query = query.where(TokenRow.id > after)
    return list(session.scalars(query))


def get_token_with_user(session: Session, token_hash: str) -> tuple[TokenRow, UserRow, int] | None:
    """The token, its user and the authorization counter, in one statement (this runs on
    every request)."""
    query = (
        select(TokenRow, UserRow, version_query())
        .join(UserRow, UserRow.id == TokenRow.user_id)
        .where(TokenRow.token_hash == token_hash)
    )
    row = session.execute(query).one_or_none()
    return None if row is None else (row[0], row[1], int(row[2] or 0))
