"""Datastores: named connections from a workspace to storage (a local folder, an S3 bucket).

A row holds where the datastore points and how it signs in, never a credential: keys live in
the workspace's key vault, and the row names the secret (``credentials_secret``). The
workspace's own storage (``workspaceblobstore``) has no row; it is the default unless a row
says ``is_default``, and a partial unique index keeps that to one row per workspace.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, select, text, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow


class DatastoreRow(Base):
    __tablename__ = "datastores"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        Index(
            "ix_datastores_one_default",
            "workspace_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    # Purging a workspace deletes its datastores with it (its vault takes their secrets).
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    read_only: Mapped[bool] = mapped_column(default=False)
    is_default: Mapped[bool] = mapped_column(default=False)
    # type local: the folder, symlinks resolved when the datastore was made.
    path: Mapped[str | None] = mapped_column(Text)
    # type s3
    bucket: Mapped[str | None] = mapped_column(String(63))
    prefix: Mapped[str | None] = mapped_column(Text)
    endpoint_url: Mapped[str | None] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(String(64))
    # secret | anonymous | identity | none; for "secret", the key-vault secret holding the
    # keys, and whether this datastore made it (and so deletes it with itself).
    credentials_kind: Mapped[str] = mapped_column(String(16))
    credentials_secret: Mapped[str | None] = mapped_column(String(127))
    credentials_managed: Mapped[bool] = mapped_column(default=False)
    # Principal ids without a foreign key, as for secrets: deleting a principal keeps these.
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


def get_datastore(session: Session, workspace_id: str, name: str) -> DatastoreRow | None:
    query = select(DatastoreRow).where(
        DatastoreRow.workspace_id == workspace_id, DatastoreRow.name == name
    )
    return session.scalars(query).one_or_none()


def list_datastores(
    session: Session, workspace_id: str, *, after: str | None, limit: int
) -> list[DatastoreRow]:
    query = (
        select(DatastoreRow)
        .where(DatastoreRow.workspace_id == workspace_id)
        .order_by(DatastoreRow.name)
        .limit(limit)
    )
    if after is not None:
        query = query.where(DatastoreRow.name > after)
    return list(session.scalars(query))


def default_name(session: Session, workspace_id: str) -> str | None:
    """The name of the datastore marked default; None when the workspace's storage is."""
    query = select(DatastoreRow.name).where(
        DatastoreRow.workspace_id == workspace_id, DatastoreRow.is_default.is_(True)
    )
    found: str | None = session.scalar(query)
    return found


def clear_default(session: Session, workspace_id: str) -> None:
    session.execute(
        update(DatastoreRow)
        .where(DatastoreRow.workspace_id == workspace_id, DatastoreRow.is_default.is_(True))
        .values(is_default=False)
    )
