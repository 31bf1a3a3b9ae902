"""A retired SKU keeps the product it had: written again without a GTIN, it takes that product back.

A store's SKU X (product P) taken off sale, its listing taken over by a new SKU Y of P (a POS that recreated the
item under a new id, migration 0030), then Y off sale and X written again without a GTIN (a till's or a CSV
export's empty barcode cell): X named no listing, and a new product was made beside P (its GTIN, its other stores'
listings and the listing's history left on P, a second search hit for one article). `retired_listing_sku` now
keeps X's product, and X's row takes P's deleted listing back (mapping.py), as a deleted listing's own SKU does.
Existing retired SKUs find theirs in the listing history (the update that gave the listing another SKU); one
whose history was pruned keeps none and is mapped as before.

Revision ID: 0054
Revises: 0053
Create Date: 2026-12-13 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0054"
down_revision: str | None = "0053"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
UPDATE retired_listing_sku r
SET product_master_id = h.product_master_id
FROM (
    SELECT DISTINCT ON (h.store_id, h.old_row->>'sku') h.store_id, h.old_row->>'sku' AS sku, h.product_master_id
    FROM history_store_product h
    WHERE h.operation = 'UPDATE' AND h.old_row->>'sku' IS DISTINCT FROM h.new_row->>'sku'
    ORDER BY h.store_id, h.old_row->>'sku', h.id DESC
) h
WHERE h.store_id = r.store_id AND h.sku = r.sku
  AND EXISTS (SELECT 1 FROM product_master p WHERE p.id = h.product_master_id)
"""


def upgrade() -> None:
    op.add_column("retired_listing_sku", sa.Column("product_master_id", postgresql.UUID(as_uuid=True)))
    op.create_foreign_key(
        "fk_retired_listing_sku_product_master_id_product_master",
        "retired_listing_sku",
        "product_master",
        ["product_master_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_constraint(
        "fk_retired_listing_sku_product_master_id_product_master", "retired_listing_sku", type_="foreignkey"
    )
    op.drop_column("retired_listing_sku", "product_master_id")
