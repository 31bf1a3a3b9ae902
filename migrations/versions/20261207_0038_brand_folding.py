"""A brand is one brand whatever its accents: `Chateau Belair` filters and counts `Château Belair` too.

The brand filter and facet compared `lower(brand)`, so `Château Belair` and `Chateau Belair` were two facet values
and `brand=lowicz` found nothing of `Łowicz`, where the words of both have matched alike since 0035.
`plinqy_fold(text)` is `lower()` then `unaccent` (the rules `plinqy_simple` folds words with; engine/text.py's
`fold_accents` in Python), declared IMMUTABLE so that an index can hold it: `unaccent` is STABLE only because it
reads its dictionary by name, which this names with its schema. The brand filter's own index
(`ix_product_master_brand_folded`) keeps a brand's products an index probe: folded without it, the filter scanned
every product (200k rows: 0.2 -> 90 ms). The index costs a product insert ~4-7 µs (20k in one INSERT: 743 ->
817-883 ms); the keyword side's exact flag (per row scored, no index) calls `unaccent` itself.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-06 07:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOLD = """
CREATE FUNCTION plinqy_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT {schema}.unaccent('{schema}.unaccent'::regdictionary, lower($1))
$$
"""


def upgrade() -> None:
    schema = op.get_bind().exec_driver_sql(
        "SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'unaccent'"
    )
    op.execute(FOLD.format(schema=schema.scalar_one()))
    op.execute("CREATE INDEX ix_product_master_brand_folded ON product_master (plinqy_fold(brand))")


def downgrade() -> None:
    op.execute("DROP INDEX ix_product_master_brand_folded")
    op.execute("DROP FUNCTION plinqy_fold(text)")
