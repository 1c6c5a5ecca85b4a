"""Registries: server-level containers for assets shared by many workspaces.

A registry holds no assets yet (later issues add models, components, environments and data
to it); today it is a name, a description, tags, and a scope that roles are assigned at.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, String, Text, bindparam, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow
from shipyard.store.users import UserRow


class RegistryRow(Base):
    __tablename__ = "registries"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    # No foreign key: a service principal that made a registry may be deleted (users are
    # only disabled), and the registry must outlive it.
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    # Every read shows the creator's name: an outer join in the same query.
    creator: Mapped[UserRow | None] = relationship(
        primaryjoin="foreign(RegistryRow.created_by) == UserRow.id", lazy="joined", viewonly=True
    )


def get_registry(session: Session, name: str) -> RegistryRow | None:
    return session.scalars(select(RegistryRow).where(RegistryRow.name == name)).one_or_none()


_REGISTRY_ID = select(RegistryRow.id).where(RegistryRow.name == bindparam("name"))


def get_registry_id(session: Session | Connection, name: str) -> str | None:
    """Just the id, without the joined creator: for the authorization check."""
    found: str | None = session.scalar(_REGISTRY_ID, {"name": name})
    return found


def list_registries(
    session: Session, *, after: str | None, limit: int, ids: set[str] | None = None
) -> list[RegistryRow]:
    """By name, after ``after``; ``ids``: only these registries (None: all of them)."""
    query = select(RegistryRow).order_by(RegistryRow.name).limit(limit)
    if after is not None:
        query = query.where(RegistryRow.name > after)
    if ids is not None:
        query = query.where(RegistryRow.id.in_(ids))
    return list(session.scalars(query))
