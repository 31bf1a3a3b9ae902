"""A product edit raises its pending embedding task to the edit's priority.

The update and category triggers queued a task with `ON CONFLICT … DO NOTHING`: a product that already had a
pending task kept that task's priority. During a bulk `reembed --via-queue` (its tasks at priority -1) an edited
product waited behind the whole backlog (minutes for tens of thousands of tasks) while new products (priority 0)
went first, and searches ranked it by its old text meanwhile. The edit now lifts a pending task below its priority
(0) to it; a task already at that priority or above is left as it is (no write, no lock).

Revision ID: 0046
Revises: 0045
Create Date: 2026-12-08 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0046"
down_revision: str | None = "0045"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ON_UPDATE = """
CREATE OR REPLACE FUNCTION enqueue_embedding_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH changed AS (
        SELECT n.id
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (o.name, o.brand, o.description, o.category_id, o.attributes)
              IS DISTINCT FROM (n.name, n.brand, n.description, n.category_id, n.attributes)
    ){raise_pending}
    INSERT INTO ai_task (product_master_id)
    SELECT id FROM changed
    ON CONFLICT (product_master_id) WHERE status = 'pending' DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('ai_task', '');
    END IF;
    RETURN NULL;
END $$;
"""

ON_CATEGORY_CHANGE = """
CREATE OR REPLACE FUNCTION enqueue_embedding_on_category_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH RECURSIVE subtree AS (
        SELECT NEW.id AS id
        UNION ALL
        SELECT c.id FROM category c JOIN subtree s ON c.parent_id = s.id
    ), changed AS (
        SELECT p.id FROM product_master p JOIN subtree s ON p.category_id = s.id
    ){raise_pending}
    INSERT INTO ai_task (product_master_id)
    SELECT id FROM changed
    ON CONFLICT (product_master_id) WHERE status = 'pending' DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('ai_task', '');
    END IF;
    RETURN NULL;
END $$;
"""

# Only the tasks below the edit's priority are written (and locked): a pending task at 0 is left alone, so an open
# edit never holds a row a worker would skip (ON CONFLICT DO UPDATE locks every conflicting row, even unchanged).
RAISE = """, raised AS (
        UPDATE ai_task t SET priority = 0
        FROM changed c
        WHERE t.product_master_id = c.id AND t.status = 'pending' AND t.priority < 0
    )"""
KEEP = ""


def upgrade() -> None:
    op.execute(ON_UPDATE.format(raise_pending=RAISE))
    op.execute(ON_CATEGORY_CHANGE.format(raise_pending=RAISE))


def downgrade() -> None:
    op.execute(ON_UPDATE.format(raise_pending=KEEP))
    op.execute(ON_CATEGORY_CHANGE.format(raise_pending=KEEP))
