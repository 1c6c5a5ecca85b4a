"""Each online deployment's figures per minute, as the server's metrics flush writes them.

One row per deployment and minute (the primary key), so a flush that runs twice for the same
minute adds to the row rather than duplicating it. Rows go with their deployment (cascade)
and, past the retention, with the purge loop (``purge_before``: the ``minute`` index).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime


class EndpointMetricRow(Base):
    __tablename__ = "endpoint_metrics"

    deployment_id: Mapped[str] = mapped_column(
        ID, ForeignKey("online_deployments.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True, index=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    errors_4xx: Mapped[int] = mapped_column(Integer, default=0)
    errors_5xx: Mapped[int] = mapped_column(Integer, default=0)
    p50_ms: Mapped[float | None] = mapped_column(Float)
    p95_ms: Mapped[float | None] = mapped_column(Float)
    p99_ms: Mapped[float | None] = mapped_column(Float)
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    # {"200": 12, "500": 1}: JSON keys are strings.
    by_status: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"primary": 10, "secondary": 2, "aml_token": 1}: which credential the callers used.
    by_credential: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"<fine bucket>": requests} (services.scoring_stats.latency_bucket): percentiles of
    # any range of minutes merge from it.
    latency_histogram: Mapped[dict[str, Any]] = mapped_column(default=dict)


def get(session: Session, deployment_id: str, minute: datetime) -> EndpointMetricRow | None:
    return session.get(EndpointMetricRow, (deployment_id, minute))


def series(
    session: Session, deployment_ids: list[str], since: datetime, until: datetime
) -> list[EndpointMetricRow]:
    """Rows with ``since <= minute < until``, by deployment then minute."""
    if not deployment_ids:
        return []
    query = (
        select(EndpointMetricRow)
        .where(
            EndpointMetricRow.deployment_id.in_(deployment_ids),
            EndpointMetricRow.minute >= since,
            EndpointMetricRow.minute < until,
        )
        .order_by(EndpointMetricRow.deployment_id, EndpointMetricRow.minute)
    )
    return list(session.scalars(query))


def purge_before(session: Session, cutoff: datetime) -> int:
    result = session.execute(delete(EndpointMetricRow).where(EndpointMetricRow.minute < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
