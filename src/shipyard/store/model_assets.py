"""What the native model API keeps about a model version beside the registry's own row.

The registry row (``store.models.ModelVersionRow``) is shared with MLflow's surface; a version
registered through the native API may also carry Azure ML's ``properties`` and, for an
``mlflow_model``, the ``flavors`` and ``signature`` read from its ``MLmodel`` file. They live
here, one row per version, deleted with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ForeignKey, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base


class ModelVersionDetailRow(Base):
    __tablename__ = "model_version_details"

    version_id: Mapped[str] = mapped_column(
        ID, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    flavors: Mapped[dict[str, Any] | None] = mapped_column()
    signature: Mapped[dict[str, Any] | None] = mapped_column()


def details_of(session: Session, version_ids: Sequence[str]) -> dict[str, ModelVersionDetailRow]:
    if not version_ids:
        return {}
    query = select(ModelVersionDetailRow).where(ModelVersionDetailRow.version_id.in_(version_ids))
    return {row.version_id: row for row in session.scalars(query)}
