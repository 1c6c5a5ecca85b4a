"""Multipart artifact uploads in progress (MLflow's ``mpu`` protocol).

A row exists from ``create`` until ``complete`` or ``abort``; the parts themselves wait in the
workspace's storage. Only a hash of the upload's key is kept: the key travels to the client
once, in the headers it must send with each part.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, utcnow


class ArtifactUploadRow(Base):
    __tablename__ = "artifact_uploads"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    folder: Mapped[str] = mapped_column(Text)  # the artifact root, in the workspace's storage
    path: Mapped[str] = mapped_column(Text)  # the file, relative to that root
    num_parts: Mapped[int] = mapped_column(Integer)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


def expired(session: Session, now: datetime) -> list[ArtifactUploadRow]:
    return list(
        session.scalars(select(ArtifactUploadRow).where(ArtifactUploadRow.expires_at <= now))
    )
