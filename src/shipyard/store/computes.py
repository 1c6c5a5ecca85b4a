"""Compute targets: where a workspace's jobs run.

``local`` (the server's own host) has no row: every workspace has it, like
``workspaceblobstore``. A row is another target, today a Ray cluster by address, with the
price the cost report charges for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow


class ComputeRow(Base):
    __tablename__ = "computes"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(16))  # ray
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    # type ray: the cluster's address (``ray://host:port`` or the dashboard's http address).
    address: Mapped[str | None] = mapped_column(Text)
    # What the target's YAML said beyond the above (e.g. Azure amlcompute's min/max
    # instances), kept to show it back.
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Price per unit-hour; unit "core" (core-hours) or "node" (node-hours).
    cost_rate: Mapped[float] = mapped_column(Float, default=0.0)
    cost_unit: Mapped[str] = mapped_column(String(8), default="core")
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


def get_compute(session: Session, workspace_id: str, name: str) -> ComputeRow | None:
    query = select(ComputeRow).where(
        ComputeRow.workspace_id == workspace_id, ComputeRow.name == name
    )
    return session.scalars(query).one_or_none()


def list_computes(session: Session, workspace_id: str) -> list[ComputeRow]:
    query = select(ComputeRow).where(ComputeRow.workspace_id == workspace_id)
    return list(session.scalars(query.order_by(ComputeRow.name)))
