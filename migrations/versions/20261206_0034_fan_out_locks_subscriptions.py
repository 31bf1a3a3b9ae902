"""The fan-out locks the subscriptions it delivers to, so removing one never fails a listing write.

The fan-out (migration 0027) read `store_webhook` in its statement's snapshot, then wrote the subscription's
counter row and deliveries. A `DELETE` of the subscription committed between the two (`webhooks remove`) made the
write fail on the foreign key: a 500 for an API write, a mapping failure (and a retry that held the store's later
writes back) for a batch. The subscriptions are now locked `FOR KEY SHARE` as they are read: a delete already
under way is waited for and its subscription skipped (no delivery for it); one that comes later waits for the
write's commit. Updates of other columns (`is_active`, `failing_since`) take no conflicting lock.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAN_OUT = """
CREATE OR REPLACE FUNCTION webhook_event_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH {subscribed} fanned AS (
        SELECT e.id AS event_id, w.id AS webhook_id,
               row_number() OVER (PARTITION BY w.id ORDER BY e.seq, e.id) AS nth
        FROM new_events e
        JOIN {webhooks} w ON w.store_id = e.store_id AND w.is_active
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
    ORDER BY f.event_id, f.webhook_id;
    IF FOUND THEN
        PERFORM pg_notify('webhook_delivery', '');
    END IF;
    RETURN NULL;
END $$
"""
# Locked in id order (one lock order for concurrent writes of a store); a row deleted meanwhile is skipped.
SUBSCRIBED = """subscribed AS (
        SELECT w.id, w.store_id, w.events, w.is_active
        FROM store_webhook w
        WHERE w.is_active AND w.store_id IN (SELECT store_id FROM new_events WHERE type <> 'webhook.ping')
        ORDER BY w.id
        FOR KEY SHARE OF w
    ),"""


def upgrade() -> None:
    op.execute(FAN_OUT.format(subscribed=SUBSCRIBED, webhooks="subscribed"))


def downgrade() -> None:
    op.execute(FAN_OUT.format(subscribed="", webhooks="store_webhook"))
