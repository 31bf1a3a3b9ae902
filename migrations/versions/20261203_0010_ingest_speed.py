"""Ingest speed: the search GIN indexes take a statement's new entries in one sorted merge, not one by one.

Measured on a 100k-row CSV import (5,000-row chunks, 2 cores): each chunk's product insert spent ~0.27 s in
search_term_collect, nearly all of it inserting ~5,000 new words one at a time into ix_search_term_trgm, and
~0.1 s more putting ~50,000 lexemes one at a time into ix_product_master_search_tsv (fastupdate = off: every
entry walks the GIN tree). With fastupdate on, the entries land in the index's pending list, and a statement
trigger merges the list into the tree when the statement ends (gin_clean_pending_list: the entries sorted and
grouped per key): ~30 ms and ~15 ms for the same rows. The list is empty again after every statement, so searches
do not scan a pending list (the reason 0003 turned fastupdate off): only a statement still running has entries
there, for the moment between its writes and its end.

Storing an upload (COPY of 100k raw rows, ~1.3 s) paid for two index entries per row that nothing needs:
ix_imported_product_raw_import_batch_id repeats the leading column of uq_imported_product_raw_batch_row (which
serves every lookup by batch, and the foreign key's cascade), and ix_imported_product_raw_matched_product_id held
every stored row's NULL (only the foreign key's ON DELETE SET NULL reads it, by value: partial, IS NOT NULL).
Without them: ~0.9 s; mapping's row updates (non-HOT) write one entry less per row too.

gin_clean_pending_list needs the index's owner: gin_flush_pending runs as its definer (the migrating role), so an
application role that does not own the indexes still writes products.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, index, events): the trigger fires after every statement that can add entries to the index.
FLUSHED = (
    ("search_term", "ix_search_term_trgm", "INSERT OR UPDATE"),
    ("product_master", "ix_product_master_search_tsv", "INSERT OR UPDATE"),
)

FLUSH_FUNCTION = """
CREATE FUNCTION gin_flush_pending() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
DECLARE
    target regclass := to_regclass(TG_ARGV[0]);
BEGIN
    -- A bulk load (seed-demo) drops the index and rebuilds it afterwards: nothing to merge meanwhile.
    IF target IS NOT NULL THEN
        PERFORM gin_clean_pending_list(target);
    END IF;
    RETURN NULL;
END $$
"""


RAW = "imported_product_raw"
MATCHED = "ix_imported_product_raw_matched_product_id"


def upgrade() -> None:
    op.drop_index("ix_imported_product_raw_import_batch_id", table_name=RAW)
    op.drop_index(MATCHED, table_name=RAW)
    op.create_index(MATCHED, RAW, ["matched_product_id"], postgresql_where=sa.text("matched_product_id IS NOT NULL"))
    op.execute(FLUSH_FUNCTION)
    for table, index, events in FLUSHED:
        op.execute(
            f"CREATE TRIGGER trg_{table}_flush_gin AFTER {events} ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION gin_flush_pending('public.{index}')"
        )
        op.execute(f"ALTER INDEX {index} SET (fastupdate = on)")


def downgrade() -> None:
    for table, index, _events in FLUSHED:
        op.execute(f"ALTER INDEX {index} SET (fastupdate = off)")
        op.execute(f"SELECT gin_clean_pending_list('{index}'::regclass)")
        op.execute(f"DROP TRIGGER trg_{table}_flush_gin ON {table}")
    op.execute("DROP FUNCTION gin_flush_pending()")
    op.drop_index(MATCHED, table_name=RAW)
    op.create_index(MATCHED, RAW, ["matched_product_id"])
    op.create_index("ix_imported_product_raw_import_batch_id", RAW, ["import_batch_id"])
