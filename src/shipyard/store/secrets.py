"""Secrets in the workspaces' key vaults, and which master key encrypts them now.

A secret belongs to a key vault (each workspace has one) and is unique by name in it. Only its
ciphertext is stored, with the id of the master key that made it. The one row of
``secret_key_state`` names the master key new ciphertexts must use: every write of a secret
locks it, and a rotation changes it in the same transaction that re-encrypts every secret, so
no server can write with a key the rotation just retired.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow

KEY_ID = String(32)
_STATE_ROW = 1


class SecretRow(Base):
    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("vault_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    # Purging a workspace deletes its vault row; the database takes the secrets with it.
    vault_id: Mapped[str] = mapped_column(ForeignKey("key_vaults.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(127))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(KEY_ID, index=True)
    # Principal ids without a foreign key: deleting a service principal keeps its secrets.
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SecretKeyStateRow(Base):
    """One row: the id of the master key that encrypts secrets now (None before the first)."""

    __tablename__ = "secret_key_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key_id: Mapped[str | None] = mapped_column(KEY_ID)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


def get_secret(session: Session, vault_id: str, name: str) -> SecretRow | None:
    query = select(SecretRow).where(SecretRow.vault_id == vault_id, SecretRow.name == name)
    return session.scalars(query).one_or_none()


def list_secrets(
    session: Session, vault_id: str, *, after: str | None, limit: int
) -> list[SecretRow]:
    query = (
        select(SecretRow)
        .where(SecretRow.vault_id == vault_id)
        .order_by(SecretRow.name)
        .limit(limit)
    )
    if after is not None:
        query = query.where(SecretRow.name > after)
    return list(session.scalars(query))


def secrets_after(session: Session, after_id: str | None, limit: int) -> list[SecretRow]:
    """The next ``limit`` secrets of every vault in id order (a rotation walks them all)."""
    query = select(SecretRow).order_by(SecretRow.id).limit(limit)
    if after_id is not None:
        query = query.where(SecretRow.id > after_id)
    return list(session.scalars(query))


def lock_key_state(session: Session) -> SecretKeyStateRow:
    """The state row, locked until the transaction ends (PostgreSQL; SQLite's one writer
    serialises anyway). Made here when a database lacks it."""
    query = select(SecretKeyStateRow).where(SecretKeyStateRow.id == _STATE_ROW).with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        row = SecretKeyStateRow(id=_STATE_ROW, key_id=None)
        session.add(row)
        session.flush()
    return row


def current_key_id(session: Session) -> str | None:
    return session.scalar(
        select(SecretKeyStateRow.key_id).where(SecretKeyStateRow.id == _STATE_ROW)
    )
