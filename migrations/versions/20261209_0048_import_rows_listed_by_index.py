"""An import's rows not applied, and those mapped with notes, are read on partial indexes of their own.

`GET /v1/imports/{id}/errors` read every rejected or duplicate row of a batch in one statement, and the status's
`noted_rows` counted the noted rows by scanning the batch's rows (the planner chose a scan of the whole table for a
big batch): past a few hundred thousand rows both ran over the API's statement timeout (503, "retry shortly", for
ever). The rows are now read a page at a time by row number, and counted, on indexes that hold only such rows.

Revision ID: 0048
Revises: 0047
Create Date: 2026-12-09 14:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0048"
down_revision: str | None = "0047"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_imported_product_raw_not_applied ON imported_product_raw (import_batch_id, row_number, status) "
        "WHERE status IN ('rejected', 'duplicate')"
    )
    op.execute(
        "CREATE INDEX ix_imported_product_raw_noted ON imported_product_raw (import_batch_id, row_number) "
        "WHERE status = 'mapped' AND error IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_imported_product_raw_noted")
    op.execute("DROP INDEX ix_imported_product_raw_not_applied")
