"""One brand index for the filter and the completions: `plinqy_fold(brand) text_pattern_ops`.

The brand filter compares `plinqy_fold(brand)` (0038, `ix_product_master_brand_folded`, a default btree) and the
brand completions walk the folded brand by prefix (`~>=~`/`~<~`, suggest.sql), which only a text_pattern_ops btree
serves; `ix_product_master_brand_prefix` (lower(brand) text_pattern_ops, 0009) then served nothing. A
text_pattern_ops btree also answers `=`, so one index serves both, and a product insert maintains one brand index
instead of two (each ~4-7 µs an insert, 0038's measure).

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_product_master_brand_folded_prefix ON product_master (plinqy_fold(brand) text_pattern_ops)"
    )
    op.execute("DROP INDEX ix_product_master_brand_folded")
    op.execute("DROP INDEX ix_product_master_brand_prefix")


def downgrade() -> None:
    op.execute("CREATE INDEX ix_product_master_brand_prefix ON product_master (lower(brand) text_pattern_ops)")
    op.execute("CREATE INDEX ix_product_master_brand_folded ON product_master (plinqy_fold(brand))")
    op.execute("DROP INDEX ix_product_master_brand_folded_prefix")
