"""The listings' change log: what the API's in-memory candidate sets (engine/candidates.py) apply per search.

Every API process holds, per store, the set of products it has in stock (a roaring bitmap). Statement triggers on
store_product append one row per listing whose sellable state (is_active AND quantity > 0) may have changed: a
listing inserted or deleted sellable, one whose state flips, one moved to another store or product (both pairs).
A quantity going from 5 to 4 writes nothing. Each row carries its top-level transaction id, so that a reader knows
which rows it may not have seen yet: those numbered past the highest it saw, and those of the transactions still in
progress in its snapshot (see candidates.py). A reader reads the pairs' current state, not the log's, so a row read
twice is harmless.

`listing_change_pruned` holds the highest number `prune_listing_changes` has deleted: a reader behind it rebuilds
its sets from store_product. (Not caught: rows of a transaction that stayed open for longer than the pruning age
after writing them, pruned in the second between its commit and the readers' next read.)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = """
CREATE TABLE listing_change (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    store_id uuid NOT NULL,
    product_master_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()  -- when written, not when its transaction began
);
CREATE INDEX ix_listing_change_xid ON listing_change (xid);
CREATE TABLE listing_change_pruned (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq bigint NOT NULL
);
INSERT INTO listing_change_pruned (seq) VALUES (0);

CREATE FUNCTION listing_change_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO listing_change (store_id, product_master_id)
    SELECT store_id, product_master_id FROM new_rows WHERE is_active AND quantity > 0;
    RETURN NULL;
END $$;

CREATE FUNCTION listing_change_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO listing_change (store_id, product_master_id)
    SELECT pair.store_id, pair.product_master_id
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    CROSS JOIN LATERAL (VALUES (o.store_id, o.product_master_id), (n.store_id, n.product_master_id))
        AS pair(store_id, product_master_id)
    WHERE (o.is_active AND o.quantity > 0) IS DISTINCT FROM (n.is_active AND n.quantity > 0)
       OR (o.store_id, o.product_master_id) IS DISTINCT FROM (n.store_id, n.product_master_id);
    RETURN NULL;
END $$;

CREATE FUNCTION listing_change_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO listing_change (store_id, product_master_id)
    SELECT store_id, product_master_id FROM old_rows WHERE is_active AND quantity > 0;
    RETURN NULL;
END $$;

-- Rows older than `keep` go; a reader that had not read them yet rebuilds its sets (listing_change_pruned).
CREATE FUNCTION prune_listing_changes(keep interval) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    last bigint;
BEGIN
    SELECT max(seq) INTO last FROM listing_change WHERE created_at < now() - keep;
    IF last IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO listing_change_pruned (seq) VALUES (last)  -- an upsert: a TRUNCATE may have emptied the table
    ON CONFLICT (one) DO UPDATE SET seq = greatest(listing_change_pruned.seq, EXCLUDED.seq);
    DELETE FROM listing_change WHERE seq <= last;
    RETURN last;
END $$;

CREATE TRIGGER trg_store_product_listing_change_insert AFTER INSERT ON store_product
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION listing_change_insert();
CREATE TRIGGER trg_store_product_listing_change_update AFTER UPDATE ON store_product
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION listing_change_update();
CREATE TRIGGER trg_store_product_listing_change_delete AFTER DELETE ON store_product
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION listing_change_delete();
"""

DOWNGRADE = """
DROP TRIGGER trg_store_product_listing_change_delete ON store_product;
DROP TRIGGER trg_store_product_listing_change_update ON store_product;
DROP TRIGGER trg_store_product_listing_change_insert ON store_product;
DROP FUNCTION prune_listing_changes(interval);
DROP FUNCTION listing_change_delete();
DROP FUNCTION listing_change_update();
DROP FUNCTION listing_change_insert();
DROP TABLE listing_change_pruned;
DROP TABLE listing_change;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
