"""A ping no longer takes a number of the store's events.

`sequence` numbers a store's events without gaps, so that a receiver can notice a missing one. A ping
(`POST /v1/stores/{id}/webhooks/{webhook_id}/test`) goes to one subscription only, yet took the store's next number:
every other subscriber saw a gap for each ping it never received. A ping's row now takes a number of its own below
zero (its id, negated: the unique (store_id, seq) holds) and its payload carries no `sequence`.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The store's next number, as migration 0007 gives it (the downgrade's whole body).
NUMBER = """
    INSERT INTO webhook_store_seq AS s (store_id, last_seq) VALUES (NEW.store_id, 1)
    ON CONFLICT (store_id) DO UPDATE SET last_seq = s.last_seq + 1
    RETURNING s.last_seq INTO NEW.seq;
    NEW.payload := NEW.payload || jsonb_build_object('sequence', NEW.seq, 'event_type', NEW.type);
    RETURN NEW;
"""
PINGS_APART = """
    IF NEW.type = 'webhook.ping' THEN  -- one subscription's: not part of the store's numbered events
        NEW.seq := -NEW.id;
        NEW.payload := NEW.payload || jsonb_build_object('event_type', NEW.type);
        RETURN NEW;
    END IF;
"""


def _numbering(body: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION webhook_event_number() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN{body}END $$"
    )


def upgrade() -> None:
    op.execute(_numbering(PINGS_APART + NUMBER))


def downgrade() -> None:
    op.execute(_numbering(NUMBER))
