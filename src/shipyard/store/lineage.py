"""Lineage: which asset versions each job used and produced.

One row per (job, direction, asset version): written when the job is submitted (its data and
model inputs, environment and code snapshot, all pinned) and when it ends (the outputs it
registered). Indexed by asset, so "which jobs read data:sales:3, and what did they make?"
is two indexed lookups, not a scan of every job's spec.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.store.base import Base


class JobAssetRow(Base):
    __tablename__ = "job_assets"
    __table_args__ = (Index("ix_job_assets_asset", "workspace_id", "kind", "name", "version"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    direction: Mapped[str] = mapped_column(String(8), primary_key=True)  # input | output
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # data model environment code
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
