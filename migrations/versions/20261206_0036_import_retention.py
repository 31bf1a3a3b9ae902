"""`imports prune` deletes finished batches and old delivery records, not only raw rows.

import_batch and ingest_delivery grew without bound (a row per listing write and per delivery). The prune reads
finished batches by `finished_at` on a partial index that now holds `failed` ones too; deliveries by `received_at`;
and deleting a batch sets its deliveries' `import_batch_id` to NULL through an index, not a scan per batch.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP INDEX ix_import_batch_finished_at")
    op.execute(
        "CREATE INDEX ix_import_batch_finished_at ON import_batch (finished_at)"
        " WHERE status IN ('completed', 'aborted', 'failed')"
    )
    op.execute("CREATE INDEX ix_ingest_delivery_received_at ON ingest_delivery (received_at)")
    op.execute(
        "CREATE INDEX ix_ingest_delivery_import_batch_id ON ingest_delivery (import_batch_id)"
        " WHERE import_batch_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_ingest_delivery_import_batch_id")
    op.execute("DROP INDEX ix_ingest_delivery_received_at")
    op.execute("DROP INDEX ix_import_batch_finished_at")
    op.execute(
        "CREATE INDEX ix_import_batch_finished_at ON import_batch (finished_at)"
        " WHERE status IN ('completed', 'aborted')"
    )
