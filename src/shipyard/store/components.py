"""Components: versioned command definitions per workspace.

Rows as for data assets and environments: two counters on the component row serialise
concurrent creates (``last_number``, the highest number any version used, for an omitted
version; ``version_count``, the creation order ``@latest`` follows); the queries they share
are in ``services.asset_versions``. A version keeps its whole pinned spec (environment
included) as JSON, so it never changes after it is created, with the definition's hash and
the code snapshot's digest beside it as columns (the upload collector keeps the snapshots
versions name).

A component belongs to a workspace or to a registry (``registry_id``, ``workspace_id`` then
null): both kinds share these two tables, so a registry's versions are made, numbered, read
and archived by the same code. A registry's component keeps the registry from being deleted
(the foreign key restricts; ``services.registries`` says so first).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow


class ComponentRow(Base):
    __tablename__ = "components"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        UniqueConstraint("registry_id", "name"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    # Exactly one of the two is set.
    workspace_id: Mapped[str | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    registry_id: Mapped[str | None] = mapped_column(
        ForeignKey("registries.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    archived: Mapped[bool] = mapped_column(default=False)
    last_number: Mapped[int] = mapped_column(Integer, default=0)
    version_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ComponentVersionRow(Base):
    __tablename__ = "component_versions"
    __table_args__ = (
        UniqueConstraint("component_id", "version"),
        Index("ix_component_versions_component_id_seq", "component_id", "seq"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    component_id: Mapped[str] = mapped_column(ForeignKey("components.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)  # creation order within the component
    # domain.components.ComponentSpec.to_json() with the environment pinned; description
    # and tags live in their own columns (the only parts that may change).
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    definition_hash: Mapped[str] = mapped_column(String(64))
    # The code snapshot (a content upload of purpose "code"), when the component has code.
    code_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    environment: Mapped[str] = mapped_column(String(400))  # the pinned "name:version"
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    archived: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
