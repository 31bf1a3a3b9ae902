"""The listings' change log also names a sellable listing whose price changed.

The API holds, per product, the price bucket of each of its listings in stock (engine/facet_stock.py), for the
price facet; like the candidate sets it reads the pairs logged since its snapshot with their current state, so a
pair logged for a price change is harmless to the candidate sets (its sellable state is read again, unchanged).

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-03 11:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPDATE_FUNCTION = """
CREATE OR REPLACE FUNCTION listing_change_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO listing_change (store_id, product_master_id)
    SELECT pair.store_id, pair.product_master_id
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    CROSS JOIN LATERAL (VALUES (o.store_id, o.product_master_id), (n.store_id, n.product_master_id))
        AS pair(store_id, product_master_id)
    WHERE (o.is_active AND o.quantity > 0) IS DISTINCT FROM (n.is_active AND n.quantity > 0)
       OR (o.store_id, o.product_master_id) IS DISTINCT FROM (n.store_id, n.product_master_id)
       {price}
    ;
    RETURN NULL;
END $$;
"""
PRICE_CHANGED = "OR (n.is_active AND n.quantity > 0 AND o.price IS DISTINCT FROM n.price)"


def upgrade() -> None:
    op.execute(UPDATE_FUNCTION.format(price=PRICE_CHANGED))


def downgrade() -> None:
    op.execute(UPDATE_FUNCTION.format(price=""))
