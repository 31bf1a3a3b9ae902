"""The candidate sets' and listing buckets' read of the change log as a function planned for its values.

A search reads the changes since its process's snapshot of the sets in its first statement (`search_context`,
engine/sql/search.sql, `changes_since`). On the API's connections of generic plans that read is planned without
the snapshot's number and transactions: `seq > $1 OR xid = ANY($2)` is a sequential scan of the whole log, and
after a bulk load (one transaction writing most of the log, pruned only after an hour) that cost ~80 ms a search
at 100k. The function plans its one query for the values of each call (~0.1 ms), whatever plan the statement
calling it reuses, so `search_context` can be planned once again.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 23:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION listing_changes_since(since_seq bigint, pending bigint[], max_changes int)
RETURNS TABLE (store_id uuid, product_master_id uuid)
LANGUAGE plpgsql STABLE ROWS 10 SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    -- the listings logged past since_seq or by a transaction in progress at the snapshot, once each; none
    -- without a snapshot (since_seq NULL); max_changes + 1 of them say "too many"
    IF since_seq IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT DISTINCT c.store_id, c.product_master_id
        FROM listing_change c
        WHERE c.seq > since_seq OR c.xid = ANY(pending)
        LIMIT max_changes + 1;
END $$;
"""


def upgrade() -> None:
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION listing_changes_since(bigint, bigint[], int)")
