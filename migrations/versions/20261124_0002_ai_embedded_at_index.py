"""product_master.ai_embedded_at becomes the vectors' change stamp, indexed, for the API's in-memory copy.

The search API keeps every product vector in memory for exact scoring; each search asks which vectors
changed since that copy was taken (`ai_embedded_at > watermark`), and the copy refreshes itself the same
way: index-only range scans on the new index. Also an index on lower(name), for hybrid search's exact-name
match. For that to be sound every change of ai_vector must move
ai_embedded_at, whoever writes it, so a trigger stamps it (clock_timestamp(), not the transaction's start,
which keeps the gap between the stamp and the commit short).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

STAMP_FUNCTION = """
CREATE FUNCTION product_master_stamp_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.ai_vector IS DISTINCT FROM OLD.ai_vector THEN
        NEW.ai_embedded_at := CASE WHEN NEW.ai_vector IS NULL THEN NULL ELSE clock_timestamp() END;
    END IF;
    RETURN NEW;
END $$
"""
# No WHEN clause and no column list: either would make the trigger depend on ai_vector, and block
# `ALTER COLUMN ai_vector TYPE vector(n)` when the model (and its dimension) changes.
STAMP_TRIGGER = (
    "CREATE TRIGGER trg_product_master_stamp_vector BEFORE INSERT OR UPDATE ON product_master FOR EACH ROW"
    " EXECUTE FUNCTION product_master_stamp_vector()"
)

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_product_master_ai_embedded_at",
        "product_master",
        ["ai_embedded_at"],
        postgresql_include=["id"],
    )
    op.create_index("ix_product_master_lower_name", "product_master", [sa.text("lower(name)")])
    op.execute(STAMP_FUNCTION)
    # Vectors written without a stamp before this revision get one, so the copy can track them too.
    op.execute(
        "UPDATE product_master SET ai_embedded_at = now() WHERE ai_vector IS NOT NULL AND ai_embedded_at IS NULL"
    )
    op.execute(STAMP_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER trg_product_master_stamp_vector ON product_master")
    op.execute("DROP FUNCTION product_master_stamp_vector()")
    op.drop_index("ix_product_master_lower_name", table_name="product_master")
    op.drop_index("ix_product_master_ai_embedded_at", table_name="product_master")
