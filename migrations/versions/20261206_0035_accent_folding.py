"""Words match whatever their accents: `creme brulee` finds `Crème Brûlée`, `strasse` finds `Straße`.

The keyword side read names with the `simple` and `english` text search configurations, which keep every accent:
`creme brulee`, `pate` or `istanbul` (a Turkish `İ`) matched none of the products named with them (typo tolerance
corrects one edit in a long word, not `pâté`'s two), where shoppers commonly type without accents.
`plinqy_simple` and `plinqy_english` are the same configurations with the `unaccent` dictionary first for words
holding letters outside ASCII (it folds accents and spells out `ß`, `æ`, `œ`, and folds `ı`/`İ` to `i`). Product
text is stored as it came (names show their accents); only the lexemes fold, and the queries are read with the
same configurations, so a query typed with accents matches as before.

`search_tsv` is rebuilt with them (PostgreSQL 15 cannot change a generated column's expression: the column, its
GIN index and that index's flush trigger argument are recreated; the table is rewritten once). The vocabulary
(`search_terms_of`, table `search_term`) takes folded words too, so a typo is corrected to a folded word that the
index holds.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-06 04:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The parser's token types that can hold letters outside ASCII (the ascii* types never carry an accent): words,
# and words with digits (`crème2`), which `english` does not stem.
WORDS = "word, hword, hword_part"
NUMBER_WORDS = "numword, numhword, hword_numpart"
CONFIGS = (
    "CREATE TEXT SEARCH CONFIGURATION plinqy_simple (COPY = pg_catalog.simple)",
    f"ALTER TEXT SEARCH CONFIGURATION plinqy_simple ALTER MAPPING FOR {WORDS}, {NUMBER_WORDS} WITH unaccent, simple",
    "CREATE TEXT SEARCH CONFIGURATION plinqy_english (COPY = pg_catalog.english)",
    f"ALTER TEXT SEARCH CONFIGURATION plinqy_english ALTER MAPPING FOR {WORDS} WITH unaccent, english_stem",
    f"ALTER TEXT SEARCH CONFIGURATION plinqy_english ALTER MAPPING FOR {NUMBER_WORDS} WITH unaccent, simple",
)
SEARCH_TSV = (
    "setweight(to_tsvector('{simple}'::regconfig, coalesce(name, '')), 'A') || "
    "setweight(to_tsvector('{simple}'::regconfig, coalesce(brand, '') || ' ' || coalesce(gtin, '')), 'B') || "
    "setweight(to_tsvector('{english}'::regconfig, coalesce(name, '')), 'A') || "
    "setweight(to_tsvector('{english}'::regconfig, coalesce(description, '')), 'C')"
)
TERMS_FUNCTION = """
CREATE OR REPLACE FUNCTION search_terms_of(name text, brand text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT unnest(tsvector_to_array(to_tsvector('{simple}', coalesce(name, '') || ' ' || coalesce(brand, ''))))
$$
"""
# The vocabulary as the products' words now are: stale spellings out, folded ones in (a word in both keeps its row).
VOCABULARY = (
    "CREATE TEMP TABLE new_terms ON COMMIT DROP AS"
    " SELECT DISTINCT w AS term FROM product_master p, search_terms_of(p.name, p.brand) w",
    "DELETE FROM search_term t WHERE NOT EXISTS (SELECT 1 FROM new_terms n WHERE n.term = t.term)",
    "INSERT INTO search_term (term) SELECT n.term FROM new_terms n"
    " WHERE NOT EXISTS (SELECT 1 FROM search_term t WHERE t.term = n.term)",
    "DROP TABLE new_terms",
)


def _rebuild(simple: str, english: str) -> None:
    op.execute("DROP TRIGGER trg_product_master_flush_gin ON product_master")
    op.execute("ALTER TABLE product_master DROP COLUMN search_tsv")
    expression = SEARCH_TSV.format(simple=simple, english=english)
    op.execute(f"ALTER TABLE product_master ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS ({expression}) STORED")
    op.execute(
        "CREATE INDEX ix_product_master_search_tsv ON product_master USING gin (search_tsv) WITH (fastupdate = on)"
    )
    op.execute(
        "CREATE TRIGGER trg_product_master_flush_gin AFTER INSERT OR UPDATE ON product_master "
        "FOR EACH STATEMENT EXECUTE FUNCTION gin_flush_pending('public.ix_product_master_search_tsv')"
    )
    op.execute(TERMS_FUNCTION.format(simple=simple))
    for sql in VOCABULARY:
        op.execute(sql)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    for sql in CONFIGS:
        op.execute(sql)
    _rebuild("plinqy_simple", "plinqy_english")


def downgrade() -> None:
    _rebuild("simple", "english")
    op.execute("DROP TEXT SEARCH CONFIGURATION plinqy_english")
    op.execute("DROP TEXT SEARCH CONFIGURATION plinqy_simple")
    op.execute("DROP EXTENSION IF EXISTS unaccent")
