"""Events and webhooks: an outbox written in the transaction of each listing change, deliveries per subscription.

webhook_event is the outbox. Statement-level triggers on store_product (next to the audit triggers of 0001)
write listing.created/updated/deleted, stock.changed/out/back and price.changed; row triggers on import_batch
write import.completed/failed. Events are written only for stores with an enabled subscription: a bulk load of
a store nobody listens to pays one semi-join against the (small) subscription table per statement. A row trigger
numbers each store's events (webhook_store_seq: the counter row stays locked until commit, so a store's numbers
follow its commit order). A statement trigger fans each event out to webhook_delivery, one row per matching
enabled subscription, and NOTIFYs the dispatchers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = [
    # What a listing event says: the store, the listing, the product, the values before and after.
    """
CREATE FUNCTION webhook_listing_payload(listing jsonb, old_row jsonb, new_row jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'store_id', listing->>'store_id',
        'listing', jsonb_build_object('id', listing->>'id', 'sku', listing->>'sku'),
        'product', jsonb_build_object('id', listing->>'product_master_id', 'gtin', p.gtin, 'name', p.name),
        'old', old_row - ARRAY['id', 'store_id', 'product_master_id', 'created_at', 'updated_at'],
        'new', new_row - ARRAY['id', 'store_id', 'product_master_id', 'created_at', 'updated_at'],
        'occurred_at', statement_timestamp())
    FROM (SELECT 1) one LEFT JOIN product_master p ON p.id = (listing->>'product_master_id')::uuid
$$
""",
    """
CREATE FUNCTION webhook_store_listens(store uuid) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM store_webhook w WHERE w.store_id = store AND w.is_active)
$$
""",
    """
CREATE FUNCTION webhook_events_listing_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_event (store_id, seq, type, payload)
    SELECT n.store_id, 0, 'listing.created', webhook_listing_payload(to_jsonb(n), NULL, to_jsonb(n))
    FROM new_rows n
    WHERE n.store_id IN (SELECT w.store_id FROM store_webhook w WHERE w.is_active)
    ORDER BY n.store_id, n.id;
    RETURN NULL;
END $$
""",
    # One statement, several events per changed row; stock.out/back only on a crossing of zero.
    """
CREATE FUNCTION webhook_events_listing_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_event (store_id, seq, type, payload)
    SELECT n.store_id, 0, t.type, webhook_listing_payload(to_jsonb(n), to_jsonb(o), to_jsonb(n))
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    CROSS JOIN LATERAL (VALUES
        (1, 'listing.updated', to_jsonb(o) - 'updated_at' IS DISTINCT FROM to_jsonb(n) - 'updated_at'),
        (2, 'stock.changed', n.quantity <> o.quantity),
        (3, 'stock.out', o.quantity > 0 AND n.quantity = 0),
        (4, 'stock.back', o.quantity = 0 AND n.quantity > 0),
        (5, 'price.changed', (n.price, n.currency) IS DISTINCT FROM (o.price, o.currency))
    ) AS t(ord, type, happened)
    WHERE t.happened AND n.store_id IN (SELECT w.store_id FROM store_webhook w WHERE w.is_active)
    ORDER BY n.store_id, n.id, t.ord;
    RETURN NULL;
END $$
""",
    """
CREATE FUNCTION webhook_events_listing_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_event (store_id, seq, type, payload)
    SELECT o.store_id, 0, 'listing.deleted', webhook_listing_payload(to_jsonb(o), to_jsonb(o), NULL)
    FROM old_rows o
    WHERE o.store_id IN (SELECT w.store_id FROM store_webhook w WHERE w.is_active)
    ORDER BY o.store_id, o.id;
    RETURN NULL;
END $$
""",
    """
CREATE FUNCTION webhook_events_import() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF webhook_store_listens(NEW.store_id) THEN
        INSERT INTO webhook_event (store_id, seq, type, payload)
        VALUES (NEW.store_id, 0, 'import.' || NEW.status, jsonb_build_object(
            'store_id', NEW.store_id,
            'import', jsonb_build_object(
                'id', NEW.id, 'source', NEW.source, 'status', NEW.status, 'total_rows', NEW.total_rows,
                'processed_rows', NEW.processed_rows, 'error_rows', NEW.error_rows, 'error', NEW.error,
                'started_at', NEW.started_at, 'finished_at', NEW.finished_at),
            'occurred_at', statement_timestamp()));
    END IF;
    RETURN NULL;
END $$
""",
    # The store's next number; the payload carries it and the type, so a receiver can order and deduplicate.
    """
CREATE FUNCTION webhook_event_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_store_seq AS s (store_id, last_seq) VALUES (NEW.store_id, 1)
    ON CONFLICT (store_id) DO UPDATE SET last_seq = s.last_seq + 1
    RETURNING s.last_seq INTO NEW.seq;
    NEW.payload := NEW.payload || jsonb_build_object('sequence', NEW.seq, 'event_type', NEW.type);
    RETURN NEW;
