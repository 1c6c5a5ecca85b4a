"""online endpoint compute

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-28 13:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("online_endpoints") as batch:
        batch.add_column(sa.Column("compute", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("online_endpoints") as batch:
        batch.drop_column("compute")
