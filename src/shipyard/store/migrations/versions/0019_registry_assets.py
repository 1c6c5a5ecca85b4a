"""registry assets: components that belong to a registry

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28 12:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("components", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registry_id", sa.String(length=32), nullable=True))
        batch_op.alter_column("workspace_id", existing_type=sa.String(length=32), nullable=True)
        batch_op.create_index(
            batch_op.f("ix_components_registry_id"), ["registry_id"], unique=False
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_components_registry_id_name"), ["registry_id", "name"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_components_registry_id_registries"),
            "registries",
            ["registry_id"],
            ["id"],
            ondelete="RESTRICT",
        )


def downgrade() -> None:
    # A registry's components have no workspace: they cannot survive the downgrade.
    op.execute("DELETE FROM components WHERE registry_id IS NOT NULL")
    with op.batch_alter_table("components", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_components_registry_id_registries"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_components_registry_id_name"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_components_registry_id"))
        batch_op.alter_column("workspace_id", existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_column("registry_id")
