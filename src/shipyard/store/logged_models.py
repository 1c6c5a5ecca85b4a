"""MLflow 3's logged models: a model a run produced, before (or without) registering it.

Its files live in the workspace's storage under ``models/<id>/artifacts``, uploaded by the
client through the artifact proxy. Deleting one hides it (``lifecycle_stage``), as MLflow
does, so registered versions that came from it keep their lineage.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import Base, UtcDateTime, utcnow
from shipyard.store.models import LOGGED_MODEL_ID


def new_logged_model_id() -> str:
    """MLflow's shape for logged model ids: ``m-`` and 32 hex digits."""
    return "m-" + secrets.token_hex(16)


class LoggedModelRow(Base):
    __tablename__ = "logged_models"

    id: Mapped[str] = mapped_column(LOGGED_MODEL_ID, primary_key=True, default=new_logged_model_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(256))
    source_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="PENDING")  # PENDING|READY|FAILED
    status_message: Mapped[str | None] = mapped_column(Text)
    model_type: Mapped[str | None] = mapped_column(String(256))
    params: Mapped[dict[str, str]] = mapped_column(default=dict)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


def get_logged_model(session: Session, workspace_id: str, model_id: str) -> LoggedModelRow | None:
    """The logged model, if it is this workspace's (deleted ones included)."""
    row = session.get(LoggedModelRow, model_id)
    return row if row is not None and row.workspace_id == workspace_id else None
