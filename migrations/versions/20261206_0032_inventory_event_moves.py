"""A listing moved to another product writes its stock leaving the old product and arriving at the new one.

A listing's product changes when the store re-codes its GTIN (ingest/mapping.py). The update trigger wrote one
`inventory_event` for the new product, and only when the quantity changed: the old product kept the stock in its
deltas for good (the per-product sums drifted from the levels). A move now writes `moved_out` (the old product,
minus the old level) and `moved_in` (the new product, plus the new level); a listing's own deltas add up as before.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06 00:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AFTER_UPDATE = """
CREATE OR REPLACE FUNCTION store_product_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO history_store_product (store_product_id, store_id, product_master_id, operation, old_row, new_row)
    SELECT n.id, n.store_id, n.product_master_id, 'UPDATE', to_jsonb(o), to_jsonb(n)
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE to_jsonb(o) - 'updated_at' IS DISTINCT FROM to_jsonb(n) - 'updated_at';
    INSERT INTO search_index_queue (entity_type, entity_id, operation)
    SELECT 'store_product', n.id, 'UPDATE'
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE to_jsonb(o) - 'updated_at' IS DISTINCT FROM to_jsonb(n) - 'updated_at';
    {insert_events}
    {events}
    RETURN NULL;
END $$
"""

INSERT_EVENTS = "INSERT INTO inventory_event (store_product_id, store_id, product_master_id, old_quantity, new_quantity, delta, reason)"

STOCK_CHANGED = """SELECT n.id, n.store_id, n.product_master_id, o.quantity, n.quantity, n.quantity - o.quantity, 'update'
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.quantity <> o.quantity{same_product};"""

MOVED = """SELECT m.id, m.store_id, m.product, m.old_quantity, m.new_quantity, m.delta, m.reason
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    CROSS JOIN LATERAL (VALUES
        (n.id, n.store_id, o.product_master_id, o.quantity, NULL::integer, -o.quantity, 'moved_out', 1),
        (n.id, n.store_id, n.product_master_id, NULL::integer, n.quantity, n.quantity, 'moved_in', 2)
    ) AS m (id, store_id, product, old_quantity, new_quantity, delta, reason, step)
    WHERE n.product_master_id <> o.product_master_id
    ORDER BY n.id, m.step;"""


def upgrade() -> None:
    same_product = " AND n.product_master_id = o.product_master_id"
    events = f"{STOCK_CHANGED.format(same_product=same_product)}\n    {INSERT_EVENTS}\n    {MOVED}"
    op.execute(AFTER_UPDATE.format(insert_events=INSERT_EVENTS, events=events))


def downgrade() -> None:
    op.execute(AFTER_UPDATE.format(insert_events=INSERT_EVENTS, events=STOCK_CHANGED.format(same_product="")))
