"""A batch says when its raw rows were pruned.

After `imports prune`, an import's status answered `results: []` and its errors CSV only a header while its counts
said 1 mapped and 1 rejected: a client read "no rejections". `rows_pruned_at` lets both say the rows are gone.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05 20:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE import_batch ADD COLUMN rows_pruned_at timestamptz")
    # Batches pruned before: finished, rows counted, none stored (every batch stores its rows raw first).
    op.execute(
        "UPDATE import_batch b SET rows_pruned_at = b.finished_at WHERE b.status IN ('completed', 'aborted', 'failed')"
        " AND b.total_rows > 0 AND NOT EXISTS (SELECT 1 FROM imported_product_raw r WHERE r.import_batch_id = b.id)"
    )


def downgrade() -> None:
    """For development only: drops when each batch's rows were pruned. Upgrading again refills it by the guess
    above (finished, rows counted, none stored), with the batch's finish time, not the prune's. In production,
    restore a backup instead."""
    op.execute("ALTER TABLE import_batch DROP COLUMN rows_pruned_at")
