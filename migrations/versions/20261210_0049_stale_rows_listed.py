"""An import's stale rows are listed with the rows not applied (`…/errors`, `import csv`).

A row that ends `stale` (older than its listing, a retired SKU's row in a file sent again) was counted and named
nowhere: the errors CSV read the rejected and duplicate rows alone, on an index holding those. The index now holds
the stale rows too, so the errors CSV still reads a page at a time on it, however big the import.

Revision ID: 0049
Revises: 0048
Create Date: 2026-12-10 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0049"
down_revision: str | None = "0048"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _not_applied(statuses: str) -> None:
    op.execute("DROP INDEX ix_imported_product_raw_not_applied")
    op.execute(
        "CREATE INDEX ix_imported_product_raw_not_applied ON imported_product_raw (import_batch_id, row_number, status) "
        f"WHERE status IN ({statuses})"
    )


def upgrade() -> None:
    _not_applied("'rejected', 'duplicate', 'stale'")


def downgrade() -> None:
    _not_applied("'rejected', 'duplicate'")
