"""A delivery keeps the URL its last attempt was sent to (`webhook_delivery.last_url`).

`webhooks deliveries` showed every delivery with its subscription's current URL: after `webhooks update --url`,
the old deliveries (and their failures) read as if the new receiver had answered them. Deliveries recorded before
this migration have no such URL and are still shown with the subscription's.

Revision ID: 0047
Revises: 0046
Create Date: 2026-12-09 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0047"
down_revision: str | None = "0046"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhook_delivery", sa.Column("last_url", sa.Text()))


def downgrade() -> None:
    op.drop_column("webhook_delivery", "last_url")
