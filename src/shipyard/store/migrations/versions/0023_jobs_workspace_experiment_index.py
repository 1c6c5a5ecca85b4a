"""jobs: one index on (workspace, experiment, start time, id) instead of the workspace's alone

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-28 20:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_workspace_experiment",
        "jobs",
        ["workspace_id", "experiment_id", "start_time", "id"],
        unique=False,
    )
    op.drop_index("ix_jobs_workspace_id", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_workspace_id", "jobs", ["workspace_id"], unique=False)
    op.drop_index("ix_jobs_workspace_experiment", table_name="jobs")
