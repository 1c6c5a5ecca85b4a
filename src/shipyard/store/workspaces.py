"""Workspaces and their associated resources (key vaults, environment registries)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, ForeignKey, String, Text, bindparam, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow
from shipyard.store.users import UserRow


class KeyVaultRow(Base):
    """The home of a workspace's encrypted secrets (the secrets themselves come later)."""

    __tablename__ = "key_vaults"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class EnvironmentRegistryRow(Base):
    """Where built environments are cached: one server-wide, or one of a workspace's own."""

    __tablename__ = "environment_registries"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    shared: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WorkspaceRow(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    # Unique even while soft-deleted: the name is what recover brings back.
    name: Mapped[str] = mapped_column(String(63), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    # Storage: the base (shared by several workspaces, or the server's artifact root) and this
    # workspace's own prefix inside it.
    storage_uri: Mapped[str] = mapped_column(Text)
    storage_prefix: Mapped[str] = mapped_column(String(256))
    storage_managed: Mapped[bool] = mapped_column(default=True)
    key_vault_id: Mapped[str] = mapped_column(ForeignKey("key_vaults.id"))
    environment_registry_id: Mapped[str] = mapped_column(ForeignKey("environment_registries.id"))
    monitoring: Mapped[str] = mapped_column(String(32), default="builtin")

    # Every read of a workspace shows these two, so they come in the same query.
    creator: Mapped[UserRow] = relationship(lazy="joined")
    environment_registry: Mapped[EnvironmentRegistryRow] = relationship(lazy="joined")


def get_workspace(session: Session, name: str) -> WorkspaceRow | None:
    return session.scalars(select(WorkspaceRow).where(WorkspaceRow.name == name)).one_or_none()


_WORKSPACE_ID = select(WorkspaceRow.id).where(WorkspaceRow.name == bindparam("name"))


def get_workspace_id(session: Session | Connection, name: str) -> str | None:
    """Just the id (soft-deleted workspaces included): no joined loads, for the hot path."""
    found: str | None = session.scalar(_WORKSPACE_ID, {"name": name})
    return found


def list_workspaces(
    session: Session,
    *,
    deleted: bool,
    after: str | None,
    limit: int,
    ids: set[str] | None = None,
) -> list[WorkspaceRow]:
    """``ids``: only these workspaces (None: all of them)."""
    query = select(WorkspaceRow).order_by(WorkspaceRow.name).limit(limit)
    if deleted:
        query = query.where(WorkspaceRow.deleted_at.is_not(None))
    else:
        query = query.where(WorkspaceRow.deleted_at.is_(None))
    if after is not None:
        query = query.where(WorkspaceRow.name > after)
    if ids is not None:
        query = query.where(WorkspaceRow.id.in_(ids))
    return list(session.scalars(query))


def storage_folders(session: Session) -> list[tuple[str, str]]:
    """(storage_uri, storage_prefix) of every workspace, deleted ones included."""
    query = select(WorkspaceRow.storage_uri, WorkspaceRow.storage_prefix)
    return [(uri, prefix) for uri, prefix in session.execute(query)]


def list_deleted_before(session: Session, cutoff: datetime) -> list[WorkspaceRow]:
    query = select(WorkspaceRow).where(WorkspaceRow.deleted_at < cutoff)
    return list(session.scalars(query))


def get_environment_registry(session: Session, name: str) -> EnvironmentRegistryRow | None:
    query = select(EnvironmentRegistryRow).where(EnvironmentRegistryRow.name == name)
    return session.scalars(query).one_or_none()
