"""search_term: the words of product names and brands, for hybrid search's typo correction.

Typo tolerance used to match the whole query against every product name with pg_trgm (`$q <% name`): the GIN
scan over every trigram of the query, and the planner's estimate of it, were ~85 % of the keyword statement
(~5 of ~6 ms on the 100k-product benchmark catalogue). Correcting each query word against the vocabulary
instead (a few thousand words, where the catalogue has a hundred thousand names) and matching the corrected
words with the full-text index costs a fraction of that.

Nothing else matches names by trigram, so the trigram index on product_master.name goes (each embedding
write, a non-HOT update, paid for ~30 trigram entries in it).

The vocabulary only grows: a trigger adds the words of inserted products and of changed names and brands.
A word no product uses any more can still be offered as a correction, which then matches nothing: harmless.
A word is added when no committed row has it yet; terms are not unique, so a product write never waits on
another transaction's new word (a unique term would make concurrent imports queue behind one another, and
deadlock when their words come in different orders). Two writers adding the same word at once store it
twice, which lookups tolerate.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same words as search_tsv's 'simple' parts for name and brand (lexemes, lower case, unstemmed).
COLLECT_FUNCTION = """
CREATE FUNCTION search_term_collect() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO search_term (term)
        SELECT DISTINCT w FROM new_rows n,
             unnest(tsvector_to_array(to_tsvector('simple', coalesce(n.name, '') || ' ' || coalesce(n.brand, '')))) w
        WHERE NOT EXISTS (SELECT 1 FROM search_term t WHERE t.term = w);
    ELSE
        INSERT INTO search_term (term)
        SELECT DISTINCT w FROM new_rows n JOIN old_rows o ON o.id = n.id,
             unnest(tsvector_to_array(to_tsvector('simple', coalesce(n.name, '') || ' ' || coalesce(n.brand, '')))) w
        WHERE (n.name IS DISTINCT FROM o.name OR n.brand IS DISTINCT FROM o.brand)
          AND NOT EXISTS (SELECT 1 FROM search_term t WHERE t.term = w);
    END IF;
    RETURN NULL;
END $$
"""
TRIGGERS = (
    "CREATE TRIGGER trg_product_master_terms_insert AFTER INSERT ON product_master"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION search_term_collect()",
    "CREATE TRIGGER trg_product_master_terms_update AFTER UPDATE ON product_master"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION search_term_collect()",
)
# OR over a set of tsqueries (each word's spellings); AND over those (the words of the query).
AGGREGATES = (
    "CREATE AGGREGATE tsquery_or_agg(tsquery) (SFUNC = tsquery_or, STYPE = tsquery)",
    "CREATE AGGREGATE tsquery_and_agg(tsquery) (SFUNC = tsquery_and, STYPE = tsquery)",
)


def upgrade() -> None:
    op.create_table(
        "search_term",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_term")),
    )
    op.create_index(op.f("ix_search_term_term"), "search_term", ["term"])
    op.create_index(
        "ix_search_term_trgm",
        "search_term",
        ["term"],
        postgresql_using="gin",
        postgresql_ops={"term": "gin_trgm_ops"},
        postgresql_with={"fastupdate": "off"},
    )
    op.execute(COLLECT_FUNCTION)
    for statement in (*TRIGGERS, *AGGREGATES):
        op.execute(statement)
    op.execute(
        "INSERT INTO search_term (term) SELECT DISTINCT w FROM product_master p,"
        " unnest(tsvector_to_array(to_tsvector('simple', coalesce(p.name, '') || ' ' || coalesce(p.brand, '')))) w"
    )
    op.execute("ANALYZE search_term")
    op.drop_index("ix_product_master_name_trgm", table_name="product_master", postgresql_using="gin")


def downgrade() -> None:
    op.create_index(
        "ix_product_master_name_trgm",
        "product_master",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
        postgresql_with={"fastupdate": "off"},
    )
    op.execute("DROP AGGREGATE tsquery_and_agg(tsquery)")
    op.execute("DROP AGGREGATE tsquery_or_agg(tsquery)")
    op.execute("DROP TRIGGER trg_product_master_terms_update ON product_master")
    op.execute("DROP TRIGGER trg_product_master_terms_insert ON product_master")
    op.execute("DROP FUNCTION search_term_collect()")
    op.drop_index("ix_search_term_trgm", table_name="search_term")
    op.drop_index(op.f("ix_search_term_term"), table_name="search_term")
    op.drop_table("search_term")
