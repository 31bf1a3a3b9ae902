"""One definition of "the words of a product" for the typo-correction vocabulary: search_terms_of(name, brand).

Migration 0004 spelled the expression out in its trigger function and its backfill, and `vocabulary prune`
needs it too; a function keeps the three from drifting apart. IMMUTABLE: to_tsvector with an explicit config
depends on its arguments only.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 02:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TERMS_FUNCTION = """
CREATE FUNCTION search_terms_of(name text, brand text) RETURNS SETOF text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT unnest(tsvector_to_array(to_tsvector('simple', coalesce(name, '') || ' ' || coalesce(brand, ''))))
$$
"""
COLLECT_FUNCTION = """
CREATE OR REPLACE FUNCTION search_term_collect() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO search_term (term)
        SELECT DISTINCT w FROM new_rows n, search_terms_of(n.name, n.brand) w
        WHERE NOT EXISTS (SELECT 1 FROM search_term t WHERE t.term = w);
    ELSE
        INSERT INTO search_term (term)
        SELECT DISTINCT w FROM new_rows n JOIN old_rows o ON o.id = n.id, search_terms_of(n.name, n.brand) w
        WHERE (n.name IS DISTINCT FROM o.name OR n.brand IS DISTINCT FROM o.brand)
          AND NOT EXISTS (SELECT 1 FROM search_term t WHERE t.term = w);
    END IF;
    RETURN NULL;
END $$
"""
# 0004's version, restored on downgrade.
COLLECT_FUNCTION_0004 = """
CREATE OR REPLACE FUNCTION search_term_collect() RETURNS trigger LANGUAGE plpgsql AS $$
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


def upgrade() -> None:
    op.execute(TERMS_FUNCTION)
    op.execute(COLLECT_FUNCTION)


def downgrade() -> None:
    op.execute(COLLECT_FUNCTION_0004)
    op.execute("DROP FUNCTION search_terms_of(text, text)")
