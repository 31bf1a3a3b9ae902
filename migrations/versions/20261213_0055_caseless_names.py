"""Name completions compare names and prefixes caseless: `plinqy_caseless(name) text_pattern_ops`.

A name typed in capitals lost its completions where a capital is also another letter's: `KIRMIZI` lowers to
`kirmizi`, `STRASSENKREIDE` to `strassenkreide`, while lower() keeps `Kırmızı`'s `ı` and `Straße`'s `ß`.
`plinqy_caseless` is lower() with those two as their capitals lower (`ı` `i`, `ß` `ss`; engine/text.py's
`caseless` folds a prefix alike), and the name walk's prefix btree (0009, lower(name)) is rebuilt on it: one index
still, the same size.

Revision ID: 0055
Revises: 0054
Create Date: 2026-12-13 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0055"
down_revision: str | None = "0054"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CASELESS = """
CREATE FUNCTION plinqy_caseless(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT replace(replace(lower($1), 'ı', 'i'), 'ß', 'ss')
$$
"""


def upgrade() -> None:
    op.execute(CASELESS)
    op.execute("DROP INDEX ix_product_master_name_prefix")
    op.execute("CREATE INDEX ix_product_master_name_prefix ON product_master (plinqy_caseless(name) text_pattern_ops)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_product_master_name_prefix")
    op.execute("CREATE INDEX ix_product_master_name_prefix ON product_master (lower(name) text_pattern_ops)")
    op.execute("DROP FUNCTION plinqy_caseless(text)")
