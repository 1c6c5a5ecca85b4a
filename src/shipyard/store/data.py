"""Data assets: a name in a workspace with immutable, versioned references to data.

A version's ``version`` is a string (as in Azure ML: ``1``, ``2024-06``, ``v2.rc1``). Two
counters on the asset row serialise concurrent creates (an UPDATE takes the row lock on
PostgreSQL; SQLite has one writer): ``last_number`` is the highest number any version used, so
an omitted version becomes the next number and a deleted number is never issued again;
``version_count`` orders versions by creation, which ``@latest`` reads.

A version points either at a datastore (``datastore`` + ``storage_path``) or, for an http(s)
reference, at nothing the server reads (``datastore`` is null; ``path`` is the URL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    case,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow


class DataAssetRow(Base):
    __tablename__ = "data_assets"
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


class DataVersionRow(Base):
    __tablename__ = "data_versions"
    __table_args__ = (
        UniqueConstraint("asset_id", "version"),
        Index("ix_data_versions_asset_id_seq", "asset_id", "seq"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    asset_id: Mapped[str] = mapped_column(ForeignKey("data_assets.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)  # creation order within the asset
    type: Mapped[str] = mapped_column(String(16))  # uri_file | uri_folder | mltable
    path: Mapped[str] = mapped_column(Text)  # a datastore URI or an http(s) URL
    datastore: Mapped[str | None] = mapped_column(String(255))
    storage_path: Mapped[str | None] = mapped_column(Text)  # relative to the datastore
    # What an upload recorded (null for references to data Shipyard did not upload).
    content_digest: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    file_count: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    archived: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DataReferenceRow(Base):
    """Something that uses a data version: today a model version (the data it was trained
    on); jobs and deployments add their own columns when they arrive."""

    __tablename__ = "data_references"

    data_version_id: Mapped[str] = mapped_column(
        ForeignKey("data_versions.id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[str] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True, index=True
    )


def get_asset(session: Session, workspace_id: str, name: str) -> DataAssetRow | None:
    query = select(DataAssetRow).where(
        DataAssetRow.workspace_id == workspace_id, DataAssetRow.name == name
    )
    return session.scalars(query).one_or_none()


def get_version(session: Session, asset_id: str, version: str) -> DataVersionRow | None:
    query = select(DataVersionRow).where(
        DataVersionRow.asset_id == asset_id, DataVersionRow.version == version
    )
    return session.scalars(query).one_or_none()


def latest_version(session: Session, asset_id: str) -> DataVersionRow | None:
    """The most recently created version that is not archived."""
    query = (
        select(DataVersionRow)
        .where(DataVersionRow.asset_id == asset_id, DataVersionRow.archived.is_(False))
        .order_by(DataVersionRow.seq.desc())
        .limit(1)
    )
    return session.scalars(query).one_or_none()


def bump_counters(
    session: Session, asset_id: str, *, auto: bool, number: int | None
) -> tuple[int, int]:
    """Take the next creation number and, for an automatic version, the next version number
    (else record that the explicit ``number``, if any, was used): (last number, seq). The
    caller's transaction holds the asset row until it ends."""
    last = DataAssetRow.last_number
    new_last: Any = last
    if auto:
        new_last = last + 1
    elif number is not None:
        # CASE rather than max()/greatest(): one spelling on SQLite and PostgreSQL.
        new_last = case((last < number, number), else_=last)
    statement = (
        update(DataAssetRow)
        .where(DataAssetRow.id == asset_id)
        .values(
            last_number=new_last,
            version_count=DataAssetRow.version_count + 1,
            updated_at=utcnow(),
        )
        .returning(DataAssetRow.last_number, DataAssetRow.version_count)
        .execution_options(synchronize_session=False)
    )
    issued, seq = session.execute(statement).one()
    return int(issued), int(seq)


def model_versions_using(session: Session, data_version_id: str) -> list[str]:
    query = select(DataReferenceRow.model_version_id).where(
        DataReferenceRow.data_version_id == data_version_id
    )
    return list(session.scalars(query))


def version_on_datastore(
    session: Session, workspace_id: str, datastore: str
) -> tuple[str, str] | None:
    """(asset name, version) of one data version of the workspace stored on ``datastore``."""
    found = session.execute(
        select(DataAssetRow.name, DataVersionRow.version)
        .join(DataVersionRow, DataVersionRow.asset_id == DataAssetRow.id)
        .where(DataAssetRow.workspace_id == workspace_id, DataVersionRow.datastore == datastore)
        .limit(1)
    ).first()
    return (found[0], found[1]) if found else None
