"""A webhook-id per subscription: `msg_<event id>_<subscription id>`.

The fan-out gave every subscription of one event the same webhook-id (`msg_<event id>`), though their messages
differ (`sequence`, `webhook_id`, the signing secret). A receiver deduplicating on the header, as Standard Webhooks
and docs/events.md say to, dropped the second subscription's message as a duplicate when two of them (or one
dedupe store) served both. The id is stored with the delivery, so a delivery queued before this migration keeps
its old id through its retries and replays; only deliveries queued from now on get the new form.

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-07 20:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0042"
down_revision: str | None = "0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migration 0034's fan-out, the message id apart.
FAN_OUT = """
CREATE OR REPLACE FUNCTION webhook_event_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH subscribed AS (
        SELECT w.id, w.store_id, w.events, w.is_active
        FROM store_webhook w
        WHERE w.is_active AND w.store_id IN (SELECT store_id FROM new_events WHERE type <> 'webhook.ping')
        ORDER BY w.id
        FOR KEY SHARE OF w
    ), fanned AS (
        SELECT e.id AS event_id, w.id AS webhook_id,
               row_number() OVER (PARTITION BY w.id ORDER BY e.seq, e.id) AS nth
        FROM new_events e
        JOIN subscribed w ON w.store_id = e.store_id AND w.is_active
                            AND (e.type = ANY (w.events) OR '*' = ANY (w.events))
        WHERE e.type <> 'webhook.ping'
    ), counted AS (
        INSERT INTO webhook_subscription_seq AS s (webhook_id, last_seq)
        SELECT webhook_id, count(*) FROM fanned GROUP BY webhook_id ORDER BY webhook_id
        ON CONFLICT (webhook_id) DO UPDATE SET last_seq = s.last_seq + excluded.last_seq
        RETURNING s.webhook_id, s.last_seq
    )
    INSERT INTO webhook_delivery (event_id, webhook_id, message_id, sequence)
    SELECT f.event_id, f.webhook_id, {message_id},
           c.last_seq - max(f.nth) OVER (PARTITION BY f.webhook_id) + f.nth
    FROM fanned f JOIN counted c ON c.webhook_id = f.webhook_id
    ORDER BY f.event_id, f.webhook_id;
    IF FOUND THEN
        PERFORM pg_notify('webhook_delivery', '');
    END IF;
    RETURN NULL;
END $$
"""
PER_SUBSCRIPTION = "'msg_' || f.event_id || '_' || replace(f.webhook_id::text, '-', '')"


def upgrade() -> None:
    op.execute(FAN_OUT.format(message_id=PER_SUBSCRIPTION))


def downgrade() -> None:
    op.execute(FAN_OUT.format(message_id="'msg_' || f.event_id"))
