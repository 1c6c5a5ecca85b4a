"""batch endpoints

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-28 10:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shipyard.store.base

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batch_endpoints",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("auth_mode", sa.String(length=16), nullable=False),
        sa.Column("default_deployment", sa.String(length=32), nullable=True),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", shipyard.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shipyard.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_batch_endpoints_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_endpoints")),
        sa.UniqueConstraint(
            "workspace_id", "name", name=op.f("uq_batch_endpoints_workspace_id_name")
        ),
    )
    op.create_table(
        "batch_deployments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", shipyard.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shipyard.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["batch_endpoints.id"],
            name=op.f("fk_batch_deployments_endpoint_id_batch_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_deployments")),
        sa.UniqueConstraint(
            "endpoint_id", "name", name=op.f("uq_batch_deployments_endpoint_id_name")
        ),
    )
    with op.batch_alter_table("batch_deployments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_batch_deployments_code_digest"), ["code_digest"], unique=False
        )
    op.create_table(
        "batch_endpoint_jobs",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("deployment", sa.String(length=32), nullable=False),
        sa.Column("created_at", shipyard.store.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["batch_endpoints.id"],
            name=op.f("fk_batch_endpoint_jobs_endpoint_id_batch_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_batch_endpoint_jobs_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_batch_endpoint_jobs")),
    )
    with op.batch_alter_table("batch_endpoint_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_batch_endpoint_jobs_endpoint_id"), ["endpoint_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("batch_endpoint_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batch_endpoint_jobs_endpoint_id"))
    op.drop_table("batch_endpoint_jobs")
    with op.batch_alter_table("batch_deployments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batch_deployments_code_digest"))
    op.drop_table("batch_deployments")
    op.drop_table("batch_endpoints")
