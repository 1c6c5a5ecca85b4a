"""Content-addressed uploads: a file or folder named by its digest, in one of a workspace's
datastores.

One row per (workspace, purpose, datastore, digest): the same content uploaded to two
datastores is two uploads, each with its own files. A row holds the manifest the digest names
(every file's path, sha256 and size), the datastore and the folder in it that hold the files,
and whether every file arrived (``committed_at``). The bytes themselves are in the datastore;
see ``services.uploads`` for the layout and ``services.upload_gc`` for when rows and files are
removed.

``created_at`` is when a client last *began* the upload (sent its manifest): a client that
resumes or reuses an upload begins it again, so an upload nobody has touched for a while is
told apart from one in use by this time alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow
from shipyard.store.models import LOGGED_MODEL_ID
from shipyard.store.workspaces import WorkspaceRow

#: The workspace's own storage (``services.workspaces.DEFAULT_DATASTORE``).
OWN_DATASTORE = "workspaceblobstore"


class ContentUploadRow(Base):
    __tablename__ = "content_uploads"
    __table_args__ = (UniqueConstraint("workspace_id", "purpose", "digest", "datastore"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16))  # data | model | code
    digest: Mapped[str] = mapped_column(String(64))
    # Where the files are: a folder relative to a datastore of the workspace (rows made before
    # uploads could go elsewhere are all in the workspace's own storage).
    datastore: Mapped[str] = mapped_column(
        String(100), default=OWN_DATASTORE, server_default=OWN_DATASTORE
    )
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
    session: Session,
    workspace_id: str,
    purpose: str,
    digest: str,
    datastore: str = OWN_DATASTORE,
) -> ContentUploadRow | None:
    """The upload of this content to ``datastore`` (job code and models are always in the
    workspace's own storage)."""
    query = select(ContentUploadRow).where(
        ContentUploadRow.workspace_id == workspace_id,
        ContentUploadRow.purpose == purpose,
        ContentUploadRow.datastore == datastore,
        ContentUploadRow.digest == digest,
    )
    return session.scalars(query).one_or_none()


def latest_upload(
    session: Session, workspace_id: str, purpose: str, digest: str
) -> ContentUploadRow | None:
    """The upload of this content a client began last, whichever datastore it is in: the one
    whose files a client sends after beginning it (the routes that take files name no
    datastore, and the default may change while a client uploads)."""
    query = (
        select(ContentUploadRow)
        .where(
            ContentUploadRow.workspace_id == workspace_id,
            ContentUploadRow.purpose == purpose,
            ContentUploadRow.digest == digest,
        )
        .order_by(ContentUploadRow.created_at.desc(), ContentUploadRow.id)
        .limit(1)
    )
    return session.scalars(query).one_or_none()


def stale_uploads(
    session: Session, before: datetime, purposes: tuple[str, ...]
) -> list[ContentUploadRow]:
    """Uploads of live workspaces nobody began since ``before`` that are uncommitted or were
    committed before it, oldest first: the garbage collector's candidates (it still checks
    what uses each)."""
    query = (
        select(ContentUploadRow)
        .join(WorkspaceRow, WorkspaceRow.id == ContentUploadRow.workspace_id)
        .where(
            WorkspaceRow.deleted_at.is_(None),
            ContentUploadRow.purpose.in_(purposes),
            ContentUploadRow.created_at < before,
            or_(ContentUploadRow.committed_at.is_(None), ContentUploadRow.committed_at < before),
        )
        .order_by(ContentUploadRow.created_at)
    )
    return list(session.scalars(query))


def same_digest(session: Session, row: ContentUploadRow) -> list[ContentUploadRow]:
    """The other uploads of the same content, in any workspace, for any purpose."""
    query = select(ContentUploadRow).where(
        ContentUploadRow.digest == row.digest, ContentUploadRow.id != row.id
    )
    return list(session.scalars(query))