END $$
""",
    # Pings go to one subscription only; the API inserts their delivery itself.
    """
CREATE FUNCTION webhook_event_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_delivery (event_id, webhook_id, message_id)
    SELECT e.id, w.id, 'msg_' || e.id
    FROM new_events e
    JOIN store_webhook w ON w.store_id = e.store_id AND w.is_active
                        AND (e.type = ANY (w.events) OR '*' = ANY (w.events))
    WHERE e.type <> 'webhook.ping'
    ORDER BY e.id, w.id;
    IF FOUND THEN
        PERFORM pg_notify('webhook_delivery', '');
    END IF;
    RETURN NULL;
END $$
""",
]

TRIGGERS = [
    """CREATE TRIGGER trg_store_product_webhook_insert AFTER INSERT ON store_product
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION webhook_events_listing_insert()""",
    """CREATE TRIGGER trg_store_product_webhook_update AFTER UPDATE ON store_product
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_events_listing_update()""",
    """CREATE TRIGGER trg_store_product_webhook_delete AFTER DELETE ON store_product
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION webhook_events_listing_delete()""",
    """CREATE TRIGGER trg_import_batch_webhook_insert AFTER INSERT ON import_batch
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed')) EXECUTE FUNCTION webhook_events_import()""",
    """CREATE TRIGGER trg_import_batch_webhook_update AFTER UPDATE OF status ON import_batch
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION webhook_events_import()""",
    """CREATE TRIGGER trg_webhook_event_number BEFORE INSERT ON webhook_event
    FOR EACH ROW EXECUTE FUNCTION webhook_event_number()""",
    """CREATE TRIGGER trg_webhook_event_fan_out AFTER INSERT ON webhook_event
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION webhook_event_fan_out()""",
]

DROP = [
    "DROP TRIGGER trg_store_product_webhook_insert ON store_product",
    "DROP TRIGGER trg_store_product_webhook_update ON store_product",
    "DROP TRIGGER trg_store_product_webhook_delete ON store_product",
    "DROP TRIGGER trg_import_batch_webhook_insert ON import_batch",
    "DROP TRIGGER trg_import_batch_webhook_update ON import_batch",
    "DROP FUNCTION webhook_events_listing_insert()",
    "DROP FUNCTION webhook_events_listing_update()",
    "DROP FUNCTION webhook_events_listing_delete()",
    "DROP FUNCTION webhook_events_import()",
    "DROP FUNCTION webhook_store_listens(uuid)",
    "DROP FUNCTION webhook_listing_payload(jsonb, jsonb, jsonb)",
]


def _ts(name: str, **kw: object) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), **kw)  # type: ignore[arg-type]


def upgrade() -> None:
    op.add_column("store_webhook", sa.Column("disabled_reason", sa.Text()))
    op.add_column("store_webhook", _ts("failing_since"))
    op.create_table(
        "webhook_store_seq",
        sa.Column("store_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("store_id", name="pk_webhook_store_seq"),
    )
    op.create_table(
        "webhook_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("store_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _ts("created_at", server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_event"),
        sa.UniqueConstraint("store_id", "seq", name="uq_webhook_event_store_id_seq"),
    )
    op.create_index("ix_webhook_event_created_at", "webhook_event", ["created_at"])
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("webhook_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("next_attempt_at", server_default=sa.text("now()"), nullable=False),
        sa.Column("locked_by", sa.Text()),
        _ts("locked_until"),
        sa.Column("last_status_code", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        _ts("first_attempt_at"),
        _ts("last_attempt_at"),
        _ts("delivered_at"),
        _ts("created_at", server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'retrying', 'delivered', 'failed')", name="ck_webhook_delivery_status"
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_webhook_delivery_attempts"),
        sa.ForeignKeyConstraint(
            ["event_id"], ["webhook_event.id"], name="fk_webhook_delivery_event_id_webhook_event", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["store_webhook.id"],
            name="fk_webhook_delivery_webhook_id_store_webhook",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_delivery"),
    )
    op.create_index("ix_webhook_delivery_event_id", "webhook_delivery", ["event_id"])
    op.create_index("ix_webhook_delivery_webhook_id", "webhook_delivery", ["webhook_id"])
    op.create_index(
        "ix_webhook_delivery_due",
        "webhook_delivery",
        ["next_attempt_at", "id"],
        postgresql_where=sa.text("status IN ('pending', 'retrying')"),
    )
    op.create_index(
        "ix_webhook_delivery_failed", "webhook_delivery", ["id"], postgresql_where=sa.text("status = 'failed'")
    )
    for statement in FUNCTIONS + TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP:
        op.execute(statement)
    op.drop_table("webhook_delivery")  # its triggers and their functions go with the tables
    op.drop_table("webhook_event")
    op.execute("DROP FUNCTION webhook_event_number()")
    op.execute("DROP FUNCTION webhook_event_fan_out()")
    op.drop_table("webhook_store_seq")
    op.drop_column("store_webhook", "failing_since")
    op.drop_column("store_webhook", "disabled_reason")
