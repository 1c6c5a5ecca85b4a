"""Batch endpoints, their deployments, and the jobs invoking them started.

A deployment row holds the spec its jobs are made from, pinned at create/update as a job's
references are (model version, environment, code snapshot with the batch driver added).
``batch_endpoint_jobs`` links each job an invoke started to its endpoint and deployment, so
``list-jobs`` finds them; the job itself is an ordinary job (its rows are the jobs').
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow


class BatchEndpointRow(Base):
    __tablename__ = "batch_endpoints"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    auth_mode: Mapped[str] = mapped_column(String(16), default="aad_token")
    default_deployment: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class BatchDeploymentRow(Base):
    __tablename__ = "batch_deployments"
    __table_args__ = (UniqueConstraint("endpoint_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("batch_endpoints.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    type: Mapped[str] = mapped_column(String(16))  # model | pipeline
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The code snapshot its jobs run (the user's code and the batch driver), kept from garbage
    # collection while the deployment exists.
    code_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class BatchEndpointJobRow(Base):
    __tablename__ = "batch_endpoint_jobs"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("batch_endpoints.id", ondelete="CASCADE"), index=True
    )
    deployment: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


def get_endpoint(session: Session, workspace_id: str, name: str) -> BatchEndpointRow | None:
    query = select(BatchEndpointRow).where(
        BatchEndpointRow.workspace_id == workspace_id, BatchEndpointRow.name == name
    )
    return session.scalars(query).one_or_none()


def list_endpoints(
    session: Session, workspace_id: str, *, after: str | None, limit: int
) -> list[BatchEndpointRow]:
    query = (
        select(BatchEndpointRow)
        .where(BatchEndpointRow.workspace_id == workspace_id)
        .order_by(BatchEndpointRow.name)
        .limit(limit)
    )
    if after is not None:
        query = query.where(BatchEndpointRow.name > after)
    return list(session.scalars(query))


def get_deployment(session: Session, endpoint_id: str, name: str) -> BatchDeploymentRow | None:
    query = select(BatchDeploymentRow).where(
        BatchDeploymentRow.endpoint_id == endpoint_id, BatchDeploymentRow.name == name
    )
    return session.scalars(query).one_or_none()


def list_deployments(
    session: Session, endpoint_id: str, *, after: str | None = None, limit: int | None = None
) -> list[BatchDeploymentRow]:
    query = (
        select(BatchDeploymentRow)
        .where(BatchDeploymentRow.endpoint_id == endpoint_id)
        .order_by(BatchDeploymentRow.name)
    )
    if after is not None:
        query = query.where(BatchDeploymentRow.name > after)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def list_job_ids(session: Session, endpoint_id: str, *, limit: int) -> list[str]:
    """The newest ``limit`` jobs first."""
    query = (
        select(BatchEndpointJobRow.job_id)
        .where(BatchEndpointJobRow.endpoint_id == endpoint_id)
        .order_by(BatchEndpointJobRow.created_at.desc(), BatchEndpointJobRow.job_id)
        .limit(limit)
    )
    return list(session.scalars(query))
