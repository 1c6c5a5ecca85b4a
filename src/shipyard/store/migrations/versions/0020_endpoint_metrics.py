"""endpoint metrics: each online deployment's per-minute figures

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28 10:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shipyard.store.base

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "endpoint_metrics",
        sa.Column("deployment_id", sa.String(length=32), nullable=False),
        sa.Column("minute", shipyard.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors_4xx", sa.Integer(), nullable=False),
        sa.Column("errors_5xx", sa.Integer(), nullable=False),
        sa.Column("p50_ms", sa.Float(), nullable=True),
        sa.Column("p95_ms", sa.Float(), nullable=True),
        sa.Column("p99_ms", sa.Float(), nullable=True),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("by_status", sa.JSON(), nullable=False),
        sa.Column("by_credential", sa.JSON(), nullable=False),
        sa.Column("latency_histogram", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["online_deployments.id"],
            name=op.f("fk_endpoint_metrics_deployment_id_online_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deployment_id", "minute", name=op.f("pk_endpoint_metrics")),
    )
    with op.batch_alter_table("endpoint_metrics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_endpoint_metrics_minute"), ["minute"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("endpoint_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_endpoint_metrics_minute"))
    op.drop_table("endpoint_metrics")
