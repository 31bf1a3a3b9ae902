"""An event's `created_at` is the time of the statement that made the change, as its payload's `occurred_at`.

It defaulted to now(), the transaction's start: a delivery's `timestamp` (Standard Webhooks: when the event
happened) was earlier than its own `data.occurred_at` (statement_timestamp()), the events of one import all
carried one time, and a long sync's events its start, minutes early; `replay --since` compared against it too.
statement_timestamp() is as cheap as now() (both are read once, not a clock call per row). Events written before
this migration keep their time.

Revision ID: 0044
Revises: 0043
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0044"
down_revision: str | None = "0043"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE webhook_event ALTER COLUMN created_at SET DEFAULT statement_timestamp()")


def downgrade() -> None:
    op.execute("ALTER TABLE webhook_event ALTER COLUMN created_at SET DEFAULT now()")
