"""A product's `updated_at` moves when its own data changes, not when its vector is written.

`updated_at` is the change stamp that the API's in-memory copies of the products' text follow (the facet labels
and the suggestion index read the products stamped since their snapshot, engine/facet_labels.py and
engine/suggest_index.py). The embedding worker's write of a vector (`ai_vector`, `ai_model`, `ai_text_hash`,
`ai_embedded_at`) moved it too, so an embedding backlog draining at 100 products a second made every product it
embedded look changed: the suggestion index's overlay passed its cap within seconds, each API process rebuilt the
index back to back (100k products: 10 builds a minute, 83 s of PostgreSQL CPU a minute on 2 cores) and the
suggestions in between took the statements (13x the PostgreSQL CPU a suggestion). The vector's own stamp is
`ai_embedded_at` (the vector copy follows that one). An UPDATE that changes none of the product's own columns
(a replayed import) leaves the stamp as well.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 00:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The product's own columns: tests/test_schema.py fails when product_master gains a column this list lacks.
FUNCTION = """
CREATE FUNCTION product_master_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.name, NEW.brand, NEW.description, NEW.category_id, NEW.gtin, NEW.attributes, NEW.is_active,
        NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.name, OLD.brand, OLD.description, OLD.category_id, OLD.gtin, OLD.attributes, OLD.is_active,
        OLD.created_at) THEN
        NEW.updated_at := now();
    ELSE
        NEW.updated_at := OLD.updated_at;
    END IF;
    RETURN NEW;
END $$;
"""


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute("DROP TRIGGER trg_product_master_updated_at ON product_master")
    op.execute(
        "CREATE TRIGGER trg_product_master_updated_at BEFORE UPDATE ON product_master "
        "FOR EACH ROW EXECUTE FUNCTION product_master_set_updated_at()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER trg_product_master_updated_at ON product_master")
    op.execute(
        "CREATE TRIGGER trg_product_master_updated_at BEFORE UPDATE ON product_master "
        "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
    )
    op.execute("DROP FUNCTION product_master_set_updated_at()")
