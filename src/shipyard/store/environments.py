"""Environments: versioned specs per workspace, and the server-wide table of builds.

Assets and versions work like data assets' (``store.data``): two counters on the asset row
serialise concurrent creates; ``last_number`` is the highest number any version used (an
omitted version takes the next), ``version_count`` orders versions by creation (``@latest``).

``environment_builds`` is the environment registry's index: one row per built (or failed, or
building) spec hash, shared by every workspace, with the build log's tail, the size on disk
and when it was last used (for least-recently-used eviction). The folders themselves live
under ``<data_dir>/environments/<spec_hash>`` (``compute.environments``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    case,
    delete,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow
from shipyard.store.upsert import upsert


class EnvironmentRow(Base):
    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    archived: Mapped[bool] = mapped_column(default=False)
    last_number: Mapped[int] = mapped_column(Integer, default=0)
    version_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class EnvironmentVersionRow(Base):
    __tablename__ = "environment_versions"
    __table_args__ = (
        UniqueConstraint("environment_id", "version"),
        Index("ix_environment_versions_environment_id_seq", "environment_id", "seq"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)  # creation order within the environment
    # The normalised spec (domain.environments.EnvironmentSpec.to_json) and what the user
    # gave for the parts that normalising changes (the conda file as sent).
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    conda_file: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    inference_config: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # The definition's hash, platform left out (the builds table's key adds the platform).
    definition_hash: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    archived: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class EnvironmentBuildRow(Base):
    """One entry of the environment registry (global: builds are shared by workspaces)."""

    __tablename__ = "environment_builds"

    spec_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # building | ready | failed
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    python: Mapped[str | None] = mapped_column(String(32))
    size: Mapped[int | None] = mapped_column(BigInteger)
    log: Mapped[str] = mapped_column(Text, default="")  # the last MB of uv's output
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    built_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    build_seconds: Mapped[float | None] = mapped_column(Float)


# -- assets and versions --------------------------------------------------------------------


def get_environment(session: Session, workspace_id: str, name: str) -> EnvironmentRow | None:
    query = select(EnvironmentRow).where(
        EnvironmentRow.workspace_id == workspace_id, EnvironmentRow.name == name
    )
    return session.scalars(query).one_or_none()


def get_version(
    session: Session, environment_id: str, version: str
) -> EnvironmentVersionRow | None:
    query = select(EnvironmentVersionRow).where(
        EnvironmentVersionRow.environment_id == environment_id,
        EnvironmentVersionRow.version == version,
    )
    return session.scalars(query).one_or_none()


def latest_version(session: Session, environment_id: str) -> EnvironmentVersionRow | None:
    """The most recently created version that is not archived."""
    query = (
        select(EnvironmentVersionRow)
        .where(
            EnvironmentVersionRow.environment_id == environment_id,
            EnvironmentVersionRow.archived.is_(False),
        )
        .order_by(EnvironmentVersionRow.seq.desc())
        .limit(1)
    )
    return session.scalars(query).one_or_none()


def bump_counters(
    session: Session, environment_id: str, *, auto: bool, number: int | None
) -> tuple[int, int]:
    """The next creation number and, for an automatic version, the next version number
    (else record that the explicit ``number`` was used): (last number, seq)."""
    last = EnvironmentRow.last_number
    new_last: Any = last
    if auto:
        new_last = last + 1
    elif number is not None:
        new_last = case((last < number, number), else_=last)
    statement = (
        update(EnvironmentRow)
        .where(EnvironmentRow.id == environment_id)
        .values(
            last_number=new_last,
            version_count=EnvironmentRow.version_count + 1,
            updated_at=utcnow(),
        )
        .returning(EnvironmentRow.last_number, EnvironmentRow.version_count)
        .execution_options(synchronize_session=False)
    )
    issued, seq = session.execute(statement).one()
    return int(issued), int(seq)


# -- builds ---------------------------------------------------------------------------------


def get_build(session: Session, spec_hash: str) -> EnvironmentBuildRow | None:
    return session.get(EnvironmentBuildRow, spec_hash)


def builds_status(session: Session, spec_hashes: Sequence[str]) -> dict[str, str]:
    """spec hash -> build status, for the hashes that have a row."""
    if not spec_hashes:
        return {}
    query = select(EnvironmentBuildRow.spec_hash, EnvironmentBuildRow.status).where(
        EnvironmentBuildRow.spec_hash.in_(set(spec_hashes))
    )
    return {str(h): str(s) for h, s in session.execute(query)}


def start_build(session: Session, spec_hash: str, spec: dict[str, Any], python: str) -> None:
    """Record that a build began (a retry of a failed build starts over)."""
    now = utcnow()
    row = {
        "spec_hash": spec_hash,
        "status": "building",
        "spec": spec,
        "python": python,
        "size": None,
        "log": "",
        "error": None,
        "created_at": now,
        "built_at": None,
        "last_used_at": now,
        "build_seconds": None,
    }
    upsert(
        session,
        cast(Table, EnvironmentBuildRow.__table__),
        [row],
        keys=["spec_hash"],
        update=[k for k in row if k != "spec_hash"],
    )


def touch_build(
    session: Session, spec_hash: str, spec: dict[str, Any], python: str, size: int
) -> None:
    """Record a use of a ready build (creating its row if the folder outlived it)."""
    now = utcnow()
    row = {
        "spec_hash": spec_hash,
        "status": "ready",
        "spec": spec,
        "python": python,
        "size": size,
        "log": "",
        "error": None,
        "created_at": now,
        "built_at": now,
        "last_used_at": now,
        "build_seconds": None,
    }
    upsert(
        session,
        cast(Table, EnvironmentBuildRow.__table__),
        [row],
        keys=["spec_hash"],
        update=["status", "last_used_at", "error"],
    )


def ready_builds_by_use(session: Session) -> list[EnvironmentBuildRow]:
    """Ready builds, least recently used first (eviction's order)."""
    query = (
        select(EnvironmentBuildRow)
        .where(EnvironmentBuildRow.status == "ready")
        .order_by(EnvironmentBuildRow.last_used_at.asc(), EnvironmentBuildRow.spec_hash)
    )
    return list(session.scalars(query))


def delete_build(session: Session, spec_hash: str) -> None:
    session.execute(delete(EnvironmentBuildRow).where(EnvironmentBuildRow.spec_hash == spec_hash))
