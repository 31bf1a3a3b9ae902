"""The row that replaced a duplicate, as a column: `imported_product_raw.replaced_by_row`.

The errors CSV tells a duplicate whose replacing row was rejected (the SKU left as it was) by joining that row. It
found its number by parsing the duplicate's reason text (`replaced by row N, ...`), so rewording the reason would
have broken the join silently. mark_duplicates now writes the number beside the reason; the rows marked before this
migration get theirs from their reason, once.

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-07 21:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0043"
down_revision: str | None = "0042"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE imported_product_raw ADD COLUMN replaced_by_row int")
    op.execute(
        "UPDATE imported_product_raw SET replaced_by_row = substring(error FROM '^replaced by row (\\d+)')::int "
        "WHERE status = 'duplicate' AND error ~ '^replaced by row \\d+'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE imported_product_raw DROP COLUMN replaced_by_row")
