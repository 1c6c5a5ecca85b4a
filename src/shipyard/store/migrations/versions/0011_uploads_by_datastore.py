"""uploads by datastore

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 02:41:20.310537

Uploads of local data go to the workspace's default datastore, which may be another than its
own storage: each upload records its datastore, and the same content may be uploaded once
per datastore. Every upload made before this revision is in the workspace's own storage.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("content_uploads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "datastore",
                sa.String(length=100),
                server_default="workspaceblobstore",
                nullable=False,
            )
        )
        batch_op.drop_constraint(
            batch_op.f("uq_content_uploads_workspace_id_purpose_digest"), type_="unique"
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_content_uploads_workspace_id_purpose_digest_datastore"),
            ["workspace_id", "purpose", "digest", "datastore"],
        )


def downgrade() -> None:
    # The older schema knows uploads in the workspace's own storage only: the records of
    # uploads into other datastores go (their files stay where they are).
    op.execute("DELETE FROM content_uploads WHERE datastore <> 'workspaceblobstore'")
    with op.batch_alter_table("content_uploads", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_content_uploads_workspace_id_purpose_digest_datastore"), type_="unique"
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_content_uploads_workspace_id_purpose_digest"),
            ["workspace_id", "purpose", "digest"],
        )
        batch_op.drop_column("datastore")
