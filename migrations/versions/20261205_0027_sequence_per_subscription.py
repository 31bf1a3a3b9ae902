"""`sequence` numbers a subscription's deliveries, not the store's events.

A subscription to some event types (`["stock.out", "stock.back"]`) received the store's event numbers, so it saw a
gap wherever another type was: it could not tell a lost delivery from an event it never asked for, though the
sequence is there to "notice a missing one". Each delivery now takes its subscription's next number when it is
fanned out (webhook_subscription_seq: the counter row, like the store's, stays locked until commit, so the
numbers follow the commit order); the body's `data.sequence` is that number and `data.store_sequence` the store's
(one order across subscriptions). A delivery of before this migration (and a ping) has none: it keeps the store's.
Each counter starts at its store's counter, so a receiver's numbers keep rising across the upgrade (after a
downgrade and upgrade too, and with the deliveries pruned: they restarted at 1 under the same webhook-id).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05 17:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAN_OUT = """
CREATE OR REPLACE FUNCTION webhook_event_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{body}
    IF FOUND THEN
        PERFORM pg_notify('webhook_delivery', '');
    END IF;
    RETURN NULL;
END $$
"""
# The subscription's counters move by the count of its deliveries in this statement, each delivery taking the
# next number in the store's order (its events' seq).
NUMBERED = """
    WITH fanned AS (
        SELECT e.id AS event_id, w.id AS webhook_id,
               row_number() OVER (PARTITION BY w.id ORDER BY e.seq, e.id) AS nth
        FROM new_events e
        JOIN store_webhook w ON w.store_id = e.store_id AND w.is_active
                            AND (e.type = ANY (w.events) OR '*' = ANY (w.events))
        WHERE e.type <> 'webhook.ping'
    ), counted AS (
        INSERT INTO webhook_subscription_seq AS s (webhook_id, last_seq)
        SELECT webhook_id, count(*) FROM fanned GROUP BY webhook_id ORDER BY webhook_id
        ON CONFLICT (webhook_id) DO UPDATE SET last_seq = s.last_seq + excluded.last_seq
        RETURNING s.webhook_id, s.last_seq
    )
    INSERT INTO webhook_delivery (event_id, webhook_id, message_id, sequence)
    SELECT f.event_id, f.webhook_id, 'msg_' || f.event_id,
           c.last_seq - max(f.nth) OVER (PARTITION BY f.webhook_id) + f.nth
    FROM fanned f JOIN counted c ON c.webhook_id = f.webhook_id
    ORDER BY f.event_id, f.webhook_id;"""
STORE_NUMBERED = """
    INSERT INTO webhook_delivery (event_id, webhook_id, message_id)
    SELECT e.id, w.id, 'msg_' || e.id
    FROM new_events e
    JOIN store_webhook w ON w.store_id = e.store_id AND w.is_active
                        AND (e.type = ANY (w.events) OR '*' = ANY (w.events))
    WHERE e.type <> 'webhook.ping'
    ORDER BY e.id, w.id;"""


def upgrade() -> None:
    op.execute(
        """CREATE TABLE webhook_subscription_seq (
        webhook_id uuid NOT NULL,
        last_seq bigint NOT NULL DEFAULT 0,
        CONSTRAINT pk_webhook_subscription_seq PRIMARY KEY (webhook_id),
        CONSTRAINT fk_webhook_subscription_seq_webhook_id_store_webhook FOREIGN KEY (webhook_id)
            REFERENCES store_webhook (id) ON DELETE CASCADE)"""
    )
    op.execute("ALTER TABLE webhook_delivery ADD COLUMN sequence bigint")
    # From the store's counter, which every number a receiver saw came from (before this migration `sequence` was
    # the store's number): seeded from the deliveries left, a subscription whose deliveries `prune` had deleted
    # restarted at 1 under the same webhook-id. A jump, never a number again.
    op.execute(
        """INSERT INTO webhook_subscription_seq (webhook_id, last_seq)
        SELECT w.id, ss.last_seq FROM store_webhook w JOIN webhook_store_seq ss ON ss.store_id = w.store_id
        WHERE ss.last_seq > 0"""
    )
    op.execute(FAN_OUT.format(body=NUMBERED))


def downgrade() -> None:
    """For development only: drops every delivery's subscription number and the counters. Upgrading again leaves
    the deliveries made before with `sequence` NULL: a replay of one sends the store's number, not the one the
    receiver saw. In production, restore a backup instead."""
    op.execute(FAN_OUT.format(body=STORE_NUMBERED))
    op.execute("ALTER TABLE webhook_delivery DROP COLUMN sequence")
    op.execute("DROP TABLE webhook_subscription_seq")
