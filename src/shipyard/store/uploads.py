"""Content-addressed uploads: a file or folder named by its digest, in a workspace's storage.

One row per (workspace, purpose, digest). It holds the manifest the digest names (every file's
path, sha256 and size) and the folder the files go to, and says whether every file arrived
(``committed_at``). The bytes themselves are in the workspace's storage; see
``services.uploads`` for the layout.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow
from shipyard.store.models import LOGGED_MODEL_ID


class ContentUploadRow(Base):
    __tablename__ = "content_uploads"
    __table_args__ = (UniqueConstraint("workspace_id", "purpose", "digest"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16))  # data | model
    digest: Mapped[str] = mapped_column(String(64))
    # The folder that holds the files, relative to the workspace's own storage folder.
    folder: Mapped[str] = mapped_column(Text)
    # A model's files are an MLflow logged model's (so MLflow clients load them too).
    logged_model_id: Mapped[str | None] = mapped_column(
        LOGGED_MODEL_ID, ForeignKey("logged_models.id", ondelete="SET NULL")
    )
    # [[path, sha256, size], ...] sorted by path: what the digest names.
    manifest: Mapped[list[Any]] = mapped_column(default=list)
    file_count: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    committed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


def get_upload(
    session: Session, workspace_id: str, purpose: str, digest: str
) -> ContentUploadRow | None:
    query = select(ContentUploadRow).where(
        ContentUploadRow.workspace_id == workspace_id,
        ContentUploadRow.purpose == purpose,
        ContentUploadRow.digest == digest,
    )
    return session.scalars(query).one_or_none()
