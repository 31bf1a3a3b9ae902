"""A single write's new or edited product is embedded before a bulk import's backlog.

Every product task was queued at priority 0 and claimed first in, first out, so while a 12,000-row CSV's tasks
were being embedded, a product one `PUT` (or a signed delivery) added waited behind all of them: found by a
semantic search after 72 s instead of the ≤ 5 s target, longer the bigger the import. The triggers now queue at
the priority the writing transaction asks for (`plinqy.embed_priority`, set by the import's fence from its batch:
1 for a listing write or a delivery of at most 100 rows, 0 for a CSV, a sync or a bigger batch; 0 when unset),
and an edit lifts a pending task below that priority to it (migration 0046 lifted to 0 only).

Revision ID: 0051
Revises: 0050
Create Date: 2026-12-12 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0051"
down_revision: str | None = "0050"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The rule the fences apply (ingest/sql batches.sql, groups.sql), kept here beside the triggers that read it.
BATCH_PRIORITY = """
CREATE FUNCTION ai_task_batch_priority(kind text, total_rows integer) RETURNS smallint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN kind IN ('listing', 'webhook') AND total_rows <= 100 THEN 1 ELSE 0 END::smallint
$$;
CREATE FUNCTION ai_task_write_priority() RETURNS smallint LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('plinqy.embed_priority', true), ''), '0')::smallint
$$;
"""
DROP_BATCH_PRIORITY = "DROP FUNCTION ai_task_write_priority(); DROP FUNCTION ai_task_batch_priority(text, integer);"

# The three queueing triggers of 0001/0046, each as one template: the products to queue (`changed`), then the insert.
ENQUEUE = """
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted smallint := {priority};
BEGIN
    WITH {changed}{raise_pending}
    INSERT INTO ai_task (product_master_id, priority)
    SELECT id, wanted FROM changed
    ON CONFLICT (product_master_id) WHERE status = 'pending' DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('ai_task', '');
    END IF;
    RETURN NULL;
END $$;
"""
NEW_PRODUCTS = "changed AS (SELECT id FROM new_rows WHERE ai_vector IS NULL)"
EDITED_PRODUCTS = """changed AS (
        SELECT n.id
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (o.name, o.brand, o.description, o.category_id, o.attributes)
              IS DISTINCT FROM (n.name, n.brand, n.description, n.category_id, n.attributes)
    )"""
CATEGORY_PRODUCTS = """RECURSIVE subtree AS (
        SELECT NEW.id AS id
        UNION ALL
        SELECT c.id FROM category c JOIN subtree s ON c.parent_id = s.id
    ), changed AS (
        SELECT p.id FROM product_master p JOIN subtree s ON p.category_id = s.id
    )"""

# As in 0046: only the tasks below the edit's priority are written (and locked), never lowered. A new product has
# no task yet: nothing to raise.
RAISE = """, raised AS (
        UPDATE ai_task t SET priority = wanted
        FROM changed c
        WHERE t.product_master_id = c.id AND t.status = 'pending' AND t.priority < wanted
    )"""

TRIGGERS = (
    ("enqueue_embedding_on_insert", NEW_PRODUCTS, ""),
    ("enqueue_embedding_on_update", EDITED_PRODUCTS, RAISE),
    ("enqueue_embedding_on_category_change", CATEGORY_PRODUCTS, RAISE),
)


def _replace_triggers(priority: str) -> None:
    for name, changed, raise_pending in TRIGGERS:
        op.execute(ENQUEUE.format(name=name, priority=priority, changed=changed, raise_pending=raise_pending))


def upgrade() -> None:
    op.execute(BATCH_PRIORITY)
    _replace_triggers("ai_task_write_priority()")


def downgrade() -> None:
    _replace_triggers("0")  # 0046's: priority 0 always
    op.execute(DROP_BATCH_PRIORITY)
